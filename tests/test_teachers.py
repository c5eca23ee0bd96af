"""Teacher identities, studios and the record of contributions on real homes (no network):
feeds move between schools through ``feeds.admit``, the rule peers use."""

from __future__ import annotations

from pathlib import Path

import pytest

from crypto import PublicKey, SchoolKey
from crypto import keys as crypto_keys
from node import community, contributions, db, feeds, identities, library, studio
from node.errors import NodeError
from node.home import init_home, now_ms, open_home
from node.teachers import certificates, signer, signing_as
from protocol import records
from protocol import teachers as tproto
from protocol.errors import RemoteProtocolError

PW = "粉笔和黑板-2026"
DAY = 86_400_000


@pytest.fixture(autouse=True)
def _quick_seal(monkeypatch):
    """Teachers' keys sealed with scrypt N = 2^12 instead of 2^17 here, to keep the suite fast:
    the cost is a header field every reader takes from the file; test_vectors_teachers.py
    opens keys sealed with the production cost."""
    monkeypatch.setattr(crypto_keys, "SCRYPT_LOG2_N", 12)


def copy_feed(src, dst) -> int:
    """Admit every entry of ``src``'s feed that ``dst`` lacks (as sync would); count added."""
    seq, _ = feeds.head(dst.conn, src.feed)
    added = 0
    with db.write(dst.conn) as conn:
        for e in feeds.entries(src.conn, src.feed, seq):
            if feeds.admit(conn, e, feeds.Gate(wanted={}, any_feed=True)) == feeds.Appended.ADDED:
                added += 1
    return added


def publish(home, tmp: Path, title: str, key, based_on: str | None = None) -> str:
    d = tmp / f"src-{title}"
    d.mkdir()
    (d / "教案.txt").write_text(title, "utf-8")
    meta = {"title": title, **({"isBasedOn": [based_on]} if based_on else {})}
    with signing_as(key):
        return library.publish(home, [d], meta)["resource_id"]


@pytest.fixture
def schools(tmp_path):
    a = init_home(tmp_path / "a", "城关示范小学", "demonstration")
    b = init_home(tmp_path / "b", "山村小学", "school")
    yield a, b
    a.close()
    b.close()


def test_identity_certificate_signature_and_peers_check_the_same(schools, tmp_path):
    a, b = schools
    d = identities.add(a, "liu", PW, ["数学", "科学"])
    key = identities.unlock(a.conn, "liu", PW)
    assert identities.key_id(key.public.raw) == d["key"]
    with pytest.raises(NodeError, match="wrong password"):
        identities.unlock(a.conn, "liu", "not the password")
    old = publish(a, tmp_path, "未签名的旧教案", None)            # no teacher: still valid
    rid = publish(a, tmp_path, "分数的意义", key)
    (pub_seq,) = a.conn.execute("SELECT seq FROM resources WHERE resource_id = ?",
                                (rid,)).fetchone()
    assert signer(a.conn, a.feed, pub_seq) == key.public.raw
    copy_feed(a, b)                                                # the peer admits it all
    assert signer(b.conn, a.feed, pub_seq) == key.public.raw
    assert b.conn.execute("SELECT 1 FROM resources WHERE resource_id = ?", (old,)).fetchone()
    [cert] = certificates(b.conn, key.public.raw)
    assert (cert["name"], cert["subjects"], cert["school"], cert["revoked"]) == (
        "liu", ["数学", "科学"], "城关示范小学", False)

    # a password change re-seals the key: same identity, old password no longer opens it
    identities.change_password(a, "liu", PW, "新的密码-足够长")
    assert identities.unlock(a.conn, "liu", "新的密码-足够长").public == key.public
    with pytest.raises(NodeError):
        identities.unlock(a.conn, "liu", PW)

    # revoked: the node refuses to sign for the teacher; earlier signatures stay
    identities.revoke(a, "liu", "调离")
    with pytest.raises(NodeError, match="does not vouch"):
        publish(a, tmp_path, "撤销之后", key)
    copy_feed(a, b)
    assert certificates(b.conn, key.public.raw)[0]["revoked"]
    assert signer(b.conn, a.feed, pub_seq) == key.public.raw


def _forge(home, kind: str, body: dict) -> records.FeedEntry:
    key = home.key()
    seq, prev = feeds.head(home.conn, home.feed)
    return records.sign_entry(key, seq=seq + 1, prev=prev, time=now_ms(), kind=kind, body=body)


def test_feed_rules_refuse_uncertified_and_double_signatures(schools, tmp_path):
    a, b = schools
    stranger = SchoolKey.generate()
    rid = publish(a, tmp_path, "教案", None)
    (h,) = a.conn.execute("SELECT hash FROM entries WHERE feed = ? AND kind = ?",
                          (a.feed, records.KIND_PUBLISH)).fetchone()
    bad = _forge(a, tproto.KIND_TEACHER_SIGNATURE, tproto.signature_body(stranger, h))
    with pytest.raises(RemoteProtocolError, match="no unrevoked certificate"):
        with db.write(a.conn) as conn:
            feeds.append(conn, bad)
    copy_feed(a, b)
    with pytest.raises(RemoteProtocolError, match="no unrevoked certificate"):
        with db.write(b.conn) as conn:                         # a peer's admit says the same
            feeds.admit(conn, bad, feeds.Gate(wanted={a.feed: None}))
    assert feeds.head(b.conn, a.feed) == feeds.head(a.conn, a.feed)
    # a signature must name an earlier entry of the same feed, once
    identities.add(a, "liu", PW, [])
    key = identities.unlock(a.conn, "liu", PW)
    with pytest.raises(RemoteProtocolError, match="not an earlier entry"):
        with db.write(a.conn) as conn:
            feeds.append(conn, _forge(a, tproto.KIND_TEACHER_SIGNATURE,
                                      tproto.signature_body(key, bytes(32))))
    with db.write(a.conn) as conn:
        feeds.append(conn, _forge(a, tproto.KIND_TEACHER_SIGNATURE,
                                  tproto.signature_body(key, h)))
    with pytest.raises(RemoteProtocolError, match="already has"):
        with db.write(a.conn) as conn:
            feeds.append(conn, _forge(a, tproto.KIND_TEACHER_SIGNATURE,
                                      tproto.signature_body(key, h)))
    # a certificate's signature over another key does not verify as the teacher's
    body = tproto.signature_body(key, h)
    body["sig"] = bytes(64)
    with pytest.raises(Exception, match="does not verify"):
        _forge(a, tproto.KIND_TEACHER_SIGNATURE, body)
    assert rid


def test_teacher_moves_school_with_one_identity_and_one_record(schools, tmp_path):
    a, b = schools
    identities.add(a, "wang", PW, ["语文"])
    key = identities.unlock(a.conn, "wang", PW)
    first = publish(a, tmp_path, "古诗两首", key)
    out = tmp_path / "wang.identity"
    identities.export(a, "wang", PW, out)
    with pytest.raises(NodeError, match="wrong password"):
        identities.import_(b, out, "wrong password!!", None, None)
    d = identities.import_(b, out, PW, None, ["语文", "道德与法治"])
    assert d["key"] == identities.key_id(key.public.raw)
    moved = identities.unlock(b.conn, "wang", PW)
    assert moved.public == key.public
    second = publish(b, tmp_path, "古诗两首(复式班)", moved, based_on=first)
    copy_feed(a, b)
    copy_feed(b, a)
    for home in (a, b):   # the same feeds give the same record at every school
        rec = contributions.of(home.conn, key.public.raw)
        assert rec["counts"]["published"] == 1 and rec["counts"]["adapted"] == 1
        assert [c["school"] for c in certificates(home.conn, key.public.raw)] == [
            "城关示范小学", "山村小学"]
    assert contributions.of(a.conn, key.public.raw) == contributions.of(b.conn, key.public.raw)
    bad = tmp_path / "bad.identity"
    bad.write_bytes(b"not an identity")
    with pytest.raises(NodeError, match="not a schoolmesh teacher identity"):
        identities.read_export(bad, PW)
    assert second


def test_studio_task_submission_review_and_contributions(schools, tmp_path):
    a, b = schools
    identities.add(a, "master", PW, ["数学"])
    identities.add(b, "village", PW, ["数学"])
    mk = identities.unlock(a.conn, "master", PW)
    vk = identities.unlock(b.conn, "village", PW)
    lesson = publish(a, tmp_path, "分数的初步认识", mk)
    sid = studio.create(a, mk, "刘老师数学名师工作室")["studio"]
    with pytest.raises(NodeError, match="only the studio's master"):
        studio.invite(a, None, sid, b.school_id, [])
    code = studio.invite(a, mk, sid, b.school_id, ["/ip4/127.0.0.1/tcp/4001"])["code"]
    task = studio.add_task(a, mk, sid, "把《分数》改编为复式班教案", now_ms() + 7 * DAY,
                           resource=lesson)["task"]
    with pytest.raises(NodeError, match="not here yet"):
        studio.join(b, vk, code)                    # B follows A now, but has no feed yet
    assert a.feed in studio.wanted_feeds(a.conn, a.school_id) | {a.feed}
    assert b.feed in {f for (f,) in a.conn.execute("SELECT feed FROM follows")}
    copy_feed(a, b)
    assert studio.join(b, vk, code)["joined"]
    with pytest.raises(NodeError, match="invite code"):
        studio.join(b, vk, "SMS1-garbage")
    adapted = publish(b, tmp_path, "分数(复式班)", vk, based_on=lesson)
    sub = studio.submit(b, vk, sid, task, adapted)
    assert sub["on_time"]
    studio.comment(b, vk, sid, lesson, "第二环节时间偏长")
    copy_feed(b, a)
    s = studio.get(a.conn, sid)
    assert set(s.members) == {mk.public.raw, vk.public.raw}
    [c] = s.comments
    studio.comment(a, mk, sid, lesson, "可以分组", reply_to=c.hex())
    studio.review(a, mk, sid, sub["submission"], 5, "很好")
    with pytest.raises(NodeError, match="only the studio's master"):
        studio.review(b, vk, sid, sub["submission"], 1)
    p = studio.pair(a, mk, sid, mk.public.raw, vk.public.raw)["pair"]
    studio.log(a, mk, sid, p, "advice", "先讲后练")
    copy_feed(a, b)
    with signing_as(mk):   # a used-in-class report from another school
        library.append_entry(a, records.KIND_FEEDBACK, {"resource": adapted, "used": True,
                                                        "rating": 5})
    copy_feed(a, b)
    for home in (a, b):
        s = studio.get(home.conn, sid)
        [submission] = s.submissions.values()
        assert submission["review"]["rating"] == 5
        assert len(s.comments) == 2 and len(next(iter(s.pairs.values()))["log"]) == 1
        rec = contributions.of(home.conn, vk.public.raw)
        assert rec["counts"] == {"published": 0, "adapted": 1, "used_in_class": 1,
                                 "reviews_given": 0, "tasks_on_time": 1}
        master = contributions.of(home.conn, mk.public.raw)
        assert master["counts"]["reviews_given"] == 2     # the studio review and the feedback
    # replication: each school in the studio wants the others' feeds, a newly invited one too
    third = SchoolKey.generate().school_id
    studio.invite(a, mk, sid, third, [])
    copy_feed(a, b)
    wanted = set(community.policy(b).wanted)
    assert a.feed in wanted and PublicKey.from_school_id(third).raw in wanted
    assert b.feed in community.policy(a).wanted
    csv_text = contributions.to_csv(contributions.of(b.conn, vk.public.raw))
    assert csv_text.count("\r\n") == 4 and "tasks_on_time" in csv_text


def test_cli(cli, home, tmp_path, cli_at):
    env = {"SCHOOLMESH_TEACHER_PASSWORD": PW}
    d = cli.json("teacher", "add", "刘老师", "--subjects", "数学，科学", env=env)
    assert d["subjects"] == ["数学", "科学"] and d["key"].startswith("t")
    assert "at most 20" in cli.fail("teacher", "add", "x", "--subjects",
                                    ",".join(f"s{i}" for i in range(21)), env=env)
    assert "SCHOOLMESH_TEACHER_OLD_PASSWORD" in cli.fail("teacher", "password", "刘老师", env=env)
    sid = cli.json("studio", "create", "数学名师工作室", "--teacher", "刘老师", env=env)["studio"]
    other = cli_at(tmp_path / "b")
    school_b = other.json("init", "--name", "山村小学")["school_id"]
    code = cli.json("studio", "invite", sid, school_b, "--teacher", "刘老师", env=env)["code"]
    assert code.startswith("SMS1-")
    assert "not a school id" in cli.fail("studio", "invite", sid, "nobody", "--teacher", "刘老师",
                                         env=env)
    assert "2026-13-40" in cli.fail("studio", "tasks", sid, "--add", "改编", "--due",
                                    "2026-13-40", "--teacher", "刘老师", env=env)
    t = cli.json("studio", "tasks", sid, "--add", "改编分数", "--due", "2099-12-15", "--teacher",
                 "刘老师", env=env)
    [row] = cli.json("studio", "tasks", sid)
    assert (row["id"], row["title"], row["submissions"]) == (t["task"], "改编分数", [])
    [s] = cli.json("studio", "list")
    assert (s["name"], s["master_name"], s["members"], s["tasks"]) == ("数学名师工作室", "刘老师", 1, 1)
    assert "damaged or mistyped" in cli.fail("studio", "join", "SMS1-AAAA", "--teacher", "刘老师",
                                             env=env)
    out = tmp_path / "liu.identity"
    cli.ok("teacher", "export", "刘老师", str(out), env=env)
    d2 = other.json("teacher", "import", str(out), "--subjects", "数学", env=env)
    assert (d2["teacher"], d2["key"]) == ("刘老师", d["key"])
    assert "wrong password" in other.fail("teacher", "import", str(out), "--name", "liu2",
                                          env={"SCHOOLMESH_TEACHER_PASSWORD": "另一个很长的密码"})
    cli.ok("teacher", "revoke", "刘老师", "--reason", "调离")
    assert "already revoked" in cli.fail("teacher", "revoke", "刘老师")
    csv_file = tmp_path / "record.csv"
    rec = cli.json("teacher", "record", d["key"], "--csv", str(csv_file))
    assert rec["counts"]["published"] == 0
    assert csv_file.read_text("utf-8").startswith("teacher,category,school_id")
    assert "neither" in cli.fail("teacher", "record", "nobody")
    cli.json("teacher", "add", "zhou", env=env)
    zhou = cli.json("teacher", "list")
    assert "zhou" in [t["name"] for t in zhou]
    cli.ok("teacher", "remove", "zhou")          # removing the account revokes its certificate
    h = open_home(home)
    try:
        [cert] = [c for c in h.conn.execute("SELECT name, revoked_seq FROM teacher_certs")
                  if c[0] == "zhou"]
    finally:
        h.close()
    assert cert[1] is not None
