"""bench/links.py's own machinery: Syncthing inside the emulated link's namespaces, byte
accounting per node, medians over runs that did not all finish, and the merge of results
of runs made in parallel processes (bench/links_merge.py)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from bench.linkemu import Link, LinkStats, available

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import _links_idle  # noqa: E402
import _links_tools  # noqa: E402
import links  # noqa: E402

KiB = 1024


def _stats(delivered: list[list[int]]) -> LinkStats:
    n = len(delivered)
    return LinkStats(elapsed=1.0, sent=delivered, delivered=delivered,
                     packets=[[0] * n for _ in range(n)], dropped_queue=0, dropped_blackhole=0)


def test_node_bytes_counts_what_a_node_sent_and_received_across_the_link():
    stats = _stats([[0, 100, 7], [50, 0, 0], [3, 0, 0]])
    assert _links_idle.node_bytes(stats, 0) == (107, 53)
    assert _links_idle.node_bytes(stats, 2) == (3, 7)
    assert _links_idle.per_day(10, 3600) == 240


def _run(seconds: float | None, wire: int) -> dict:
    return _links_tools.figures("schoolmesh", seconds, 1024 * KiB, 8e6, _stats([[0, wire],
                                [0, 0]]), 1.0, 0.5, "" if seconds else "did not finish")


def test_combine_takes_medians_of_finished_runs_only():
    row = links.combine([_run(4.0, 2_000_000), _run(None, 900_000), _run(2.0, 1_000_000),
                         _run(3.0, 1_500_000)])
    assert (row["runs"], row["finished_runs"], row["finished"]) == (4, 3, True)
    assert row["seconds"] == 3.0
    assert row["goodput"] == round(8 * 1024 * KiB / 3.0 / 8e6, 3)
    assert row["note"] == "did not finish"
    none = links.combine([_run(None, 900_000), _run(None, 700_000)])
    assert not none["finished"] and none["seconds"] is None
    assert none["wire_bytes"] == [800_000, 0]


def test_results_of_parallel_processes_merge_into_the_medians_of_all_their_runs():
    import links_merge
    runs = [_run(4.0, 2_000_000), _run(2.0, 1_000_000), _run(3.0, 1_500_000)]
    reports = [{"transfer": [{"profile": "p", "case": "c", **links.combine([r])}]}
               for r in runs]
    reports[0]["transfer"].append({"profile": "q", "case": "c",
                                   **links.combine([_run(9.0, 1)])})
    merged = links_merge.merge(reports)["transfer"]
    assert [(r["profile"], r["runs"], r["seconds"]) for r in merged] == [("p", 3, 3.0),
                                                                        ("q", 1, 9.0)]
    assert merged[0] == {"profile": "p", "case": "c", **links.combine(runs)}


@pytest.mark.skipif(not available()[0], reason=available()[1])
@pytest.mark.skipif(shutil.which("syncthing") is None, reason="syncthing is not installed")
def test_syncthing_runs_inside_the_namespaces_and_its_bytes_cross_the_link(tmp_path):
    """Both Syncthing instances run in their node's namespace (REST through sockets made
    there); the folder reaches B only across the emulated link, verified by content."""
    src = tmp_path / "data" / "pages"
    src.mkdir(parents=True)
    for i in range(3):
        (src / f"page{i}.bin").write_bytes(bytes([i]) * (40 * KiB))
    (tmp_path / "work").mkdir()
    with Link(rate="10mbit", delay=0.01) as link:
        r = _links_tools.run_syncthing(link, tmp_path / "work", src, link.rate)
    assert r["finished"], r["note"]
    assert r["tool"] == "syncthing" and r["payload"] == 120 * KiB
    down, up = r["wire_bytes"]
    assert down > 120 * KiB and up > 0
    assert _links_tools.digest(tmp_path / "work" / "dst") == _links_tools.digest(src)
