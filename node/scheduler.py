"""The transfer scheduler (specs/limits.md §6): runs the rows of the persistent transfer queue
(node/transfers.py) by priority, at most MAX_RUNNING_TRANSFERS at once, each as a Bitswap fetch
from the providers it can find, and moves each row to its next state by the queue's table.

It talks to the rest of the node through two narrow interfaces (``Peers`` and ``Exchange``),
so it can be driven by recording doubles as well as by the real host and Bitswap engine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import trio

from protocol.errors import ProtocolError

from . import db, events, gc, storage
from . import transfers as ntransfers
from .errors import DiskFull, NodeError
from .home import Home, now_ms
from .peerlog import PeerLog
from .p2p.bitswap_fetch import BudgetSpent, FetchError

log = logging.getLogger("schoolmesh.node")


def _peer_of(provider: str) -> str:
    """The peer id of a provider given as a peer id or as a multiaddr ending in /p2p/<id>."""
    return provider.rsplit("/p2p/", 1)[-1]

MAX_RUNNING_TRANSFERS = 3   # fetches the transfer queue runs at once
WAITING_RECHECK = 30.0      # waiting transfers are retried this often (and on new peers)
PROGRESS_FLUSH = 1.0        # bytes_done of running transfers is written this often


class Peers(Protocol):
    """Who may have a root: the connected peers, the DHT, known addresses."""

    def connected(self) -> list[str]: ...

    async def find_providers(self, root: bytes) -> list[str]: ...

    def known_addr(self, peer: str) -> str | None: ...


class Exchange(Protocol):
    """The block exchange: fetch a DAG; whether the monthly budget allows it now."""

    async def fetch_dag(self, root: bytes, providers: Sequence[str], *,
                        progress: Callable[[int], None] | None = None,
                        want_timeout: float = ...) -> Any: ...

    def over_budget(self) -> str | None: ...


WAIT_MAX_S = 60.0    # the longest a transfer_wait call is held


class TransferService:
    def __init__(self, home: Home, bus: events.EventBus, peers: Peers, exchange: Exchange,
                 want_timeout: Callable[[], float]) -> None:
        self.home = home
        self.events = bus
        self.peers = peers
        self.exchange = exchange
        self.want_timeout = want_timeout
        self.queue = ntransfers.TransferQueue(home.conn)
        self._running: dict[int, trio.CancelScope] = {}  # transfer id -> its fetch task
        self._live: dict[int, int] = {}                  # bytes_done not yet written
        self._stalled: dict[int, str] = {}               # transfers whose end a full disk
                                                         # kept from being recorded
        self.peer_log = PeerLog(log)

    async def fetch(self, target: str, priority: str = "teacher") -> dict[str, Any]:
        """Queue a fetch of a resource's (or CID's) blocks from the network; returns its id.
        A transfer of the same root that is not finished yet is reused (and resumed)."""
        from . import library
        root, rid = library.resolve_root(self.home, target)
        prio = ntransfers.priority_of(priority)
        reused = self._reuse(root, prio)
        if reused is not None:
            self.wake_queue()
            return {"id": reused}
        total = None
        if rid is not None:
            total = sum(f["size"] for f in library.show(self.home, rid)["files"])
        tid = self.queue.add(target, root, priority=prio, bytes_total=total)
        self.wake_queue()
        return {"id": tid}

    async def list(self) -> list[dict[str, Any]]:
        return [self._transfer_json(t) for t in self.queue.list()]

    async def wait(self, id: int, state: str, seconds: float) -> dict[str, Any]:  # noqa: A002
        """The transfer once its state is not ``state`` any more, or after ``seconds`` (at
        most WAIT_MAX_S) — woken by the queue's events, so a caller waiting for the end
        (``get``) learns it at once without polling."""
        try:
            tid, seconds = int(id), min(max(float(seconds), 0.0), WAIT_MAX_S)
        except (TypeError, ValueError):
            raise NodeError(f"not a transfer id and a number of seconds: {id!r}, "
                            f"{seconds!r}") from None
        with self.events.subscribe(events.TransfersChanged, events.DatabaseChanged) as sub:
            row = self.queue.get(tid)
            with trio.move_on_after(seconds):
                while row["state"] == state:
                    await sub.wait()
                    row = self.queue.get(tid)
        return self._transfer_json(row)

    async def control(self, id: int, action: str) -> dict[str, Any]:  # noqa: A002
        """pause | resume | cancel a transfer; returns it."""
        if action not in ntransfers.ACTIONS:
            raise NodeError(f"unknown action {action!r} (one of: "
                            f"{', '.join(ntransfers.ACTIONS)})")
        try:
            tid = int(id)
        except (TypeError, ValueError):
            raise NodeError(f"not a transfer id: {id!r}") from None
        self._flush_progress()
        t = self.queue.control(tid, action)
        if action in ("pause", "cancel"):
            scope = self._running.get(tid)
            if scope is not None:
                scope.cancel()
        self.wake_queue()
        return self._transfer_json(t)

    @property
    def transfers(self) -> dict[int, dict[str, Any]]:
        """The queue as {id: transfer} (the JSON of api_transfers)."""
        return {t["id"]: self._transfer_json(t) for t in self.queue.list()}

    def _transfer_json(self, t: dict[str, Any]) -> dict[str, Any]:
        from crypto import cid_to_str
        tried = t["providers"]
        return {"id": t["id"], "target": t["target"], "root": cid_to_str(t["root"]),
                "state": t["state"],
                "bytes_done": self._live.get(t["id"], t["bytes_done"]),
                "bytes_total": t["bytes_total"],
                "error": t["last_error"] if t["state"] != "done" else None,
                "providers": len(tried), "providers_tried": tried,
                "priority": t["priority"], "attempts": t["attempts"],
                "last_error": t["last_error"], "next_try": t["next_try"],
                "created": t["created"], "updated": t["updated"]}

    def wake_queue(self) -> None:
        self.events.publish(events.TransfersChanged())

    def _flush_progress(self) -> None:
        for tid, done in list(self._live.items()):
            self.queue.update(tid, bytes_done=done)
            if tid not in self._running:
                self._live.pop(tid, None)

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Run queued transfers by priority, at most MAX_RUNNING_TRANSFERS at once. Wakes on
        events (a fetch asked for, a transfer ended, a peer connected, a write to the
        database) and on the times that are themselves the event: a backoff ending, the
        periodic re-check of waiting rows, the progress flush while transfers run."""
        requeued = self.queue.requeue_running()
        if requeued:
            log.info("transfers: %d interrupted transfer(s) queued again", requeued)
        sub = self.events.subscribe(events.PeerConnected, events.DatabaseChanged,
                                    events.TransfersChanged, events.Overflow)
        last_recheck = trio.current_time()
        last_flush = last_recheck
        happened: list[Any] = []
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                now = trio.current_time()
                connected = any(isinstance(e, events.PeerConnected) for e in happened)
                try:
                    if connected or now - last_recheck >= WAITING_RECHECK:
                        self.queue.wake_waiting(retries=connected)
                        last_recheck = now
                    if self._running and now - last_flush >= PROGRESS_FLUSH:
                        self._flush_progress()
                        last_flush = now
                    for tid, why in list(self._stalled.items()):
                        try:
                            self.queue.wait(tid, why)   # retried with the waiting ones
                        except ntransfers.IllegalMove:
                            pass                        # the operator moved it meanwhile
                        del self._stalled[tid]
                    free = MAX_RUNNING_TRANSFERS - len(self._running)
                    for t in self.queue.runnable(free, exclude=self._running):
                        self.queue.start(t["id"])
                        scope = trio.CancelScope()
                        self._running[t["id"]] = scope
                        nursery.start_soon(self._run_transfer, t, scope)
                except DiskFull as exc:   # the queue cannot be written: try again later
                    self.peer_log.warning("disk", "disk full", "transfers: %s", exc)
                    happened = await sub.wait(PROGRESS_FLUSH)
                    continue
                timeout = last_recheck + WAITING_RECHECK - now
                due = self.queue.next_due()
                if due is not None:
                    timeout = min(timeout, max(0.0, (due - now_ms()) / 1000))
                if self._running:
                    timeout = min(timeout, PROGRESS_FLUSH)
                happened = await sub.wait(max(timeout, 0.0))

    async def _providers(self, root: bytes, earlier: Sequence[str] = (), *,
                         search: bool = True) -> list[str]:
        """Connected peers, then (with ``search``) providers found in the DHT, then the
        providers an earlier attempt of this transfer used that are no longer connected (a link
        that died is redialled here: specs/links.md §2), by the addresses we know for them."""
        providers = self.peers.connected()
        for addr in await self.peers.find_providers(root) if search else ():
            if addr not in providers:
                providers.append(addr)
        known = {_peer_of(p) for p in providers}
        for p in earlier:
            pid = _peer_of(p)
            if pid in known or pid == self.home.school_id:
                continue
            addr = p if "/" in p else self.peers.known_addr(pid)
            if addr is not None:
                providers.append(addr)
                known.add(pid)
        return providers

    async def _fetch_with_dht(self, t: dict[str, Any], providers: list[str], tried: list[str],
                              failed: FetchError, progress: Callable[[int], None]) -> None:
        """The fetch with the connected providers ``failed``: fetch again with them and the
        providers the DHT knows besides; ``failed`` is raised if there are none, or if the
        exchange stopped meanwhile."""
        asked = {_peer_of(p) for p in providers}
        more = [p for p in await self._providers(t["root"], tried) if _peer_of(p) not in asked]
        if not more:
            raise failed
        log.info("fetch %s: %s; asking %d more found in the DHT", t["target"], failed,
                 len(more))
        self.queue.update(t["id"], providers=list(dict.fromkeys([*tried, *more])))
        try:
            await self.exchange.fetch_dag(t["root"], [*providers, *more], progress=progress,
                                          want_timeout=self.want_timeout())
        except FetchError:
            raise
        except NodeError:   # the exchange stopped meanwhile: settle the first error
            raise failed from None

    def _settle(self, t: dict[str, Any], exc: Exception) -> None:
        """Move a transfer whose attempt ended with ``exc`` to its next state (unless the
        operator moved it meanwhile: IllegalMove, their move stands)."""
        tid = t["id"]
        try:
            if isinstance(exc, BudgetSpent):
                self.queue.wait(tid, str(exc))
            elif isinstance(exc, FetchError):
                delay = self.queue.retry(tid, str(exc))
                log.info("fetch %s: %s; retrying in %.0f s", t["target"], exc, delay)
            elif isinstance(exc, (NodeError, ProtocolError)):
                self.queue.fail(tid, str(exc))
                log.warning("fetch %s failed: %s", t["target"], exc)
            else:  # a bug: the transfer fails, the node keeps running
                log.error("fetch %s failed unexpectedly", t["target"], exc_info=exc)
                self.queue.fail(tid, f"unexpected {type(exc).__name__}: {exc}")
        except ntransfers.IllegalMove as moved:
            log.info("fetch %s: %s", t["target"], moved)

    def _keep_cache_quota(self) -> None:
        """After a cached copy arrived: drop the least recently used beyond the quota and
        delete their blocks (in a worker thread, with connections of its own)."""
        home = self.home.reopen()
        try:
            if gc.evict(home):
                gc.collect(home)
        except NodeError as exc:   # a publish is storing blocks: the next fetch tries again
            log.info("cache quota: %s", exc)
        finally:
            home.close()

    def _reuse(self, root: bytes, priority: int | None = None) -> int | None:
        """The id of an unfinished transfer of ``root``, asked for again (resumed, and raised
        to ``priority`` if that is higher), or None if there is none."""
        existing = self.queue.active_for(root)
        if existing is None:
            return None
        self.queue.demand(existing["id"], max(priority or 0, existing["priority"]))
        return int(existing["id"])

    async def repair(self, roots: list[str]) -> dict[str, Any]:
        """Fetch these DAGs again (verify --repair); a completed fetch pins its root under
        the reason it was kept for (or ``user``). Returns {"ids": {root: transfer id}}."""
        from crypto import cid_from_str
        ids: dict[str, int] = {}
        for text in roots:
            root = cid_from_str(text)
            reused = self._reuse(root)
            if reused is not None:
                ids[text] = reused
                continue
            pin = self.home.conn.execute("SELECT reason, ref FROM pins WHERE cid = ? "
                                         "ORDER BY created LIMIT 1", (root,)).fetchone()
            reason, ref = pin if pin else ("user", text)
            ids[text] = self.queue.add(text, root, priority="teacher", pin_reason=reason,
                                       pin_ref=ref)
        self.wake_queue()
        return {"ids": ids}

    async def _run_transfer(self, t: dict[str, Any], scope: trio.CancelScope) -> None:
        try:
            await self._run_transfer_on(t, scope)
        except DiskFull as exc:   # even recording the failure did not fit: recorded later
            self.peer_log.warning("disk", "disk full", "fetch %s: %s", t["target"], exc)
            self._stalled[t["id"]] = str(exc)

    async def _run_transfer_on(self, t: dict[str, Any], scope: trio.CancelScope) -> None:
        tid, root = t["id"], t["root"]
        self._live[tid] = t["bytes_done"]

        def progress(n: int) -> None:
            self._live[tid] = self._live.get(tid, 0) + n
        try:
            with scope:
                reason = self.exchange.over_budget() or storage.low_space(self.home.conn,
                                                                          self.home.path)
                if reason is not None:
                    raise BudgetSpent(reason)
                # the schools we are connected to (or used before) first; the DHT only if
                # they have nothing or lack a block: a lookup dials peer after peer (in a
                # community of 30, every other village: ~40 KB each on a metered link, and
                # seconds before the first want), specs/bitswap.md §5
                providers = await self._providers(root, t["providers"], search=False)
                searched = not providers
                if searched:
                    providers = await self._providers(root, t["providers"])
                tried = list(dict.fromkeys([*t["providers"], *providers]))
                self.queue.update(tid, providers=tried)
                if not providers:
                    self.queue.wait(tid, "no school that has it is connected or known yet")
                    return
                try:
                    await self.exchange.fetch_dag(root, providers, progress=progress,
                                                  want_timeout=self.want_timeout())
                except FetchError as exc:
                    if searched or isinstance(exc, BudgetSpent):
                        raise
                    await self._fetch_with_dht(t, providers, tried, exc, progress)
                with db.write(self.home.conn) as conn:
                    db.pin(conn, root, t["pin_reason"], t["pin_ref"] or t["target"], now_ms())
                done = self._live.pop(tid, 0)
                if t["bytes_total"] is not None:
                    done = max(done, t["bytes_total"])
                self.queue.finish(tid, bytes_done=done)
                if t["pin_reason"] in gc.CACHE_REASONS:
                    await trio.to_thread.run_sync(self._keep_cache_quota)
        except ntransfers.IllegalMove as exc:
            # the operator paused or cancelled it while this attempt was ending: theirs wins
            log.info("fetch %s: %s", t["target"], exc)
        except Exception as exc:
            self._settle(t, exc)
        finally:
            self._running.pop(tid, None)
            if tid in self._live:
                self.queue.update(tid, bytes_done=self._live.pop(tid))
            self.wake_queue()
