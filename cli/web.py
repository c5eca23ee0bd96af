"""teacher add / password / list / remove / revoke / export / import: the accounts that may
publish through the web library, and the teachers' portable identities.

Browsing the web library needs no account; signing in is needed to publish, adapt, request and
give feedback (specs/web.md).  Passwords are stored as scrypt hashes in the node's database.
Each account made here has a teacher identity (specs/teachers.md): an Ed25519 key sealed under
the password and a certificate the school signs into its feed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .i18n import N_, _
from .context import Context, emit, json_option, pass_ctx

PASSWORD_ENV = "SCHOOLMESH_TEACHER_PASSWORD"
OLD_PASSWORD_ENV = "SCHOOLMESH_TEACHER_OLD_PASSWORD"


@click.group()
def teacher() -> None:
    """Teacher accounts of the web library (schoolmesh start --web)."""


def _password(env: str = PASSWORD_ENV, prompt: str = N_("Password"), twice: bool = True) -> str:
    from node.errors import NodeError
    value = os.environ.get(env)
    if value:
        return value
    if not sys.stdin.isatty():
        raise NodeError(_("set {env} or run this on a terminal to type the password").format(
            env=env))
    return click.prompt(_(prompt), hide_input=True, confirmation_prompt=twice, err=True)


def _subjects(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [s for s in text.replace("，", ",").split(",") if s.strip()]


subjects_option = click.option("--subjects", help="What the teacher teaches, comma separated "
                                                  "(e.g. 数学,科学); signed into the certificate.")


ROLE_CHOICE = click.Choice(["teacher", "operator"])


@teacher.command("add")
@click.argument("name")
@click.option("--role", type=ROLE_CHOICE, default="teacher", show_default=True,
              help="operator: may also run the node from the browser (status, transfers, "
                   "storage, accounts).")
@subjects_option
@json_option
@pass_ctx
def add(obj: Context, name: str, role: str, subjects: str | None, as_json: bool) -> None:
    """Create a teacher account (password asked twice, or $SCHOOLMESH_TEACHER_PASSWORD) with a
    new teacher identity: a key sealed under the password and the school's certificate."""
    from node import identities
    home = obj.home_with_key()
    d = identities.add(home, name, _password(), _subjects(subjects) or [], role)
    emit(d, as_json, lambda d: click.echo(
        _("{role} {name} can now sign in").format(role=_(d['role']), name=d['teacher'])
        + "\n" + _("teacher key: {key}").format(key=d['key'])))


@teacher.command("role")
@click.argument("name")
@click.argument("role", type=ROLE_CHOICE)
@json_option
@pass_ctx
def role(obj: Context, name: str, role: str, as_json: bool) -> None:
    """Make an account a teacher or an operator (takes effect at its next page view)."""
    from node.web import auth
    d = auth.set_role(obj.home().conn, name, role)
    emit(d, as_json, lambda d: click.echo(_("{name} is now {role}").format(
        name=d['teacher'], role=_(d['role']))))


@teacher.command("password")
@click.argument("name")
@click.option("--reset-identity", is_flag=True,
              help="The old password is lost: revoke the teacher's key and certify a new one.")
@json_option
@pass_ctx
def password(obj: Context, name: str, reset_identity: bool, as_json: bool) -> None:
    """Change a teacher's password (asked twice, or $SCHOOLMESH_TEACHER_PASSWORD); signs the
    teacher out of every browser, also in a running web library.  A teacher with an identity
    gives the old password too ($SCHOOLMESH_TEACHER_OLD_PASSWORD): their key is re-sealed
    (without it, --reset-identity gives the teacher a new key)."""
    from node import identities
    from node.web import auth
    home = obj.home()
    if identities.public_of(home.conn, name) is None:
        d = auth.set_password(home.conn, name, _password())
    elif reset_identity:
        d = identities.reset(obj.home_with_key(), name, _password())
    else:
        old = _password(OLD_PASSWORD_ENV, N_("Old password"), twice=False)
        d = identities.change_password(home, name, old, _password())
    emit(d, as_json, lambda d: click.echo(
        _("new password for {name}; signed out of {n} browser(s)").format(
            name=d['teacher'], n=d['signed_out'])))


@teacher.command("list")
@json_option
@pass_ctx
def list_(obj: Context, as_json: bool) -> None:
    """List teacher accounts."""
    from node.web import auth
    rows = auth.list_teachers(obj.home().conn)
    emit(rows, as_json, lambda rows: click.echo(
        "\n".join(f"{r['name']}  ({_(r['role'])})" for r in rows) or
        _("no teachers yet (add one with 'schoolmesh teacher add NAME')")))


@teacher.command("remove")
@click.argument("name")
@json_option
@pass_ctx
def remove(obj: Context, name: str, as_json: bool) -> None:
    """Delete a teacher account (a running web library signs it out at once); the school
    revokes the teacher's certificate."""
    from node import identities
    home = obj.home()
    d = identities.remove(obj.home_with_key() if identities.public_of(home.conn, name)
                          else home, name)
    emit(d, as_json, lambda d: click.echo(_("removed teacher {name}").format(
        name=d['removed'])))


@teacher.command("revoke")
@click.argument("name")
@click.option("--reason", help="Why (signed into the revocation).")
@json_option
@pass_ctx
def revoke(obj: Context, name: str, reason: str | None, as_json: bool) -> None:
    """The school stops vouching for a teacher's identity (a teacher.revocation entry); what
    they signed before stays theirs."""
    from node import identities
    d = identities.revoke(obj.home_with_key(), name, reason)
    emit(d, as_json, lambda d: click.echo(_("revoked the certificate of {name}").format(
        name=d['teacher'])))


@teacher.command("identity")
@click.argument("name")
@subjects_option
@json_option
@pass_ctx
def identity(obj: Context, name: str, subjects: str | None, as_json: bool) -> None:
    """Give an account made before teacher identities a key and a certificate (the teacher's
    password: $SCHOOLMESH_TEACHER_PASSWORD)."""
    from node import identities
    d = identities.give_identity(obj.home_with_key(), name,
                                 _password(twice=False), _subjects(subjects) or [])
    emit(d, as_json, lambda d: click.echo(_("{name}: teacher key {key}").format(
        name=d['teacher'], key=d['key'])))


@teacher.command("export")
@click.argument("name")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@json_option
@pass_ctx
def export(obj: Context, name: str, out: Path, as_json: bool) -> None:
    """Write a teacher's identity to a file, sealed under their password, to take to another
    school ($SCHOOLMESH_TEACHER_PASSWORD: the teacher's password)."""
    from node import identities
    d = identities.export(obj.home(), name, _password(twice=False), out)
    emit(d, as_json, lambda d: click.echo(_("wrote the identity of {name} to {file}").format(
        name=d['teacher'], file=d['file'])))


@teacher.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", help="The account name here (default: the name in the file).")
@subjects_option
@click.option("--role", type=ROLE_CHOICE, default="teacher", show_default=True,
              help="The account's role here (as for teacher add).")
@json_option
@pass_ctx
def import_(obj: Context, file: Path, name: str | None, subjects: str | None, role: str,
            as_json: bool) -> None:
    """Make an account for a teacher who brings their identity from another school: the same
    key, certified by this school; the file's password becomes the account's password."""
    from node import identities
    d = identities.import_(obj.home_with_key(), file, _password(twice=False), name,
                           _subjects(subjects), role)
    emit(d, as_json, lambda d: click.echo(
        _("{name} can now sign in here").format(name=d['teacher'])
        + "\n" + _("teacher key: {key}").format(key=d['key'])))


def register(group: click.Group) -> None:
    group.add_command(teacher)
