"""init, id, key export."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .i18n import _
from .context import Context, emit, json_option, pass_ctx



@click.command()
@click.option("--name", help="The school's name, shown to other schools (not with --restore).")
@click.option("--role", type=click.Choice(["school", "demonstration"]), default="school",
              show_default=True, help="demonstration schools seed their community's library.")
@click.option("--language", default="zh-CN", show_default=True,
              help="Default language (BCP 47) for resources published here.")
@click.option("--encrypt-key", is_flag=True,
              help="Encrypt the school key with a passphrase (asked for, or "
                   "$SCHOOLMESH_PASSPHRASE).")
@click.option("--restore", "restore_file", metavar="FILE",
              type=click.Path(dir_okay=False, path_type=Path),
              help="Recreate the school from a file written by 'schoolmesh backup' (its "
                   "passphrase is asked for, or $SCHOOLMESH_BACKUP_PASSPHRASE).")
@click.option("--restore-key", "restore_key", metavar="KEY.pem",
              type=click.Path(dir_okay=False, path_type=Path),
              help="Recreate the school from a bare key backup ('schoolmesh key export'); "
                   "needs --name.")
@click.option("--fresh", is_flag=True,
              help="With --restore-key: the school never published, so its feed starts now "
                   "(otherwise it first learns its latest entry from peers).")
@json_option
@pass_ctx
def init(obj: Context, name: str | None, role: str, language: str, encrypt_key: bool,
         restore_file: Path | None, restore_key: Path | None, fresh: bool,
         as_json: bool) -> None:
    """Create a new node home with a new school identity (or a restored one)."""
    from node import backup
    from node.home import init_home
    from protocol import vocab
    from protocol.errors import LocalProtocolError

    if restore_file and restore_key:
        raise click.UsageError("give --restore or --restore-key, not both")
    if fresh and not restore_key:
        raise click.UsageError("--fresh goes with --restore-key")
    if restore_file and name:
        raise click.UsageError("--name comes from the backup with --restore")
    if not restore_file and not name:
        raise click.UsageError("Missing option '--name'.")
    try:
        vocab.check_language(language)
    except LocalProtocolError as exc:
        raise click.BadParameter(str(exc), param_hint="--language") from None
    passphrase = None
    if encrypt_key:
        passphrase = ask_passphrase("SCHOOLMESH_PASSPHRASE", "--encrypt-key",
                                    "Passphrase for the new school key", confirm=True)
    if restore_file:
        home = backup.restore(obj.home_path, restore_file,
                              ask_passphrase("SCHOOLMESH_BACKUP_PASSPHRASE", "--restore",
                                             "Passphrase of the backup"), passphrase)
    elif restore_key:
        home = backup.restore_key(obj.home_path, restore_key, name or "", role, fresh=fresh,
                                  key_file_passphrase=_passphrase_env(),
                                  key_passphrase=passphrase, language=language)
    else:
        home = init_home(obj.home_path, name or "", role, passphrase, language)
    data = {"school_id": home.school_id, "name": home.name, "role": home.role,
            "home": str(home.path), "feed_seq": home.conn.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM entries WHERE feed = ?",
                (home.feed,)).fetchone()[0],
            "own_head": "known" if backup.head_known(home.conn) else "learning"}
    home.close()

    def human(d: dict) -> None:
        done = (_("Restored node '{name}' ({role}) in {home}") if restore_file or restore_key
                else _("Created node '{name}' ({role}) in {home}"))
        click.echo(done.format(name=d['name'], role=_(d['role']), home=d['home']) + "\n"
                   + _("school id: {id}").format(id=d['school_id']))
        if d["own_head"] != "known":
            click.echo(_("Start the node ('schoolmesh start'): it learns this school's latest "
                         "entries from its community's seeds before it may publish."))
        if not (restore_file or restore_key):
            click.echo(_("Back up the school: schoolmesh backup -o FILE"))
    emit(data, as_json, human)


def _passphrase_env() -> bytes | None:
    env = os.environ.get("SCHOOLMESH_PASSPHRASE")
    return env.encode("utf-8") if env else None


def ask_passphrase(env: str, option: str, prompt: str, *, confirm: bool = False) -> bytes:
    """A passphrase from ``$env``, else asked for on the terminal."""
    value = os.environ.get(env)
    if value:
        return value.encode("utf-8")
    if sys.stdin.isatty():
        return click.prompt(prompt, hide_input=True, confirmation_prompt=confirm,
                            err=True).encode("utf-8")
    raise click.UsageError(f"{option} needs a terminal or ${env}")


@click.command("id")
@json_option
@pass_ctx
def id_(obj: Context, as_json: bool) -> None:
    """Show this school's identity."""
    home = obj.home()
    data = {"school_id": home.school_id, "name": home.name, "role": home.role}
    emit(data, as_json, lambda d: click.echo(
        f"{d['name']} ({_(d['role'])})\n{d['school_id']}"))


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
    click.echo((_("Key written to {file} (encrypted with the same passphrase)")
                if home.passphrase else
                _("Key written to {file} (NOT encrypted: store it offline)")).format(
        file=output), err=True)


@click.command("backup")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The backup file to write (never overwritten; mode 0600).")
@json_option
@pass_ctx
def backup_(obj: Context, output: Path, as_json: bool) -> None:
    """Write the school key, settings, accounts, communities and own feed to one encrypted
    file (passphrase asked for, or $SCHOOLMESH_BACKUP_PASSPHRASE)."""
    from crypto import WeakPassphrase, check_new_passphrase
    from node import backup
    from node.errors import NodeError
    home = obj.home_with_key()
    passphrase = ask_passphrase("SCHOOLMESH_BACKUP_PASSPHRASE", "backup",
                                "Passphrase for the backup", confirm=True)
    try:
        check_new_passphrase(passphrase)
    except WeakPassphrase as exc:
        raise NodeError(str(exc)) from None
    data = backup.write_backup(home, output, passphrase)
    emit(data, as_json, lambda d: click.echo(
        _("Backup of {entries} own catalog entries, {teachers} teacher accounts and "
          "{communities} communities written to {file} ({size} bytes). Keep it and its "
          "passphrase apart, somewhere safe.").format(
            entries=d['entries'], teachers=d['teachers'], communities=d['communities'],
            file=d['output'], size=d['bytes'])))


def register(group: click.Group) -> None:
    for cmd in (init, id_, key, backup_):
        group.add_command(cmd)
