"""The load scenario's reading of a timeline: each timing whole, and less Echo's reported waits."""

from __future__ import annotations

from typing import Any

import pytest

from bench.scenarios._load_support import read_timeline, waited


def test_overlapping_waits_count_once_and_only_inside_the_window() -> None:
    spans = [(1, 0.0, 2.0), (1, 1.0, 3.0), (1, 5.0, 6.0), (1, 9.0, 12.0)]
    assert waited(spans, 1.5, 10.0) == pytest.approx(1.5 + 1.0 + 1.0)
    assert waited(spans, 3.0, 5.0) == 0.0
    assert waited([], 0.0, 1.0) == 0.0


def timeline() -> dict[str, Any]:
    """Two messages in two threads: one answered at once, one whose first write waited."""
    return {
        "posted": [
            {"marker": 1, "id": 101, "channel": 10, "dispatched": 100.000},
            {"marker": 2, "id": 201, "channel": 20, "dispatched": 100.000},
        ],
        "model": [
            {"arrived": 100.004, "first_token": 100.300, "last": [1], "all": [1]},
            {"arrived": 100.050, "first_token": 100.400, "last": [2], "all": [2]},
        ],
        "rest": [
            {"method": "POST", "route": "/channels/{channel_id}/messages", "channel": 10,
             "status": 200, "time": 100.302, "ref": 101, "global": False},
            {"method": "POST", "route": "/channels/{channel_id}/messages", "channel": 20,
             "status": 200, "time": 101.403, "ref": 201, "global": False},
        ],
        "rate_limited": 0,
    }  # fmt: skip


def test_own_work_is_each_timing_less_the_waits_reported_for_its_thread() -> None:
    waits = [
        (20, 100.001, 100.046),  # a model slot, thread 20, before its model request
        (20, 100.401, 101.401),  # room in the write budget before its first write
        (10, 90.0, 91.0),  # long before: not part of any timing
    ]
    reading = read_timeline(timeline(), waits=waits)
    assert reading.to_model == pytest.approx([4.0, 50.0])
    assert reading.to_model_own == pytest.approx([4.0, 5.0])
    assert reading.to_write == pytest.approx([2.0, 1003.0])
    assert reading.to_write_own == pytest.approx([2.0, 3.0])
    assert (reading.waited_to_model, reading.waited_to_write) == (1, 1)


def test_without_reports_own_work_is_the_whole_timing() -> None:
    reading = read_timeline(timeline())
    assert reading.to_model_own == reading.to_model
    assert reading.to_write_own == reading.to_write
