"""Fault injection for the moto ECR emulation.

Why: the product has to cope with throttling, server errors, bad upstream credentials and slow
responses, none of which moto produces by itself.  Tests arm a fault here, then exercise the
product; the patched ``ECRResponse.call_action`` (see :mod:`emulation.moto_ecr.responses`) consults
this module on every ECR request.

The state is module-level and guarded by a lock, so it is shared by ``mock_aws`` (in-process)
and ``moto.server.ThreadedMotoServer`` (request threads in the same Python process).  Faults are
global: they apply to every account and region.  Call :func:`reset` between tests.

Operation names are the ECR API names (``"DescribeRepositories"``); snake_case
(``"describe_repositories"``) is accepted too.  Unknown names raise ``ValueError`` so a typo
cannot silently disarm a fault.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from functools import cache

__all__ = [
    "DEFAULT_REJECTION_FAILURE",
    "InjectedFault",
    "count",
    "fail",
    "latency",
    "rate_limit",
    "reject_upstream_credentials",
    "rejected_upstream_credentials",
    "reset",
    "restore_revocations",
    "revoke_upstream_credentials",
    "revoked_upstream_credentials",
    "throttle",
    "throttle_in_bursts",
    "throttled",
    "upstream_refuses",
]

DEFAULT_REJECTION_FAILURE = (
    "Authentication failed for the upstream registry using the credentials in the secret. "
    "Verify the username and access token in the secret and try again."
)

# HTTP status used when an injected error code does not say otherwise.
_STATUS_BY_CODE = {"ServerException": 500, "ServiceUnavailableException": 503, "InternalFailure": 500}


@dataclass(frozen=True)
class InjectedFault:
    """An error response to return instead of running the operation."""

    code: str
    message: str
    status: int


@dataclass
class _TokenBucket:
    """ECR's request-rate quotas: a bucket of `rate` tokens a second holding at most one second's worth."""

    rate: float
    tokens: float
    refilled_at: float

    def take(self, now: float) -> bool:
        self.tokens = min(self.rate, self.tokens + (now - self.refilled_at) * self.rate)
        self.refilled_at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


@dataclass
class _Bursts:
    """Runs of `length` consecutive throttled calls, one at the start of every `every` calls."""

    length: int
    every: int
    calls: int = 0

    def throttles_next(self) -> bool:
        position = self.calls % self.every
        self.calls += 1
        return position < self.length


_THROTTLED = InjectedFault("ThrottlingException", "Rate exceeded", 400)

_lock = threading.Lock()
_pending: dict[str, deque[InjectedFault]] = {}
_bursts: dict[str, _Bursts] = {}
_calls: Counter[str] = Counter()
_throttled: Counter[str] = Counter()
_rejections: dict[str, str] = {}
# Secrets whose credentials the upstream registry no longer accepts: ARN -> SHA-256 of the value it refused.
_revoked: dict[str, str] = {}
_latency_seconds = 0.0
_rate_limits: dict[str, _TokenBucket] = {}


@cache
def _ecr_operation_names() -> frozenset[str]:
    import botocore.session

    return frozenset(botocore.session.get_session().get_service_model("ecr").operation_names)


def _normalise(operation: str) -> str:
    name = operation
    if "_" in name or name[:1].islower():
        name = "".join(part[:1].upper() + part[1:] for part in name.split("_"))
    if name not in _ecr_operation_names():
        raise ValueError(f"Unknown ECR operation {operation!r}")
    return name


def throttle(operation: str, times: int = 1) -> None:
    """Make the next ``times`` calls of ``operation`` fail with ``ThrottlingException`` (HTTP 400).

    botocore treats ``ThrottlingException`` as retryable, so a default client retries these calls;
    use :func:`count` to see the retries.
    """
    fail(operation, "ThrottlingException", "Rate exceeded", times=times, status=400)


def throttle_in_bursts(operation: str, length: int, every: int) -> None:
    """Throttle ``operation`` in recurring bursts: the first ``length`` of every ``every`` calls fail with
    ``ThrottlingException`` (HTTP 400), as when other clients of the account use up its request rate now and then."""
    if not 0 < length < every:
        raise ValueError("need 0 < length < every")
    name = _normalise(operation)
    with _lock:
        _bursts[name] = _Bursts(length, every)


def fail(operation: str, code: str, message: str = "", times: int = 1, status: int | None = None) -> None:
    """Make the next ``times`` calls of ``operation`` fail with error ``code``.

    ``status`` defaults to 500 for ``ServerException``/``InternalFailure``, 503 for
    ``ServiceUnavailableException`` and 400 otherwise.  Faults queue up in arming order.
    """
    if times < 1:
        raise ValueError("times must be >= 1")
    name = _normalise(operation)
    fault = InjectedFault(
        code=code,
        message=message or f"Injected {code}",
        status=status if status is not None else _STATUS_BY_CODE.get(code, 400),
    )
    with _lock:
        _pending.setdefault(name, deque()).extend([fault] * times)


def reject_upstream_credentials(prefix: str, failure_text: str = DEFAULT_REJECTION_FAILURE) -> None:
    """Make ``ValidatePullThroughCacheRule`` report ``isValid: false`` for ``prefix``.

    Models an upstream registry that refuses the credentials stored in the rule's secret.
    """
    with _lock:
        _rejections[prefix.rstrip("/")] = failure_text


def rejected_upstream_credentials(prefix: str) -> str | None:
    """The configured failure text for ``prefix``, or ``None``."""
    with _lock:
        return _rejections.get(prefix.rstrip("/"))


def revoke_upstream_credentials(credential_arn: str, access_token: str) -> None:
    """The upstream registry no longer accepts ``access_token``, the secret's (a revoked or expired token).

    ``ValidatePullThroughCacheRule`` then reports ``isValid: false`` with :data:`DEFAULT_REJECTION_FAILURE` for a
    rule whose secret still holds exactly that token; a new token (a rotation) is accepted again. As on ECR,
    Create and UpdatePullThroughCacheRule only read the secret and check its syntax: the upstream login is what
    ValidatePullThroughCacheRule checks ("retrieve the contents of the Amazon Secrets Manager secret, verify the
    syntax, and then validate that authentication to the upstream registry is successful",
    https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_ValidatePullThroughCacheRule.html).
    """
    with _lock:
        _revoked[credential_arn] = _fingerprint(access_token)


def revoked_upstream_credentials() -> dict[str, str]:
    """Every revocation: secret ARN -> fingerprint of the refused value (to be saved and given back to
    :func:`restore_revocations`)."""
    with _lock:
        return dict(_revoked)


def restore_revocations(revoked: dict[str, str]) -> None:
    with _lock:
        _revoked.update(revoked)


def upstream_refuses(credential_arn: str, access_token: str) -> bool:
    """Whether the upstream registry refuses the secret's ``access_token`` (it was revoked)."""
    with _lock:
        return _revoked.get(credential_arn) == _fingerprint(access_token)


def _fingerprint(access_token: str) -> str:
    return hashlib.sha256(access_token.encode()).hexdigest()


def latency(seconds: float) -> None:
    """Delay every ECR call by ``seconds`` (0 disables).  For benchmarks and timeout tests."""
    if seconds < 0:
        raise ValueError("seconds must be >= 0")
    global _latency_seconds  # noqa: PLW0603 - deliberate process-wide setting
    with _lock:
        _latency_seconds = float(seconds)


def rate_limit(operation: str, per_second: float, *, already_spent: bool = False) -> None:
    """Throttle ``operation`` beyond ``per_second`` calls a second (a burst of one second's worth), as an
    ECR request-rate quota does: excess calls fail with ``ThrottlingException``. ``already_spent``: other callers
    have used this second's calls, so the first call is throttled however slowly the calls come."""
    if per_second <= 0:
        raise ValueError("per_second must be > 0")
    name = _normalise(operation)
    tokens = 0.0 if already_spent else per_second
    with _lock:
        _rate_limits[name] = _TokenBucket(rate=per_second, tokens=tokens, refilled_at=time.monotonic())


def count(operation: str) -> int:
    """How many requests for ``operation`` reached the emulation (including failed/injected ones)."""
    name = _normalise(operation)
    with _lock:
        return _calls[name]


def throttled(operation: str) -> int:
    """How many requests for ``operation`` were answered ``ThrottlingException``."""
    name = _normalise(operation)
    with _lock:
        return _throttled[name]


def reset() -> None:
    """Clear every armed fault, rejection, the latency and the call counters."""
    global _latency_seconds  # noqa: PLW0603 - deliberate process-wide setting
    with _lock:
        _pending.clear()
        _bursts.clear()
        _calls.clear()
        _throttled.clear()
        _rejections.clear()
        _revoked.clear()
        _rate_limits.clear()
        _latency_seconds = 0.0


def on_request(operation: str) -> InjectedFault | None:
    """Hook run for every ECR request: count it, apply latency, pop the next armed fault."""
    with _lock:
        _calls[operation] += 1
        delay = _latency_seconds
        queue = _pending.get(operation)
        fault = queue.popleft() if queue else None
        bursts = _bursts.get(operation)
        if fault is None and bursts is not None and bursts.throttles_next():
            fault = _THROTTLED
        bucket = _rate_limits.get(operation)
        if fault is None and bucket is not None and not bucket.take(time.monotonic()):
            fault = _THROTTLED
        if fault is not None and fault.code == _THROTTLED.code:
            _throttled[operation] += 1
    if delay:
        time.sleep(delay)
    return fault
