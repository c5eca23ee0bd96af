"""gc, pin, unpin: storage within a budget (node/gc.py)."""

from __future__ import annotations

from typing import Any

import click

from .i18n import _
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
            click.echo(_("cache quota: dropped {reason} copy {ref} ({size})").format(
                reason=e['reason'], ref=e['ref'], size=_size(e['bytes'])))
        said = (_("would delete {n} blocks ({size}); kept {kept} blocks ({kept_size})")
                if d["dry_run"] else
                _("deleted {n} blocks ({size}); kept {kept} blocks ({kept_size})"))
        click.echo(said.format(n=d['blocks_deleted'], size=_size(d['bytes_freed']),
                               kept=d['blocks_kept'], kept_size=_size(d['bytes_kept'])))
    emit(d, as_json, human)


@click.command()
@click.argument("target", metavar="RESOURCE_ID|CID")
@json_option
@pass_ctx
def pin(obj: Context, target: str, as_json: bool) -> None:
    """Keep a resource for good: never dropped from the cache, never collected."""
    from node import library
    d = library.pin(obj.home(), target)
    emit(d, as_json, lambda d: click.echo(_("{id} is kept until 'schoolmesh unpin'").format(
        id=d['pinned'])))


@click.command()
@click.argument("target", metavar="RESOURCE_ID|CID")
@json_option
@pass_ctx
def unpin(obj: Context, target: str, as_json: bool) -> None:
    """Remove a pin set with 'schoolmesh pin' (other reasons may still keep it)."""
    from node import library
    d = library.unpin(obj.home(), target)
    emit(d, as_json, lambda d: click.echo(_("{id} is no longer pinned by hand").format(
        id=d['unpinned'])))


def register(group: click.Group) -> None:
    for cmd in (gc_, pin, unpin):
        group.add_command(cmd)
