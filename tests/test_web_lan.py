"""The web library under a hostile LAN: sessions, sign-in throttling, Range, content types.

Everything runs against the real ASGI app in process (httpx.ASGITransport, whose `client`
sets the address the server sees) except the crash test in test_web_crash.py.
"""

from __future__ import annotations

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from node import library
from node.web import auth, stream
from test_web import PASSWORD, client, csrf_of, school, sign_in  # noqa: F401  (fixtures)

SIZE = 3 * 1024 * 1024 + 12345   # the video of the `school` fixture


# -- Range -------------------------------------------------------------------------------------

HUGE = "9" * 5000
MALFORMED = [
    "", " ", "bytes", "bytes=", "bytes=-", "bytes=--5", "bytes=-5-10", "bytes=5", "bytes=a-b",
    "bytes=abc", "bytes=0-1-2", "bytes=-1-", "bytes=1--2", "bytes=0x10-0x20", "bytes=+1-2",
    "bytes=1-+2", "bytes=1.5-2", "bytes=1 2-3", "bytes=\u0663-\u0664", "bytes=１-２",
    "bytes=0-1,", "bytes=,0-1", "bytes=0-1,,2-3", "bytes=0-1,x", "bytes=0-1;2-3", "=0-1",
    "garbage", "bytes 0-1", "bytes:0-1", "bytes==0-1", "\x00bytes=0-1", "bytes=0-1\x00",
    f"bytes={HUGE}-", f"bytes=0-{HUGE}", f"bytes=-{HUGE}", f"bytes={HUGE}-{HUGE}",
    f"bytes=0-1,{HUGE}-", "bytes=" + "0-1," * 2000 + "x", "bytes=-" + "1" * 20,
    "bytes=00000000000000000001-", "bytes=-1-" + HUGE,
    # well formed but not satisfiable
    f"bytes={SIZE}-", f"bytes={SIZE}-{SIZE + 10}", "bytes=5-2", "bytes=-0",
]


async def test_malformed_ranges_are_416_never_500(client):
    url = f"/r/{client.res['resource_id']}/files/lecture.mp4"
    for bad in MALFORMED:
        for method in ("GET", "HEAD"):
            r = await client.request(method, url, headers=[(b"range", bad.encode())])
            assert r.status_code == 416, (bad[:40], r.status_code)
            assert r.headers["content-range"] == f"bytes */{SIZE}"
            assert r.content == b""
    # a valid Range for another version of the file (If-Range) is ignored, even a bad one
    r = await client.get(url, headers={"range": HUGE, "if-range": '"bafyother"'})
    assert r.status_code == 200 and len(r.content) == SIZE


async def test_wellformed_ranges_still_served(client):
    url = f"/r/{client.res['resource_id']}/files/lecture.mp4"
    video = client.video
    for header, want in [("bytes=0-0", video[:1]), ("Bytes=10-19", video[10:20]),
                         (" bytes = 5-9 ".replace(" = ", "="), video[5:10]),
                         ("bytes= 7-8 ", video[7:9]), (f"bytes=0-{'9' * 19}", video),
                         (f"bytes=-{'9' * 19}", video), (f"bytes={SIZE - 1}-", video[-1:])]:
        r = await client.get(url, headers={"range": header})
        assert r.status_code == 206 and r.content == want, header
    for ignored in ("items=0-1", "bytes=0-1,5-9", "bytes=0-1, 4-5"):
        r = await client.get(url, headers={"range": ignored})
        assert r.status_code == 200 and r.content == video, ignored


@settings(derandomize=True, database=None, max_examples=1000, deadline=None)
@given(header=st.text(max_size=60) | st.from_regex(r"\A[Bb]ytes=[-0-9, ]{0,40}\Z"),
       size=st.integers(min_value=0, max_value=2**40))
@example(header=f"bytes={HUGE}-", size=10)
def test_parse_range_property(header, size):
    """Any header gives a range inside the file, the whole file, or BadRange: nothing else."""
    try:
        got = stream.parse_range(header, size)
    except stream.BadRange:
        return
    if got is not None:
        start, end = got
        assert 0 <= start < end <= size


@settings(derandomize=True, database=None, max_examples=500, deadline=None)
@given(first=st.integers(min_value=0, max_value=10**30),
       last=st.integers(min_value=0, max_value=10**30), size=st.integers(1, 2**40))
def test_parse_range_single_ranges(first, last, size):
    header = f"bytes={first}-{last}"
    if len(str(first)) > stream.MAX_RANGE_DIGITS or len(str(last)) > stream.MAX_RANGE_DIGITS \
            or last < first or first >= size:
        with pytest.raises(stream.BadRange):
            stream.parse_range(header, size)
    else:
        assert stream.parse_range(header, size) == (first, min(last + 1, size))


# -- content types -----------------------------------------------------------------------------

async def test_only_harmless_types_keep_their_type(client, tmp_path):
    src = tmp_path / "kinds"
    src.mkdir()
    files = {"drawing.svg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)'
                            b'</script></svg>', "data.xml": b"<x/>", "page.xhtml": b"<html/>",
             "run.js": b"alert(1)", "pic.png": b"\x89PNG\r\n\x1a\n", "old.bmp": b"BM",
             "notes.txt": b"hello"}
    for name, data in files.items():
        (src / name).write_bytes(data)
    res = library.publish(client.home, [src], {"title": "Kinds", "license": "CC-BY-4.0"})
    base = f"/r/{res['resource_id']}/files/"
    for name in ("drawing.svg", "data.xml", "page.xhtml", "run.js", "old.bmp"):
        for query in ("", "?download=1"):
            r = await client.get(base + name + query)
            assert r.status_code == 200 and r.content == files[name]
            assert r.headers["content-type"] == "application/octet-stream", name
            assert r.headers["content-disposition"].startswith("attachment;"), name
            assert r.headers["x-content-type-options"] == "nosniff"
            assert "sandbox" in r.headers["content-security-policy"]
    r = await client.get(base + "pic.png")
    assert r.headers["content-type"] == "image/png"
    assert r.headers["content-disposition"].startswith("inline;")
    r = await client.get(base + "notes.txt")
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["x-content-type-options"] == "nosniff"


# -- sessions ----------------------------------------------------------------------------------

ANONYMOUS_REQUESTS = 10_000


async def test_anonymous_requests_do_not_sign_a_teacher_out(client):
    await sign_in(client)
    assert (await client.get("/publish")).status_code == 200
    # Another machine on the LAN, without cookies, views the sign-in page (a form, so a CSRF
    # token) over and over; and with a cookie of its own, and with made-up cookies.
    transport = httpx.ASGITransport(app=client.app, client=("10.0.0.66", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://school.lan") as other:
        for i in range(ANONYMOUS_REQUESTS):
            other.cookies.clear()
            if i % 3 == 1:
                other.cookies.set("sm_session", f"{i:043d}")
            r = await other.get("/login")
            assert r.status_code == 200
    r = await client.get("/publish")
    assert r.status_code == 200 and 'enctype="multipart/form-data"' in r.text
    assert len(client.app.state.web.sessions) == 1  # the teacher's: nothing for visitors
    r = await client.post("/logout", data={"csrf": csrf_of(r.text)})
    assert r.status_code == 303 and len(client.app.state.web.sessions) == 0


async def test_anonymous_forms_still_need_their_own_token(client):
    """A visitor's CSRF token is bound to their cookie: another visitor's token is refused."""
    page = await client.get("/login")
    token = csrf_of(page.text)
    transport = httpx.ASGITransport(app=client.app, client=("10.0.0.66", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://school.lan") as other:
        await other.get("/login")
        r = await other.post("/login", data={"csrf": token, "name": "wang",
                                             "password": PASSWORD})
        assert r.status_code == 403
        other.cookies.clear()
        r = await other.post("/login", data={"csrf": token, "name": "wang",
                                             "password": PASSWORD})
        assert r.status_code == 403
    again = await client.get("/login")
    assert csrf_of(again.text) == token  # stable for one visitor: several tabs keep working
    r = await client.post("/login", data={"csrf": token, "name": "wang", "password": PASSWORD})
    assert r.status_code == 303


def test_one_teacher_cannot_crowd_out_the_others(school):
    sessions = auth.Sessions(school[0].conn)
    kept = sessions.new("li")
    wangs = [sessions.new("wang") for _ in range(auth.MAX_SESSIONS_PER_TEACHER + 5)]
    assert sessions.get(kept.sid).teacher == "li"
    assert len(sessions) == 1 + auth.MAX_SESSIONS_PER_TEACHER
    assert [sessions.get(s.sid) is not None for s in wangs] == \
        [False] * 5 + [True] * auth.MAX_SESSIONS_PER_TEACHER   # the oldest went first


# -- sign-in throttling ------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def attempt(c, name: str, password: str) -> httpx.Response:
    token = csrf_of((await c.get("/login")).text)
    return await c.post("/login", data={"csrf": token, "name": name, "password": password})


async def test_wrong_passwords_elsewhere_do_not_lock_a_teacher_out(client):
    clock = Clock()
    client.app.state.web.limiter.clock = clock
    transport = httpx.ASGITransport(app=client.app, client=("10.0.0.66", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://school.lan") as attacker:
        for _ in range(auth.FREE_FAILURES):
            assert (await attempt(attacker, "wang", "guess guess")).status_code == 401
        for name in ("wang", "WANG"):  # names are case-folded
            r = await attempt(attacker, name, PASSWORD)  # even the right password: refused
            assert r.status_code == 429 and r.headers["retry-after"] == "1"
        assert "1 秒后再试" in r.text
        r = await attacker.post("/login", headers={"accept-language": "en"}, data={
            "csrf": csrf_of((await attacker.get("/login")).text), "name": "wang",
            "password": "x" * 9})
        assert r.status_code == 429 and "Try again in 1 seconds" in r.text
        # a forwarding header is not believed: it is still the attacker's own address
        r = await attacker.post("/login", headers={"x-forwarded-for": "10.0.0.5"}, data={
            "csrf": csrf_of((await attacker.get("/login")).text), "name": "wang",
            "password": "x" * 9})
        assert r.status_code == 429
    # the teacher, on another machine, signs in at once (client's address is 127.0.0.1)
    r = await attempt(client, "wang", PASSWORD)
    assert r.status_code == 303


async def test_delay_grows_and_ends(client):
    clock = Clock()
    client.app.state.web.limiter.clock = clock
    for _ in range(auth.FREE_FAILURES):
        assert (await attempt(client, "wang", "guess guess")).status_code == 401
    waits = []
    for _ in range(14):
        r = await attempt(client, "wang", "guess guess")
        assert r.status_code == 429  # refused (not counted) until the delay has passed
        wait = int(r.headers["retry-after"])
        waits.append(wait)
        clock.now += wait - 0.5
        assert (await attempt(client, "wang", PASSWORD)).status_code == 429
        clock.now += 0.5
        assert (await attempt(client, "wang", "guess guess")).status_code == 401
    assert waits == [min(2 ** i, int(auth.MAX_DELAY)) for i in range(14)]
    clock.now += auth.MAX_DELAY
    assert (await attempt(client, "wang", PASSWORD)).status_code == 303


def test_limiter_forgets_and_stays_bounded():
    clock = Clock()
    lim = auth.LoginLimiter(clock=clock)
    for _ in range(auth.FREE_FAILURES + 40):  # the exponent is capped: no overflow
        lim.failed("10.0.0.66", "wang")
    assert lim.retry_after("10.0.0.66", "wang") == auth.MAX_DELAY
    assert lim.retry_after("10.0.0.5", "wang") == 0
    clock.now += auth.FORGET_AFTER + 1
    assert lim.retry_after("10.0.0.66", "wang") == 0
    for _ in range(auth.FREE_FAILURES):
        lim.failed("10.0.0.7", "li")
    assert lim.retry_after("10.0.0.7", "li") > 0
    lim.succeeded("10.0.0.7", "li")  # clears this address's count for this name only
    assert lim.retry_after("10.0.0.7", "li") == 0
    for i in range(auth.MAX_TRACKED):
        lim.failed(f"10.1.{i // 256}.{i % 256}", f"n{i}")
    assert len(lim._fails) == auth.MAX_TRACKED
