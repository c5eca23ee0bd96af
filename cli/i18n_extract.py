"""Maintainers: ``python -m cli.i18n_extract`` writes ``cli/locale/schoolmesh.pot`` (every
message of the CLI: the command tree's help, the ``_()`` and ``N_()`` calls in cli/, click's
texts, the node errors of :data:`cli.i18n.ERRORS`) and merges it into each ``.po`` (new
messages come in untranslated; tests/test_cli_i18n.py then fails until they are translated).
"""

from __future__ import annotations

import inspect
from pathlib import Path

import click

from .i18n import DOMAIN, ERRORS, LOCALE_DIR, _error_parts, help_id, walk

# click's own texts that users see (ids as in click 8.5's source; plurals as pairs)
CLICK_MESSAGES: list[str | tuple[str, str]] = [
    "Usage:", "Options", "Commands", "Show this message and exit.",
    "Show the version and exit.", "%(prog)s, version %(version)s", "Aborted!",
    "Try '{command} {option}' for help.", "Error: {message}", "Missing argument",
    "Missing option", "Missing parameter", "Missing {param_type}", "No such option {name!r}.",
    "No such command {name!r}.", "Invalid value for {param_hint}: {message}",
    "Invalid value: {message}", "Missing command.", "default: {default}", "required",
    "env var: {var}", "Could not open file {filename!r}: {message}",
    "Repeat for confirmation", "Error: The two entered values do not match.",
    "Error: invalid input", "Do you want to continue?", "Option {name!r} does not take a value.",
    "{name} {filename!r} does not exist.", "{name} {filename!r} is a directory.",
    "{name} {filename!r} is a file.", "{name} {filename!r} is not readable.",
    "{name} {filename!r} is not writable.", "file", "path", "directory",
    "{value!r} is not a valid {number_type}.", "{value} is not in the range {range}.",
    "{value!r} is not a valid boolean. Recognized values: {states}",
    ("Got unexpected extra argument ({args})", "Got unexpected extra arguments ({args})"),
    ("Did you mean {possibility}?", "(Did you mean one of: {possibilities}?)"),
    ("Option {name!r} requires an argument.", "Option {name!r} requires {nargs} arguments."),
    ("{value!r} is not {choice}.", "{value!r} is not one of {choices}."),
]

# words the commands translate from data (roles, yes/no)
DATA_MESSAGES = ["teacher", "operator", "school", "demonstration", "member", "true", "false",
                 "off", "active", "expired", "revoked", "linked", "queued", "running", "paused",
                 "waiting", "done", "failed", "cancelled", "subscription", "seeding", "valid"]


def messages() -> dict[str | tuple[str, str], list[tuple[str, int]]]:
    """Every message id: the commands' help (from the tree), ``_()``/``N_()`` calls in cli/, and the
    click texts shown to users; ``{id: [(file, line), ...]}``."""
    from babel.messages.extract import extract_from_dir

    from .main import main
    out: dict[str | tuple[str, str], list[tuple[str, int]]] = {}
    here = Path(__file__).parent
    for cmd in walk(main):
        path = inspect.getsourcefile(inspect.unwrap(cmd.callback)) if cmd.callback else None
        where = (Path(path).relative_to(here.parent).as_posix() if path else "cli/main.py", 0)
        for text in (cmd.help, cmd.short_help) + tuple(
                p.help for p in cmd.params if isinstance(p, click.Option)):
            if text:
                out.setdefault(help_id(text), []).append(where)
    for filename, lineno, message, _comments, _context in extract_from_dir(
            str(here), method_map=[("**.py", "python")], keywords={"_": None, "N_": None}):
        if isinstance(message, str) and message:
            out.setdefault(message, []).append(("cli/" + filename, lineno))
    for m in CLICK_MESSAGES:
        out.setdefault(m, []).append(("click", 0))
    for m in DATA_MESSAGES + ERRORS + _error_parts():
        out.setdefault(m, []).append(("cli/i18n.py", 0))
    return out


def extract() -> None:
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import read_po, write_po
    pot = Catalog(project="schoolmesh", domain=DOMAIN, fuzzy=False)
    for msgid, places in sorted(messages().items(), key=lambda kv: str(kv[0])):
        pot.add(msgid, locations=places)
    with (LOCALE_DIR / f"{DOMAIN}.pot").open("wb") as fh:
        write_po(fh, pot, omit_header=False, sort_output=True, width=100)
    po_path = LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / f"{DOMAIN}.po"
    if po_path.exists():
        with po_path.open("rb") as fh:
            po = read_po(fh, locale="zh_CN")
        po.update(pot, no_fuzzy_matching=True)
    else:
        po = Catalog(locale="zh_CN", project="schoolmesh", domain=DOMAIN)
        po.update(pot)
    with po_path.open("wb") as fh:
        write_po(fh, po, sort_output=True, width=100, ignore_obsolete=True)


if __name__ == "__main__":
    extract()
