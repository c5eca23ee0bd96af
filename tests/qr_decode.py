"""Decode QR codes in tests with a real decoder: zbar's ``zbarimg`` (Debian zbar-tools, installed
by ``make test``) reading a plain PBM image drawn from the modules we recovered.

Two sources: the half-block text that ``schoolmesh status`` prints, and the inline SVG of the
``/where`` page (one ``M x,y`` square per dark module).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ZBARIMG = shutil.which("zbarimg")
SCALE = 8   # image pixels per module


def need_zbarimg() -> str:
    if ZBARIMG is None:
        pytest.skip("no zbarimg: `make test` installs Debian's zbar-tools")
    return ZBARIMG


def decode(dark: list[list[bool]]) -> list[str]:
    """What zbarimg reads in a module matrix (True = dark); [] if it finds no code."""
    exe = need_zbarimg()
    size = len(dark)
    width = max(len(r) for r in dark)
    lines = [f"P1\n{width * SCALE} {size * SCALE}"]
    for row in dark:
        line = " ".join("1" if (x < len(row) and row[x]) else "0"
                        for x in range(width) for _ in range(SCALE))
        lines += [line] * SCALE
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "code.pbm"
        image.write_text("\n".join(lines) + "\n")
        r = subprocess.run([exe, "--quiet", "--raw", str(image)], capture_output=True,
                           text=True, timeout=60)
    return r.stdout.splitlines() if r.returncode == 0 else []


LIGHT_TOP, LIGHT_BOTTOM = "█▀", "█▄"


def from_terminal(text: str) -> list[list[bool]]:
    """The modules of a code printed with light half-blocks (qrcode's inverted ASCII)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # the colours of a terminal
    rows = [line for line in text.splitlines() if line and set(line) <= set("█▀▄ \xa0")]
    dark: list[list[bool]] = []
    for line in rows:
        dark.append([c not in LIGHT_TOP for c in line])
        dark.append([c not in LIGHT_BOTTOM for c in line])
    return dark


def from_svg(svg: str) -> list[list[bool]]:
    """The modules of qrcode's path SVG: each dark module is a unit square ``Mx,y``."""
    size = int(re.search(r'viewBox="0 0 (\d+) \d+"', svg).group(1))
    dark = [[False] * size for _ in range(size)]
    for x, y in re.findall(r"M(\d+),(\d+)", svg):
        dark[int(y)][int(x)] = True
    return dark
