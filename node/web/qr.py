"""QR codes of the web library's address: for the terminal (``schoolmesh status``) and as an
inline SVG on the printable page (``/where``).  Encoding is the ``qrcode`` package's (no Pillow
needed for either form); this module only picks the options.
"""

from __future__ import annotations

import io

import qrcode
import qrcode.constants
import qrcode.image.svg

QUIET_ZONE = 4      # modules of light margin around the code (the QR standard's minimum)
# M recovers ~15 % of a damaged or badly printed code and keeps a LAN URL at version 2-3
# (25-29 modules): small enough for an 80-column terminal.
ERROR_CORRECTION = qrcode.constants.ERROR_CORRECT_M


def _code(data: str) -> qrcode.QRCode:
    code = qrcode.QRCode(border=QUIET_ZONE, error_correction=ERROR_CORRECTION)
    code.add_data(data)
    code.make(fit=True)
    return code


def matrix(data: str) -> list[list[bool]]:
    """The modules, quiet zone included (True = dark)."""
    return _code(data).get_matrix()


def terminal(data: str, *, tty: bool) -> str:
    """The code in half-block characters, two module rows per line, light modules drawn.

    On a terminal (``tty``) the colours are set explicitly (white on black), so it scans on
    dark and light themes alike; otherwise the same characters come without colour codes,
    drawn for the usual light-on-dark console."""
    out = io.StringIO()
    out.isatty = lambda: tty  # type: ignore[method-assign]  # print_ascii asks the stream
    _code(data).print_ascii(out=out, tty=tty, invert=True)
    return out.getvalue()


def svg(data: str) -> str:
    """An ``<svg>`` element (white background, one path) to inline in a page."""
    image = _code(data).make_image(image_factory=qrcode.image.svg.SvgPathFillImage)
    text = image.to_string(encoding="unicode")
    return text.replace(' id="qr-path"', "")  # one page may show several codes
