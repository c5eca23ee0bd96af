"""Web library pages that change things: sign-in, publish, adapt, requests, feedback; CLI."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from node import catalog, library
from node.web import auth
from test_web import PASSWORD, client, csrf_of, school, sign_in  # noqa: F401  (fixtures)


async def test_login_logout_and_session_cookie(client):
    page = await client.get("/login")
    assert page.status_code == 200
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    before = client.cookies["sm_session"]
    r = await client.post("/login", data={"csrf": csrf_of(page.text), "name": "wang",
                                          "password": "wrong password"})
    assert r.status_code == 401
    await sign_in(client)
    assert client.cookies["sm_session"] != before  # a new session id at sign-in
    page = await client.get("/publish")
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.text
    r = await client.post("/logout", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 303
    r = await client.get("/publish")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


async def test_signed_in_cookie_is_strict(client):
    page = await client.get("/login")
    r = await client.post("/login", data={"csrf": csrf_of(page.text), "name": "wang",
                                          "password": PASSWORD})
    assert "SameSite=Strict" in r.headers["set-cookie"]


async def test_login_needs_csrf(client):
    await client.get("/login")
    r = await client.post("/login", data={"name": "wang", "password": PASSWORD})
    assert r.status_code == 403
    r = await client.post("/login", data={"csrf": "x", "name": "wang", "password": PASSWORD})
    assert r.status_code == 403


async def test_login_rate_limit(client):
    token = csrf_of((await client.get("/login")).text)
    for _ in range(auth.FREE_FAILURES):
        r = await client.post("/login", data={"csrf": token, "name": "wang",
                                              "password": "nope nope"})
        assert r.status_code == 401
    r = await client.post("/login", data={"csrf": token, "name": "wang", "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    # other names from the same address: the per-address limit stops them too
    for i in range(auth.FREE_FAILURES_PER_ADDRESS - auth.FREE_FAILURES):
        await client.post("/login", data={"csrf": token, "name": f"t{i}", "password": "x" * 9})
    r = await client.post("/login", data={"csrf": token, "name": "other", "password": "x" * 9})
    assert r.status_code == 429


def test_password_hash_format():
    h = auth.hash_password("a good password")
    assert h.startswith("scrypt$1$16384$8$1$")
    assert auth.verify_password("a good password", h)
    assert not auth.verify_password("a bad password", h)
    assert not auth.verify_password("x", "garbage")
    assert auth.hash_password("a good password") != h  # salted


class _Chunks(httpx.AsyncByteStream):
    """A request body that is a plain async iterator, not an async generator: the server
    may stop reading early (limits, CSRF) and nothing is left for the GC to finalise."""

    def __init__(self, data: bytes) -> None:
        self.chunks = [data[i:i + 65536] for i in range(0, len(data), 65536)]

    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        if not self.chunks:
            raise StopAsyncIteration
        return self.chunks.pop(0)


async def post_multipart(c, url, data, files):
    """POST a multipart body built in memory first."""
    built = httpx.Request("POST", "http://school.lan" + url, data=data, files=files)
    body = built.read()
    req = c.build_request("POST", url, headers={
        "content-type": built.headers["content-type"], "content-length": str(len(body))})
    req.stream = _Chunks(body)
    return await c.send(req)


async def publish_form(c, files, **fields):
    page = await c.get("/publish")
    data = {"csrf": csrf_of(page.text), "title": "Fractions worksheet", "inLanguage": "en",
            "license": "CC-BY-4.0", **fields}
    return await post_multipart(c, "/publish", data, files)


async def test_publish_adapt_and_lineage(client):
    await sign_in(client)
    r = await publish_form(client, [("files", ("sheet.txt", b"1/2 + 1/4", "text/plain")),
                                    ("files", ("答案.txt", "答案: 3/4".encode(), "text/plain"))],
                           about="math, 数学", educationalLevel="upper-primary",
                           learningResourceType="worksheet")
    assert r.status_code == 303, r.text
    rid = r.headers["location"].rsplit("/", 1)[1]
    shown = library.show(client.home, rid)
    assert shown["meta"]["creator"] == "wang" and shown["meta"]["about"] == ["math", "数学"]
    assert [f["path"] for f in shown["files"]] == ["sheet.txt", "答案.txt"]
    assert shown["school_id"] == client.home.school_id
    # adapt: the form is pre-filled with the original and carries isBasedOn
    src = client.res["resource_id"]
    page = await client.get("/publish", params={"based_on": src})
    assert f'name="isBasedOn" value="{src}"' in page.text and "分数的初步认识" in page.text
    r = await post_multipart(client, "/publish", {
        "csrf": csrf_of(page.text), "title": "分数（改编）", "isBasedOn": src,
        "inLanguage": "zh-CN", "license": "CC-BY-4.0"},
        [("files", ("lesson.md", b"# adapted", "text/markdown"))])
    assert r.status_code == 303
    new = r.headers["location"].rsplit("/", 1)[1]
    page = await client.get(f"/r/{src}")
    assert f'href="/r/{new}"' in page.text  # "adapted as"
    assert library.show(client.home, new)["lineage"]["based_on"][0]["resource_id"] == src
    assert not list((client.home.path / "web-uploads").iterdir())  # temp folders removed


async def test_publish_bad_input(client):
    await sign_in(client)
    r = await publish_form(client, [("files", ("a.txt", b"x", "text/plain"))], license="WTFPL")
    assert r.status_code == 400 and "WTFPL" in r.text
    r = await publish_form(client, [("files", ("", b"", "application/octet-stream"))])
    assert r.status_code == 400
    for bad in ("../../evil.txt", "/etc/passwd", ".hidden", "x/../../b.txt", "con"):
        r = await publish_form(client, [("files", (bad, b"x", "text/plain"))])
        assert r.status_code == 400, bad
    assert not (client.home.path.parent / "evil.txt").exists()
    r = await publish_form(client, [("files", ("big.bin", b"\0" * (9 * 1024 * 1024),
                                               "application/octet-stream"))])
    assert r.status_code == 413
    req = client.build_request("POST", "/publish", headers={"content-type": "text/plain",
                                                             "content-length": "13"})
    req.stream = _Chunks(b"not multipart")
    assert (await client.send(req)).status_code == 400
    assert not list((client.home.path / "web-uploads").iterdir())
    titles = {x["title"] for x in catalog.search(client.home.conn, None, limit=50)}
    assert titles == {"分数的初步认识"}


async def test_publish_needs_csrf_before_files_and_sign_in(client):
    r = await post_multipart(client, "/publish", {"title": "x"},
                             [("files", ("a.txt", b"x", "text/plain"))])
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    await sign_in(client)
    r = await post_multipart(client, "/publish", {"title": "x", "csrf": "forged"},
                             [("files", ("a.txt", b"x", "text/plain"))])
    assert r.status_code == 403
    r = await post_multipart(client, "/publish", {"title": "x"},
                             [("files", ("a.txt", b"x", "text/plain"))])
    assert r.status_code == 403
    assert not list((client.home.path / "web-uploads").iterdir())


async def test_requests_board_and_fulfilling(client):
    page = await client.get("/requests")
    assert page.status_code == 200 and 'name="subject"' not in page.text  # signed out
    await sign_in(client)
    page = await client.get("/requests")
    token = csrf_of(page.text)
    r = await client.post("/requests", data={"subject": "科学", "level": "lower-secondary",
                                             "description": "需要电路实验的微课"})
    assert r.status_code == 403
    r = await client.post("/requests", data={"csrf": token, "subject": "科学",
                                             "level": "lower-secondary",
                                             "description": "需要电路实验的微课"})
    assert r.status_code == 303
    r = await client.post("/requests", data={"csrf": token, "subject": "科学",
                                             "level": "grade-12", "description": "x"})
    assert r.status_code == 400
    page = await client.get("/requests")
    assert "需要电路实验的微课" in page.text
    qid = re.search(r'<li id="(q[a-z2-7]{26})"', page.text).group(1)
    form = await client.get("/publish", params={"fulfils": qid})
    assert f'value="{qid}" selected' in form.text
    r = await publish_form(client, [("files", ("circuit.txt", b"circuits", "text/plain"))],
                           fulfils=qid)
    assert r.status_code == 303
    rid = r.headers["location"].rsplit("/", 1)[1]
    page = await client.get("/requests")
    assert f'href="/r/{rid}"' in page.text
    assert f"/requests#{qid}" in (await client.get(f"/r/{rid}")).text


async def test_feedback(client):
    rid = client.res["resource_id"]
    r = await client.post(f"/r/{rid}/feedback", data={"rating": "5"})
    assert r.status_code == 403
    await sign_in(client)
    token = csrf_of((await client.get(f"/r/{rid}")).text)
    for bad in ({"rating": "6"}, {"rating": "zero"}, {"rating": "3", "comment": "x" * 501}):
        r = await client.post(f"/r/{rid}/feedback", data={"csrf": token, "used": "yes", **bad})
        assert r.status_code == 400, bad
    r = await client.post(f"/r/{rid}/feedback", data={"csrf": token, "used": "yes",
                                                      "rating": "4", "comment": "学生很喜欢"})
    assert r.status_code == 303
    page = await client.get(f"/r/{rid}", headers={"accept-language": "en"})
    assert "学生很喜欢" in page.text and "Average rating 4.0 of 5" in page.text
    r = await client.post("/r/rnotarealidaaaaaaaaaaaaaaaa/feedback",
                          data={"csrf": token, "rating": "4"})
    assert r.status_code == 404


async def test_removed_teacher_is_signed_out(client):
    await sign_in(client)
    assert (await client.get("/publish")).status_code == 200
    auth.remove_teacher(client.home.conn, "wang")
    assert (await client.get("/publish")).status_code == 303


def test_teacher_cli(cli, home):
    env = {"SCHOOLMESH_TEACHER_PASSWORD": "long enough secret"}
    d = cli.json("teacher", "add", "李老师", env=env)
    assert (d["teacher"], d["role"], d["subjects"]) == ("李老师", "teacher", [])
    d = cli.json("teacher", "add", "zhao", "--role", "operator", env=env)
    assert (d["teacher"], d["role"]) == ("zhao", "operator")
    assert cli.json("teacher", "role", "zhao", "teacher") == {"teacher": "zhao",
                                                              "role": "teacher"}
    assert "no teacher" in cli.fail("teacher", "role", "nobody", "operator")
    bad = cli.run("teacher", "add", "x", "--role", "root", env=env)
    assert bad.exit_code == 2 and "'root' is not one of" in bad.stderr  # a usage error
    cli.ok("teacher", "remove", "zhao")
    assert "already exists" in cli.fail("teacher", "add", "李老师", env=env)
    assert [(t["name"], t["role"]) for t in cli.json("teacher", "list")] == [("李老师", "teacher")]
    assert "SCHOOLMESH_TEACHER_PASSWORD" in cli.fail("teacher", "add", "zhang")
    assert "8 to 1024" in cli.fail("teacher", "add", "zhang",
                                   env={"SCHOOLMESH_TEACHER_PASSWORD": "short"})
    assert "teacher name" in cli.fail("teacher", "add", "../x", env=env)
    cli.ok("teacher", "remove", "李老师")
    assert "no teacher" in cli.fail("teacher", "remove", "李老师")
    assert cli.json("teacher", "list") == []


async def test_served_by_a_real_node(nursery, tmp_path):
    import httpx

    from node.daemon import Node, Options
    from node.home import init_home
    home = init_home(tmp_path / "n", "n", "school")
    node = await nursery.start(Node(home, Options(listen=["/ip4/127.0.0.1/tcp/0"],
                                                  web="127.0.0.1:0")).serve)
    assert node.web_url.startswith("http://127.0.0.1:")
    async with httpx.AsyncClient() as c:
        r = await c.get(node.web_url + "/", headers={"accept-language": "en"})
        assert r.status_code == 200 and "Teaching library" in r.text
        r = await c.get(node.web_url + "/static/site.css")
        assert r.status_code == 200 and "system-ui" in r.text
        r = await c.get(node.web_url + "/static/../key.pem")
        assert r.status_code == 404
        r = await c.get(node.web_url + "/api/transfers")
        assert r.json() == []
