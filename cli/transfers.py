"""transfers [--watch] [--json], transfers pause|resume|cancel ID: the node's transfer queue."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from .i18n import _
from .context import Context, emit, json_option, pass_ctx

WATCH_INTERVAL = 1.0
FINISHED = ("done", "failed", "cancelled")
PRIORITY_NAMES = {30: "teacher", 20: "subscription", 10: "seeding"}


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def line(t: dict[str, Any]) -> str:
    prio = PRIORITY_NAMES.get(t.get("priority", 0), str(t.get("priority", "")))
    total = _size(t["bytes_total"]) if t.get("bytes_total") is not None else "?"
    why = f"  ({t['error']})" if t.get("error") and t["state"] != "done" else ""
    return (f"{t['id']:>4}  {_(t['state']):<9} {_(prio):<12} {_size(t['bytes_done'])} / "
            f"{total}  {t['target']}{why}")


def _watch_rich(home_path: Any) -> None:
    from rich.console import Console
    from rich.live import Live
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    from .net import call
    progress = Progress(TextColumn("{task.fields[tid]:>4}"), TextColumn("{task.fields[state]:<9}"),
                        BarColumn(), DownloadColumn(), TextColumn("{task.description}"),
                        console=Console())
    tasks: dict[int, Any] = {}
    with Live(progress, refresh_per_second=4):
        while True:
            for t in call(home_path, "transfers"):
                kw = {"completed": t["bytes_done"], "total": t["bytes_total"],
                      "state": t["state"], "tid": t["id"],
                      "description": t["target"] + (f" ({t['error']})" if t.get("error")
                                                    and t["state"] != "done" else "")}
                if t["id"] not in tasks:
                    tasks[t["id"]] = progress.add_task(**kw)
                else:
                    progress.update(tasks[t["id"]], **kw)
            time.sleep(WATCH_INTERVAL)


@click.group(invoke_without_command=True)
@click.option("--watch", is_flag=True, help="Keep showing the queue (Ctrl-C stops).")
@json_option
@click.pass_context
def transfers(ctx: click.Context, watch: bool, as_json: bool) -> None:
    """List the node's transfer queue; pause, resume or cancel a transfer."""
    if ctx.invoked_subcommand is not None:
        return
    from .net import call
    obj: Context = ctx.obj
    if not watch:
        rows = call(obj.home_path, "transfers")
        emit(rows, as_json, lambda rows: click.echo(
            "\n".join(line(t) for t in rows) or _("no transfers")))
        return
    if sys.stdout.isatty() and not as_json:
        try:
            _watch_rich(obj.home_path)
        except KeyboardInterrupt:
            pass
        return
    seen: dict[int, tuple[str, int]] = {}
    try:
        while True:
            for t in call(obj.home_path, "transfers"):
                key = (t["state"], t["bytes_done"])
                if seen.get(t["id"]) != key:
                    seen[t["id"]] = key
                    emit(t, as_json, lambda t: click.echo(line(t)))
            time.sleep(WATCH_INTERVAL)
    except KeyboardInterrupt:
        pass


def _control(action: str) -> click.Command:
    @click.command(name=action, help=f"{action.capitalize()} transfer ID (see 'schoolmesh "
                                     "transfers').")
    @click.argument("tid", metavar="ID", type=int)
    @json_option
    @pass_ctx
    def cmd(obj: Context, tid: int, as_json: bool) -> None:
        from .net import call
        t = call(obj.home_path, "transfer_control", id=tid, action=action)
        emit(t, as_json, lambda t: click.echo(line(t)))
    return cmd


for _action in ("pause", "resume", "cancel"):
    transfers.add_command(_control(_action))


def register(group: click.Group) -> None:
    group.add_command(transfers)
