"""Disk space: the free-space reserve below which the node starts no new fetch or seeding
(specs/limits.md §7), and what ``status`` reports about the disk.

The reserve is the setting ``disk_reserve`` (bytes, ``limits set --reserve``); by default the
smaller of 1 GiB and 5 % of the file system, so a small disk is not declared full at once.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

from protocol import limits as pl

from . import db

RESERVE_SETTING = "disk_reserve"
DEFAULT_RESERVE = 2**30          # 1 GiB ...
DEFAULT_RESERVE_FRACTION = 0.05  # ... or 5 % of the file system, whichever is smaller


def reserve(conn: sqlite3.Connection, total: int) -> int:
    value = db.get_setting(conn, RESERVE_SETTING)
    if value is not None:
        return int(value)
    return min(DEFAULT_RESERVE, int(total * DEFAULT_RESERVE_FRACTION))


def set_reserve(conn: sqlite3.Connection, nbytes: int | None) -> None:
    """``None``: back to the default."""
    with db.write(conn) as c:
        if nbytes is None:
            c.execute("DELETE FROM settings WHERE key = ?", (RESERVE_SETTING,))
        else:
            db.set_setting(c, RESERVE_SETTING, str(nbytes))


def disk(conn: sqlite3.Connection, home: Path) -> dict[str, Any]:
    """The file system holding the home: total, used, free bytes, the reserve, whether the
    free space is below it, and the bytes of the home's databases."""
    usage = shutil.disk_usage(home)
    r = reserve(conn, usage.total)
    dbs = sum(p.stat().st_size for p in (*home.glob("schoolmesh.db*"),
                                         *(home / "blocks").glob("small.db*")) if p.exists())
    return {"total": usage.total, "used": usage.used, "free": usage.free, "reserve": r,
            "low": usage.free < r, "databases": dbs}


def low_space(conn: sqlite3.Connection, home: Path) -> str | None:
    """Why no new fetch or seeding starts now, or None."""
    d = disk(conn, home)
    if not d["low"]:
        return None
    return (f"free disk space ({pl.format_size(d['free'])}) is below the reserve "
            f"({pl.format_size(d['reserve'])}): no new fetch or seeding starts; free some "
            "space ('schoolmesh gc') or lower it ('schoolmesh limits set --reserve SIZE')")
