"""limits set/show/clear/load: bandwidth limits, schedules and the monthly budget
(specs/limits.md). Settings live in the node's database; a running node applies them within a
few seconds."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

from .i18n import _
from .context import Context, emit, json_option, pass_ctx



@click.group()
def limits() -> None:
    """Bandwidth limits (up/down, time-of-day schedule) and a monthly budget."""


@limits.command("set")
@click.option("--up", metavar="RATE",
              help="Upload limit, e.g. 2M or 2Mbps (megabits, as lines are sold), 512k, "
                   "256KiB/s (bytes), unlimited.")
@click.option("--down", metavar="RATE",
              help="Download limit, e.g. 10M, 10Mbit/s, 1MB/s, 1MiB/s, unlimited.")
@click.option("--schedule", "schedule", multiple=True, metavar="H:MM-H:MM=RATE",
              help="A time-of-day window with its own rate in both directions (repeatable; "
                   "replaces the schedule; windows may cross midnight, must not overlap).")
@click.option("--no-schedule", is_flag=True, help="Remove every schedule window.")
@click.option("--monthly-budget", metavar="SIZE",
              help="Bytes per calendar month in both directions, e.g. 20GB, 2GiB; 'none' "
                   "removes it (G = GB = 10^9 bytes, GiB = 2^30). When spent, content transfers "
                   "stop; catalog sync continues.")
@click.option("--lan-unlimited/--no-lan-unlimited", default=None,
              help="Exempt peers on the school LAN (this computer, link-local addresses, or the same subnet as one of its network interfaces — not every private address) from "
                   "limits and budget (default: exempt).")
@click.option("--reserve", metavar="SIZE",
              help="Free disk space to keep: below it the node starts no new fetch or "
                   "seeding (default: 1GiB or 5 percent of the disk, whichever is smaller; "
                   "'default' restores that).")
@click.option("--cache", metavar="SIZE",
              help="Space for copies fetched on request or by subscriptions: beyond it the "
                   "least recently used are dropped (default: 25 percent of the disk; 'default' "
                   "restores that). Pinned copies ('schoolmesh pin') never are.")
@json_option
@pass_ctx
def set_(obj: Context, up: str | None, down: str | None, schedule: tuple[str, ...],
         no_schedule: bool, monthly_budget: str | None, lan_unlimited: bool | None,
         reserve: str | None, cache: str | None, as_json: bool) -> None:
    """Change some settings; the others keep their values. Nothing changes on an error."""
    from node import limits as nl
    from protocol import limits as pl
    conn = obj.home().conn
    changes: dict[str, Any] = {}
    if up is not None:
        changes["up"] = pl.parse_rate(up)
    if down is not None:
        changes["down"] = pl.parse_rate(down)
    if schedule and no_schedule:
        raise pl.LimitsError("give --schedule or --no-schedule, not both")
    if schedule or no_schedule:
        changes["schedule"] = tuple(pl.parse_window(w) for w in schedule)
    if monthly_budget is not None:
        changes["monthly_budget"] = pl.parse_budget(monthly_budget)
    if lan_unlimited is not None:
        changes["lan_unlimited"] = lan_unlimited
    new = pl.update(nl.load(conn), **changes)
    size = None if reserve is None or reserve.lower() == "default" else pl.parse_size(reserve)
    cache_size = None if cache is None or cache.lower() == "default" else pl.parse_size(cache)
    nl.save(conn, new)
    if reserve is not None:
        from node import storage
        storage.set_reserve(conn, size)
    if cache is not None:
        from node import gc
        gc.set_cache_quota(conn, cache_size)
    _show(obj, as_json)


@limits.command()
@json_option
@pass_ctx
def show(obj: Context, as_json: bool) -> None:
    """Print the settings as a config file (see 'limits load'), and this month's usage."""
    _show(obj, as_json)


@limits.command()
@json_option
@pass_ctx
def clear(obj: Context, as_json: bool) -> None:
    """Remove every limit, schedule and budget (traffic counters are kept)."""
    from node import limits as nl
    nl.clear(obj.home().conn)
    _show(obj, as_json)


@limits.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@json_option
@pass_ctx
def load(obj: Context, file: Path, as_json: bool) -> None:
    """Replace the settings with a config file (the format 'limits show' prints; KEY = VALUE
    lines, '#' comments, schedule repeatable)."""
    from node import limits as nl
    from protocol import limits as pl
    new = pl.parse_config(file.read_text("utf-8"))
    nl.save(obj.home().conn, new)
    _show(obj, as_json)


def _show(obj: Context, as_json: bool) -> None:
    from node import gc, storage
    from node import limits as nl
    from protocol import limits as pl
    conn = obj.home().conn
    current = nl.load(conn)
    month = nl.month_of(datetime.now())
    up, down = nl.used(conn, month)
    window = pl.window_in_force(current, datetime.now().time())
    now = (window.rate, window.rate) if window else (current.up, current.down)
    d = {**current.describe(), "now": {"up": pl.format_rate(now[0]),
                                       "down": pl.format_rate(now[1])},
         "month": month, "used": {"up": up, "down": down},
         "reserve": storage.disk(conn, obj.home().path)["reserve"],
         "cache_quota": gc.cache_quota(obj.home())}
    peers = _connected_peers(obj)
    if peers is not None:
        d["peers"] = peers

    def human(d: dict[str, Any]) -> None:
        click.echo(current.to_config(), nl=False)
        click.echo("# " + _("in force now: up {up}, down {down}").format(
            up=d['now']['up'], down=d['now']['down']))
        click.echo("# " + _("used in {month}: {up} bytes up, {down} bytes down").format(
            month=month, up=up, down=down))
        from node.bundle import human_size
        click.echo("# " + _("free disk space kept (reserve): {size}").format(
            size=human_size(d['reserve'])))
        click.echo("# " + _("cache quota: {size}").format(size=human_size(d['cache_quota'])))
        for p in d.get("peers", []):
            kind = (_("school LAN, not limited") if current.lan_unlimited else _("school LAN")) \
                if p["lan"] else _("not the school LAN, limited")
            click.echo("# " + _("connected: {school} at {address} ({kind})").format(
                school=p['peer_id'], address=p['remote'] or '?', kind=kind))
    emit(d, as_json, human)


def register(group: click.Group) -> None:
    group.add_command(limits)


def _connected_peers(obj: Context) -> list[dict[str, Any]] | None:
    """Connected peers and whether each counts as LAN, when the node is running."""
    from .net import call, daemon_info
    if daemon_info(obj.home_path) is None:
        return None
    return [{"peer_id": p["peer_id"], "remote": p.get("remote"), "lan": p.get("lan", False)}
            for p in call(obj.home_path, "peers")]
