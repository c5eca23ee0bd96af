"""report (text, json, csv, html), report announce, report seed-rare, report hide / unhide:
community reports, holdings summaries, the copy audit and moderation (specs/oversight.md)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

import click

from .context import Context, emit, json_option, pass_ctx
from .i18n import N_, _

# why 'report announce' did not sign (node/oversight.py announce)
ANNOUNCE_WHY = (N_("too soon"), N_("unchanged"), N_("nothing held"))

# the grade levels in the coverage line (protocol/vocab.py LEVELS; the ids as English)
LEVEL_WORDS = (N_("preschool"), N_("lower-primary"), N_("upper-primary"), N_("lower-secondary"),
               N_("upper-secondary"), N_("tertiary"), N_("professional"), N_("work-skills"),
               N_("basic-skills"))

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
        raise click.BadParameter(_("{text!r} is not a date like 2026-09-01").format(
            text=text)) from None
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
        click.echo(render_text(rep), nl=False)


def render_text(rep: dict[str, Any]) -> str:
    """The report for the terminal, in the locale's language."""
    from node.web.pages import day
    from protocol import report as pr
    names = {s["school"]: s["name"] or s["school"] for s in rep["schools"]}
    fb, rq, au = rep["feedback"], rep["requests"], rep["audit"]
    out = [_("community {name} ({id})").format(name=rep['name'], id=rep['community']),
           _("period: {start} .. {end} (as of {as_of})").format(
               start=day(rep['period']['from']), end=day(rep['period']['to'], end=True),
               as_of=day(rep['period']['as_of'])),
           _("computed from {n} feeds:").format(n=len(rep['heads']))]
    out += ["  " + _("{school}  {id}  seq {seq}  {hash}").format(
        school=names.get(s, s), id=s, seq=h['seq'], hash=h['hash'][:16])
        for s, h in rep["heads"].items()]
    out.append(_("published / adapted per school and month:"))
    out += [f"  {p['month']}  " + _("{school}: {published} published, {adapted} adapted").format(
        school=names.get(p['school'], p['school']), published=p['published'],
        adapted=p['adapted']) for p in rep["publications"]] or ["  " + _("none")]
    out.append(_("feedback: {n} reports, {used} used in class, average rating {avg}").format(
        n=fb['total'], used=fb['used_in_class'],
        avg=fb['average'] if fb['average'] is not None else '-'))
    out.append(_("requests: {opened} opened, {answered} answered, median time to answer "
                 "{hours} h").format(opened=rq['opened'], answered=rq['answered'],
                                     hours=rq['median_hours']
                                     if rq['median_hours'] is not None else '-'))
    out.append(_("reach of demonstration schools:"))
    out += ["  " + _("{school}: {n} resources; held by {held}, adapted by {adapted}, used by "
                     "{used} schools").format(
        school=names.get(r['school'], r['school']), n=r['resources'], held=len(r['held_by']),
        adapted=len(r['adapted_by']), used=len(r['used_by'])) for r in rep["reach"]]
    cov = rep["coverage"]
    out.append(_("coverage: {n} subjects; subjects with nothing: {subjects}; grades with "
                 "nothing: {grades}").format(n=len(cov['subjects']),
                                             subjects=_(', ').join(cov['empty_subjects'])
                                             or _('none'),
                                             grades=_(', ').join(
                                                 _(lv) for lv in cov['empty_levels'])
                                             or _('none')))
    out.append(_("copy audit: {n} resources, {rare} held by fewer than {below} schools").format(
        n=au['resources'], rare=len(au['rare']), below=pr.RARE_BELOW))
    out += ["  " + _("rare: {id}  {title}  ({n})").format(id=a['resource'], title=a['title'],
                                                          n=a['count'])
            for a in au["items"] if a["count"] < pr.RARE_BELOW][:50]
    out += [_("hidden: {id} by {school}: {reason}").format(
        id=h['resource'], school=names.get(h['by'], h['by']), reason=h['reason'])
        for h in rep["hidden"]]
    return "\n".join(out) + "\n"


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
        _("holdings summary signed: {n} resources, {size} bytes").format(
            n=d['roots'], size=d['bytes']) if d["signed"]
        else _("not signed ({why}): {n} resources").format(why=_(d['why']), n=d['roots'])))


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
        _("{rare} rare resources: {pinned} pinned, {queued} queued for fetching, {already} "
          "already kept or on the way").format(rare=d['rare'], pinned=len(d['pinned']),
                                               queued=len(d['queued']),
                                               already=len(d['already']))))


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
    emit(d, as_json, lambda d: click.echo(_("{id} hidden in {community}").format(
        id=resource_id, community=d['community_id'])))


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
    emit(d, as_json, lambda d: click.echo(_("{id} shown again in {community}").format(
        id=resource_id, community=d['community_id'])))


def register(main: click.Group) -> None:
    main.add_command(report)
