"""publish, update, retract, search, show, get, verify, feed."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from .i18n import _
from .context import EXIT_ERROR, Context, emit, json_option, pass_ctx

# ``get`` waits for its transfer with the node's transfer_wait, which answers as soon as the
# state changes; with a progress bar it asks for progress after GET_POLL_FIRST seconds at first
# (a small fetch ends quickly), then less and less often, up to every GET_POLL_MAX seconds.
GET_POLL_FIRST = 0.2
GET_POLL_MAX = 1.0
GET_WAIT_QUIET = 30.0   # without a progress bar, only the end matters



@contextlib.contextmanager
def progress_bar(label: str, total: int | None) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar on stderr when it is a terminal; nothing otherwise."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, Progress, TimeRemainingColumn,
                               TransferSpeedColumn)
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def _total_size(paths: tuple[Path, ...]) -> int | None:
    total = 0
    try:
        for p in paths:
            if p.is_file():
                total += p.stat().st_size
            elif p.is_dir():
                total += sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    except OSError:
        return None
    return total


def metadata_options(update: bool) -> Callable[[Any], Any]:
    """The metadata options shared by publish and update (LRMI / Dublin Core names)."""
    def deco(f: Any) -> Any:
        opts = [
            click.option("--title", required=not update,
                         help="New title." if update else "Title (required)."),
            click.option("--description", help="What the resource is and how to use it."),
            click.option("--subject", "subjects", multiple=True,
                         help="Subject, e.g. 数学 or mathematics (repeatable)."),
            click.option("--level", "levels", multiple=True, metavar="LEVEL",
                         help="Grade level (repeatable): "
                              + ", ".join(_LEVELS) + "."),
            click.option("--language", help="BCP 47 language tag (default: the node's)."),
            click.option("--type", "rtype", metavar="TYPE",
                         help="Resource type: " + ", ".join(_TYPES) + "."),
            click.option("--license", "license_",
                         help="SPDX licence id (default CC-BY-4.0 on publish): "
                              + ", ".join(_LICENSES) + "."),
            click.option("--creator", help="The teacher who made it."),
            click.option("--keyword", "keywords", multiple=True, help="Keyword (repeatable)."),
            click.option("--time-required", help="Class time, ISO 8601 (e.g. PT40M)."),
            click.option("--based-on", "based_on", multiple=True, metavar="RESOURCE_ID",
                         help="The resource this one adapts (repeatable)."),
            click.option("--supply", type=click.Choice(_SUPPLY), help="Supply model."),
            click.option("--classroom", type=click.Choice(_CLASSROOM), help="Classroom form."),
            click.option("--grade", metavar="GRADE",
                         help="School grade: 学前 (preschool) or 1-12; sets --level if none "
                              "is given."),
            click.option("--volume", metavar="VOLUME",
                         help="Textbook volume: 上册, 下册 or 全一册 (first, second, single)."),
            click.option("--edition", metavar="EDITION",
                         help="Textbook edition, e.g. " + ", ".join(_EDITIONS[:6]) + "."),
            click.option("--unit", metavar="'N TITLE'",
                         help="Textbook unit: number and/or title, e.g. \"5 时、分、秒\"."),
            click.option("--lesson", metavar="'N TITLE'",
                         help="Lesson in the unit: number and/or title, e.g. \"1 认识钟表\"."),
            click.option("--tool", type=click.Choice(list(_RECIPES)),
                         help="The files are a draft made with this text tool ('schoolmesh "
                              "tools'); records its name, version, model and instructions "
                              "hash (meta.tool). Give --based-on for the source too."),
        ]
        for o in reversed(opts):
            f = o(f)
        return f
    return deco


# Vocabularies are small constants; importing protocol.vocab costs nothing noticeable.
from protocol.vocab import CLASSROOM as _CLASSROOM  # noqa: E402
from protocol.vocab import COMMON_EDITIONS as _EDITIONS  # noqa: E402
from protocol.vocab import LEVELS as _LEVELS  # noqa: E402
from protocol.vocab import LICENSES as _LICENSES  # noqa: E402
from protocol.vocab import RESOURCE_TYPES as _TYPES  # noqa: E402
from protocol.vocab import SUPPLY as _SUPPLY  # noqa: E402
from protocol.vocab import level_of_grade, part_label  # noqa: E402
from node.tools import RECIPES as _RECIPES  # noqa: E402


def _meta(kw: dict[str, Any], *, update: bool) -> dict[str, Any]:
    """CLI options → LRMI metadata. For update, only the options given are returned."""
    m: dict[str, Any] = {
        "title": kw["title"], "description": kw["description"],
        "about": list(kw["subjects"]) or None, "educationalLevel": list(kw["levels"]) or None,
        "inLanguage": kw["language"], "learningResourceType": kw["rtype"],
        "license": kw["license_"], "creator": kw["creator"],
        "keywords": list(kw["keywords"]) or None, "timeRequired": kw["time_required"],
        "isBasedOn": list(kw["based_on"]) or None, "supply": kw["supply"],
        "classroom": kw["classroom"],
    }
    if kw["tool"]:
        from node.tools import provenance
        m["tool"] = provenance(kw["tool"])
    m.update(_curriculum(kw))
    if not update and "grade" in m and not m.get("educationalLevel"):
        m["educationalLevel"] = [level_of_grade(m["grade"])]
    return {k: v for k, v in m.items() if v is not None}


def _curriculum(kw: dict[str, Any]) -> dict[str, Any]:
    """--grade/--volume/--edition/--unit/--lesson → meta fields (specs/records.md §5.3)."""
    from protocol.errors import LocalProtocolError
    from protocol.vocab import parse_grade, parse_part, parse_volume
    out: dict[str, Any] = {}
    parsers = {"grade": parse_grade, "volume": parse_volume,
               "unit": lambda t: parse_part(t, "unit"),
               "lesson": lambda t: parse_part(t, "lesson")}
    for name, parse in parsers.items():
        if kw.get(name) is not None:
            try:
                out[name] = parse(kw[name])
            except LocalProtocolError as exc:
                raise click.BadParameter(str(exc), param_hint=f"--{name}") from None
    if kw.get("edition") is not None:
        out["edition"] = kw["edition"].strip() or None
    return out


def _print_result(d: dict[str, Any]) -> None:
    click.echo(_("{id} version {version}").format(id=d['resource_id'], version=d['version']))
    click.echo(_("content: {cid}").format(cid=d['content_cid']))
    for f in d["files"]:
        click.echo("  " + _("{path}  {size} bytes  {cid}").format(path=f['path'], size=f['size'],
                                                                  cid=f['cid']))


@click.command()
@click.argument("paths", nargs=-1, required=True,
                type=click.Path(path_type=Path, exists=False))
@metadata_options(update=False)
@json_option
@pass_ctx
def publish(obj: Context, paths: tuple[Path, ...], as_json: bool, **kw: Any) -> None:
    """Publish files and folders as one signed resource.

    A folder contributes its contents with their tree (hidden files are skipped).
    """
    from node import library
    home = obj.home_with_key()
    with progress_bar(_("publishing"), _total_size(paths)) as prog:
        result = library.publish(home, list(paths), _meta(kw, update=False), prog)

    def human(d: dict[str, Any]) -> None:
        _print_result(d)
        if not kw["subjects"] and (suggested := _suggest_subjects(paths)):
            click.echo(_("suggested subjects: {subjects} (add them with: {command})").format(
                subjects=_(", ").join(suggested),
                command=f"schoolmesh update {d['resource_id']} --subject "
                        + " --subject ".join(suggested)))
    emit(result, as_json, human)


def _suggest_subjects(paths: tuple[Path, ...]) -> list[str]:
    """Subjects suggested from the text of the published files (.txt, .md, .docx)."""
    from node import tools
    texts, total = [], 0
    files = [f for p in paths for f in ([p] if p.is_file() else sorted(p.rglob("*")))]
    for f in files:
        if f.is_file() and f.suffix.lower() in (*tools.TEXT_SUFFIXES, tools.DOCX_SUFFIX) \
                and total + f.stat().st_size <= tools.MAX_INPUT_BYTES:
            try:
                texts.append(tools.read_text(f))
            except (tools.ToolError, OSError):
                continue
            total += f.stat().st_size
    return tools.subjects("\n".join(texts)) if texts else []


@click.command()
@click.argument("resource_id")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@metadata_options(update=True)
@json_option
@pass_ctx
def update(obj: Context, resource_id: str, paths: tuple[Path, ...], as_json: bool,
           **kw: Any) -> None:
    """Publish a new version of one of this school's resources.

    With PATHS the files are replaced by these; without, only metadata changes. Unchanged
    files keep their CIDs and are not stored twice.
    """
    from node import library
    home = obj.home_with_key()
    with progress_bar(_("publishing"), _total_size(paths)) as prog:
        result = library.update(home, resource_id, list(paths), _meta(kw, update=True), prog)
    emit(result, as_json, _print_result)


@click.command()
@click.argument("resource_id")
@click.option("--reason", help="Why (shown to other schools).")
@json_option
@pass_ctx
def retract(obj: Context, resource_id: str, reason: str | None, as_json: bool) -> None:
    """Withdraw one of this school's resources (a signed retraction)."""
    from node import library
    result = library.retract(obj.home_with_key(), resource_id, reason)
    emit(result, as_json, lambda d: click.echo(_("{id} retracted").format(
        id=d['resource_id'])))


@click.command()
@click.argument("query", required=False)
@click.option("--subject", "subjects", multiple=True, help="Only this subject (repeatable).")
@click.option("--level", "levels", multiple=True, type=click.Choice(list(_LEVELS)),
              help="Only this grade level (repeatable).")
@click.option("--language", help="Only this language (zh matches zh-CN).")
@click.option("--type", "rtype", type=click.Choice(_TYPES), help="Only this resource type.")
@click.option("--school", help="Only this school (school id or name).")
@click.option("--grade", help="Only this grade: 学前 or 1-12 (results in unit, lesson order).")
@click.option("--volume", help="Only this volume: 上册, 下册 or 全一册.")
@click.option("--edition", help="Only this textbook edition, e.g. 人教版.")
@click.option("--ai-assisted", is_flag=True,
              help="Only resources drafted with the AI assistant (meta.tool).")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True,
              help="Show at most this many results.")
@json_option
@pass_ctx
def search(obj: Context, query: str | None, subjects: tuple[str, ...], levels: tuple[str, ...],
           language: str | None, rtype: str | None, school: str | None, grade: str | None,
           volume: str | None, edition: str | None, ai_assisted: bool, limit: int,
           as_json: bool) -> None:
    """Search the library: titles, descriptions, keywords, subjects, creators, file names
    and the text inside files (Chinese too)."""
    from node import catalog, oversight
    home = obj.home()
    cur = _curriculum({"grade": grade, "volume": volume})
    rows = catalog.search(home.conn, query, subject=list(subjects), level=list(levels),
                          language=language, rtype=rtype, school=school,
                          grade=cur.get("grade"), volume=cur.get("volume"), edition=edition,
                          ai_assisted=ai_assisted, limit=limit,
                          hide=oversight.hidden_from_me(home))

    def human(rows: list[dict[str, Any]]) -> None:
        if not rows:
            click.echo(_("no resources found"))
        for r in rows:
            place = " ".join(filter(None, [
                r.get("edition"), f"{r['grade']}年级" if r.get("grade") else
                ("学前" if r.get("grade") == 0 else None),
                {"first": "上册", "second": "下册", "single": "全一册"}.get(r.get("volume", "")),
                part_label(r.get("unit")), part_label(r.get("lesson"))]))
            extra = ", ".join(filter(None, [r["type"], r["language"], *r["levels"], place]))
            click.echo(f"{r['resource_id']}  {r['title']}  [{extra}]  "
                       f"{r['school'] or r['school_id']}")
        if query:   # courses matching the words (the JSON stays the list of resources)
            from node import courses

            from .course import subject_grade
            for c in courses.search(obj.home().conn, query, limit=5):
                about = _("{about}, {n} lessons").format(
                    about=subject_grade(c['subject'], c['grade']), n=c['lessons'])
                click.echo(_("course {id}").format(id=c['course_id'])
                           + f"  {c['title']}  [{about}]  {c['school'] or c['school_id']}")
    emit(rows, as_json, human)


@click.command()
@click.argument("resource_id")
@json_option
@pass_ctx
def show(obj: Context, resource_id: str, as_json: bool) -> None:
    """Show a resource: metadata, files, versions, lineage and signature status."""
    from node import library
    d = library.show(obj.home(), resource_id)

    def human(d: dict[str, Any]) -> None:
        m = d["meta"]
        click.echo(f"{m['title']}  (" + _("{id}, version {version}").format(
            id=d['resource_id'], version=d['version']) + ")")
        if d["retracted"]:
            click.echo(_("RETRACTED: {reason}").format(
                reason=d['retract_reason'] or _("no reason given")))
        click.echo(_("school: {name} {id}").format(name=d['school'] or '', id=d['school_id']))
        for k in ("description", "inLanguage", "about", "educationalLevel",
                  "learningResourceType", "license", "creator", "keywords", "timeRequired",
                  "supply", "classroom", "grade", "volume", "edition", "basedOnLicense"):
            if k in m:
                v = m[k]
                click.echo(f"{k}: {', '.join(v) if isinstance(v, list) else v}")
        click.echo((_("content: {cid}  (on this node)") if d['local'] else
                    _("content: {cid}  (not on this node yet)")).format(cid=d['content_cid']))
        for f in d["files"]:
            click.echo("  " + _("{path}  {size} bytes").format(path=f['path'], size=f['size']))
        for v in d["versions"]:
            click.echo(_("version {version}: {cid}  signature {signature}").format(
                version=v['version'], cid=v['content_cid'], signature=_(v['signature'])))
        for b in d["lineage"]["based_on"]:
            click.echo(_("based on: {id} {title}").format(
                id=b['resource_id'], title=b['title'] or _("(not in this library)")))
        for a in d["lineage"]["adaptations"]:
            click.echo(_("adapted as: {id} {title}").format(id=a['resource_id'],
                                                              title=a['title']))
        for part in ("unit", "lesson"):
            if part in m:
                click.echo(f"{part}: {part_label(m[part])}")
        if isinstance(tool := m.get("tool"), dict):
            click.echo(_("made with: {tool}").format(tool=tool_line(tool)))
    emit(d, as_json, human)


def tool_line(tool: dict[str, Any]) -> str:
    """``meta.tool`` on one line: name version (model), instructions sha256 prefix."""
    model = f" ({tool['model']})" if tool.get("model") else ""
    return (f"{tool.get('name')} {tool.get('version')}{model}, instructions sha256 "
            f"{str(tool.get('instructionsHash'))[:16]}…")


@click.command()
@click.argument("target", metavar="RESOURCE_ID|CID")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="Folder to write the files into (created if missing).")
@click.option("--overwrite", is_flag=True, help="Replace files that already exist there.")
@click.option("--safe-names", is_flag=True,
              help="Rename files whose names USB sticks or Windows (FAT/exFAT/NTFS) refuse or "
                   "that differ only in letter case, instead of refusing to write.")
@json_option
@pass_ctx
def get(obj: Context, target: str, output: Path, overwrite: bool, safe_names: bool,
        as_json: bool) -> None:
    """Write a resource's files (verified) from the local library into a folder.

    Names that FAT/exFAT/NTFS cannot hold are refused before anything is written, unless
    --safe-names is given.
    """
    from node import library
    home = obj.home()
    missing = library.first_missing(home, target)
    if missing is not None:
        _fetch_through_node(obj, target, missing)
    with progress_bar(_("writing"), None) as prog:
        d = library.get(home, target, output, overwrite=overwrite, safe_names=safe_names,
                        progress=prog)

    def human(d: dict[str, Any]) -> None:
        click.echo(_("wrote {n} file(s), {size} bytes, to {folder}").format(
            n=len(d['files']), size=sum(f['size'] for f in d['files']), folder=d['output']))
        if d["renamed"]:
            click.echo(_("renamed {n} file(s) so that USB sticks and Windows can hold them:")
                       .format(n=len(d['renamed'])))
            for r in d["renamed"]:
                click.echo(f"  {r['path']}  ->  {r['written_as']}")
    emit(d, as_json, human)


def _fetch_through_node(obj: Context, target: str, missing: bytes) -> None:
    """Have the running node fetch the missing blocks from other schools, showing progress."""
    from crypto import cid_to_str
    from node.errors import NodeError

    from .net import call, daemon_info
    if daemon_info(obj.home_path) is None:
        raise NodeError(_("block {cid} is not in the local store; start the node ('schoolmesh "
                          "start') to fetch it from other schools").format(
                              cid=cid_to_str(missing)))
    tid = call(obj.home_path, "fetch", target=target)["id"]
    with progress_bar(_("fetching"), None) as prog:
        done = 0
        shown = "running"
        pause = GET_POLL_FIRST
        state = "queued"
        while True:
            # held by the node until the state changes (or for `pause`): the end is known at
            # once, and the node is not asked again and again while a slow link works
            t = call(obj.home_path, "transfer_wait", id=tid, state=state,
                     seconds=pause if prog else GET_WAIT_QUIET)
            state = t["state"]
            if prog:
                prog(t["bytes_done"] - done)
            done = t["bytes_done"]
            if t["state"] == "done":
                return
            if t["state"] == "failed":
                raise NodeError(_("cannot fetch {target}: {error}").format(target=target,
                                                                          error=t['error']))
            if t["state"] == "cancelled":
                raise NodeError(_("the transfer of {target} was cancelled ('schoolmesh "
                                  "transfers')").format(target=target))
            if t["state"] != shown:  # queued, waiting, paused: still going; say why
                shown = t["state"]
                if shown != "running":
                    why = f": {t['error']}" if t.get("error") else ""
                    click.echo(_("transfer {id} {state}{why} (Ctrl-C stops waiting; the node "
                                 "keeps the transfer)").format(id=tid, state=_(shown), why=why),
                               err=True)
            pause = min(GET_POLL_MAX, pause * 1.5)


@click.command()
@click.option("--repair", is_flag=True,
              help="Fetch corrupt and missing blocks again from other schools (the node must "
                   "be running) and say what was repaired.")
@json_option
@pass_ctx
def verify(obj: Context, repair: bool, as_json: bool) -> None:
    """Re-hash every kept block and re-check every signature and feed chain.

    Damage (corrupt blocks, broken signatures or chains) is listed as PROBLEM and exits 1;
    blocks not fetched yet are listed as INCOMPLETE and exit 0.
    """
    from node import library
    home = obj.home()
    d = library.verify(home)
    if repair:
        d["repaired"] = _repair(obj, home, d)
        if d["repaired"]["resources"]:
            d = {**library.verify(home), "repaired": d["repaired"]}

    def human(d: dict[str, Any]) -> None:
        click.echo(_("checked {entries} catalog entries and {blocks} blocks ({unused} blocks "
                     "no resource uses, kept)").format(
            entries=d['entries_checked'], blocks=d['blocks_checked'],
            unused=d['unreferenced_blocks']))
        for p in d["problems"]:
            click.echo(f"PROBLEM: {p}")
        for i in d["incomplete"]:
            click.echo("INCOMPLETE: " + _("{what}: {n} block(s) not here yet").format(
                what=i['what'], n=i['missing']))
        if "repaired" in d:
            r = d["repaired"]
            click.echo(_("repaired: {n} of {asked} damaged or incomplete resource(s) fetched "
                         "again ({corrupt} corrupt block(s) replaced)").format(
                n=len(r['resources']), asked=r['asked'], corrupt=r['corrupt_removed']))
            for what, why in r["not_repaired"].items():
                click.echo(f"NOT REPAIRED: {what}: {why}")
        click.echo((_("all sound") + (_(", {n} incomplete").format(n=len(d['incomplete']))
                                      if d["incomplete"] else "")) if d["ok"] else
                   _("{n} problem(s) found").format(n=len(d['problems'])))
    emit(d, as_json, human)
    if not d["ok"]:
        raise click.exceptions.Exit(EXIT_ERROR)


REPAIR_WAIT = 600.0   # seconds verify --repair waits for the node's fetches at most


def _repair(obj: Context, home: Any, d: dict[str, Any]) -> dict[str, Any]:
    """Remove corrupt blocks and have the running node fetch every damaged or incomplete DAG
    again (under the pin it had); wait until each is done or cannot go on."""
    import time

    from node import library
    from node.errors import NodeError

    from .net import call, daemon_info
    if daemon_info(obj.home_path) is None:
        raise NodeError(_("verify --repair fetches blocks from other schools: start the node "
                          "first ('schoolmesh start')"))
    removed = library.delete_corrupt(home, d["corrupt"])
    ids = call(obj.home_path, "repair", roots=d["repair"])["ids"] if d["repair"] else {}
    deadline = time.monotonic() + REPAIR_WAIT
    final: dict[str, dict[str, Any]] = {}
    while len(final) < len(ids) and time.monotonic() < deadline:
        by_id = {t["id"]: t for t in call(obj.home_path, "transfers")}
        for root, tid in ids.items():
            t = by_id.get(tid)
            if root not in final and (t is None or t["state"] in
                                      ("done", "failed", "cancelled", "waiting")):
                final[root] = t or {"state": "failed", "error": "the transfer disappeared"}
        time.sleep(0.2)
    done = [r for r, t in final.items() if t["state"] == "done"]
    not_done = {r: (final[r].get("error") or final[r]["state"]) if r in final else
                "still fetching" for r in ids if r not in done}
    return {"asked": len(ids), "resources": done, "corrupt_removed": removed,
            "not_repaired": not_done}


@click.command()
@click.argument("school_id", required=False)
@json_option
@pass_ctx
def feed(obj: Context, school_id: str | None, as_json: bool) -> None:
    """List a school's signed feed entries (default: this school's)."""
    from node import library
    rows = library.feed_entries(obj.home(), school_id)

    def human(rows: list[dict[str, Any]]) -> None:
        for e in rows:
            what = e["body"].get("resource") or e["body"].get("meta", {}).get("title") \
                or e["body"].get("name", "")
            click.echo(f"{e['seq']:>5}  {e['kind']:<18} {what}  {e['hash'][:16]}")
    emit(rows, as_json, human)


def register(group: click.Group) -> None:
    for cmd in (publish, update, retract, search, show, get, verify, feed):
        group.add_command(cmd)
