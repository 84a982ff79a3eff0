"""The scheduled health check: for every resource the ownership ledger records in this account and Region (its
rules, creation templates, registry policy statements, scanning filters, image expiry schedules, and a sample of
its namespace's repositories), whether it is still as the resource declared it, and whether ECR can still log in
upstream. It reports (one log line per finding, EMF metrics per cache prefix) and, only with
HEALTH_CHECK_REPAIR_DRIFT=true, puts back what the ledger proves the resource owns (drift_checks.py).

What it compares with is what each resource's last successful Create or Update kept in its ledger record
(ResourceRecords.keep_declared); resources that kept nothing (made before this was recorded) are not checked until
their next Update. Throttling slows it down (each read waits and asks again). When the invocation's time runs
short, the rest continues in a follow-up invocation (continuation.py), its cursor the last thing checked; past
MAX_INVOCATIONS, or when the hand-off fails, the run stops naming what it did not check.

The handler returns the run's summary (`HealthReport.summary`), which `make local --health-check-now` prints."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from ecr_cache_provider import continuation
from ecr_cache_provider.aws.ecr import EcrGateway
from ecr_cache_provider.aws.ledger import DeclaredResource, Ledger
from ecr_cache_provider.aws.scheduler import SchedulerGateway
from ecr_cache_provider.continuation import Progress
from ecr_cache_provider.deadline import Deadline
from ecr_cache_provider.engine.declared_state import (
    REPOSITORIES,
    SCANNING,
    SCHEDULE,
    STATEMENTS,
    declared_rule,
    declared_schedule,
    declared_template,
)
from ecr_cache_provider.engine.drift_checks import (
    DRIFTED,
    LOGIN_FAILED,
    REGISTRY,
    REPOSITORIES_KIND,
    RULE_KIND,
    SCANNING_KIND,
    SCHEDULE_CHECK,
    STATEMENTS_KIND,
    Checker,
    Outcome,
    Subject,
    check_rule,
    check_scanning,
    check_schedule,
    check_statements,
    check_template,
)
from ecr_cache_provider.engine.expiry_sweep import SWEEP_KEY
from ecr_cache_provider.engine.repository_sample import DEFAULT_SAMPLE_SIZE, SAMPLE_VARIABLE, check_repositories
from ecr_cache_provider.engine.template_claim import TEMPLATE_KIND
from ecr_cache_provider.failures import DeadlineApproaching, EcrError, ResourceFailure
from ecr_cache_provider.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# The key of the health check schedule's event (its input): {"CacheProviderHealthCheck": {"schedule": "<name>"}}.
HEALTH_CHECK_KEY = "CacheProviderHealthCheck"
REPAIR_VARIABLE = "HEALTH_CHECK_REPAIR_DRIFT"
# What each finding counts towards, per cache prefix; DriftRepaired only in runs that repair.
ERRORS = "HealthCheckErrors"
REPAIRED = "DriftRepaired"
METRIC_NAMES = (LOGIN_FAILED, DRIFTED, ERRORS)
PREFIX_DIMENSION = "CachePrefix"
# What a run that could not even read the ledger in time left unchecked.
NOTHING_READ = "everything: the ledger was not read in time"
# What a finding about the ledger itself names, and the CachePrefix its HealthCheckErrors carry.
LEDGER = "ownership ledger"

CHECKS: dict[str, Callable[[Subject, Checker], Outcome]] = {
    RULE_KIND: check_rule,
    TEMPLATE_KIND: check_template,
    STATEMENTS_KIND: check_statements,
    SCANNING_KIND: check_scanning,
    SCHEDULE_CHECK: check_schedule,
    REPOSITORIES_KIND: check_repositories,
}


@dataclass(frozen=True)
class Finding:
    """One thing found wrong: its metric, the cache prefix, what was checked and what is wrong with it."""

    metric: str
    prefix: str
    checked: str  # the kind: "pull-through cache rule", "repository creation template", ...
    detail: str
    resource: str  # the resource that declared it: stack and logical id


@dataclass(frozen=True)
class Repaired:
    """One thing put back as its resource declared it."""

    prefix: str
    checked: str
    detail: str
    resource: str


@dataclass
class HealthReport:
    """What one run checked, found and repaired, what it sampled, and what the deadline left unchecked."""

    checked: list[tuple[str, str]] = field(default_factory=list)  # (kind, cache prefix)
    findings: list[Finding] = field(default_factory=list)
    repaired: list[Repaired] = field(default_factory=list)
    sampled: dict[str, int] = field(default_factory=dict)
    unchecked: list[str] = field(default_factory=list)
    continued: bool = False
    cursor: str = ""  # the key of the last subject checked, where a follow-up invocation goes on
    repairing: bool = False
    throttled_calls: int = 0

    def counts(self) -> dict[str, Counter[str]]:
        """Per cache prefix checked, the count of each metric (zero included, so an alarm sees the all-clear)."""
        prefixes = {prefix for _, prefix in self.checked} | {item.prefix for item in self.findings}
        names = (*METRIC_NAMES, REPAIRED) if self.repairing else METRIC_NAMES
        counts = {prefix: Counter(dict.fromkeys(names, 0)) for prefix in prefixes}
        for finding in self.findings:
            counts[finding.prefix][finding.metric] += 1
        for repaired in self.repaired:
            counts.setdefault(repaired.prefix, Counter(dict.fromkeys(names, 0)))[REPAIRED] += 1
        return counts

    def summary(self) -> dict[str, Any]:
        """What the handler returns: JSON, for people and `make local --health-check-now`."""
        return {
            "checked": len(self.checked),
            "findings": [asdict(item) for item in self.findings],
            "repaired": [asdict(item) for item in self.repaired],
            "sampled": dict(self.sampled),
            "unchecked": list(self.unchecked),
            "continued": self.continued,
        }


@dataclass(frozen=True)
class Options:
    """How a run checks, from the function's environment (template.yaml sets both)."""

    repair: bool = False
    sample_size: int = DEFAULT_SAMPLE_SIZE

    @classmethod
    def from_environment(cls) -> Options:
        repair = os.environ.get(REPAIR_VARIABLE, "false").strip().lower() == "true"  # "false" is a string
        text = os.environ.get(SAMPLE_VARIABLE, "").strip()
        try:
            size = int(text) if text else DEFAULT_SAMPLE_SIZE
        except ValueError:
            logger.warning(f"{SAMPLE_VARIABLE} is no whole number: {DEFAULT_SAMPLE_SIZE} it is", extra={"value": text})
            size = DEFAULT_SAMPLE_SIZE
        return cls(repair=repair, sample_size=max(size, 0))


def health_check_event(schedule: str) -> dict[str, Any]:
    """The event the health check's schedule invokes the provider with."""
    return {HEALTH_CHECK_KEY: {"schedule": schedule}}


def is_health_check(event: dict[str, Any]) -> bool:
    return isinstance(event.get(HEALTH_CHECK_KEY), dict)


def run(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Check (and, when asked, repair) every declared thing of this account and Region, from where an earlier
    invocation of the run stopped; log and count what was found; continue in a follow-up invocation when time runs
    short. Returns the summary."""
    deadline = Deadline.from_context(context)
    _, _, _, region, account = context.invoked_function_arn.split(":")[:5]
    ecr = EcrGateway(deadline, region or None)
    options = Options.from_environment()
    progress = Progress.from_event(event) or Progress()
    try:
        ledger = Ledger(deadline)
    except ResourceFailure as error:  # no ownership table configured: nothing can be checked
        report = HealthReport(findings=[Finding(ERRORS, "", LEDGER, str(error), "")])
    else:
        schedulers: list[SchedulerGateway] = []

        def scheduler() -> SchedulerGateway:  # made when a schedule is checked: its variables are needed then
            if not schedulers:
                schedulers.append(SchedulerGateway(deadline, region or None))
            return schedulers[0]

        checker = Checker(ecr, ledger, deadline, scheduler, options.repair, options.sample_size, datetime.now(UTC))
        report = check(checker, region, account, progress.cursor)
        if report.unchecked and report.checked:  # an invocation that checked nothing would hand on the same
            _continue(event, context, report, progress)
    report.repairing = options.repair
    report.throttled_calls = ecr.throttled_calls
    _publish(event[HEALTH_CHECK_KEY].get("schedule", ""), report, progress.invocation)
    return report.summary()


def check(checker: Checker, region: str, account: str, after: str = "") -> HealthReport:
    """Check every subject declared in this account and Region whose key sorts after `after` (a continuation's
    cursor), in key order."""
    report = HealthReport()
    subjects: list[Subject] = []
    try:
        for resource in checker.ledger.declared_resources():
            if _region_and_account(resource.owner.stack_id) != (region, account):
                continue  # another Region's or account's, sharing the table: checked by the provider there
            subjects += subjects_of(resource)
    except DeadlineApproaching:
        report.unchecked = [NOTHING_READ]
        return report
    except ResourceFailure as error:  # the ledger could not be read: nothing is checked
        report.findings.append(Finding(ERRORS, "", LEDGER, str(error), ""))
        return report
    to_check = sorted((subject for subject in subjects if subject.key > after), key=lambda subject: subject.key)
    for number, subject in enumerate(to_check):
        declarer = _name(subject.resource)
        try:
            checker.deadline.check(f"checking the {subject.name}")
            outcome = CHECKS[subject.kind](subject, checker)
        except DeadlineApproaching:
            report.unchecked = [item.name for item in to_check[number:]]
            report.cursor = to_check[number - 1].key if number else after
            break
        except EcrError as error:
            if error.transient:  # throttled (or unanswered) until the deadline: stop here, as for the deadline
                report.unchecked = [item.name for item in to_check[number:]]
                report.cursor = to_check[number - 1].key if number else after
                break
            outcome = Outcome(findings=[(ERRORS, str(error))])
        except ResourceFailure as error:
            outcome = Outcome(findings=[(ERRORS, str(error))])
        report.checked.append((subject.kind, subject.prefix))
        report.findings += [Finding(metric, subject.prefix, subject.kind, detail, declarer)
                            for metric, detail in outcome.findings]  # fmt: skip
        report.repaired += [Repaired(subject.prefix, subject.kind, detail, declarer) for detail in outcome.repaired]
        if subject.kind == REPOSITORIES_KIND:
            report.sampled[subject.prefix] = report.sampled.get(subject.prefix, 0) + outcome.sampled
    return report


def subjects_of(resource: DeclaredResource) -> list[Subject]:
    """What the resource declared, as the things to check: each with the CachePrefix its metrics carry."""
    declared = resource.declared
    found = []
    rule = declared_rule(declared)
    if rule is not None:
        found.append(Subject(RULE_KIND, rule.ecr_repository_prefix, resource))
    template = declared_template(declared)
    if template is not None:
        found.append(Subject(TEMPLATE_KIND, template.prefix, resource))
    if STATEMENTS in declared:
        found.append(Subject(STATEMENTS_KIND, REGISTRY, resource))
    if SCANNING in declared:
        found.append(Subject(SCANNING_KIND, REGISTRY, resource))
    schedule = declared_schedule(declared)
    if SCHEDULE in declared and schedule is not None:
        namespace = str(schedule.payload.get(SWEEP_KEY, {}).get("settings", {}).get("prefix", ""))
        found.append(Subject(SCHEDULE_CHECK, namespace or schedule.name, resource))
    for namespace in (declared.get(REPOSITORIES) or {}).get("namespaces", []):
        found.append(Subject(REPOSITORIES_KIND, namespace, resource))
    return found


def _continue(event: dict[str, Any], context: LambdaContext, report: HealthReport, progress: Progress) -> None:
    """Hand the rest to a follow-up invocation, its cursor the last subject checked; when it cannot (too many
    invocations, or the hand-off failed), the run stops, naming what it did not check."""
    if progress.invocation >= continuation.MAX_INVOCATIONS:
        logger.error("Health check stopped: it used every invocation it may", extra={"invocation": progress.invocation})
        return
    follow_up = Progress(cursor=report.cursor, invocation=progress.invocation)
    try:
        continuation.hand_off(event, context.invoked_function_arn, follow_up)
    except Exception as error:  # the run stops here; the next scheduled run checks everything again
        logger.warning("Health check could not continue in a follow-up invocation", extra={"error": str(error)})
        return
    report.continued = True
    report.unchecked = []


def _region_and_account(stack_id: str) -> tuple[str, str]:
    parts = stack_id.split(":")
    return (parts[3], parts[4]) if len(parts) > 4 else ("", "")


def _name(resource: DeclaredResource) -> str:
    return f"{resource.owner.stack_id}/{resource.owner.logical_id}"


def _publish(schedule: str, report: HealthReport, invocation: int) -> None:
    """One log line per finding, one line listing what was repaired (when anything was), one summary line, and per
    cache prefix one EMF document per metric (each with its own CachePrefix dimension, which the function's shared
    metrics object cannot give)."""
    for finding in report.findings:
        logger.warning(
            f"Health check: {finding.checked} {finding.prefix!r} {finding.detail}",
            extra={
                "metric": finding.metric,
                "repository_prefix": finding.prefix,
                "checked": finding.checked,
                "resource": finding.resource,
            },
        )
    if report.repaired:
        logger.warning(
            f"Health check repaired {len(report.repaired)} drifted: "
            + "; ".join(f"{item.checked} {item.prefix!r}: {item.detail}" for item in report.repaired),
            extra={"repaired": [asdict(item) for item in report.repaired]},
        )
    if report.continued:
        message = "Health check continues in a follow-up invocation"
    else:
        message = "Health check finished" if not report.unchecked else "Health check stopped at the deadline"
    logger.info(
        message,
        extra={
            "schedule": schedule,
            "invocation": invocation,
            "checked": len(report.checked),
            "findings": len(report.findings),
            "repaired": len(report.repaired),
            "sampled": report.sampled,
            "unchecked": report.unchecked,
            "ThrottledCalls": report.throttled_calls,
        },
    )
    for prefix, counts in sorted(report.counts().items()):
        for name in sorted(counts):
            with single_metric(
                name=name, unit=MetricUnit.Count, value=counts[name], namespace=metrics.namespace
            ) as metric:
                metric.add_dimension(name=PREFIX_DIMENSION, value=prefix or LEDGER)
