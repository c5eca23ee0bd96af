"""The community service alone (node/community_service.py), its collaborators replaced by
recorded doubles of its two narrow interfaces (``Mesh``, ``Fetches``) — the way
magic-wormhole tests its machines. The homes, SQLite and the community rules are real; the
"network" double hands each request to the founder's real ``community.answer``."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from node import community, events
from node.community_service import CommunityService
from node.errors import NodeError
from node.home import init_home
from protocol import feedsync


class RecordedMesh:
    """Records every call; answers requests with ``answer(payload)`` (or raises)."""

    request_timeout = 5.0

    def __init__(self, home, *, connect_to: str | Exception, answer=None) -> None:
        self.home, self.connect_to, self.answer = home, connect_to, answer
        self.calls: list[tuple[Any, ...]] = []
        self.subscribed_topics: set[str] = set()
        self.changed = trio.Event()

    def _record(self, *call: Any) -> None:
        self.calls.append(call)
        self.changed.set()
        self.changed = trio.Event()

    def policy(self, *, refresh: bool = False) -> community.Policy:
        self._record("policy", refresh)
        return community.policy(self.home)

    def accept_head(self, head) -> str | None:
        self._record("accept_head", head.feed)
        return None

    def subscribed(self, topic: str) -> bool:
        return topic in self.subscribed_topics

    async def subscribe(self, topic: str, rule) -> Any:
        self._record("subscribe", topic)
        self.subscribed_topics.add(topic)
        return topic

    async def read_heads(self, sub: Any) -> None:
        self._record("read_heads", sub)
        await trio.sleep_forever()

    def keep_dialled(self, addr: str) -> None:
        self._record("keep_dialled", addr)

    async def holders(self, root: bytes) -> set[str]:
        self._record("holders", root)
        return set()

    async def connect(self, addr: str) -> str:
        self._record("connect", addr)
        if isinstance(self.connect_to, Exception):
            raise self.connect_to
        return self.connect_to

    async def request(self, peer: str, payload: bytes, *, max_reply: int) -> bytes:
        self._record("request", peer)
        return self.answer(payload)

    def replicate_now(self) -> None:
        self._record("replicate_now")


class RecordedFetches:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def active_for(self, root: bytes):
        return None

    def add(self, target, root, **kw) -> int:
        self.calls.append(("add", target, kw["pin_reason"]))
        return len(self.calls)

    def wake(self) -> None:
        self.calls.append(("wake",))


@pytest.fixture
def founded(tmp_path):
    """A demonstration school that founded a community and issued an invite, and a village."""
    demo = init_home(tmp_path / "demo", "示范校", "demonstration")
    village = init_home(tmp_path / "village", "村小", "school")
    cid = community.create(demo, "数学共同体")["community_id"]
    seed = f"/ip4/127.0.0.1/tcp/4001/p2p/{demo.school_id}"
    code = community.invite(demo, cid, seeds=[seed])["code"]
    return demo, village, cid, seed, code


def service(home, mesh):
    return CommunityService(home, events.EventBus(), mesh, RecordedFetches())


async def test_join_redeems_with_the_seed_and_makes_a_member(founded):
    demo, village, cid, seed, code = founded
    mesh = RecordedMesh(village, connect_to=demo.school_id,
                        answer=lambda data: community.answer(demo, data,
                                                             village.school_id).encode())
    result = await service(village, mesh).join(code)
    assert result["community_id"] == cid
    kinds = [c[0] for c in mesh.calls]
    # the seed is dialled, asked for the charter, then the invite is redeemed; the policy is
    # recomputed and a sync round asked for
    assert kinds[:3] == ["connect", "request", "request"]
    assert mesh.calls[0] == ("connect", seed)
    assert ("policy", True) in mesh.calls and kinds[-1] == "replicate_now"
    assert community.membership(village, cid).is_active(village.school_id)
    # the same invite is single-use: a second school's redemption is refused
    other = RecordedMesh(village, connect_to=demo.school_id,
                         answer=lambda data: community.answer(demo, data, "someone").encode())
    with pytest.raises(NodeError, match="already a member"):
        await service(village, other).join(code)


async def test_join_refuses_a_seed_that_is_not_the_issuer(founded, tmp_path):
    demo, village, cid, seed, code = founded
    impostor = init_home(tmp_path / "impostor", "冒充者", "demonstration")
    mesh = RecordedMesh(village, connect_to=impostor.school_id, answer=None)
    with pytest.raises(NodeError, match="not the school that issued the invite"):
        await service(village, mesh).join(code)
    assert [c[0] for c in mesh.calls] == ["connect"]   # nothing was sent to it


async def test_join_says_when_no_seed_answers(founded):
    demo, village, cid, seed, code = founded
    mesh = RecordedMesh(village, connect_to=OSError("connection refused"))
    with pytest.raises(NodeError, match="no seed of the invite answered.*connection refused"):
        await service(village, mesh).join(code)
    assert not community.rows(village.conn)


async def test_serve_subscribes_to_the_topic_and_keeps_the_seed_dialled(founded):
    demo, village, cid, seed, code = founded
    mesh = RecordedMesh(village, connect_to=demo.school_id,
                        answer=lambda data: community.answer(demo, data,
                                                             village.school_id).encode())
    svc = service(village, mesh)
    await svc.join(code)
    mesh.calls.clear()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(svc.serve)
            while not {("subscribe", community.topic(cid)), ("keep_dialled", seed),
                       ("read_heads", community.topic(cid))} <= set(mesh.calls):
                await mesh.changed.wait()
            nursery.cancel_scope.cancel()


async def test_topic_rule_admits_active_members_only(founded, tmp_path):
    demo, village, cid, seed, code = founded
    stranger = init_home(tmp_path / "stranger", "外校", "school")
    mesh = RecordedMesh(demo, connect_to=demo.school_id)
    rule = service(demo, mesh).rule(community.topic(cid))

    def head(home) -> feedsync.SignedHead:
        return feedsync.sign_head(home.key(), seq=1, hash=b"\0" * 32, time=0)

    assert rule(head(stranger)) == "not an active member of the community"
    assert rule(head(demo)) is None                    # our own feed: nothing to pull
    assert not [c for c in mesh.calls if c[0] == "accept_head"]
