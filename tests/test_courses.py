"""Courses (specs/courses.md): the vectors, the course catalog fed by admitted entries, outlines,
the date of every lesson, readiness, the CLI, and the course service queueing due resources."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import trio

from node import courses, db, events, feeds
from node.course_service import CourseService, seconds_to_midnight
from node.home import open_home
from node.transfers import TransferQueue
from protocol import courses as pc
from protocol import records
from protocol.errors import RemoteProtocolError

V = json.loads((Path(__file__).parents[1] / "specs/vectors/courses.json").read_text("utf-8"))


def _admit_all(home, raws):
    with db.write(home.conn) as conn:
        for raw in raws:
            feeds.admit(conn, records.decode_entry(raw), feeds.Gate({}, any_feed=True))


# -- vectors ---------------------------------------------------------------------------------

def test_vector_entries_decode_and_index_like_local_ones(home):
    h = open_home(home)
    raws = [bytes.fromhex(x) for x in V["entries"]]
    decoded = [records.decode_entry(r) for r in raws]
    assert decoded[0].school_id == V["school_id"]
    assert pc.course_id_of(decoded[1]) == V["course_id"]
    _admit_all(h, raws[:3])                      # profile, publish, update
    shown = courses.show(h, V["course_id"])
    assert (shown["version"], shown["lessons"]) == (V["after_update"]["version"],
                                                    V["after_update"]["lessons"])
    assert [v["version"] for v in shown["versions"]] == [1, 2]
    assert not shown["own"] and shown["school"] == "县实验小学"
    assert [c["course_id"] for c in courses.search(h.conn, "动物")] == [V["course_id"]]
    _admit_all(h, raws[3:])                      # retract
    assert courses.show(h, V["course_id"])["retracted"]
    assert courses.search(h.conn, "动物") == []
    h.close()


@pytest.mark.parametrize("bad", V["bad_entries"], ids=lambda b: b["why"])
def test_vector_bad_entries_are_refused(bad):
    with pytest.raises(RemoteProtocolError):
        records.decode_entry(bytes.fromhex(bad["hex"]))


def test_vector_unknown_meta_field_is_kept_not_refused():
    e = records.decode_entry(bytes.fromhex(V["unknown_meta_field"]["hex"]))
    assert e.body["meta"]["term"] == "秋季"


def test_vector_outline_and_timetable():
    o = V["outline"]
    assert pc.parse_text_outline(o["text"]) == {"meta": o["meta"], "units": o["units"]}
    assert pc.parse_text_outline(pc.outline_to_text(o["meta"], o["units"])) == \
        {"meta": o["meta"], "units": o["units"]}
    t = V["timetable"]
    got = pc.schedule(pc.lessons_of(t["units"]), dt.date.fromisoformat(t["start"]),
                      pc.Timetable.parse(t["timetable"]), pc.parse_skipped(t["skipped"]))
    assert [{"unit": s.lesson.unit, "lesson": s.lesson.number, "date": s.date.isoformat(),
             "slots": [[d.isoformat(), p] for d, p in s.slots]} for s in got] == t["lessons"]


def test_an_update_from_another_feed_is_not_indexed(home, tmp_path, cli_at):
    """A peer cannot change someone else's course (the same rule as for resources)."""
    h = open_home(home)
    _admit_all(h, [bytes.fromhex(x) for x in V["entries"][:2]])
    other = cli_at(tmp_path / "other")
    other.ok("init", "--name", "冒名学校")
    o = open_home(other.home)
    body = {"course": V["course_id"], "version": 2, "meta": V["outline"]["meta"],
            "units": V["outline"]["units"]}
    key = o.key()
    e1 = records.decode_entry(o.conn.execute("SELECT raw FROM entries WHERE seq = 1")
                              .fetchone()[0])
    forged = records.sign_entry(key, seq=2, prev=e1.hash, time=1, kind=pc.KIND_COURSE_UPDATE,
                                body=body)
    _admit_all(h, [e1.raw, forged.raw])
    assert courses.show(h, V["course_id"])["version"] == 1
    o.close()
    h.close()


# -- outlines, timetables, readiness (sans-IO) ------------------------------------------------

YAML = """title: 三年级科学
subject: 科学
grade: 3
volume: 下册
units:
  - title: 水
    lessons:
      - {title: 水的循环, periods: 2, resources: [raaaaaaaaaaaaaaaaaaaaaaaaaa]}
      - title: 观察天气
"""


def test_yaml_outline():
    o = courses.parse_outline(YAML, yaml_hint=True)
    assert o["meta"] == {"title": "三年级科学", "subject": "科学", "grade": "3", "volume": "下册"}
    assert o["units"][0]["lessons"][1] == {"number": 2, "title": "观察天气", "periods": 1,
                                           "resources": []}


@pytest.mark.parametrize("text, why", [
    ("subject: 音乐\ngrade: 1\n# 1 u\n- 1 l", "title is required"),
    ("title: t\nsubject: s\ngrade: 13\n# 1 u\n- 1 l", "grade"),
    ("title: t\nsubject: s\ngrade: 1\n- 1 l", "before the first unit"),
    ("title: t\nsubject: s\ngrade: 1\n# 1 u\n- 1 l (0)", "periods"),
    ("title: t\nsubject: s\ngrade: 1\n# 1 u", "1-100 lessons"),
    ("title: t\nsubject: s\ngrade: 1\nnonsense line", "expected"),
])
def test_bad_outlines_say_what_is_wrong(text, why):
    from node.errors import NodeError
    with pytest.raises(NodeError, match=why):
        courses.parse_outline(text)


def test_timetable_parsing_and_long_lessons():
    tt = pc.Timetable.parse("周一:1 wed:2,3")
    assert tt.slots == ((1, 1), (3, 2), (3, 3))
    for bad in ("mon", "xyz:1", "mon:a", "mon:13", "mon:1 mon:1"):
        with pytest.raises(pc.LocalProtocolError):
            pc.Timetable.parse(bad)
    lesson = pc.Lesson(1, "u", 1, "l", 3, ())
    got = pc.schedule([lesson, lesson], dt.date(2026, 9, 28), tt)   # Monday
    assert [s.date for s in got] == [dt.date(2026, 9, 28), dt.date(2026, 10, 5)]
    assert got[0].slots[-1] == (dt.date(2026, 9, 30), 3)
    with pytest.raises(pc.LocalProtocolError, match="no day"):
        pc.schedule([lesson], dt.date(2026, 1, 5), pc.Timetable(((1, 1),)),
                    _every_day(dt.date(2026, 1, 1), 366 * 21))


def _every_day(start, n):
    return [start + dt.timedelta(days=i) for i in range(n)]


def test_readiness_says_why():
    now = dt.datetime(2026, 9, 28, 12, 0)
    lessons = [pc.Lesson(1, "u", i, f"l{i}", 1, (f"r{c * 26}",))
               for i, c in enumerate("abcdef", 1)]
    tt = pc.Timetable(((2, 1),))    # every Tuesday
    sched = pc.schedule(lessons, now.date(), tt)
    rid = [le.resources[0] for le in lessons]
    states = {
        rid[0]: pc.ResourceState(held=True, size=10),
        rid[1]: pc.ResourceState(size=1000 * 2**20, transfer="running", bytes_done=2**20),
        rid[2]: pc.ResourceState(size=10, transfer="waiting",
                                 error="no school that has it is connected or known yet"),
        rid[3]: pc.ResourceState(known=False),
        rid[4]: pc.ResourceState(size=10, transfer="failed"),
        rid[5]: pc.ResourceState(size=10),
    }
    # 1 KiB/s by day, unlimited 22:00-06:00: 999 MiB take 12 days at 1 KiB/s
    def slow(when):
        return None if when.hour >= 22 or when.hour < 6 else 1024
    got = pc.readiness(sched, states, now=now, budget_spent=False, rate_at=lambda w: 1024)
    assert [(ls.status, ls.why) for ls in got] == [
        ("ready", []), ("fetching", ["too-slow"]), ("missing", ["no-provider"]),
        ("missing", ["unknown"]), ("missing", ["failed"]), ("missing", ["not-queued"])]
    assert got[1].resources[0].eta is not None
    # the night is free: it arrives tonight, before Tuesday's lesson
    got = pc.readiness(sched, states, now=now, budget_spent=False, rate_at=slow)
    assert got[1].status == "fetching" and got[1].why == []
    assert dt.datetime.fromtimestamp(got[1].resources[0].eta / 1000).hour == 22
    got = pc.readiness(sched, states, now=now, budget_spent=True, rate_at=slow)
    assert got[1].why == ["budget"] and got[2].why == ["budget"]


# -- the CLI and the course service -----------------------------------------------------------

def _outline(tmp_path, rid):
    p = tmp_path / "course.txt"
    p.write_text(f"title: 三年级科学（上册）\nsubject: 科学\ngrade: 三年级\nvolume: 上册\n"
                 f"edition: 教科版\n\n# 1 水\n- 1 水的循环 (2 课时): {rid}\n- 2 观察天气\n"
                 f"\n# 2 空气\n- 1 空气在哪里: {rid}\n", "utf-8")
    return p


def test_cli_create_update_show_adopt_status(cli, home, tmp_path):
    rid = cli.json("publish", Path(__file__).parents[1] / "samples/water-cycle",
                   "--title", "Water")["resource_id"]
    made = cli.json("course", "create", _outline(tmp_path, rid))
    kid = made["course_id"]
    assert made == {"course_id": kid, "version": 1, "lessons": 3}
    assert [c["course_id"] for c in cli.json("course", "list", "水的循环")] == [kid]
    assert cli.json("course", "list", "--grade", "3")[0]["volume"] == "上册"
    assert f"course {kid}" in cli.ok("search", "空气").stdout   # search shows courses too
    y = tmp_path / "c.yaml"
    y.write_text(YAML.replace("raaaaaaaaaaaaaaaaaaaaaaaaaa", rid), "utf-8")
    assert cli.json("course", "update", kid, y)["version"] == 2
    shown = cli.json("course", "show", kid)
    assert shown["version"] == 2 and shown["resources"][rid]["title"] == "Water"
    assert "# 1 水" in cli.ok("course", "show", kid, "--outline").stdout
    monday = dt.date.today() - dt.timedelta(days=dt.date.today().weekday())
    a = cli.json("course", "adopt", kid, "--class", "三年级一班", "--timetable", "mon:1 thu:2",
                 "--start", monday.isoformat(), "--days", "30")
    st = cli.json("course", "status", str(a["adoption"]), "--days", "60")
    assert st[0]["lessons"] and all(le["status"] == "ready" for le in st[0]["lessons"])
    assert "ready" in cli.ok("course", "status").stdout
    # adoptions are this school's own decisions: a backup carries them
    env = {"SCHOOLMESH_BACKUP_PASSPHRASE": "山高水长-backup-2026"}
    assert cli.json("backup", "-o", tmp_path / "b.smb", env=env)["course_adoptions"] == 1
    restored = type(cli)(tmp_path / "restored")
    restored.json("init", "--restore", tmp_path / "b.smb", env=env)
    assert restored.state()["db"]["course_adoptions"] == cli.state()["db"]["course_adoptions"]
    # bad input: one clear line, exit 1 (usage errors 2)
    assert "already adopted" in cli.fail("course", "adopt", kid, "--class", "三年级一班",
                                         "--timetable", "mon:1")
    assert "no course" in cli.fail("course", "show", "k" + "a" * 26)
    assert "not a course id" in cli.fail("course", "show", "nonsense")
    bad = tmp_path / "bad.txt"
    bad.write_text("title: x\n# 1 u\n- 1 l\n", "utf-8")
    assert "subject is required" in cli.fail("course", "create", bad)
    assert cli.run("course", "adopt", kid, "--class", "x", "--timetable", "someday").exit_code \
        == 2
    assert cli.run("course", "create", tmp_path / "missing.txt").exit_code == 2
    cli.ok("course", "retract", kid, "--reason", "old")
    assert cli.json("course", "list") == []
    assert "retracted" in cli.fail("course", "update", kid, y)


def _peer_course(tmp_path, cli_at, home):
    """Another school publishes a resource and a course using it; we hold their entries."""
    peer = cli_at(tmp_path / "peer")
    peer.ok("init", "--name", "县实验小学", "--role", "demonstration")
    rid = peer.json("publish", Path(__file__).parents[1] / "samples/water-cycle",
                    "--title", "Water")["resource_id"]
    kid = peer.json("course", "create", _outline(tmp_path, rid))["course_id"]
    p = open_home(peer.home)
    raws = [r for (r,) in p.conn.execute("SELECT raw FROM entries ORDER BY seq")]
    p.close()
    h = open_home(home)
    _admit_all(h, raws)
    return h, rid, kid


def test_due_resources_are_queued_at_subscription_priority(home, tmp_path, cli_at):
    h, rid, kid = _peer_course(tmp_path, cli_at, home)
    today = dt.date.today()
    far = today + dt.timedelta(days=40)
    queue = TransferQueue(h.conn)
    courses.adopt(h, kid, "二班", far, pc.Timetable(((far.isoweekday(), 1),)))
    assert courses.queue_due(h, queue, today) == 0          # its lessons are not due yet
    st = courses.status(h, days=60)[0]["lessons"]
    assert st[0]["status"] == "missing" and st[0]["why"] == ["not-queued"]
    courses.adopt(h, kid, "一班", today, pc.Timetable(((today.isoweekday(), 1),)))
    assert courses.queue_due(h, queue, today) == 1
    (t,) = queue.list()
    assert (t["target"], t["priority"], t["pin_reason"]) == (rid, 20, "course")
    assert courses.queue_due(h, queue, today) == 0          # not twice
    lesson = courses.status(h, adoption=2)[0]["lessons"][0]
    assert lesson["status"] == "fetching" and lesson["date"] == today.isoformat()
    queue.start(t["id"])
    queue.wait(t["id"], "no school that has it is connected or known yet")
    lesson = courses.status(h, adoption=2)[0]["lessons"][0]
    assert lesson["status"] == "missing" and lesson["why"] == ["no-provider"]
    courses.unadopt(h, 2)
    h.close()


async def test_course_service_reacts_to_database_writes(home, tmp_path, cli_at):
    h, rid, kid = _peer_course(tmp_path, cli_at, home)
    bus = events.EventBus()
    queue = TransferQueue(h.conn)
    woken = []
    service = CourseService(h, bus, queue, lambda: woken.append(1))
    async with trio.open_nursery() as nursery:
        await nursery.start(service.serve)
        assert queue.list() == []
        today = dt.date.today()
        courses.adopt(h, kid, "一班", today, pc.Timetable(((today.isoweekday(), 1),)))
        bus.publish(events.DatabaseChanged())      # what the DatabaseWatcher says
        with trio.fail_after(10):
            while not queue.list():
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert queue.list()[0]["target"] == rid and woken
    assert 1 <= seconds_to_midnight(dt.datetime(2026, 1, 1, 23, 59, 30)) <= 31
    h.close()


# -- whatever a teacher types: a course or one clear error ------------------------------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_LINES = st.sampled_from(["title: 音乐", "subject: 音乐", "grade: 3", "grade: 十三", "volume: 上册",
                          "volume: 中册", "# 1 唱歌", "#", "# x", "- 1 上学歌 (2 课时)", "- (0)",
                          "- 2 歌: raaaaaaaaaaaaaaaaaaaaaaaaaa raaaaaaaaaaaaaaaaaaaaaaaaaa",
                          "- 1 重复", "edition: ", "随便写", "", "// note", "- 3 x (99)"])


@given(st.lists(st.one_of(_LINES, st.text(max_size=30)), max_size=12))
def test_any_outline_parses_or_says_why(lines):
    text = "\n".join(lines)
    try:
        o = pc.parse_text_outline(text)
    except pc.LocalProtocolError:
        return
    pc.validate_body(pc.KIND_COURSE_PUBLISH, {"version": 1, **o}, local=True)
    assert pc.parse_text_outline(pc.outline_to_text(o["meta"], o["units"])) == o


@given(st.text(max_size=40))
def test_any_timetable_text_parses_or_says_why(text):
    try:
        tt = pc.Timetable.parse(text)
    except pc.LocalProtocolError:
        return
    assert pc.Timetable.parse(str(tt)).slots == tuple(sorted(tt.slots))
