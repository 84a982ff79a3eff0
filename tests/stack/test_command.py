"""`make local` and `make bench` as a person runs them: separate processes, their output as printed."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.stack.conftest import ROOT

pytestmark = pytest.mark.stack


def test_ctrl_c_ends_with_one_line_and_keeps_the_last_state(tmp_path: Path) -> None:
    state = tmp_path / "state"
    player = subprocess.Popen(
        [sys.executable, "-m", "tools.stack_player", "--state-dir", str(state), "--seed-repositories", "100000"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert player.stderr is not None
    seen = []
    for line in player.stderr:  # off a terminal, a step longer than a second prints a line
        seen.append(line)
        if line.startswith("Seeding repositories:"):
            break
    player.send_signal(signal.SIGINT)
    out, err = player.communicate(timeout=120)

    assert player.returncode == 130, "".join(seen) + err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"Interrupted: {state} holds the state of the last completed run"
    assert out == ""
    # Nothing of the interrupted run was kept: the next run starts from where the last completed one left off.
    assert not (state / "stacks").exists()
    assert not (state / "registry.json").exists()


def test_bench_output_is_the_report_only() -> None:
    bench = subprocess.run(
        [sys.executable, "bench/backfill.py", "--repositories", "16", "--latency", "0.001", "--burst", "4"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )

    output = bench.stdout + bench.stderr
    assert "HTTP/1.1" not in output  # werkzeug's line per request
    assert '"_aws"' not in output  # embedded metrics JSON
    assert [line.split(",")[0] for line in output.splitlines()[2:]] == [
        "  baseline: SUCCESS",
        "rate-limit: SUCCESS",
        "    bursts: SUCCESS",
    ]
