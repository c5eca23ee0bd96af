"""service install / status / uninstall: run the node from boot as a systemd service
(restarted when it fails, logging to the journal, gentle with an old PC's memory and disk)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .i18n import _
from .context import Context, emit, json_option, pass_ctx

user_option = click.option("--user", "user", is_flag=True,
                           help="A user service (systemctl --user, no root needed) instead of "
                                "a system service.")
unit_dir_option = click.option("--unit-dir", type=click.Path(file_okay=False, path_type=Path),
                               metavar="DIR",
                               help="Write/read the unit file in DIR instead of systemd's "
                                    "folder (for packaging; nothing is enabled then).")


@click.group()
def service() -> None:
    """Run this node as a systemd service."""


@service.command()
@user_option
@click.option("--no-enable", is_flag=True,
              help="Only write the unit file; do not enable or start it.")
@unit_dir_option
@json_option
@pass_ctx
def install(obj: Context, user: bool, no_enable: bool, unit_dir: Path | None,
            as_json: bool) -> None:
    """Write the unit file for this home and enable and start it (systemctl enable --now)."""
    from node import service as ns
    obj.home()  # an existing, readable home
    done = ns.install(obj.home_path, user=user, enable=not no_enable, directory=unit_dir)
    if not done.enabled and not no_enable:
        ctl = "systemctl --user" if user else "systemctl"
        raise ns.ServiceError(_("wrote {unit} but could not enable it: {why}; run '{command}' "
                                "where systemd runs, or pass --no-enable").format(
            unit=done.unit, why=done.why_not, command=f"{ctl} enable --now {ns.UNIT_NAME}"))
    d = {"unit": str(done.unit), "enabled": done.enabled, "user": user}

    def human(d: dict[str, Any]) -> None:
        if d["enabled"]:
            ctl = "systemctl --user" if user else "systemctl"
            click.echo(_("installed and started {unit}").format(unit=d['unit']) + "\n" +
                       _("log: {log}; state: {state}").format(
                           log=f"journalctl {'--user ' if user else ''}-u {ns.UNIT_NAME} -f",
                           state=f"{ctl} status {ns.UNIT_NAME}"))
            if user:
                click.echo(_("to run it without anyone logged in: loginctl enable-linger"))
        else:
            click.echo(_("wrote {unit} (not enabled)").format(unit=d['unit']))
    emit(d, as_json, human)


@service.command()
@user_option
@unit_dir_option
@json_option
@pass_ctx
def status(obj: Context, user: bool, unit_dir: Path | None, as_json: bool) -> None:
    """Whether the unit file is installed, enabled and running."""
    from node import service as ns
    d = ns.status(user=user, directory=unit_dir)

    def human(d: dict[str, Any]) -> None:
        click.echo(_("unit file: {unit} ({state})").format(
            unit=d['unit'], state=_("installed") if d['installed'] else _("absent")))
        if d["systemd"]:
            click.echo(_("starts at boot: {enabled}, running: {active}").format(
                enabled=_(str(d['enabled']).lower()), active=_(str(d['active']).lower())))
        else:
            click.echo(_("systemd is not running on this computer: enabled/active unknown"))
    emit(d, as_json, human)


@service.command()
@user_option
@unit_dir_option
@json_option
@pass_ctx
def uninstall(obj: Context, user: bool, unit_dir: Path | None, as_json: bool) -> None:
    """Stop and disable the service and remove its unit file (the home is untouched)."""
    from node import service as ns
    d = ns.uninstall(user=user, directory=unit_dir)
    emit(d, as_json, lambda d: click.echo(
        (_("removed {unit} (stopped and disabled)") if d["stopped"] else _("removed {unit}"))
        .format(unit=d['unit']) if d["removed"] else
        _("no unit file at {unit}").format(unit=d['unit'])))


def register(group: click.Group) -> None:
    group.add_command(service)
