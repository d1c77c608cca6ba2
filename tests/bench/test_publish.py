"""``--publish`` merges by scenario: publishing one scenario keeps the others as published."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.publish import merged, publish

ORDER = ["recording", "redis", "load"]


def document(commit: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {
        "machine": {"date": f"day of {commit}", "echo_commit": commit, "load_average": [1, 2, 3]},
        "mode": "quick",
        "seconds": 10.0,
        "scenarios": list(entries),
    }


def entry(name: str, figure: float, status: str = "ok", mode: str = "quick") -> dict[str, Any]:
    return {"name": name, "title": name, "status": status, "mode": mode, "notes": [figure]}


def test_one_scenario_replaces_its_own_and_keeps_the_others_with_their_provenance() -> None:
    tracked = document("old", entry("recording", 1), entry("redis", 2), entry("load", 3))
    fresh = document("new", entry("load", 30, mode="full"), entry("recording", 99))
    result = merged(tracked, fresh, ["load"], ORDER)
    by_name = {e["name"]: e for e in result["scenarios"]}
    assert [e["name"] for e in result["scenarios"]] == ORDER
    assert by_name["load"]["notes"] == [30]
    assert by_name["load"]["run"]["echo_commit"] == "new"
    # recording was in the fresh file (kept there from an earlier run) but not run: not taken
    assert by_name["recording"]["notes"] == [1]
    assert by_name["recording"]["run"]["echo_commit"] == "old"
    assert by_name["redis"]["run"]["date"] == "day of old"
    assert result["mode"] == "mixed"


def test_a_provenance_already_recorded_is_kept_through_later_merges() -> None:
    first = merged(
        document("a", entry("redis", 2)), document("b", entry("load", 3)), ["load"], ORDER
    )
    second = merged(first, document("c", entry("recording", 1)), ["recording"], ORDER)
    commits = {e["name"]: e["run"]["echo_commit"] for e in second["scenarios"]}
    assert commits == {"recording": "c", "redis": "a", "load": "b"}


def test_a_failed_scenario_does_not_replace_published_figures(tmp_path: Path) -> None:
    out, tracked = tmp_path / "out", tmp_path / "tracked"
    out.mkdir()
    tracked.mkdir()
    (tracked / "results.json").write_text(json.dumps(document("old", entry("load", 3))))
    (out / "results.json").write_text(json.dumps(document("new", entry("load", 0, "failed"))))
    written, left = publish(out, tracked, ["load"], ORDER)
    assert (written, left) == ([], ["load"])
    assert json.loads((tracked / "results.json").read_text())["scenarios"][0]["notes"] == [3]


def test_publish_writes_the_merged_document(tmp_path: Path) -> None:
    out, tracked = tmp_path / "out", tmp_path / "tracked"
    out.mkdir()
    tracked.mkdir()
    (tracked / "results.json").write_text(
        json.dumps(document("old", entry("recording", 1), entry("load", 3)))
    )
    (out / "results.json").write_text(json.dumps(document("new", entry("load", 30))))
    written, left = publish(out, tracked, ["load"], ORDER)
    assert tracked / "results.json" in written and left == []
    published = json.loads((tracked / "results.json").read_text())
    assert {e["name"]: e["notes"] for e in published["scenarios"]} == {
        "recording": [1],
        "load": [30],
    }
