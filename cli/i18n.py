"""The CLI's language: Chinese (zh-CN) when the locale says so, English otherwise.

Messages are gettext messages (domain ``schoolmesh``): the English text in the source is the
message id, ``cli/locale/zh_CN/LC_MESSAGES/schoolmesh.po`` holds the Chinese.  The locale is
read from ``LC_ALL``, ``LC_MESSAGES`` and ``LANG`` (the first one set, as gettext does): a
value starting with ``zh_CN`` (or ``zh_SG``, ``zh_Hans``, plain ``zh``) means Chinese.

Help texts are translated when help is shown, not when the commands are defined
(:func:`install` gives every command and option of the tree a class that translates its help
as it renders), and click's own texts ("Usage:", "Missing option", ...) go through the same
catalog.  Command code translates messages with :func:`_`; a table of messages shown later
marks its texts with :func:`N_` so that extraction finds them.

The compiled catalog (``.mo``) is written by ``make venv`` (``pybabel compile``); without it,
or when the ``.po`` is newer (a fresh clone, an edited translation), the ``.po`` is read
directly with Babel, so a fresh clone speaks Chinese without a build step.
``python -m cli.i18n_extract`` writes ``cli/locale/schoolmesh.pot`` from the command tree
and the ``_()`` calls, and merges it into the ``.po`` (new entries come in untranslated).
"""

from __future__ import annotations

import contextlib
import functools
import gettext
import inspect
import io
import os
import re
from pathlib import Path
from typing import Any

import click

DOMAIN = "schoolmesh"
LOCALE_DIR = Path(__file__).parent / "locale"
CHINESE = ("zh_CN", "zh_SG", "zh_Hans", "zh-CN", "zh-Hans")


def language() -> str:
    """``zh_CN`` or ``en``, from the environment as it is now."""
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var)
        if value:
            if value.startswith(CHINESE) or value.split(".")[0] == "zh":
                return "zh_CN"
            return "en"
    return "en"


@functools.lru_cache(maxsize=4)
def _catalog(lang: str) -> gettext.NullTranslations:
    if lang == "en":
        return gettext.NullTranslations()
    folder = LOCALE_DIR / lang / "LC_MESSAGES"
    po, mo = folder / f"{DOMAIN}.po", folder / f"{DOMAIN}.mo"
    try:
        if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
            with mo.open("rb") as fh:
                return gettext.GNUTranslations(fh)
        return _from_po(po)
    except (OSError, ValueError):
        return gettext.NullTranslations()   # a missing or broken catalog: English


def _from_po(po: Path) -> gettext.NullTranslations:
    """The catalog read straight from the ``.po`` (fuzzy entries are left out, as msgfmt does)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    with po.open("rb") as fh:
        catalog = read_po(fh)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def _(message: str) -> str:
    """``message`` in the current language."""
    return _catalog(language()).gettext(message)


def N_(message: str) -> str:
    """Marks ``message`` as a message id for extraction, unchanged: for texts kept in a table
    and translated with :func:`_` when shown."""
    return message


def ngettext(singular: str, plural: str, n: int) -> str:
    return _catalog(language()).ngettext(singular, plural, n)


def help_id(text: str) -> str:
    """The message id of a help text: its docstring indentation removed."""
    return inspect.cleandoc(text)


def _help(text: str | None) -> str | None:
    return None if not text else _(help_id(text))


# -- errors from the node ---------------------------------------------------------------------
# node/ and protocol/ report errors in English (they also go to logs and peers); the CLI shows
# the ones an operator meets most in Chinese by matching them against these templates (their
# message ids).  {x!r} matches a quoted value; each value is translated too when it is itself a
# message id (the forms below, "invite schools", ...).  More specific templates come first.
ERRORS = [
    "the node is not running (start it with 'schoolmesh start')",
    "a node is already running for {home}",
    "cannot reach the running node: {why}",
    "no schoolmesh home at {path} (create one with 'schoolmesh init')",
    "no schoolmesh home at {path} (create it with 'schoolmesh init')",
    "{path} already exists and is not empty; refusing to touch an existing home",
    "a password has {low} to {high} characters",
    "a teacher name has 1-64 letters, digits, spaces, '.', '_' or '-'",
    "unknown role {role!r} (one of: {roles})",
    "teacher {name!r} already exists (remove it first)",
    "no teacher {name!r}",
    "bad schedule {text!r}: expected {form}",
    "schedule windows {a} and {b} overlap: each time of day may have one rate ({form})",
    "bad rate {text!r}: expected {form}",
    "ambiguous rate {text!r}: write {bits} (bits) or {bytes} (bytes)",
    "rate {text!r} out of range: between 1KiB/s (8.192kbit/s) and 100GiB/s, or 'unlimited'",
    "bad {what} {text!r}: expected {form}",
    "{what} {text!r} out of range: between {low} and {high}",
    "cannot write {path}: permission denied (a system service needs root: run with sudo, or "
    "install a user service with --user)",
    "cannot remove {path}: permission denied (run with sudo)",
    "this school is not in community {community} (see 'schoolmesh community list')",
    "this school is not a demonstration school of any community",
    "this school is in no community yet ('schoolmesh community create' or 'schoolmesh "
    "community join CODE')",
    "this school is in {n} communities; name one with --community",
    "only an active demonstration school of the community can {what}",
    "an invite needs this node's address: start the node ('schoolmesh start') or give --seed "
    "MULTIADDR",
    "the founder of a community cannot be removed",
    "{school} is not a member of this community",
    "{school} was already removed",
    "{path} already exists (use --overwrite to replace it)",
    "no resource {rid!r} in this library",
    "no school {school!r} in this library",
    "{option} {value}: port {port} is out of range (0-{high})",
    "{option} {value}: {host} is not an IP address (expected HOST:PORT, {example})",
    "{option} {value}: expected HOST:PORT, {example}",
    # courses, studios, the report, teacher identities
    "no course {course!r} in this library (follow its school first)",
    "no course {course!r} in this library",
    "{text!r} is not a course id (k...)",
    "course {course} belongs to another school: only its author changes it",
    "course {course} is retracted",
    "class {name!r} has already adopted course {course}",
    "no adoption {adoption}",
    "{path}: a course outline is UTF-8 text",
    "no studio {studio} here (is its founding school's feed replicated?)",
    "the studio is not here yet: this node now follows the founding school; try again once "
    "its feed has arrived",
    "this invite is not for this school, has expired or is unknown",
    "only a teacher with an identity can act in a studio (sign in again)",
    "only a teacher with an identity can join a studio",
    "only the studio's master teacher invites",
    "only the studio's master teacher can do this",
    "only members of the studio can do this",
    "an invite lasts 1 to 365 days",
    "no task {task} in this studio",
    "no such submission in this studio",
    "{text!r} is not a school id",
    "this school does not vouch for the signed-in teacher (no certificate, or revoked): "
    "nothing was published",
    "the report's --from must be before --to",
    "not a resource id: {rid!r}",
    "{text!r} is not a teacher key (t followed by 64 hex digits)",
    "wrong password for this teacher identity file",
    "wrong password",
    "{name} already has a teacher identity",
    "{name} has no teacher identity at this school",
    "{name} is already revoked",
    "{path} is not a schoolmesh teacher identity file",
]


def _error_parts() -> list[str]:
    from protocol.limits import SCHEDULE_FORM
    from protocol.units import RATE_FORM, SIZE_FORM
    return [RATE_FORM, SIZE_FORM, SCHEDULE_FORM, "monthly budget", "invite schools",
            "remove schools", "e.g. 0.0.0.0:8080", "e.g. 127.0.0.1:0"]


_FIELD = re.compile(r"\{(\w+)(!r)?\}")


@functools.lru_cache(maxsize=None)
def _pattern(template: str) -> re.Pattern[str]:
    out, pos = [], 0
    for m in _FIELD.finditer(template):
        out.append(re.escape(template[pos:m.start()]))
        value = r"'[^']*'|\"[^\"]*\"" if m.group(2) else r".+?"
        out.append(f"(?P<{m.group(1)}>{value})")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("".join(out), re.S)


def error(message: str) -> str:
    """A node's error message in the current language (unchanged when unknown)."""
    if language() == "en":
        return message
    for template in ERRORS:
        m = _pattern(template).fullmatch(message)
        if m:
            values = {k: _(v) for k, v in m.groupdict().items()}
            return _FIELD.sub(lambda f: "{" + f.group(1) + "}", _(template)).format(**values)
    return _(message)


# -- the command tree ----------------------------------------------------------------------

class _swapped:
    """Within the block, ``obj.attr`` (a help text) is its translation."""

    def __init__(self, obj: Any, attr: str) -> None:
        self.obj, self.attr = obj, attr

    def __enter__(self) -> None:
        self.original = getattr(self.obj, self.attr, None)
        if self.original:
            setattr(self.obj, self.attr, _help(self.original))

    def __exit__(self, *exc: Any) -> None:
        setattr(self.obj, self.attr, self.original)


def _translating(obj: Any, method: str, attrs: tuple[str, ...]) -> None:
    """Make ``obj.method`` render with its help texts ``attrs`` translated (at call time)."""
    unbound = getattr(type(obj), method)
    if getattr(obj, "_translated_" + method, False):
        return

    def call(*args: Any, **kw: Any) -> Any:
        with contextlib.ExitStack() as stack:
            for attr in attrs:
                stack.enter_context(_swapped(obj, attr))
            return unbound(obj, *args, **kw)
    setattr(obj, method, call)
    setattr(obj, "_translated_" + method, True)


def _translating_help_option(cmd: click.Command) -> None:
    """click makes a command's --help option on first use: translate its help as well."""
    unbound = type(cmd).get_help_option

    def get_help_option(ctx: click.Context) -> click.Option | None:
        option = unbound(cmd, ctx)
        if option is not None:
            _translating(option, "get_help_record", ("help",))
        return option
    cmd.get_help_option = get_help_option  # type: ignore[method-assign]


def walk(cmd: click.Command) -> Any:
    """Every command of the tree under ``cmd`` (itself included), depth first."""
    yield cmd
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            yield from walk(sub)


# characters a terminal draws two columns wide (CJK ideographs, kana, hangul, full-width forms)
_WIDE = re.compile("[\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff"
                   "\ua000-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60"
                   "\uffe0-\uffe6]")


def _wide_aware(wrap_text: Any) -> Any:
    """click's ``wrap_text`` counting a wide character as two columns (it counts one), so
    Chinese help fits the terminal: each is followed by a NUL while wrapping, removed after.
    A run of Chinese is one long word to the wrapper, broken where the line is full, which
    is where Chinese may break."""
    def wrap(text: str, *args: Any, **kw: Any) -> str:
        if not _WIDE.search(text):
            return wrap_text(text, *args, **kw)
        widened = _WIDE.sub(lambda m: m.group(0) + "\x00", text)
        # one column to spare: a line may end between a character and its NUL
        if args:
            args = (args[0] - 1, *args[1:])
        else:
            kw["width"] = kw.get("width", 78) - 1
        return wrap_text(widened, *args, **kw).replace("\x00", "")
    wrap._wide_aware = True  # type: ignore[attr-defined]
    return wrap


def _narrow_short_help(cmd: click.Command) -> None:
    """The one-line summary in a command list: click cuts it at ``limit`` characters between
    words; Chinese has no spaces and takes two columns a character, so in Chinese it is the
    first sentence, cut to ``limit`` columns."""
    translated = cmd.get_short_help_str

    def get_short_help_str(limit: int = 45) -> str:
        text = _help(cmd.short_help or cmd.help) or ""
        if language() == "en" or not _WIDE.search(text):
            return translated(limit)
        first = text.split("\n\n")[0].replace("\n", "")
        first = first.split("。")[0] + ("。" if "。" in first else "")
        width = 0
        for i, ch in enumerate(first):
            width += 2 if _WIDE.match(ch) else 1
            if width > limit:
                return first[:max(0, i - 1)] + "…"
        return first
    cmd.get_short_help_str = get_short_help_str  # type: ignore[method-assign]


def install(root: click.Command) -> None:
    """Translate the help of every command and option under ``root``, and click's texts."""
    import importlib
    for cmd in walk(root):
        _translating_help_option(cmd)
        _translating(cmd, "format_help_text", ("help",))
        _translating(cmd, "get_short_help_str", ("help", "short_help"))
        _narrow_short_help(cmd)
        for p in cmd.params:
            if isinstance(p, click.Option):
                _translating(p, "get_help_record", ("help",))
    formatting = importlib.import_module("click.formatting")
    if not getattr(formatting.wrap_text, "_wide_aware", False):
        formatting.wrap_text = _wide_aware(formatting.wrap_text)
    # not click.decorators: the texts it makes (the --help option's) stay English message ids
    # and are translated as they are rendered, like every other option's
    for name in ("core", "exceptions", "formatting", "parser", "termui", "types"):
        module = importlib.import_module(f"click.{name}")
        if getattr(module, "_", None) is not None:
            module._ = _            # type: ignore[attr-defined]
        if getattr(module, "ngettext", None) is not None:
            module.ngettext = ngettext  # type: ignore[attr-defined]
