"""How much of the Lambda's time is left, so that work stops while there is still time to answer."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from ecr_cache_provider.failures import DeadlineApproaching


class LambdaContextLike(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(frozen=True)
class Deadline:
    """The moment by which the invocation must have answered, less a margin for the answer itself."""

    ends_at: float
    margin_seconds: float = 30.0

    @classmethod
    def from_context(cls, context: LambdaContextLike, margin_seconds: float = 30.0) -> Deadline:
        return cls(time.monotonic() + context.get_remaining_time_in_millis() / 1000, margin_seconds)

    def remaining(self) -> float:
        """Seconds left before the margin is reached (zero or less once it is)."""
        return self.ends_at - self.margin_seconds - time.monotonic()

    def check(self, doing: str) -> None:
        if self.remaining() <= 0:
            raise DeadlineApproaching(f"Stopped before {doing}: the Lambda function is about to time out")
