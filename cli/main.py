"""Entry point: the click group, the shared context, and the one place errors become messages.

User errors (bad input, missing files, refused operations) print one line ``error: ...`` on
stderr and exit 1; usage errors exit 2 (click's convention); ``--debug`` shows tracebacks.
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
            self._home.warn = lambda message: click.echo(f"warning: {_one_line(message)}",
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


def _user_errors() -> tuple[type[BaseException], ...]:
    from crypto import BadCID, BadKeyFile
    from node.errors import NodeError
    from protocol.errors import ProtocolError
    return (NodeError, ProtocolError, BadCID, BadKeyFile, OSError)


def _one_line(message: str) -> str:
    """Errors are one line: control characters (e.g. a newline in a file name) are escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


def _cause(exc: BaseException) -> BaseException:
    """The exception to report for ``exc``: trio nurseries wrap what went wrong in
    (nested) exception groups; report the user error inside, else the first failure."""
    if not isinstance(exc, BaseExceptionGroup):
        return exc
    leaves: list[BaseException] = []

    def walk(e: BaseException) -> None:
        if isinstance(e, BaseExceptionGroup):
            for sub in e.exceptions:
                walk(sub)
        else:
            leaves.append(e)
    walk(exc)
    for wanted in (_user_errors(), Exception):
        for leaf in leaves:
            if isinstance(leaf, wanted):
                return leaf
    return leaves[0] if leaves else exc


class SchoolmeshGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except (Exception, BaseExceptionGroup) as caught:
            obj = ctx.find_object(Context)
            if obj is not None and obj.debug:
                raise
            exc = _cause(caught)
            if not isinstance(exc, Exception):
                raise  # e.g. KeyboardInterrupt inside a group
            if isinstance(exc, _user_errors()):
                message = str(exc)
                if isinstance(exc, OSError) and exc.strerror:
                    message = f"{exc.filename or ''}: {exc.strerror}".lstrip(": ")
                click.echo(f"error: {_one_line(message)}", err=True)
                ctx.exit(EXIT_ERROR)
            click.echo(f"error: unexpected {type(exc).__name__}: {_one_line(str(exc))} "
                       "(run again with --debug and report it)", err=True)
            ctx.exit(EXIT_ERROR)


@click.group(cls=SchoolmeshGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", envvar="SCHOOLMESH_HOME", metavar="DIR",
              help="The node's home folder (default: $SCHOOLMESH_HOME or the per-user data "
                   "folder).")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="schoolmesh")
@click.pass_context
def main(ctx: click.Context, home: str | None, debug: bool) -> None:
    """schoolmesh: share signed, verifiable teaching resources between schools.

    Every command works on one node home (--home). Commands that print data accept --json.
    """
    obj = Context(home, debug)
    ctx.obj = obj
    ctx.call_on_close(obj.close)


def emit(data: Any, as_json: bool, human: Any = None) -> None:
    """Print ``data`` as JSON, or call ``human(data)`` for people."""
    if as_json or human is None:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        human(data)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")

from . import bundle, community, identity, library, limits, net, storage, transfers, web  # noqa: E402,E501  (registers the commands)

identity.register(main)
library.register(main)
net.register(main)
bundle.register(main)
web.register(main)
limits.register(main)
transfers.register(main)
community.register(main)
storage.register(main)
