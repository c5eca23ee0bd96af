"""init, id, key export."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .context import Context, emit, json_option, pass_ctx



@click.command()
@click.option("--name", required=True, help="The school's name, shown to other schools.")
@click.option("--role", type=click.Choice(["school", "demonstration"]), default="school",
              show_default=True, help="demonstration schools seed their community's library.")
@click.option("--language", default="zh-CN", show_default=True,
              help="Default language (BCP 47) for resources published here.")
@click.option("--encrypt-key", is_flag=True,
              help="Encrypt the school key with a passphrase (asked for, or "
                   "$SCHOOLMESH_PASSPHRASE).")
@json_option
@pass_ctx
def init(obj: Context, name: str, role: str, language: str, encrypt_key: bool,
         as_json: bool) -> None:
    """Create a new node home with a new school identity."""
    from node.home import init_home
    from protocol import vocab
    from protocol.errors import LocalProtocolError

    try:
        vocab.check_language(language)
    except LocalProtocolError as exc:
        raise click.BadParameter(str(exc), param_hint="--language") from None
    passphrase = None
    if encrypt_key:
        env = os.environ.get("SCHOOLMESH_PASSPHRASE")
        if env:
            passphrase = env.encode("utf-8")
        elif sys.stdin.isatty():
            passphrase = click.prompt("Passphrase for the new school key", hide_input=True,
                                      confirmation_prompt=True, err=True).encode("utf-8")
        else:
            raise click.UsageError("--encrypt-key needs a terminal or $SCHOOLMESH_PASSPHRASE")
    home = init_home(obj.home_path, name, role, passphrase, language)
    data = {"school_id": home.school_id, "name": home.name, "role": home.role,
            "home": str(home.path)}
    home.close()
    emit(data, as_json, lambda d: click.echo(
        f"Created {d['role']} node '{d['name']}' in {d['home']}\nschool id: {d['school_id']}\n"
        "Back up the school key: schoolmesh key export -o FILE"))


@click.command("id")
@json_option
@pass_ctx
def id_(obj: Context, as_json: bool) -> None:
    """Show this school's identity."""
    home = obj.home()
    data = {"school_id": home.school_id, "name": home.name, "role": home.role}
    emit(data, as_json, lambda d: click.echo(f"{d['name']} ({d['role']})\n{d['school_id']}"))


@click.group()
def key() -> None:
    """Back up the school key."""


@key.command("export")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the key (PKCS#8 PEM, mode 0600). Keep it somewhere safe.")
@pass_ctx
def key_export(obj: Context, output: Path) -> None:
    """Write a backup copy of the school key (never overwrites a file)."""
    from crypto import save_key
    home = obj.home_with_key()
    save_key(output, home.key(), home.passphrase)
    click.echo(f"Key written to {output}"
               + (" (encrypted with the same passphrase)" if home.passphrase else
                  " (NOT encrypted: store it offline)"), err=True)


def register(group: click.Group) -> None:
    for cmd in (init, id_, key):
        group.add_command(cmd)
