"""Offline text tools that help teachers adapt resources (issue 18): pinyin annotation,
simplified ↔ traditional conversion, keyword suggestions and a reading-difficulty hint.

Everything here runs on the node with libraries and the data they ship (pypinyin, OpenCC,
jieba, python-docx); nothing is sent anywhere. Each tool makes a *draft* for a teacher to
review: none of them publishes.
"""

from __future__ import annotations

import functools
import hashlib
import html
import io
import logging
import re
import warnings
from collections import Counter
from pathlib import Path, PurePath
from typing import Any

from .errors import NodeError

TEXT_SUFFIXES = (".txt", ".md")
DOCX_SUFFIX = ".docx"
# A lesson text, not a book: the tools hold the whole text (and, for .docx, the document) in
# memory, and jieba's keyword extraction is superlinear in practice.
MAX_INPUT_BYTES = 4 * 1024 * 1024

# 义务教育语文课程标准（2022年版）: characters a pupil should recognise ("认识") by the end of
# each stage — grades 1–2: about 1,600; 3–4: 2,500; 5–6: 3,000; 7–9: 3,500.
GRADE_BANDS = ((2, 1600), (4, 2500), (6, 3000), (9, 3500))
# The estimated grade is the first band whose characters cover this share of the text's Han
# characters (so one rare name does not make a text "too hard").
COVERAGE = 0.95

CONVERSIONS = {"traditional": "s2t", "simplified": "t2s"}

# The drafts a resource can say it was made with (meta.tool, specs/records.md §5.2):
# draft → (distribution that does the work, its model/configuration, the instructions).
# The instructions are hashed into the record, so a change of what a tool is asked to do
# shows as a new hash; change the text whenever the draft's output changes.
RECIPES = {
    "pinyin.html": ("pypinyin", None, "schoolmesh tools pinyin: Han characters annotated with "
                    "pinyin (tone marks, read phrase by phrase) as HTML <ruby>, one <p> per line"),
    "pinyin.docx": ("pypinyin", None, "schoolmesh tools pinyin: each Han character followed by "
                    "its pinyin (tone marks, read phrase by phrase) in parentheses, .docx"),
    "traditional": ("OpenCC", "s2t", "schoolmesh tools convert: simplified to traditional "
                    "Chinese characters, phrase-aware"),
    "simplified": ("OpenCC", "t2s", "schoolmesh tools convert: traditional to simplified "
                   "Chinese characters, phrase-aware"),
}


class ToolError(NodeError):
    """A tool cannot work on this input (wrong kind of file, not UTF-8, too big)."""


def provenance(draft: str) -> dict[str, str]:
    """The ``meta.tool`` record of a resource made with the draft ``draft`` (a key of
    :data:`RECIPES`): the library's name and installed version, its model or configuration,
    and the SHA-256 of the instructions."""
    from importlib.metadata import version
    if draft not in RECIPES:
        raise ToolError(f"unknown tool {draft!r}: give one of {', '.join(RECIPES)}")
    name, model, instructions = RECIPES[draft]
    record = {"name": name, "version": version(name),
              "instructionsHash": hashlib.sha256(instructions.encode("utf-8")).hexdigest()}
    if model:
        record["model"] = model
    return record


# --- reading and writing documents ----------------------------------------------------------

def read_text(path: Path) -> str:
    """The text of a .txt/.md (UTF-8) or .docx file; paragraphs are separated by newlines."""
    check_name(path)
    if path.stat().st_size > MAX_INPUT_BYTES:
        raise ToolError(f"{path}: larger than {MAX_INPUT_BYTES // (1024 * 1024)} MiB")
    return document_text(path.read_bytes(), path)


def check_name(path: Path) -> None:
    """Refuse a file the tools cannot read, by its suffix."""
    if path.suffix.lower() not in (*TEXT_SUFFIXES, DOCX_SUFFIX):
        raise ToolError(f"{path}: give a .txt, .md or .docx file")


def document_text(data: bytes, path: PurePath) -> str:
    """The text of the bytes of the file ``path`` (named only for its suffix and errors)."""
    if len(data) > MAX_INPUT_BYTES:
        raise ToolError(f"{path}: larger than {MAX_INPUT_BYTES // (1024 * 1024)} MiB")
    if path.suffix.lower() == DOCX_SUFFIX:
        return "\n".join(p.text for p in _open_docx(path, data).paragraphs)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ToolError(f"{path}: not UTF-8 text") from None


def _open_docx(path: PurePath, data: bytes) -> Any:
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError
    try:
        return docx.Document(io.BytesIO(data))
    # lxml's XMLSyntaxError is a SyntaxError; KeyError: a zip without the docx parts
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, SyntaxError) as exc:
        raise ToolError(f"{path}: not a Word .docx document") from exc


def text_docx(text: str) -> bytes:
    """A plain .docx with one paragraph per line of ``text``."""
    import docx
    document = docx.Document()
    for line in text.splitlines():
        document.add_paragraph(line)
    return _docx_bytes(document)


def _docx_bytes(document: Any) -> bytes:
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


# --- pinyin -----------------------------------------------------------------------------------

def _pinyin_pairs(text: str) -> list[tuple[str, str | None]]:
    """``(character, pinyin with tone marks)`` for each Han character, ``(text, None)`` for the
    rest. pypinyin reads whole phrases, so heteronyms follow the context (处处 chù, 长大 zhǎng)."""
    from pypinyin import Style, pinyin
    from pypinyin.constants import RE_HANS
    pairs: list[tuple[str, str | None]] = []
    for part in re.split(f"({RE_HANS.pattern.strip('^$')})", text):
        if not part:
            continue
        if not RE_HANS.match(part):
            pairs.append((part, None))
            continue
        readings = pinyin(part, style=Style.TONE, errors=lambda chars: [[""] for _ in chars])
        if len(readings) != len(part):  # pypinyin grouped characters it has no reading for
            pairs.extend((ch, None) for ch in part)
            continue
        pairs.extend((ch, r[0] or None) for ch, r in zip(part, readings))
    return pairs


def pinyin_ruby_html(text: str) -> str:
    """An HTML fragment: one ``<p>`` per line, each Han character as
    ``<ruby>字<rt>zì</rt></ruby>``, everything else escaped."""
    paragraphs = []
    for line in text.splitlines():
        cells = []
        for chunk, reading in _pinyin_pairs(line):
            if reading is None:
                cells.append(html.escape(chunk))
            else:
                cells.append(f"<ruby>{html.escape(chunk)}<rt>{html.escape(reading)}</rt></ruby>")
        paragraphs.append(f"<p>{''.join(cells)}</p>")
    return "\n".join(paragraphs)


def pinyin_html_page(text: str, title: str) -> str:
    """A whole page (UTF-8, zh-CN, no external resources) around :func:`pinyin_ruby_html`."""
    return ("<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n"
            "<style>body{font-size:1.6em;line-height:2.4} rt{font-size:0.55em}</style>\n"
            f"</head>\n<body>\n{pinyin_ruby_html(text)}\n</body>\n</html>\n")


def pinyin_docx(text: str) -> bytes:
    """A .docx with each line of ``text``: every Han character followed by its pinyin in small
    grey type, e.g. 春(chūn)眠(mián)."""
    import docx
    from docx.shared import Pt, RGBColor
    document = docx.Document()
    for line in text.splitlines():
        paragraph = document.add_paragraph()
        for chunk, reading in _pinyin_pairs(line):
            paragraph.add_run(chunk)
            if reading is not None:
                run = paragraph.add_run(f"({reading})")
                run.font.size = Pt(8)
                run.font.color.rgb = RGBColor(0x66, 0x66, 0x66)
    return _docx_bytes(document)


# --- simplified ↔ traditional -----------------------------------------------------------------

@functools.cache
def _converter(to: str) -> Any:
    import opencc
    return opencc.OpenCC(CONVERSIONS[to])


def convert(text: str, to: str) -> str:
    """Simplified → traditional (``to="traditional"``, OpenCC ``s2t``) or back (``t2s``)."""
    if to not in CONVERSIONS:
        raise ToolError(f"convert to {to!r}: give one of {', '.join(CONVERSIONS)}")
    return _converter(to).convert(text)


def convert_docx(data: bytes, path: PurePath, to: str) -> bytes:
    """Convert a .docx in place, run by run, so its formatting is kept."""
    document = _open_docx(path, data)
    paragraphs = list(document.paragraphs)
    for table in document.tables:
        for row in table.rows:
            for cell in row.cells:
                paragraphs.extend(cell.paragraphs)
    for paragraph in paragraphs:
        for run in paragraph.runs:
            if run.text:
                run.text = convert(run.text, to)
    return _docx_bytes(document)


# --- keywords and the reading hint (jieba) ----------------------------------------------------

@functools.cache
def _jieba() -> Any:
    with warnings.catch_warnings():
        # jieba 0.42.1 leaves its idf.txt open on import (a ResourceWarning) and may import
        # pkg_resources (deprecated); neither is ours to fix.
        warnings.simplefilter("ignore", ResourceWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import jieba
        import jieba.analyse
        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
    return jieba


def keywords(text: str, n: int = 10) -> list[str]:
    """Up to ``n`` suggested keywords: jieba's TF-IDF ranking (its own IDF table), nouns,
    verbs and names only, words of two characters or more."""
    if n < 1:
        raise ToolError("the number of keywords must be at least 1")
    jieba = _jieba()
    tags = jieba.analyse.extract_tags(text, topK=n * 3,
                                      allowPOS=("n", "nr", "ns", "nt", "nz", "nw", "vn", "v"))
    return [t for t in tags if len(t) >= 2][:n]


def subjects(text: str, n: int = 3) -> list[str]:
    """Up to ``n`` suggested subjects (``about``) for a document: each subject of
    :data:`protocol.vocab.SUBJECTS` scores the number of jieba words of the text that are among
    its marker words (words of the subject's name count too); subjects scoring at least 2 are
    suggested, best first.  A suggestion for the teacher to accept or change, never applied."""
    from protocol.vocab import SUBJECTS
    if n < 1:
        raise ToolError("the number of subjects must be at least 1")
    jieba = _jieba()
    words = Counter(w.strip() for w in jieba.cut(text) if w.strip())
    lowered = Counter()
    for w, c in words.items():
        lowered[w.casefold()] += c
    scores: Counter[str] = Counter()
    for subject, markers in SUBJECTS.items():
        for m in {subject, *markers}:
            scores[subject] += lowered.get(m.casefold(), 0)
    return [s for s, score in scores.most_common() if score >= 2][:n]


@functools.cache
def _character_ranks() -> dict[str, int]:
    """Frequency rank of each (simplified) Han character, 1 = most frequent.

    A proxy, not an official list: the frequency of a character is the sum of the frequencies
    of the words of jieba's dictionary that contain it; traditional characters count towards
    their simplified form (OpenCC t2s)."""
    from pypinyin.constants import RE_HANS
    jieba = _jieba()
    counts: Counter[str] = Counter()
    to_simplified = _converter("simplified")
    for word, freq in jieba.dt.FREQ.items():
        if freq and RE_HANS.match(word):
            for ch in set(to_simplified.convert(word)):
                counts[ch] += freq
    return {ch: i for i, (ch, _) in enumerate(counts.most_common(), start=1)}


def reading_hint(text: str) -> dict[str, Any]:
    """A character-level difficulty hint for a Chinese text.

    Returns ``{"characters", "distinct", "grade", "bands", "rare"}``: ``grade`` is the first
    grade (2, 4, 6, 9) whose expected character count (:data:`GRADE_BANDS`, by frequency rank)
    covers :data:`COVERAGE` of the Han characters in the text, or ``None`` if even grade 9's
    does not; ``bands`` counts the text's characters per band; ``rare`` lists the distinct
    characters beyond that grade's band (or beyond grade 9), least frequent first, with pinyin.
    """
    from pypinyin import Style, pinyin
    from pypinyin.constants import RE_HANS
    ranks = _character_ranks()
    simplified = convert(text, "simplified")
    chars = [ch for ch in simplified if RE_HANS.match(ch)]
    band_of: dict[str, int | None] = {}
    for ch in set(chars):
        rank = ranks.get(ch)
        band_of[ch] = next((g for g, limit in GRADE_BANDS if rank is not None and rank <= limit),
                           None)
    per_band = Counter(band_of[ch] for ch in chars)
    bands = {f"grade {g}": per_band.get(g, 0) for g, _ in GRADE_BANDS}
    bands["beyond"] = per_band.get(None, 0)
    grade: int | None = None
    covered = 0
    for g, _ in GRADE_BANDS:
        covered += per_band.get(g, 0)
        if chars and covered >= COVERAGE * len(chars):
            grade = g
            break
    limit = dict(GRADE_BANDS)[grade] if grade is not None else GRADE_BANDS[-1][1]
    hard = [ch for ch in band_of if ranks.get(ch, limit + 1) > limit]
    hard.sort(key=lambda ch: (-ranks.get(ch, len(ranks) + 1), ch))
    return {
        "characters": len(chars),
        "distinct": len(band_of),
        "grade": grade if chars else None,
        "bands": bands,
        "rare": [{"character": ch, "pinyin": pinyin(ch, style=Style.TONE)[0][0],
                  "rank": ranks.get(ch)} for ch in hard],
    }
