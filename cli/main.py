"""Entry point: the click group and the one place errors become messages (the context every
command shares is in :mod:`cli.context`).

User errors (bad input, missing files, refused operations) print one line ``error: ...`` on
stderr and exit 1; usage errors exit 2 (click's convention); ``--debug`` shows tracebacks.
"""

from __future__ import annotations

from typing import Any

import click

from . import (ai, bundle, community, course, i18n, identity, library, limits, net, report,
               service, storage, studio, tools, transfers, web)
from .context import EXIT_ERROR, Context, one_line
from .i18n import _


def _user_errors() -> tuple[type[BaseException], ...]:
    from crypto import BadCID, BadKeyFile
    from node.errors import NodeError
    from protocol.errors import ProtocolError
    return (NodeError, ProtocolError, BadCID, BadKeyFile, OSError)


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
                click.echo(_("error: {message}").format(message=i18n.error(one_line(message))),
                           err=True)
                ctx.exit(EXIT_ERROR)
            click.echo(_("error: unexpected {kind}: {message} (run again with --debug and "
                         "report it)").format(kind=type(exc).__name__,
                                              message=one_line(str(exc))), err=True)
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


identity.register(main)
library.register(main)
net.register(main)
bundle.register(main)
web.register(main)
limits.register(main)
transfers.register(main)
community.register(main)
service.register(main)
storage.register(main)
tools.register(main)
studio.register(main)
course.register(main)
report.register(main)
ai.register(main)
i18n.install(main)     # help texts and click's messages follow the locale (cli/i18n.py)
