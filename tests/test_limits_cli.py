"""schoolmesh limits set/show/clear/load: settings in the node's database, refused atomically."""

from __future__ import annotations

import sqlite3


def test_set_show_clear(cli, home):
    d = cli.json("limits", "show")
    assert d["up"] == d["down"] == "unlimited" and d["schedule"] == [] and d["lan_unlimited"]
    d = cli.json("limits", "set", "--up", "256kbit/s", "--down", "1MiB/s",
                 "--schedule", "08:00-16:00=64KiB/s", "--schedule", "22:00-06:00=unlimited",
                 "--monthly-budget", "2GiB", "--no-lan-unlimited")
    assert d["up"] == "32000B/s" and d["down"] == "1MiB/s"
    assert d["schedule"] == ["08:00-16:00=64KiB/s", "22:00-06:00=unlimited"]
    assert d["monthly_budget"] == "2GiB" and d["lan_unlimited"] is False
    assert d["used"] == {"up": 0, "down": 0}
    d = cli.json("limits", "set", "--down", "unlimited")      # the others keep their values
    assert d["down"] == "unlimited" and d["up"] == "32000B/s" and len(d["schedule"]) == 2
    text = cli.ok("limits", "show").stdout
    assert "schedule = 08:00-16:00=64KiB/s\n" in text and "monthly_budget = 2GiB" in text
    d = cli.json("limits", "set", "--no-schedule", "--monthly-budget", "none")
    assert d["schedule"] == [] and d["monthly_budget"] is None
    d = cli.json("limits", "clear")
    assert d["up"] == "unlimited" and d["lan_unlimited"] is True


def test_errors_name_the_form_and_change_nothing(cli, home):
    before = cli.json("limits", "set", "--up", "1MiB/s")
    for args, words in [
        (("--up", "-5KiB/s"), "like 512KiB/s"),
        (("--down", "fast"), "like 512KiB/s"),
        (("--up", "2MiB/s", "--monthly-budget", "-2GB"), "like 500MB"),
        (("--up", "2MiB/s", "--schedule", "8-16=1MiB/s"), "HH:MM-HH:MM=RATE"),
        (("--schedule", "08:00-16:00=1MiB/s", "--schedule", "15:00-17:00=1MiB/s"), "overlap"),
        (("--schedule", "22:00-06:00=1MiB/s", "--no-schedule"), "not both"),
        (("--up", "1000GiB/s"), "out of range"),
    ]:
        assert words in cli.fail("limits", "set", *args)
        assert cli.json("limits", "show") == before


def test_config_file_round_trip(cli, home, tmp_path):
    cli.ok("limits", "set", "--up", "512KiB/s", "--schedule", "23:00-05:00=unlimited",
           "--monthly-budget", "20GB")
    config = tmp_path / "limits.conf"
    text = cli.ok("limits", "show").stdout
    config.write_text(text.replace("up = 512KiB/s", "up = 1MiB/s  # faster"))
    cli.ok("limits", "clear")
    d = cli.json("limits", "load", config)
    assert d["up"] == "1MiB/s" and d["schedule"] == ["23:00-05:00=unlimited"]
    assert d["monthly_budget"] == "20GB"
    config.write_text("up = 1MiB/s\nbudget = 5GB\n")
    assert "KEY = VALUE" in cli.fail("limits", "load", config)
    assert cli.json("limits", "show")["up"] == "1MiB/s"


def test_usage_is_read_from_the_traffic_table(cli, home):
    from datetime import datetime
    conn = sqlite3.connect(home / "schoolmesh.db")
    conn.execute("INSERT INTO traffic VALUES (?, 10, 20)", (datetime.now().strftime("%Y-%m"),))
    conn.commit()
    conn.close()
    assert cli.json("limits", "show")["used"] == {"up": 10, "down": 20}
