"""schoolmesh limits set/show/clear/load: settings in the node's database, refused atomically."""

from __future__ import annotations

import sqlite3


def test_set_show_clear(cli, home):
    d = cli.json("limits", "show")
    assert d["up"] == d["down"] == "unlimited" and d["schedule"] == [] and d["lan_unlimited"]
    d = cli.json("limits", "set", "--up", "256kbit/s", "--down", "1MiB/s",
                 "--schedule", "08:00-16:00=64KiB/s", "--schedule", "22:00-06:00=unlimited",
                 "--monthly-budget", "2GiB", "--no-lan-unlimited")
    assert d["up"] == "256kbit/s" and d["down"] == "1MiB/s"   # echoed as typed
    assert d["schedule"] == ["08:00-16:00=64KiB/s", "22:00-06:00=unlimited"]
    assert d["monthly_budget"] == "2GiB" and d["lan_unlimited"] is False
    assert d["used"] == {"up": 0, "down": 0}
    d = cli.json("limits", "set", "--down", "unlimited")      # the others keep their values
    assert d["down"] == "unlimited" and d["up"] == "256kbit/s" and len(d["schedule"]) == 2
    text = cli.ok("limits", "show").stdout
    assert "schedule = 08:00-16:00=64KiB/s\n" in text and "monthly_budget = 2GiB" in text
    d = cli.json("limits", "set", "--no-schedule", "--monthly-budget", "none")
    assert d["schedule"] == [] and d["monthly_budget"] is None
    d = cli.json("limits", "clear")
    assert d["up"] == "unlimited" and d["lan_unlimited"] is True


def test_errors_name_the_form_and_change_nothing(cli, home):
    before = cli.json("limits", "set", "--up", "1MiB/s")
    for args, words in [
        (("--up", "-5KiB/s"), "like 10M, 10Mbps"),
        (("--down", "fast"), "like 10M, 10Mbps"),
        (("--down", "1mb/s"), "ambiguous rate '1mb/s': write 1Mbit/s (bits) or 1MB/s (bytes)"),
        (("--down", "10M/s"), "ambiguous"),
        (("--up", "2MiB/s", "--monthly-budget", "-2GB"), "like 4000M, 500MB"),
        (("--up", "2MiB/s", "--schedule", "8-16=1MiB/s"), "H:MM-H:MM=RATE"),
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


def test_isp_units_and_one_digit_hours_are_echoed_as_typed(cli, home):
    d = cli.json("limits", "set", "--down", "10M", "--up", "2Mbps",
                 "--schedule", "22:00-6:00=unlimited", "--schedule", "8:00-16:00=512k",
                 "--monthly-budget", "20G")
    assert (d["down"], d["up"]) == ("10Mbit/s", "2Mbit/s")
    assert d["schedule"] == ["22:00-06:00=unlimited", "08:00-16:00=512kbit/s"]
    assert d["monthly_budget"] == "20GB"           # G = GB = 10^9, as everywhere
    assert cli.json("limits", "set", "--up", "2MiB/s")["up"] == "2MiB/s"
    text = cli.ok("limits", "show").stdout
    assert "down = 10Mbit/s\n" in text and "up = 2MiB/s\n" in text
    stored = sqlite3.connect(home / "schoolmesh.db").execute(
        "SELECT value FROM settings WHERE key = 'limits'").fetchone()[0]
    assert '"down": "10Mbit/s"' in stored             # stored exactly, unit kept


def test_g_means_the_same_in_every_command(cli, home):
    assert cli.json("limits", "set", "--monthly-budget", "2G")["monthly_budget"] == "2GB"
    assert cli.json("community", "quota", "2G")["seed_quota"] == 2 * 10 ** 9
    assert cli.json("community", "quota", "2GiB")["seed_quota"] == 2 * 2 ** 30
    assert "bad quota 'lots'" in cli.fail("community", "quota", "lots")


def test_settings_written_by_the_previous_version_still_load(cli, home, tmp_path):
    """Before units were kept, rates were stored as integers of bytes/s."""
    cli.ok("limits", "show")  # creates the database
    old = ('{"down": 1048576, "lan_unlimited": false, "monthly_budget": 20000000000, '
           '"schedule": ["08:00-16:00=32000B/s", "22:00-06:00=unlimited"], "up": 32000}')
    with sqlite3.connect(home / "schoolmesh.db") as conn:
        conn.execute("INSERT INTO settings(key, value) VALUES ('limits', ?)", (old,))
    conn.close()
    d = cli.json("limits", "show")
    assert (d["up"], d["down"], d["monthly_budget"]) == ("256kbit/s", "1MiB/s", "20GB")
    assert d["schedule"] == ["08:00-16:00=32000B/s", "22:00-06:00=unlimited"]  # as stored
    assert cli.json("limits", "set", "--down", "10M")["up"] == "256kbit/s"
    # a config file printed by the previous version ('limits show') loads too
    config = tmp_path / "old.conf"
    config.write_text("up = 32000B/s\ndown = 1MiB/s\nschedule = 08:00-16:00=64KiB/s\n"
                      "monthly_budget = 2GiB\nlan_unlimited = no\n")
    d = cli.json("limits", "load", config)
    assert (d["up"], d["schedule"], d["monthly_budget"]) == (
        "32000B/s", ["08:00-16:00=64KiB/s"], "2GiB")
