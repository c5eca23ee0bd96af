"""Running the node as a systemd service: the unit file (one function writes its text), and
installing, enabling, inspecting and removing it with ``systemctl``.

A school's old PC runs the node from boot, restarts it when it fails, logs to the journal and
keeps it from starving the teachers' desktop (memory cap, low CPU and disk priority).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import NodeError

UNIT_NAME = "schoolmesh.service"
SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
# An old school PC: 2-4 GB of RAM shared with a desktop. The node throttles at MEMORY_HIGH and
# is restarted (Restart=on-failure) if it ever passes MEMORY_MAX.
MEMORY_HIGH = "768M"
MEMORY_MAX = "1G"
NICE = 10                      # the desktop first
IO_PRIORITY = 7                # lowest best-effort disk priority (the idle class could starve)
RESTART_SEC = 10               # seconds between a crash and the restart
START_LIMIT_BURST = 5          # restarts within START_LIMIT_INTERVAL before systemd gives up
START_LIMIT_INTERVAL = 600     # seconds
SYSTEMCTL_TIMEOUT = 60         # seconds a systemctl call may take


class ServiceError(NodeError):
    pass


def _specifiers(text: str) -> str:
    """Text for a systemd setting: '%' would start a specifier."""
    if any(c in text for c in "\n\r\0"):
        raise ServiceError(f"{text!r}: a systemd unit cannot hold line breaks")
    return text.replace("%", "%%")


def _quote(arg: str, *, dollar: bool = True) -> str:
    """One word of ExecStart= (``dollar``: '$' escaped, it would expand a variable) or of
    Environment=: quoted when it holds blanks or quotes."""
    escaped = _specifiers(arg).replace("\\", "\\\\").replace('"', '\\"')
    if dollar:
        escaped = escaped.replace("$", "$$")
    return f'"{escaped}"' if escaped != arg or any(c in arg for c in " \t'") else arg


def unit_text(*, command: list[str], home: Path, user: bool, run_as: str | None = None) -> str:
    """The unit file: ``command`` (the ``schoolmesh`` program and its arguments) runs the node
    of ``home``; ``user``: a user unit (``systemctl --user``), else a system unit running as
    ``run_as`` (None: root)."""
    home = Path(home).absolute()
    lines = [
        "# Written by 'schoolmesh service install'; 'schoolmesh service uninstall' removes it.",
        "[Unit]",
        f"Description=schoolmesh node (teaching resources library) of {_specifiers(str(home))}",
        "Documentation=man:systemd.service(5)",
        "After=network-online.target",
        "Wants=network-online.target",
        f"StartLimitIntervalSec={START_LIMIT_INTERVAL}",
        f"StartLimitBurst={START_LIMIT_BURST}",
        "",
        "[Service]",
        "Type=simple",
        "ExecStart=" + " ".join(_quote(a) for a in [*command, "--home", str(home), "start"]),
        "Environment=" + _quote(f"SCHOOLMESH_HOME={home}", dollar=False),
        # SCHOOLMESH_PASSPHRASE=... for a passphrase-protected key (a file of mode 0600)
        "EnvironmentFile=-" + _specifiers(str(home / "service.env")),
        "Environment=PYTHONUNBUFFERED=1",
        "Restart=on-failure",
        f"RestartSec={RESTART_SEC}",
        "StandardOutput=journal",
        "StandardError=journal",
        "SyslogIdentifier=schoolmesh",
        f"Nice={NICE}",
        "IOSchedulingClass=best-effort",
        f"IOSchedulingPriority={IO_PRIORITY}",
        "CPUWeight=50",
        f"MemoryHigh={MEMORY_HIGH}",
        f"MemoryMax={MEMORY_MAX}",
        "TasksMax=512",
        "LimitNOFILE=8192",
    ]
    if not user:
        if run_as:
            lines.append(f"User={run_as}")
        lines += ["NoNewPrivileges=yes", "PrivateTmp=yes", "ProtectSystem=full"]
    lines += ["", "[Install]", f"WantedBy={'default.target' if user else 'multi-user.target'}"]
    return "\n".join(lines) + "\n"


def unit_dir(user: bool) -> Path:
    if not user:
        return SYSTEM_UNIT_DIR
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "systemd" / "user"


def program() -> list[str]:
    """How to run this schoolmesh: its console script next to this Python, else the module."""
    script = Path(sys.executable).parent / "schoolmesh"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "cli.main"]


def home_owner(home: Path) -> str | None:
    """The account owning the home (a system unit runs as it); None for root."""
    uid = Path(home).stat().st_uid
    return None if uid == 0 else pwd.getpwuid(uid).pw_name


def systemd_running() -> bool:
    """systemd is the init system (sd_booted(3)): only then can systemctl enable units."""
    return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None


def _systemctl(user: bool, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = ["systemctl", *(["--user"] if user else []), *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=SYSTEMCTL_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServiceError(f"{' '.join(cmd)} failed: {exc}") from None


def _check(result: subprocess.CompletedProcess[str]) -> None:
    if result.returncode != 0:
        why = (result.stderr or result.stdout).strip().splitlines()
        raise ServiceError(f"{' '.join(result.args)} failed: {why[0] if why else result.returncode}")


def write_unit(path: Path, text: str) -> None:
    """Atomically (``.partial``, fsync, rename); a permission error says what to do."""
    tmp = path.with_name(path.name + ".partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except PermissionError:
        tmp.unlink(missing_ok=True)
        raise ServiceError(f"cannot write {path}: permission denied (a system service needs "
                           "root: run with sudo, or install a user service with --user)") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class Installed:
    unit: Path
    enabled: bool
    why_not: str | None      # when not enabled: why (systemd not running, --no-enable)


def install(home: Path, *, user: bool, enable: bool, directory: Path | None = None
            ) -> Installed:
    home = Path(home).absolute()
    if not (home / "schoolmesh.db").is_file():
        raise ServiceError(f"no schoolmesh home at {home} (create it with 'schoolmesh init')")
    run_as = None if user else home_owner(home)
    path = (directory or unit_dir(user)) / UNIT_NAME
    write_unit(path, unit_text(command=program(), home=home, user=user, run_as=run_as))
    if not enable:
        return Installed(path, False, "--no-enable")
    if not systemd_running():
        return Installed(path, False, "systemd is not running on this computer "
                                      "(no /run/systemd/system)")
    if directory is not None and directory != unit_dir(user):
        return Installed(path, False, f"{directory} is not where systemd looks for units")
    _check(_systemctl(user, "daemon-reload"))
    _check(_systemctl(user, "enable", "--now", UNIT_NAME))
    return Installed(path, True, None)


def status(*, user: bool, directory: Path | None = None) -> dict[str, object]:
    path = (directory or unit_dir(user)) / UNIT_NAME
    d: dict[str, object] = {"unit": str(path), "installed": path.is_file(),
                            "systemd": systemd_running(), "enabled": None, "active": None}
    if d["systemd"]:
        d["enabled"] = _systemctl(user, "is-enabled", UNIT_NAME).stdout.strip() or None
        d["active"] = _systemctl(user, "is-active", UNIT_NAME).stdout.strip() or None
    return d


def uninstall(*, user: bool, directory: Path | None = None) -> dict[str, object]:
    path = (directory or unit_dir(user)) / UNIT_NAME
    stopped = False
    if systemd_running() and path.is_file():
        _check(_systemctl(user, "disable", "--now", UNIT_NAME))
        stopped = True
    existed = path.is_file()
    try:
        path.unlink(missing_ok=True)
    except PermissionError:
        raise ServiceError(f"cannot remove {path}: permission denied (run with sudo)") from None
    if stopped:
        _check(_systemctl(user, "daemon-reload"))
    return {"unit": str(path), "removed": existed, "stopped": stopped}
