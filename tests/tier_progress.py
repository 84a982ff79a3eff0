"""Per-tier progress for `make test`: instead of a dot per test, a line when a tier (tests/unit, tests/handler, ...)
has finished and, while tests run, one every 15 seconds saying how far each tier is; at the end a summary per tier.

    tests/unit: 120 passed in 4 s
    [ 45 s] 412/703 tests: tests/handler 180/231, tests/stack 60/85, tests/template 3/10

Failures still print as they happen (pytest's F and E) and in the usual `-ra` summary. Registered by
tests/conftest.py in the process that reports (xdist's controller, or the only process without xdist); with -v,
pytest's own line per test is kept.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from typing import Any

import pytest

PROGRESS_EVERY_SECONDS = 15.0


def tier_of(nodeid: str) -> str:
    """tests/unit/test_x.py::test_y -> tests/unit (a test file directly in tests/ is its own tier: tests)."""
    parts = nodeid.split("::", 1)[0].split("/")
    return "/".join(parts[:2]) if len(parts) > 2 else parts[0]


class TierProgress:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.totals: Counter[str] = Counter()
        self.done: Counter[str] = Counter()
        self.outcomes: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.first_start: dict[str, float] = {}
        self.last_stop: dict[str, float] = {}
        self.started = time.monotonic()
        self.last_line = self.started
        self.collected = False

    def _write(self, line: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_line(line)

    def _count(self, nodeids: list[str]) -> None:
        if not self.collected:  # every xdist worker collects the same tests: count them once
            self.collected = True
            self.totals.update(tier_of(nodeid) for nodeid in nodeids)

    @pytest.hookimpl
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self._count([item.nodeid for item in session.items])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self._count(list(ids))

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(self, report: pytest.TestReport, config: pytest.Config) -> Any:
        """No dot for a test that passed or was skipped (the per-tier lines say it); failures keep their letter."""
        if config.get_verbosity() > 0 or hasattr(report, "wasxfail"):
            return None
        if report.when == "call" and report.passed:
            return "passed", "", "PASSED"
        if report.skipped:
            return "skipped", "", "SKIPPED"
        return None

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        tier = tier_of(report.nodeid)
        self.first_start[tier] = min(self.first_start.get(tier, report.start), report.start)
        self.last_stop[tier] = max(self.last_stop.get(tier, report.stop), report.stop)
        if report.when == "call" or (report.when == "setup" and not report.passed):
            outcome = "xfailed" if hasattr(report, "wasxfail") and report.skipped else report.outcome
            self.outcomes[tier][outcome] += 1
        elif report.when == "teardown" and report.failed:
            self.outcomes[tier]["error"] += 1
        if report.when != "teardown":
            return
        self.done[tier] += 1
        if self.config.get_verbosity() > 0:
            return
        if self.done[tier] == self.totals[tier]:
            self._write(self._tier_line(tier))
        elif time.monotonic() - self.last_line >= PROGRESS_EVERY_SECONDS:
            self._write(self._progress_line())
        else:
            return
        self.last_line = time.monotonic()

    def _tier_line(self, tier: str) -> str:
        counts = ", ".join(f"{count} {outcome}" for outcome, count in sorted(self.outcomes[tier].items()))
        seconds = self.last_stop[tier] - self.first_start[tier]
        return f"{tier}: {counts or 'no tests'} in {seconds:.0f} s"

    def _progress_line(self) -> str:
        running = [f"{tier} {self.done[tier]}/{total}" for tier, total in sorted(self.totals.items())
                   if 0 < self.done[tier] < total]  # fmt: skip
        elapsed = time.monotonic() - self.started
        return f"[{elapsed:4.0f} s] {sum(self.done.values())}/{sum(self.totals.values())} tests: {', '.join(running)}"

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.done:
            return
        terminalreporter.section("per tier")
        for tier in sorted(self.done):
            terminalreporter.write_line(self._tier_line(tier))


def register(config: pytest.Config) -> None:
    """On the process that reports: xdist's workers (workerinput) report to their controller."""
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(TierProgress(config), "tier-progress")
