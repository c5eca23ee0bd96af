"""course create/update/retract/list/show, and adopting a course for a class: adopt, unadopt,
status (specs/courses.md)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from .context import Context, emit, json_option, pass_ctx
from .i18n import N_, _

# message ids (N_), translated when shown
STATUS_WORDS = {"ready": N_("ready"), "fetching": N_("fetching"), "missing": N_("MISSING")}
RESOURCE_WORDS = {"ready": N_("ready"), "fetching": N_("fetching"), "missing": N_("missing")}
WHY_WORDS = {
    "unknown": N_("no school we replicate describes it (follow its school)"),
    "no-provider": N_("no school that holds it is connected or known"),
    "budget": N_("this month's transfer budget is spent"),
    "too-slow": N_("at the current rates it arrives after the lesson"),
    "not-queued": N_("not asked for yet"),
    "failed": N_("its fetch failed or was cancelled (schoolmesh transfers resume ID)"),
    "paused": N_("its fetch is paused"),
}


def subject_grade(subject: str, grade: str) -> str:
    """E.g. ``数学, grade 3`` (学前 as it is), in the locale's language."""
    return _("{subject}, {grade}").format(
        subject=subject, grade=grade if grade == "学前" else _("grade {n}").format(n=grade))


@click.group("course")
def course() -> None:
    """Courses: ordered units and lessons with the resources each uses; adoption for a class."""


def _file(path: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise click.BadParameter(_("{path}: no such file").format(path=path), param_hint="FILE")
    return p


@course.command("create")
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
@pass_ctx
def create(ctx: Context, file: str, as_json: bool) -> None:
    """Publish a course from an outline FILE (YAML, or the text form of specs/courses.md)."""
    from node import courses
    outline = courses.read_outline(_file(file))
    res = courses.publish(ctx.home_with_key(), outline)
    emit(res, as_json, lambda r: click.echo(
        _("course {id} published (version 1, {n} lessons)").format(id=r['course_id'],
                                                                     n=r['lessons'])))


@course.command("update")
@click.argument("course_id")
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
@pass_ctx
def update_cmd(ctx: Context, course_id: str, file: str, as_json: bool) -> None:
    """Publish the next version of one of our courses from an outline FILE."""
    from node import courses
    courses.check_course_id(course_id)
    outline = courses.read_outline(_file(file))
    res = courses.update(ctx.home_with_key(), course_id, outline)
    emit(res, as_json, lambda r: click.echo(
        _("course {id} updated to version {version} ({n} lessons)").format(
            id=r['course_id'], version=r['version'], n=r['lessons'])))


@course.command("retract")
@click.argument("course_id")
@click.option("--reason", help="Why it is withdrawn.")
@json_option
@pass_ctx
def retract_cmd(ctx: Context, course_id: str, reason: str | None, as_json: bool) -> None:
    """Withdraw one of our courses (signed; hidden from lists)."""
    from node import courses
    emit(courses.retract(ctx.home_with_key(), courses.check_course_id(course_id), reason),
         as_json, lambda r: click.echo(_("course {id} retracted").format(id=r['retracted'])))


@course.command("list")
@click.argument("query", required=False)
@click.option("--subject", help="Only this subject.")
@click.option("--grade", help="Only this grade (学前, 1-12).")
@json_option
@pass_ctx
def list_cmd(ctx: Context, query: str | None, subject: str | None, grade: str | None,
             as_json: bool) -> None:
    """Courses in this library (ours and replicated schools'), newest first."""
    from node import courses

    def human(rows: list[dict[str, Any]]) -> None:
        if not rows:
            click.echo(_("no courses"))
        for r in rows:
            extra = " ".join(x for x in (r["volume"], r["edition"]) if x)
            click.echo(f"{r['course_id']}  {r['title']}  ["
                       + subject_grade(r['subject'], r['grade'])
                       + (_(", ") + extra if extra else "") + "]  "
                       + _("{n} lessons").format(n=r['lessons'])
                       + f"  v{r['version']}  {r['school'] or r['school_id']}")
    emit(courses.search(ctx.home().conn, query, subject=subject, grade=grade), as_json, human)


@course.command("show")
@click.argument("course_id")
@click.option("--outline", is_flag=True, help="Print the course as a text outline.")
@json_option
@pass_ctx
def show_cmd(ctx: Context, course_id: str, outline: bool, as_json: bool) -> None:
    """A course's units and lessons, the resources each uses, its versions."""
    from node import courses
    data = courses.show(ctx.home(), courses.check_course_id(course_id))

    def human(d: dict[str, Any]) -> None:
        if outline:
            click.echo(d["outline"], nl=False)
            return
        m = d["meta"]
        about = _("{id}, version {version}").format(id=d['course_id'], version=d['version'])
        click.echo(_("{title}  ({about})").format(
            title=d['title'], about=about + (_(", ") + _("RETRACTED") if d['retracted'] else "")))
        click.echo("  " + subject_grade(m['subject'], m['grade'])
                   + "".join(_(", ") + m[k] for k in ("volume", "edition") if k in m)
                   + _("; by {school}").format(school=d['school'] or d['school_id']))
        if m.get("description"):
            click.echo(f"  {m['description']}")
        for u in d["units"]:
            click.echo("  " + _("unit {number} {title}").format(number=u['number'],
                                                                 title=u['title']))
            for le in u["lessons"]:
                periods = _("{n} period") if le['periods'] == 1 else _("{n} periods")
                click.echo("    " + _("{number}. {title} ({periods})").format(
                    number=le['number'], title=le['title'],
                    periods=periods.format(n=le['periods'])))
                for rid in le["resources"]:
                    info = d["resources"][rid]
                    click.echo(f"       {rid}  {info['title'] or _('(not in this library)')}")
    emit(data, as_json and not outline, human)


def _date(value: str | None) -> dt.date:
    if value is None or value == "today":
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(_("{value!r} is not a date YYYY-MM-DD").format(value=value),
                                 param_hint="--start") from None


@course.command("adopt")
@click.argument("course_id")
@click.option("--class", "class_name", required=True, help="The class, e.g. 三年级一班.")
@click.option("--timetable", required=True,
              help="Weekly slots WEEKDAY:PERIOD[,PERIOD], e.g. 'mon:1 wed:3' or '周二:2,3'.")
@click.option("--start", help="First day of teaching, YYYY-MM-DD (default: today).")
@click.option("--skip", "skips", multiple=True,
              help="Dates without lessons: YYYY-MM-DD or FROM..TO (repeatable).")
@click.option("--days", type=int, default=14, show_default=True,
              help="Fetch the resources of lessons this many days ahead.")
@click.option("--teacher", help="The web account whose week shows this class.")
@json_option
@pass_ctx
def adopt_cmd(ctx: Context, course_id: str, class_name: str, timetable: str,
              start: str | None, skips: tuple[str, ...], days: int, teacher: str | None,
              as_json: bool) -> None:
    """Teach COURSE_ID to a class: the node computes each lesson's date and fetches the
    resources of the coming lessons in time (at subscription priority, within the limits)."""
    from node import courses
    from protocol import courses as pc
    from protocol.errors import LocalProtocolError
    try:
        tt = pc.Timetable.parse(timetable)
    except LocalProtocolError as exc:
        raise click.BadParameter(str(exc), param_hint="--timetable") from None
    try:
        skipped = pc.parse_skipped(" ".join(skips))
    except LocalProtocolError as exc:
        raise click.BadParameter(str(exc), param_hint="--skip") from None
    res = courses.adopt(ctx.home(), courses.check_course_id(course_id), class_name,
                        _date(start), tt, skipped, days, teacher)
    emit(res, as_json, lambda r: click.echo(
        _("adoption {adoption}: {cls} takes course {id} from {start} ({timetable}); resources "
          "of the next {days} days are fetched by the running node").format(
            adoption=r['adoption'], cls=r['class'], id=r['course_id'], start=r['start'],
            timetable=r['timetable'], days=r['horizon'])))


@course.command("unadopt")
@click.argument("adoption", type=int)
@json_option
@pass_ctx
def unadopt_cmd(ctx: Context, adoption: int, as_json: bool) -> None:
    """Stop an adoption (what was fetched only for it is no longer kept for it)."""
    from node import courses
    emit(courses.unadopt(ctx.home(), adoption), as_json,
         lambda r: click.echo(_("adoption {adoption} removed").format(adoption=r['unadopted'])))


def _size(n: int) -> str:
    from protocol.units import format_size
    return format_size(n)


@course.command("status")
@click.argument("adoption", type=int, required=False)
@click.option("--days", type=int, help="Show this many days ahead (default: each adoption's).")
@json_option
@pass_ctx
def status_cmd(ctx: Context, adoption: int | None, days: int | None, as_json: bool) -> None:
    """Per coming lesson: its date, ready / fetching (progress) / missing, and why not ready."""
    from node import courses
    from rich.cells import cell_len
    data = courses.status(ctx.home(), adoption=adoption, days=days)

    def human(rows: list[dict[str, Any]]) -> None:
        if not rows:
            click.echo(_("no adopted courses (schoolmesh course adopt COURSE_ID ...)"))
        for a in rows:
            head = _("adoption {adoption}: {cls} — {title} ({timetable}, from {start})")
            click.echo(head.format(adoption=a['adoption'], cls=a['class'],
                                   title=a['title'] or a['course_id'],
                                   timetable=a['timetable'], start=a['start'])
                       + ("  " + _("RETRACTED by its school") if a["retracted"] else ""))
            if not a["lessons"]:
                click.echo("  " + _("no lessons in the coming days"))
            for le in a["lessons"]:
                word = _(STATUS_WORDS[le['status']])
                click.echo(f"  {le['date']}  {word}{' ' * max(0, 8 - cell_len(word))}  "
                           + _("unit {unit} lesson {lesson} {title}").format(
                               unit=le['unit'], lesson=le['lesson'], title=le['title']))
                for r in le["resources"]:
                    if r["status"] == "ready":
                        continue
                    line = (f"      {r['resource_id']} {r['title'] or ''}: "
                            + _(RESOURCE_WORDS.get(r['status'], r['status'])))
                    if r["status"] == "fetching" and r["size"]:
                        line += f" {_size(r['bytes_done'])}/{_size(r['size'])}"
                    if r["eta"]:
                        when = dt.datetime.fromtimestamp(r["eta"] / 1000)
                        line += ", " + _("expected {when}").format(
                            when=f"{when:%Y-%m-%d %H:%M}")
                    if r["why"]:
                        line += " — " + _(WHY_WORDS.get(r['why'], r['why']))
                    click.echo(line)
    emit(data, as_json, human)


def register(group: click.Group) -> None:
    group.add_command(course)
