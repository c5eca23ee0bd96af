"""tools pinyin/convert/keywords/reading: offline text tools that make drafts for a teacher to
review (issue 18). They read a .txt, .md or .docx file, write new files, and never publish."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .context import emit, json_option

_input = click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
_overwrite = click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")


@click.group()
def tools() -> None:
    """Offline helpers for adapting resources: drafts to review, nothing published."""


def _write(out: Path, data: bytes, overwrite: bool) -> None:
    from node.bundle import write_atomic
    write_atomic(out, data, overwrite=overwrite)


def _report(out: Path, tool: str, as_json: bool) -> None:
    def human(d: dict[str, str]) -> None:
        click.echo(f"draft written to {d['output']}")
        click.echo(f"review it, then publish it with --tool {d['tool']} --based-on RESOURCE_ID")
    emit({"output": str(out), "tool": tool}, as_json, human)


@tools.command()
@_input
@click.option("-o", "--output", "out", type=click.Path(path_type=Path),
              help="OUT.html (ruby annotations) or OUT.docx (pinyin after each character); "
                   "default FILE's name with .pinyin.html.")
@_overwrite
@json_option
def pinyin(file: Path, out: Path | None, overwrite: bool, as_json: bool) -> None:
    """Annotate Chinese text with pinyin (tone marks)."""
    from node import tools as nt
    text = nt.read_text(file)
    out = out or file.with_name(file.stem + ".pinyin.html")
    suffix = out.suffix.lower()
    if suffix == ".docx":
        data, tool = nt.pinyin_docx(text), "pinyin.docx"
    elif suffix in (".html", ".htm"):
        data, tool = nt.pinyin_html_page(text, file.stem).encode("utf-8"), "pinyin.html"
    else:
        raise nt.ToolError(f"{out}: the output must end in .html or .docx")
    _write(out, data, overwrite)
    _report(out, tool, as_json)


@tools.command()
@_input
@click.option("--to", "to", required=True, type=click.Choice(["traditional", "simplified"]),
              help="Convert simplified characters to traditional (OpenCC s2t) or back (t2s).")
@click.option("-o", "--output", "out", type=click.Path(path_type=Path),
              help="The converted copy (.txt, .md or .docx; a .docx keeps its formatting only "
                   "when FILE is a .docx too); default FILE's name with .traditional or "
                   ".simplified before the suffix.")
@_overwrite
@json_option
def convert(file: Path, to: str, out: Path | None, overwrite: bool, as_json: bool) -> None:
    """Convert between simplified and traditional characters."""
    from node import tools as nt
    text = nt.read_text(file)  # checks the kind and size of FILE
    out = out or file.with_name(f"{file.stem}.{to}{file.suffix}")
    suffix = out.suffix.lower()
    if suffix == ".docx" and file.suffix.lower() == ".docx":
        data = nt.convert_docx(file.read_bytes(), file, to)
    elif suffix == ".docx":
        data = nt.text_docx(nt.convert(text, to))
    elif suffix in nt.TEXT_SUFFIXES:
        data = nt.convert(text, to).encode("utf-8")
    else:
        raise nt.ToolError(f"{out}: the output must end in .txt, .md or .docx")
    _write(out, data, overwrite)
    _report(out, to, as_json)


@tools.command()
@_input
@click.option("-n", "--count", default=10, show_default=True, type=int,
              help="How many keywords to suggest.")
@json_option
def keywords(file: Path, count: int, as_json: bool) -> None:
    """Suggest keywords for publishing (jieba TF-IDF), most characteristic first."""
    from node import tools as nt
    words = nt.keywords(nt.read_text(file), count)
    emit(words, as_json, lambda d: click.echo(" ".join(d)))


@tools.command()
@_input
@json_option
def reading(file: Path, as_json: bool) -> None:
    """A character-level reading-difficulty hint: grade band and rare characters."""
    from node import tools as nt
    emit(nt.reading_hint(nt.read_text(file)), as_json, _human_reading)


def _human_reading(d: dict[str, Any]) -> None:
    grade = f"grade {d['grade']}" if d["grade"] else "beyond grade 9"
    if not d["characters"]:
        grade = "no Chinese characters"
    click.echo(f"{d['characters']} Chinese characters ({d['distinct']} distinct): {grade}")
    click.echo("per band: " + ", ".join(f"{k} {v}" for k, v in d["bands"].items()))
    if d["rare"]:
        click.echo("rare: " + " ".join(f"{r['character']}({r['pinyin']})" for r in d["rare"]))


def register(main: click.Group) -> None:
    main.add_command(tools)
