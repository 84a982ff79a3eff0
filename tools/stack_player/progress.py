"""Live progress of the steps of a run that take longer than a second (restoring and saving the registry, seeding,
waiting for an answer): a rich progress bar on a terminal, a plain line every few seconds elsewhere (CI logs)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

SHOW_AFTER_SECONDS = 1.0  # shorter steps show nothing
PLAIN_EVERY_SECONDS = 5.0


class Step:
    """One step: `update(done, total, detail)` as often as you like; it is shown once the step is a second old."""

    def __init__(self, progress: Progress, label: str, unit: str) -> None:
        self.progress, self.label, self.unit = progress, label, unit
        self.started = progress.clock()
        self.done, self.total, self.detail = 0.0, 0.0, ""
        self._first: tuple[float, float] | None = None  # (time, done) of the first update
        self._bar: RichProgress | None = None
        self._printed_at: float | None = None

    @property
    def elapsed(self) -> float:
        return self.progress.clock() - self.started

    @property
    def rate(self) -> float:
        """Units a second since the first update (a backfill's count starts at the policies already there)."""
        if self._first is None:
            return 0.0
        seconds = self.progress.clock() - self._first[0]
        return (self.done - self._first[1]) / seconds if seconds > 0 else 0.0

    def update(self, done: float, total: float, detail: str = "") -> None:
        if self._first is None:
            self._first = (self.progress.clock(), done)
        self.done, self.total, self.detail = done, total, detail
        if self.progress.stream is None or self.elapsed < SHOW_AFTER_SECONDS:
            return
        if self.progress.terminal:
            self._draw()
        elif self._printed_at is None or self.progress.clock() - self._printed_at >= PLAIN_EVERY_SECONDS:
            self._print()

    def line(self) -> str:
        rate = f", {self.rate:.0f} {self.unit}/s" if self.unit != "s" else ""
        detail = f", {self.detail}" if self.detail else ""
        return f"{self.label}: {self.done:.0f}/{self.total:.0f} {self.unit}{rate}{detail} ({self.elapsed:.0f} s)"

    def finish(self) -> None:
        if self._bar is not None:
            self._draw()
            self._bar.stop()
        elif self._printed_at is not None:
            self._print()  # the last figures, so a log shows how the step ended

    def _print(self) -> None:
        assert self.progress.stream is not None
        self.progress.stream.write(self.line() + "\n")
        self.progress.stream.flush()
        self._printed_at = self.progress.clock()

    def _draw(self) -> None:
        if self._bar is None:
            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[unit]} {task.fields[detail]}"),
                TimeElapsedColumn(),
                console=self.progress.console,
            )
            self._task = self._bar.add_task(self.label, unit=self.unit, detail="")
            self._bar.start()
        rate = f"{self.rate:.0f}/s " if self.unit != "s" else ""
        self._bar.update(self._task, completed=self.done, total=self.total or None, detail=rate + self.detail)


class Progress:
    """Where a run's steps report. `stream` None shows nothing (the stack tests)."""

    def __init__(
        self, stream: TextIO | None, terminal: bool | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.stream = stream
        self.terminal = bool(stream is not None and (stream.isatty() if terminal is None else terminal))
        self.clock = clock
        self.console = Console(file=stream, force_terminal=self.terminal) if stream is not None else None

    @contextmanager
    def step(self, label: str, unit: str = "") -> Iterator[Step]:
        step = Step(self, label, unit)
        try:
            yield step
        finally:
            step.finish()
