"""Studio and record pages over HTTP (the real web app on a real home): identities at
sign-in, forms, errors in both languages, the CSV."""

from __future__ import annotations

import pytest

from crypto import keys as crypto_keys
from node import identities
from node import studio as ns
from test_web import PASSWORD, client, csrf_of, school, sign_in  # noqa: F401  (fixtures)


@pytest.fixture(autouse=True)
def _quick_seal(monkeypatch):
    """Teachers' keys sealed with scrypt N = 2^12 instead of 2^17 here, to keep the suite fast:
    the cost is a header field every reader takes from the file; test_vectors_teachers.py
    opens keys sealed with the production cost."""
    monkeypatch.setattr(crypto_keys, "SCRYPT_LOG2_N", 12)


async def test_studio_pages_need_an_unsealed_identity_and_sign_for_it(client):
    await sign_in(client)
    page = await client.get("/studios")
    assert page.status_code == 200 and "还没有教师身份" in page.text     # no identity yet
    token = csrf_of(page.text)
    r = await client.post("/studios", data={"csrf": token, "action": "create", "name": "工作室"})
    assert r.status_code == 400 and "identity" in r.text
    identities.give_identity(client.home, "wang", PASSWORD, ["数学"])
    r = await client.post("/studios", data={"csrf": token, "action": "create", "name": "工作室"})
    assert r.status_code == 303 and r.headers["location"].startswith("/login")  # key not open
    await sign_in(client)
    token = csrf_of((await client.get("/studios")).text)
    r = await client.post("/studios", data={"csrf": token, "action": "create",
                                            "name": "王老师数学工作室"})
    assert r.status_code == 303
    sid = r.headers["location"].rsplit("/", 1)[1]
    [s] = ns.studios(client.home.conn).values()
    assert s.id == sid and s.master == identities.public_of(client.home.conn, "wang")

    r = await client.post(f"/studio/{sid}/task", data={"csrf": token, "title": "改编",
                                                       "due": "2026-02-30"})
    assert r.status_code == 400 and "操作未成功" in r.text and "2026-02-30" in r.text
    r = await client.post(f"/studio/{sid}/task", data={"csrf": token, "title": "改编分数",
                                                       "due": "2099-12-15",
                                                       "resource": client.res["resource_id"]})
    assert r.status_code == 303 and r.headers["location"].endswith("#tasks")
    r = await client.post(f"/studio/{sid}/task", data={"title": "x", "due": "2099-12-15"})
    assert r.status_code == 403                                          # no CSRF token
    r = await client.post(f"/studio/{sid}/nonsense", data={"csrf": token})
    assert r.status_code == 404
    r = await client.post("/studios", data={"csrf": token, "action": "join", "code": "SMS1-X"})
    assert r.status_code == 400 and "damaged or mistyped" in r.text
    r = await client.post(f"/studio/{sid}/invite", data={"csrf": token, "school": "nobody"})
    assert r.status_code == 400 and "not a school id" in r.text
    r = await client.post(f"/studio/{sid}/comment", data={
        "csrf": token, "resource": client.res["resource_id"], "text": "导入可以更短"})
    assert r.status_code == 303

    en = await client.get(f"/studio/{sid}", headers={"accept-language": "en"})
    assert en.status_code == 200 and "Tasks" in en.text and "2099-12-15" in en.text
    assert "导入可以更短" in en.text and "Lesson study" in en.text
    zh = await client.get(f"/studio/{sid}")
    assert "评课研讨" in zh.text and "布置任务" in zh.text
    assert (await client.get("/studio/snot-a-studio")).status_code == 404

    key = identities.key_id(identities.public_of(client.home.conn, "wang"))
    rec = await client.get(f"/teacher/{key}", headers={"accept-language": "en"})
    assert rec.status_code == 200 and "Record of contributions" in rec.text
    assert "Resources published" in rec.text
    csv = await client.get(f"/teacher/{key}/record.csv")
    assert csv.status_code == 200 and "attachment" in csv.headers["content-disposition"]
    assert csv.content.startswith("\ufeffteacher,category".encode("utf-8"))
    assert (await client.get("/teacher/t1234")).status_code == 404
    # feedback and requests written by a teacher with an identity name them by key
    rid = client.res["resource_id"]
    r = await client.post(f"/r/{rid}/feedback", data={"csrf": token, "used": "yes",
                                                       "rating": "4"})
    assert r.status_code == 303
    page = await client.get(f"/r/{rid}")
    assert f'<a href="/teacher/{key}" class="teacher">wang</a>' in page.text
    r = await client.post("/requests", data={"csrf": token, "subject": "数学",
                                             "level": "lower-primary", "description": "复式班"})
    assert r.status_code == 303
    assert f'href="/teacher/{key}"' in (await client.get("/requests")).text
    rec = await client.get(f"/teacher/{key}/record.csv")
    assert b"reviews_given" in rec.content       # the feedback counts as a review given
