"""schoolmesh service install/status/uninstall: the unit file is checked by systemd's own
verifier (systemd-analyze verify), and where systemd is not PID 1 (CI containers) install writes
the unit and says it could not enable it."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import Cli
from node import service

ANALYZE = shutil.which("systemd-analyze")


def _verify(unit: Path, tmp_path: Path, *, user: bool) -> str:
    """systemd-analyze's complaints about ``unit`` ('' if none)."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "SYSTEMD_LOG_COLOR": "0"}
    args = [ANALYZE, *(["--user"] if user else []), "verify", str(unit)]
    r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    if "Failed to initialize manager" in r.stderr:
        pytest.skip(f"systemd-analyze cannot run here: {r.stderr.strip()}")
    return "\n".join(line for line in (r.stdout + r.stderr).splitlines()
                     if unit.name in line or r.returncode)


def _exec_start(text: str) -> list[str]:
    line = next(x for x in text.splitlines() if x.startswith("ExecStart="))
    return [w.replace("$$", "$").replace("%%", "%") for w in shlex.split(line[len("ExecStart="):])]


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is missing: `make system-deps` "
                                            "installs Debian's systemd package")
@pytest.mark.parametrize("user", [False, True])
def test_unit_passes_systemd_analyze_verify(tmp_path, user):
    home = tmp_path / "学校 home 100%"            # blanks, CJK and a specifier character
    home.mkdir()
    unit = tmp_path / "units" / service.UNIT_NAME
    text = service.unit_text(command=service.program(), home=home, user=user,
                             run_as=None if user else "root")
    service.write_unit(unit, text)
    assert _verify(unit, tmp_path, user=user) == ""
    for key in ("Restart=on-failure", f"MemoryMax={service.MEMORY_MAX}", "Nice=10",
                "IOSchedulingClass=best-effort", "StandardError=journal"):
        assert f"\n{key}\n" in text
    assert ("WantedBy=default.target" in text) == user and ("User=root" in text) != user
    argv = _exec_start(text)
    assert argv[-3:] == ["--home", str(home), "start"] and Path(argv[0]).exists()
    # the verifier does catch a bad setting (this test can fail)
    unit.write_text(text.replace("Restart=on-failure", "Restart=sometimes"))
    assert "sometimes" in _verify(unit, tmp_path, user=user)


def test_the_unit_runs_this_schoolmesh_on_this_home(cli: Cli, home):
    """The ExecStart command line, as systemd splits it, runs this node's CLI on the home."""
    text = service.unit_text(command=service.program(), home=home, user=True)
    argv = _exec_start(text)
    assert argv[-1] == "start"
    r = subprocess.run([*argv[:-1], "id", "--json"], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "SCHOOLMESH_HOME": ""})
    assert r.returncode == 0, r.stderr
    assert cli.identity["school_id"] in r.stdout


def test_install_without_systemd_writes_the_unit_and_says_so(cli: Cli, home, tmp_path):
    units = tmp_path / "units"
    message = cli.fail("service", "install", "--unit-dir", units)
    assert "could not enable it" in message and "--no-enable" in message
    written = (units / service.UNIT_NAME).read_text()
    assert f"--home {home} start" in written or f'"{home}"' in written
    d = cli.json("service", "status", "--unit-dir", units)
    assert d["installed"] is True and d["unit"] == str(units / service.UNIT_NAME)
    if not service.systemd_running():
        assert d["systemd"] is False and d["enabled"] is None


def test_install_no_enable_user_status_uninstall(cli: Cli, home, tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    d = cli.json("service", "install", "--user", "--no-enable", env=env)
    unit = tmp_path / "config" / "systemd" / "user" / service.UNIT_NAME
    assert d == {"unit": str(unit), "enabled": False, "user": True}
    assert unit.read_text() == service.unit_text(command=service.program(), home=home,
                                                 user=True)
    assert cli.json("service", "status", "--user", env=env)["installed"] is True
    d = cli.json("service", "uninstall", "--user", env=env)
    assert d["removed"] is True and not unit.exists()
    assert cli.json("service", "uninstall", "--user", env=env)["removed"] is False
    assert "no schoolmesh home" in cli.fail("service", "install", "--no-enable",
                                            "--unit-dir", tmp_path, home=tmp_path / "none")
