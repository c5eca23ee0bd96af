"""studio create / invite / join / list / tasks / submit / review, and teacher record: master-
teacher studios from the terminal (specs/teachers.md §6, §7).

A studio action is a teacher's: ``--teacher NAME`` names the account, whose key is unsealed
with its password ($SCHOOLMESH_TEACHER_PASSWORD, or asked on a terminal).
"""

from __future__ import annotations


from datetime import datetime, timezone
from pathlib import Path

import click

from .context import Context, emit, json_option, pass_ctx
from .i18n import N_, _
from .web import _password, teacher

# the counts of 'teacher record' (node/contributions.py CATEGORIES), as shown
RECORD_WORDS = {"published": N_("published"), "adapted": N_("adapted"),
                "used_in_class": N_("used in class"), "reviews_given": N_("reviews given"),
                "tasks_on_time": N_("tasks on time")}

teacher_option = click.option("--teacher", "teacher_name", required=True,
                              help="The teacher account who acts (their password: "
                                   "$SCHOOLMESH_TEACHER_PASSWORD).")


def _key(obj: Context, name: str):
    from node import identities
    from node.errors import NodeError
    home = obj.home_with_key()
    key = identities.unlock(home.conn, name, _password(twice=False))
    if key is None:
        raise NodeError(_("{name} has no teacher identity (schoolmesh teacher identity "
                          "{name})").format(name=name))
    return home, key


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d")


@click.group()
def studio() -> None:
    """Master-teacher studios: tasks, lesson study and mentoring across schools."""


@studio.command("create")
@click.argument("name")
@click.option("--about", help="What the studio is for.")
@teacher_option
@json_option
@pass_ctx
def create(obj: Context, name: str, about: str | None, teacher_name: str,
           as_json: bool) -> None:
    """Found a studio; the teacher becomes its master teacher."""
    from node import studio as ns
    home, key = _key(obj, teacher_name)
    d = ns.create(home, key, name, about)
    emit(d, as_json, lambda d: click.echo(_("studio {id}: {name}").format(id=d['studio'],
                                                                         name=d['name'])))


@studio.command("invite")
@click.argument("studio_id")
@click.argument("school_id")
@click.option("--days", type=int, default=14, show_default=True, help="How long it is valid.")
@click.option("--seed", "seeds", multiple=True,
              help="An address of this node for the invited node to dial (repeatable).")
@teacher_option
@json_option
@pass_ctx
def invite(obj: Context, studio_id: str, school_id: str, days: int, seeds: tuple[str, ...],
           teacher_name: str, as_json: bool) -> None:
    """Invite the teachers of SCHOOL_ID; prints the code to give them (this node follows that
    school's feed from now on)."""
    from node import studio as ns
    home, key = _key(obj, teacher_name)
    d = ns.invite(home, key, studio_id, school_id, list(seeds), days)
    emit(d, as_json, lambda d: click.echo(d["code"]))


@studio.command("join")
@click.argument("code")
@teacher_option
@json_option
@pass_ctx
def join(obj: Context, code: str, teacher_name: str, as_json: bool) -> None:
    """Join a studio with an invite code (run again once the founding school's feed arrived)."""
    from node import studio as ns
    home, key = _key(obj, teacher_name)
    d = ns.join(home, key, code)
    emit(d, as_json, lambda d: click.echo(_("member of {name} ({id})").format(
        name=d['name'], id=d['studio'])))


@studio.command("list")
@json_option
@pass_ctx
def list_(obj: Context, as_json: bool) -> None:
    """The studios this node knows, with their master teacher and members."""
    from node import studio as ns
    from node.teachers import name_of
    conn = obj.home().conn
    rows = [{"studio": s.id, "name": s.name, "master": "t" + s.master.hex(),
             "master_name": name_of(conn, s.master), "school_id": s.school,
             "members": len(s.members), "tasks": len(s.tasks)}
            for s in ns.studios(conn).values()]
    emit(rows, as_json, lambda rows: click.echo("\n".join(
        f"{r['studio']}  {r['name']}  " + _("({master}, {members} members, {tasks} tasks)").format(
            master=r['master_name'], members=r['members'], tasks=r['tasks'])
        for r in rows) or _("no studios here")))


@studio.command("tasks")
@click.argument("studio_id")
@click.option("--add", "title", help="Set a new task with this title (master teacher).")
@click.option("--due", help="Due date of the new task, YYYY-MM-DD (end of that day, UTC).")
@click.option("--resource", help="The resource the task is about.")
@click.option("--teacher", "teacher_name", help="The master teacher (with --add).")
@json_option
@pass_ctx
def tasks(obj: Context, studio_id: str, title: str | None, due: str | None,
          resource: str | None, teacher_name: str | None, as_json: bool) -> None:
    """List a studio's tasks and submissions, or set one with --add TITLE --due DATE."""
    from node import studio as ns
    from node.errors import NodeError
    if title is not None:
        if not due or not teacher_name:
            raise NodeError(_("--add needs --due YYYY-MM-DD and --teacher"))
        try:
            day = datetime.strptime(due, "%Y-%m-%d").replace(tzinfo=timezone.utc)
        except ValueError:
            raise NodeError(_("--due {due!r} is not a date like 2026-12-15").format(
                due=due)) from None
        home, key = _key(obj, teacher_name)
        d = ns.add_task(home, key, studio_id, title, int(day.timestamp() * 1000) + 86_399_999,
                        resource=resource)
        emit(d, as_json, lambda d: click.echo(_("task {id}: {title}").format(id=d['task'],
                                                                            title=d['title'])))
        return
    s = ns.get(obj.home().conn, studio_id)
    rows = [{**t, "submissions": [
        {"submission": h, "resource": x["resource"], "teacher": "t" + x["teacher"].hex(),
         "on_time": x["on_time"], "rating": x["review"]["rating"] if x["review"] else None}
        for h, x in ((k.hex(), v) for k, v in s.submissions.items()) if x["task"] == t["id"]]}
        for t in s.tasks.values()]
    emit(rows, as_json, lambda rows: click.echo("\n".join(
        f"{r['id']}  {r['title']}  " + _("due {day}  {n} submitted").format(
            day=_day(r['due']), n=len(r['submissions'])) for r in rows) or _("no tasks")))


@studio.command("submit")
@click.argument("studio_id")
@click.argument("task")
@click.argument("resource")
@teacher_option
@json_option
@pass_ctx
def submit(obj: Context, studio_id: str, task: str, resource: str, teacher_name: str,
           as_json: bool) -> None:
    """Submit a resource to a task."""
    from node import studio as ns
    home, key = _key(obj, teacher_name)
    d = ns.submit(home, key, studio_id, task, resource)
    emit(d, as_json, lambda d: click.echo(_("submitted (on time)") if d['on_time'] else
                                          _("submitted (late)")))


@studio.command("review")
@click.argument("studio_id")
@click.argument("submission")
@click.option("--rating", type=click.IntRange(1, 5), required=True,
              help="1 (weak) to 5 (excellent).")
@click.option("--comment", help="What was good and what to improve.")
@teacher_option
@json_option
@pass_ctx
def review(obj: Context, studio_id: str, submission: str, rating: int, comment: str | None,
           teacher_name: str, as_json: bool) -> None:
    """The master teacher reviews a submission."""
    from node import studio as ns
    home, key = _key(obj, teacher_name)
    d = ns.review(home, key, studio_id, submission, rating, comment)
    emit(d, as_json, lambda d: click.echo(_("reviewed: {rating}/5").format(rating=d['rating'])))


@teacher.command("record")
@click.argument("who")
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the counted entries as CSV here.")
@json_option
@pass_ctx
def record(obj: Context, who: str, csv_out: Path | None, as_json: bool) -> None:
    """A teacher's record of contributions (WHO: an account here or a teacher key t…),
    computed from signed entries only."""
    from node import contributions, identities
    from node.errors import NodeError
    conn = obj.home().conn
    public = identities.public_of(conn, who) if not who.startswith("t") or len(who) != 65 \
        else identities.parse_key_id(who)
    if public is None:
        raise NodeError(_("{who} is neither a teacher with an identity here nor a teacher "
                          "key").format(who=who))
    rec = contributions.of(conn, public)
    if csv_out is not None:
        tmp = csv_out.with_name(f".{csv_out.name}.tmp")
        tmp.write_text(contributions.to_csv(rec), "utf-8")
        tmp.replace(csv_out)
    emit(rec, as_json, lambda r: click.echo("\n".join(
        _("{what}: {n}").format(what=_(RECORD_WORDS.get(k, k)), n=v)
        for k, v in r["counts"].items())))


def register(group: click.Group) -> None:
    group.add_command(studio)



