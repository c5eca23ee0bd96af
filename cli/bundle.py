"""export, import, wants: carrying a library on a USB stick (specs/bundles.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .library import _LEVELS, progress_bar
from .i18n import _
from .context import EXIT_ERROR, Context, emit, json_option, one_line, pass_ctx



class SizeParam(click.ParamType):
    """A size in the units of :mod:`protocol.units`; a bad one is a user error (one line)."""
    name = "SIZE"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        if isinstance(value, int):
            return value
        from protocol.units import parse_size
        name = param.opts[0] if param is not None else "size"
        return parse_size(value, minimum=1, what=name)


@click.command("export")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The bundle to write (FILE.car; with --max-size FILE.part1.car, ...).")
@click.option("--resource", "resources", multiple=True, metavar="RESOURCE_ID",
              help="Export this resource (repeatable).")
@click.option("--school", "schools", multiple=True, metavar="SCHOOL_ID|NAME",
              help="Export this school's feed and resources (repeatable).")
@click.option("--community", "communities", multiple=True, metavar="COMMUNITY_ID",
              help="Export the feeds and resources of every school of this community whose "
                   "feed this node holds (repeatable).")
@click.option("--wants", "wants_file", type=click.Path(dir_okay=False, path_type=Path),
              help="The receiving school's wants file: pack only what it lacks and asks for.")
@click.option("--max-size", type=SizeParam(), metavar="SIZE",
              help="Split into parts of at most SIZE (e.g. 4000M for FAT32 sticks, 700MB; "
                   "M = MB = 10^6 bytes, MiB = 2^20).")
@click.option("--overwrite", is_flag=True, help="Replace a bundle of the same name.")
@json_option
@pass_ctx
def export(obj: Context, output: Path, resources: tuple[str, ...], schools: tuple[str, ...],
           communities: tuple[str, ...], wants_file: Path | None, max_size: int | None,
           overwrite: bool, as_json: bool) -> None:
    """Write a CAR bundle of signed feed entries and content, for another school.

    Without --resource/--school everything this library holds is exported. The bundle is a
    standard CARv1: `ipfs-car unpack FILE.car --root <first root> -o DIR` unpacks every
    resource into DIR without schoolmesh.
    """
    from node import bundle
    from node import community as ncommunity
    home = obj.home_with_key()
    schools = schools + tuple(sid for c in communities
                              for sid in ncommunity.member_feeds_held(home, c))
    wants = bundle.read_wants(wants_file) if wants_file else None
    plan = bundle.plan_export(home, resources=list(resources), schools=list(schools),
                              wants=wants, max_size=max_size)
    with progress_bar("exporting", plan.estimated_bytes) as prog:
        result = bundle.write_export(home, plan, output, overwrite=overwrite, progress=prog)

    def human(d: dict[str, Any]) -> None:
        click.echo(_("wrote {files} ({size} bytes)").format(files=", ".join(d['output']),
                                                             size=d['bytes']))
        click.echo(_("{resources} resource(s), {entries} catalog entries, {blocks} block(s)")
                   .format(resources=d['resources'], entries=d['entries'], blocks=d['blocks'])
                   + (_(", for school {id}").format(id=d['for_school'])
                      if d["for_school"] else ""))
        click.echo(_("library folder: {folder}").format(folder=d['library_folder']))
        for s in d["skipped"]:
            click.echo(_("skipped {what}: {why}").format(
                what=s.get('resource_id') or s.get('school_id'), why=s['reason']))
    emit(result, as_json, human)


@click.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path),
                metavar="FILE.car...")
@click.option("--content-only", is_flag=True,
              help="Import plain IPFS content (e.g. from ipfs-car pack): store the blocks "
                   "under the CAR's roots and pin them, without feeds or catalog.")
@json_option
@pass_ctx
def import_(obj: Context, files: tuple[Path, ...], content_only: bool, as_json: bool) -> None:
    """Verify and import CAR bundles (several parts in any order).

    Every block is checked against its CID and every feed entry against its signature and
    chain; what is valid is stored and indexed, the rest is listed. Exits 1 if anything was
    invalid. Importing the same bundle again changes nothing.
    """
    from node.bundle_import import plan_import, run_import
    home = obj.home()
    with progress_bar("checking", _total_size(files)) as prog:
        plan = plan_import(home, list(files), content_only=content_only, progress=prog)
    with plan, progress_bar("importing", plan.bytes_needed) as prog:
        result = run_import(plan, prog)

    def human(d: dict[str, Any]) -> None:
        click.echo(_("added {blocks} block(s) ({size} bytes), skipped {skipped}; added "
                     "{entries} catalog entries").format(
            blocks=d['blocks_added'], size=d['bytes_added'], skipped=d['blocks_skipped'],
            entries=d['entries_added']))
        for p in d["pinned"]:
            click.echo(f"  {p.get('resource_id', p['content_cid'])}  " + _("complete"))
        for p in d["incomplete"]:
            click.echo(f"  {p.get('resource_id', p['content_cid'])}  "
                       + _("incomplete (import the other parts)"))
        for problem in d["invalid"]:
            click.echo(_("INVALID: {problem}").format(problem=problem))
    emit(result, as_json, human)
    if result["invalid"]:
        n = len(result["invalid"])
        click.echo(_("error: {n} problem(s) in the bundle, the rest was imported: {first}")
                   .format(n=n, first=one_line(result['invalid'][0])), err=True)
        raise click.exceptions.Exit(EXIT_ERROR)


@click.command("wants")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the signed wants file.")
@click.option("--subject", "subjects", multiple=True,
              help="Ask for resources of this subject (repeatable).")
@click.option("--level", "levels", multiple=True, type=click.Choice(list(_LEVELS)),
              help="Ask for resources of this grade level (repeatable).")
@click.option("--all", "all_", is_flag=True, help="Ask for all content.")
@click.option("--overwrite", is_flag=True, help="Replace an existing wants file.")
@json_option
@pass_ctx
def wants(obj: Context, output: Path, subjects: tuple[str, ...], levels: tuple[str, ...],
          all_: bool, overwrite: bool, as_json: bool) -> None:
    """Write a signed list of what this school has and what it asks for.

    Give it to the school that will export for you (export --wants FILE). Without --all,
    --subject or --level only new catalog entries are asked for, no content.
    """
    from node import bundle
    from protocol.bundle import Asks
    from protocol.errors import LocalProtocolError
    if all_ and (subjects or levels):
        raise click.UsageError("--all cannot be combined with --subject or --level")
    try:
        asks = Asks(all=all_, subjects=tuple(dict.fromkeys(subjects)),
                    levels=tuple(dict.fromkeys(levels)))
    except LocalProtocolError as exc:
        raise click.BadParameter(str(exc), param_hint="--subject") from None
    result = bundle.make_wants(obj.home_with_key(), output, asks, overwrite=overwrite)

    def human(d: dict[str, Any]) -> None:
        a = d["asks"]
        what = (_("all content") if a["all"] else
                _("content about {what}").format(what=", ".join(a["subjects"] + a["levels"]))
                if a["subjects"] or a["levels"] else _("new catalog entries only"))
        click.echo(_("wrote {file}: the latest entry of {feeds} school catalog(s) and {roots} "
                     "resource(s) held; asks for {what}").format(
            file=d['output'], feeds=d['feeds'], roots=d['roots'], what=what))
    emit(result, as_json, human)


def _total_size(files: tuple[Path, ...]) -> int | None:
    try:
        return sum(f.stat().st_size for f in files)
    except OSError:
        return None  # the import reports the missing file


def register(group: click.Group) -> None:
    for cmd in (export, import_, wants):
        group.add_command(cmd)
