"""What every command shares: the context object (the node's home, opened once per command),
how data is printed, and the one-line form of a message.  Command modules import this, never
``cli.main`` (which imports them to register the commands).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

EXIT_ERROR = 1


class Context:
    def __init__(self, home: str | None, debug: bool) -> None:
        self._home_arg = home
        self.debug = debug
        self._home: Any = None

    @property
    def home_path(self) -> Path:
        if self._home_arg:
            return Path(self._home_arg)
        from node.home import default_home
        return default_home()

    def home(self) -> Any:
        """Open the node's home once per command."""
        if self._home is None:
            from node.home import open_home
            self._home = open_home(self.home_path, _passphrase_from_env())
            self._home.warn = lambda message: click.echo(f"warning: {one_line(message)}",
                                                         err=True)
        return self._home

    def home_with_key(self) -> Any:
        """The home with its private key loaded, asking for the passphrase if needed."""
        from node.errors import HomeError
        home = self.home()
        try:
            home.key()
        except HomeError as exc:
            if "passphrase" not in str(exc) or not sys.stdin.isatty():
                if "passphrase" in str(exc):
                    raise HomeError(f"{exc} (set SCHOOLMESH_PASSPHRASE)") from None
                raise
            home.passphrase = click.prompt("Passphrase for the school key", hide_input=True,
                                           err=True).encode("utf-8")
            home.key()
        return home

    def close(self) -> None:
        if self._home is not None:
            self._home.close()


def _passphrase_from_env() -> bytes | None:
    value = os.environ.get("SCHOOLMESH_PASSPHRASE")
    return value.encode("utf-8") if value else None


def one_line(message: str) -> str:
    """Errors are one line: control characters (e.g. a newline in a file name) are escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


def emit(data: Any, as_json: bool, human: Any = None) -> None:
    """Print ``data`` as JSON, or call ``human(data)`` for people."""
    if as_json or human is None:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        human(data)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")

pass_ctx = click.make_pass_decorator(Context)
