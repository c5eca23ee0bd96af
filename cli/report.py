"""report (text, json, csv, html), report announce, report seed-rare, report hide / unhide:
community reports, holdings summaries, the copy audit and moderation (specs/oversight.md)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import click

from .context import Context, emit, json_option, pass_ctx

community_option = click.option("--community", "community_id", metavar="ID",
                                help="Which community (needed only when this school is in "
                                     "several).")


def _day_ms(text: str | None, *, end: bool) -> int | None:
    """YYYY-MM-DD (UTC) -> ms; an end date counts up to the end of that day."""
    if text is None:
        return None
    try:
        d = date.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a date like 2026-09-01") from None
    if end:
        d += timedelta(days=1)
    return int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp() * 1000)


@click.group(invoke_without_command=True)
@community_option
@click.option("--from", "start", metavar="DATE", help="First day counted (YYYY-MM-DD, UTC).")
@click.option("--to", "end", metavar="DATE", help="Last day counted (YYYY-MM-DD, UTC).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "csv", "html"]),
              default="text", show_default=True,
              help="text for the terminal, json (byte-identical on every node holding the same "
                   "feeds), csv for a spreadsheet, html for printing.")
@click.option("--lang", type=click.Choice(["zh-CN", "en"]), default="zh-CN",
              show_default=True, help="Language of the html format.")
@click.pass_context
def report(ctx: click.Context, community_id: str | None, start: str | None, end: str | None,
           fmt: str, lang: str) -> None:
    """A community's report, computed from signed entries only: what its schools published
    and adapted, feedback, requests, the reach of its demonstration schools, coverage by
    subject and grade, and how many schools hold each resource. Two schools holding the same
    feeds print the same JSON."""
    if ctx.invoked_subcommand is not None:
        return
    from node import oversight
    from node.web import report as view
    from protocol import report as pr
    obj: Context = ctx.find_object(Context)
    rep = oversight.report(obj.home(), community_id, _day_ms(start, end=False),
                           _day_ms(end, end=True))
    if fmt == "json":
        click.echo(pr.to_json(rep), nl=False)
    elif fmt == "csv":
        click.echo(view.render_csv(rep), nl=False)
    elif fmt == "html":
        click.echo(view.render_standalone(rep, lang), nl=False)
    else:
        click.echo(view.render_text(rep), nl=False)


@report.command()
@click.option("--force", is_flag=True, help="Sign now even if the last summary is recent.")
@json_option
@pass_ctx
def announce(obj: Context, force: bool, as_json: bool) -> None:
    """Sign a holdings summary of the resources this school keeps (done automatically by the
    running node when what it keeps changes, at most every 6 hours)."""
    from node import oversight
    d = oversight.announce(obj.home_with_key(), force=force)
    emit(d, as_json, lambda d: click.echo(
        f"holdings summary signed: {d['roots']} resources, {d['bytes']} bytes" if d["signed"]
        else f"not signed ({d['why']}): {d['roots']} resources"))


@report.command("seed-rare")
@community_option
@json_option
@pass_ctx
def seed_rare(obj: Context, community_id: str | None, as_json: bool) -> None:
    """Keep every community resource held by fewer than two schools (demonstration school):
    pin what is here, queue the rest for the running node to fetch."""
    from node import oversight
    d = oversight.seed_rare(obj.home_with_key(), community_id)
    emit(d, as_json, lambda d: click.echo(
        f"{d['rare']} rare resources: {len(d['pinned'])} pinned, {len(d['queued'])} queued "
        f"for fetching, {len(d['already'])} already kept or on the way"))


@report.command()
@click.argument("resource_id")
@click.option("--reason", required=True, help="Why (shown to the author and every member).")
@community_option
@json_option
@pass_ctx
def hide(obj: Context, resource_id: str, reason: str, community_id: str | None,
         as_json: bool) -> None:
    """Hide a resource for the community (demonstration school; signed, with a reason). The
    author keeps it; members no longer find, show or seed it."""
    from node import oversight
    d = oversight.moderate(obj.home_with_key(), resource_id, "hide", reason, community_id)
    emit(d, as_json, lambda d: click.echo(f"{resource_id} hidden in {d['community_id']}"))


@report.command()
@click.argument("resource_id")
@click.option("--reason", help="Why it is shown again (optional).")
@community_option
@json_option
@pass_ctx
def unhide(obj: Context, resource_id: str, reason: str | None, community_id: str | None,
           as_json: bool) -> None:
    """Undo a hide: the resource is shown and seeded again."""
    from node import oversight
    d = oversight.moderate(obj.home_with_key(), resource_id, "unhide", reason, community_id)
    emit(d, as_json, lambda d: click.echo(f"{resource_id} shown again in {d['community_id']}"))


def register(main: click.Group) -> None:
    main.add_command(report)
