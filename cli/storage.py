"""gc, pin, unpin: storage within a budget (node/gc.py)."""

from __future__ import annotations

from typing import Any

import click

from .context import Context, emit, json_option, pass_ctx



def _size(n: int) -> str:
    from node.bundle import human_size
    return human_size(n)


@click.command("gc")
@click.option("--dry-run", is_flag=True, help="Only say what would be deleted.")
@json_option
@pass_ctx
def gc_(obj: Context, dry_run: bool, as_json: bool) -> None:
    """Drop cached copies beyond the cache quota (least recently used first), then delete
    blocks that no pin needs and stale temporary files."""
    from node import gc
    home = obj.home()
    evicted = [] if dry_run else gc.evict(home)
    d = {**gc.collect(home, dry_run=dry_run), "evicted": evicted}

    def human(d: dict[str, Any]) -> None:
        for e in d["evicted"]:
            click.echo(f"cache quota: dropped {e['reason']} copy {e['ref']} "
                       f"({_size(e['bytes'])})")
        verb = "would delete" if d["dry_run"] else "deleted"
        click.echo(f"{verb} {d['blocks_deleted']} blocks ({_size(d['bytes_freed'])}); kept "
                   f"{d['blocks_kept']} blocks ({_size(d['bytes_kept'])})")
    emit(d, as_json, human)


@click.command()
@click.argument("target", metavar="RESOURCE_ID|CID")
@json_option
@pass_ctx
def pin(obj: Context, target: str, as_json: bool) -> None:
    """Keep a resource for good: never dropped from the cache, never collected."""
    from node import library
    d = library.pin(obj.home(), target)
    emit(d, as_json, lambda d: click.echo(f"{d['pinned']} is kept until 'schoolmesh unpin'"))


@click.command()
@click.argument("target", metavar="RESOURCE_ID|CID")
@json_option
@pass_ctx
def unpin(obj: Context, target: str, as_json: bool) -> None:
    """Remove a pin set with 'schoolmesh pin' (other reasons may still keep it)."""
    from node import library
    d = library.unpin(obj.home(), target)
    emit(d, as_json, lambda d: click.echo(f"{d['unpinned']} is no longer pinned by hand"))


def register(group: click.Group) -> None:
    for cmd in (gc_, pin, unpin):
        group.add_command(cmd)
