"""teacher add / password / list / remove: the accounts that may publish through the web library.

Browsing the web library needs no account; signing in is needed to publish, adapt, request and
give feedback (specs/web.md).  Passwords are stored as scrypt hashes in the node's database.
"""

from __future__ import annotations

import os
import sys

import click

from .context import Context, emit, json_option, pass_ctx

PASSWORD_ENV = "SCHOOLMESH_TEACHER_PASSWORD"


@click.group()
def teacher() -> None:
    """Teacher accounts of the web library (schoolmesh start --web)."""


def _password() -> str:
    from node.errors import NodeError
    value = os.environ.get(PASSWORD_ENV)
    if value:
        return value
    if not sys.stdin.isatty():
        raise NodeError(f"set {PASSWORD_ENV} or run this on a terminal to type the password")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)


ROLE_CHOICE = click.Choice(["teacher", "operator"])


@teacher.command("add")
@click.argument("name")
@click.option("--role", type=ROLE_CHOICE, default="teacher", show_default=True,
              help="operator: may also run the node from the browser (status, transfers, "
                   "storage, accounts).")
@json_option
@pass_ctx
def add(obj: Context, name: str, role: str, as_json: bool) -> None:
    """Create a teacher account (password asked twice, or $SCHOOLMESH_TEACHER_PASSWORD)."""
    from node.web import auth
    home = obj.home()
    d = auth.add_teacher(home.conn, name, _password(), role)
    emit(d, as_json, lambda d: click.echo(f"{d['role']} {d['teacher']} can now sign in"))


@teacher.command("role")
@click.argument("name")
@click.argument("role", type=ROLE_CHOICE)
@json_option
@pass_ctx
def role(obj: Context, name: str, role: str, as_json: bool) -> None:
    """Make an account a teacher or an operator (takes effect at its next page view)."""
    from node.web import auth
    d = auth.set_role(obj.home().conn, name, role)
    emit(d, as_json, lambda d: click.echo(f"{d['teacher']} is now {d['role']}"))


@teacher.command("password")
@click.argument("name")
@json_option
@pass_ctx
def password(obj: Context, name: str, as_json: bool) -> None:
    """Change a teacher's password (asked twice, or $SCHOOLMESH_TEACHER_PASSWORD); signs the
    teacher out of every browser, also in a running web library."""
    from node.web import auth
    d = auth.set_password(obj.home().conn, name, _password())
    emit(d, as_json, lambda d: click.echo(
        f"new password for {d['teacher']}; signed out of {d['signed_out']} browser(s)"))


@teacher.command("list")
@json_option
@pass_ctx
def list_(obj: Context, as_json: bool) -> None:
    """List teacher accounts."""
    from node.web import auth
    rows = auth.list_teachers(obj.home().conn)
    emit(rows, as_json, lambda rows: click.echo(
        "\n".join(f"{r['name']}  ({r['role']})" for r in rows) or "no teachers yet (add one with "
        "'schoolmesh teacher add NAME')"))


@teacher.command("remove")
@click.argument("name")
@json_option
@pass_ctx
def remove(obj: Context, name: str, as_json: bool) -> None:
    """Delete a teacher account (a running web library signs it out at once)."""
    from node.web import auth
    d = auth.remove_teacher(obj.home().conn, name)
    emit(d, as_json, lambda d: click.echo(f"removed teacher {d['removed']}"))


def register(group: click.Group) -> None:
    group.add_command(teacher)
