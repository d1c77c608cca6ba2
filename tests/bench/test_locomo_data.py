"""``python -m bench.locomo`` from a clone: where the data comes from, and what a failure says."""

from __future__ import annotations

import hashlib
import http.server
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import locomo_data, locomo_echo, locomo_lodo

ROOT = Path(__file__).resolve().parents[2]


def _dialogue(sample_id: str) -> dict[str, object]:
    return {
        "sample_id": sample_id,
        "conversation": {
            "speaker_a": "Ann",
            "speaker_b": "Bo",
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": [{"speaker": "Ann", "dia_id": "D1:1", "text": "I adopted a puppy."}],
        },
        "qa": [{"question": "What did Ann adopt?", "answer": "a puppy", "evidence": ["D1:1"]}],
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, bytes]]:
    """A loopback HTTP server giving one small LoCoMo-shaped file."""
    body = json.dumps([_dialogue("conv-26"), _dialogue("conv-99")]).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/locomo10.json", body
    finally:
        server.shutdown()
        server.server_close()


def _run(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cache), "ECHO_BENCH_CACHE": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "bench.locomo", "--quick", "--scale", "0", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_unreachable_download_says_in_one_line_how_to_get_the_file(tmp_path: Path) -> None:
    done = _run("--url", f"http://127.0.0.1:{_free_port()}/locomo10.json", cache=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "could not download" in lines[0]
    assert f"curl -fL -o {tmp_path / 'locomo10.json'} {locomo_data.LOCOMO_URL}" in lines[0]
    assert "--data PATH" in lines[0]
    assert not (tmp_path / "locomo10.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no partial download left behind


def test_missing_data_file_is_one_line(tmp_path: Path) -> None:
    done = _run("--data", str(tmp_path / "nope.json"), cache=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "no such file" in done.stderr


def test_a_download_with_the_wrong_sha256_is_refused(
    served: tuple[str, bytes], tmp_path: Path
) -> None:
    url, _ = served
    done = _run("--url", url, cache=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert f"not {locomo_data.LOCOMO_SHA256}" in done.stderr
    assert not (tmp_path / "locomo10.json").exists()


def test_a_download_with_the_right_sha256_is_cached_and_reused(
    served: tuple[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, body = served
    # The real file is not reachable from a test: pin the small file's digest instead.
    monkeypatch.setattr(locomo_data, "LOCOMO_SHA256", hashlib.sha256(body).hexdigest())
    first = locomo_data.load(None, url=url, cache=tmp_path)
    assert first.downloaded and first.path == tmp_path / "locomo10.json"
    assert first.samples == ["conv-26", "conv-99"]
    again = locomo_data.load(None, url="http://127.0.0.1:9/unused", cache=tmp_path)
    assert not again.downloaded and again.samples == first.samples


def test_which_dialogues_a_run_used_is_said(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text(json.dumps([_dialogue(s) for s in ("conv-26", "conv-30", "conv-47")]))
    data = locomo_data.load(path)
    assert data.describe() == (
        "dialogues used: conv-26, conv-30, conv-47 (2 of the dev split, 1 unseen: conv-47)"
    )
    assert data.select("unseen").samples == ["conv-47"]
    assert data.select("dev").samples == ["conv-26", "conv-30"]
    assert data.select("conv-30").samples == ["conv-30"]
    with pytest.raises(locomo_data.DataError, match="no dialogue conv-1"):
        data.select("conv-1")


def test_leave_one_out_chooses_without_the_dialogue_it_scores() -> None:
    # "a" wins on x's two questions, "b" on y and z: x held out, b is chosen on y and z;
    # y or z held out, a is chosen (x's two questions outweigh the other one).
    groups = ["x", "x", "y", "z"]
    results = {
        "default": [(False, False)] * 4,
        "a": [(True, True), (True, True), (False, False), (False, False)],
        "b": [(False, False), (False, True), (True, True), (True, True)],
    }
    held, folds = locomo_lodo.held_out(groups, results)
    assert {f.held_out: f.chosen for f in folds} == {"x": "b", "y": "a", "z": "a"}
    assert held == [(False, False), (False, True), (False, False), (False, False)]


def test_a_dialogue_can_be_written_without_the_speakers_names() -> None:
    # The bench's row for files written by other tools: who wrote a message is then its
    # requester id alone, as in DESIGN.md's message format.
    named = next(locomo_echo.conversations([_dialogue("conv-26")]))
    plain = next(locomo_echo.conversations([_dialogue("conv-26")], names=False))
    assert [m.author_name for m in named.history] == ["Ann"]
    assert [m.author_name for m in plain.history] == [None]
    assert [m.requester for m in plain.history] == [m.requester for m in named.history]
    assert plain.history[0].requester is not None
