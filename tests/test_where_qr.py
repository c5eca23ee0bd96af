"""Where teachers open the web library: the QR code of 'schoolmesh status' and the printable
/where page, both decoded by a real QR decoder (zbarimg)."""

from __future__ import annotations

import re

import qr_decode
from test_web import client, school  # noqa: F401  (fixtures)

from node.web import qr

LAN = ["http://192.168.31.7:8080/", "http://10.20.3.4:8080/"]


def test_terminal_code_scans_back_to_the_url():
    for tty in (False, True):
        text = qr.terminal(LAN[0], tty=tty)
        assert ("\x1b[" in text) is tty   # explicit colours only on a terminal
        assert qr_decode.decode(qr_decode.from_terminal(text)) == [LAN[0]]
        assert max(len(re.sub(r"\x1b\[[0-9;]*m", "", line)) for line in text.splitlines()) <= 80


async def test_where_page_shows_each_url_with_a_code(client):
    client.node.urls = LAN
    for lang, heading in (("zh-CN", "打开教学资源库"), ("en", "Open the teaching library")):
        r = await client.get("/where", headers={"accept-language": lang})
        assert r.status_code == 200
        assert heading in r.text and "龙泉小学" in r.text
        svgs = re.findall(r"<svg\b.*?</svg>", r.text, re.S)
        assert len(svgs) == len(LAN)
        for url, svg in zip(LAN, svgs):
            assert f'<figcaption class="url">{url}</figcaption>' in r.text
            assert qr_decode.decode(qr_decode.from_svg(svg)) == [url]
    # every page links to it
    assert 'href="/where"' in (await client.get("/")).text


async def test_where_page_without_lan_addresses_uses_the_request(client):
    client.node.urls = []   # e.g. served only on 127.0.0.1 behind a proxy
    r = await client.get("/where")
    svg = re.search(r"<svg\b.*?</svg>", r.text, re.S).group(0)
    assert qr_decode.decode(qr_decode.from_svg(svg)) == ["http://school.lan/"]
