"""Live progress of `make local`: steps longer than a second show a bar on a terminal and periodic lines
elsewhere, and a backfill shows its repositories while the handler is still working."""

from __future__ import annotations

import io
import re

import pytest

from emulation.moto_ecr import faults
from tests.stack.conftest import Play
from tools.stack_player.progress import Progress

pytestmark = pytest.mark.stack


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_step_under_a_second_shows_nothing() -> None:
    stream, clock = io.StringIO(), Clock()
    with Progress(stream, terminal=False, clock=clock).step("Saving the registry", "repositories") as step:
        for done in range(1, 11):
            clock.now += 0.05
            step.update(done, 10)

    assert stream.getvalue() == ""


def test_a_long_step_prints_plain_lines_every_few_seconds_off_a_terminal() -> None:
    stream, clock = io.StringIO(), Clock()
    with Progress(stream, terminal=False, clock=clock).step("Restoring the registry", "repositories") as step:
        for done in range(1, 41):
            clock.now += 0.25  # 10 s in all
            step.update(done, 40)

    lines = stream.getvalue().splitlines()
    assert lines[0] == "Restoring the registry: 4/40 repositories, 4 repositories/s (1 s)"
    assert len(lines) == 3  # at 1 s, at 6 s, and how it ended
    assert lines[-1] == "Restoring the registry: 40/40 repositories, 4 repositories/s (10 s)"


def test_a_long_step_draws_a_bar_on_a_terminal() -> None:
    stream, clock = io.StringIO(), Clock()
    with Progress(stream, terminal=True, clock=clock).step("Seeding repositories", "repositories") as step:
        for done in range(1, 31):
            clock.now += 0.125
            step.update(done, 30, "invocation 1")

    drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", stream.getvalue())
    assert "Seeding repositories" in drawn
    assert "30/30" in drawn
    assert "━" in drawn  # rich's bar
    assert "invocation 1" in drawn


def test_a_backfill_is_shown_while_the_handler_runs(play: Play) -> None:
    """The handler answers only when the backfill is done: counts below the total can only have been read
    while it was running."""
    faults.latency(0.05)  # 240 repositories, two calls each, 8 at a time: about 3 s of backfill
    stream = io.StringIO()

    result = play(
        "EnableQuayCache=false",
        "EnableK8sCache=false",
        seed_repositories=240,
        progress=Progress(stream, terminal=False),
    )

    assert result.succeeded
    lines = [
        line for line in stream.getvalue().splitlines() if line.startswith("Create EcrPublicCachedRepositorySettings")
    ]
    counts = [tuple(map(int, re.search(r": (\d+)/(\d+) repositories", line).groups())) for line in lines]  # type: ignore[union-attr]
    assert any(done < total == 240 for done, total in counts), lines
    assert counts[-1] == (240, 240)
    assert "invocation 1" in lines[0]
