"""The scheduled health check: for every pull-through cache rule and repository creation template the ownership
ledger records in this account and Region, whether it is still as its resource declared it, and whether ECR can
still log in upstream. It reports (one log line per finding, EMF metrics per cache prefix) and changes nothing.

What it compares with is what each resource's last successful Create or Update kept in its ledger record
(ResourceRecords.keep_declared); resources that kept nothing (made before this was recorded) are not checked until
their next Update. Throttling slows it down (each read waits and asks again); the deadline stops it cleanly,
naming what it did not check."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from ecr_cache_provider.aws.ecr import Backoff, CreationTemplate, EcrGateway, RuleSettings
from ecr_cache_provider.aws.ledger import DeclaredResource, Ledger
from ecr_cache_provider.deadline import Deadline
from ecr_cache_provider.engine.declared_state import declared_rule, declared_template, rule_drift, template_drift
from ecr_cache_provider.failures import DeadlineApproaching, EcrError, ResourceFailure
from ecr_cache_provider.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# The key of the health check schedule's event (its input): {"CacheProviderHealthCheck": {"schedule": "<name>"}}.
HEALTH_CHECK_KEY = "CacheProviderHealthCheck"
# What each finding counts towards, per cache prefix.
LOGIN_FAILED = "UpstreamLoginFailed"
DRIFTED = "DriftedSettings"
ERRORS = "HealthCheckErrors"
METRIC_NAMES = (LOGIN_FAILED, DRIFTED, ERRORS)
PREFIX_DIMENSION = "CachePrefix"
# What a run that could not even read the ledger in time left unchecked.
NOTHING_READ = "everything: the ledger was not read in time"
# What a finding about the ledger itself names, and the CachePrefix its HealthCheckErrors carry.
LEDGER = "ownership ledger"


@dataclass(frozen=True)
class Finding:
    """One thing found wrong: its metric, the cache prefix, what was checked and what is wrong with it."""

    metric: str
    prefix: str
    checked: str  # "pull-through cache rule" or "repository creation template"
    detail: str
    resource: str  # the resource that declared it: stack and logical id


@dataclass
class HealthReport:
    """What one run checked and found, and what the deadline left unchecked."""

    checked: list[tuple[str, str]] = field(default_factory=list)  # (kind, cache prefix)
    findings: list[Finding] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    throttled_calls: int = 0

    def counts(self) -> dict[str, Counter[str]]:
        """Per cache prefix checked, the count of each metric (zero included, so an alarm sees the all-clear)."""
        prefixes = {prefix for _, prefix in self.checked} | {item.prefix for item in self.findings}
        counts = {prefix: Counter(dict.fromkeys(METRIC_NAMES, 0)) for prefix in prefixes}
        for finding in self.findings:
            counts[finding.prefix][finding.metric] += 1
        return counts


def summary(report: HealthReport) -> dict[str, Any]:
    """What the handler returns for a health check invocation (shown by `make local ARGS=--health-check-now`)."""
    return {
        "checked": len(report.checked),
        "findings": [asdict(finding) for finding in report.findings],
        "repaired": [],  # drift repair (RepairDrift) comes later
        "sampled": {},  # cached repositories sampled per namespace: later
        "unchecked": list(report.unchecked),
        "continued": False,
    }


def health_check_event(schedule: str) -> dict[str, Any]:
    """The event the health check's schedule invokes the provider with."""
    return {HEALTH_CHECK_KEY: {"schedule": schedule}}


def is_health_check(event: dict[str, Any]) -> bool:
    return isinstance(event.get(HEALTH_CHECK_KEY), dict)


def run(event: dict[str, Any], context: LambdaContext) -> HealthReport:
    """Check every declared rule and template of this account and Region; log and count what was found."""
    deadline = Deadline.from_context(context)
    _, _, _, region, account = context.invoked_function_arn.split(":")[:5]
    ecr = EcrGateway(deadline, region or None)
    try:
        report = check(Ledger(deadline), ecr, deadline, region, account)
    except ResourceFailure as error:  # no ownership table configured: nothing can be checked
        report = HealthReport(findings=[Finding(ERRORS, "", LEDGER, str(error), "")])
    report.throttled_calls = ecr.throttled_calls
    _publish(event[HEALTH_CHECK_KEY].get("schedule", ""), report)
    return report


def check(ledger: Ledger, ecr: EcrGateway, deadline: Deadline, region: str, account: str) -> HealthReport:
    report = HealthReport()
    to_check: list[tuple[str, str, DeclaredResource]] = []
    try:
        for resource in ledger.declared_resources():
            if _region_and_account(resource.owner.stack_id) != (region, account):
                continue  # another Region's or account's, sharing the table: checked by the provider there
            to_check += [(kind, prefix, resource) for kind, prefix in _declared_things(resource.declared)]
    except DeadlineApproaching:
        report.unchecked = [NOTHING_READ]
        return report
    except ResourceFailure as error:  # the ledger could not be read: nothing is checked
        report.findings.append(Finding(ERRORS, "", LEDGER, str(error), ""))
        return report
    for number, (kind, prefix, resource) in enumerate(to_check):
        try:
            deadline.check(f"checking the {kind} {prefix}")
            report.findings += _check_one(kind, prefix, resource, ecr, deadline)
        except DeadlineApproaching:
            report.unchecked = [f"{kind} {prefix}" for kind, prefix, _ in to_check[number:]]
            break
        except EcrError as error:
            if error.transient:  # throttled (or unanswered) until the deadline: stop here, as for the deadline
                report.unchecked = [f"{kind} {prefix}" for kind, prefix, _ in to_check[number:]]
                break
            report.findings.append(Finding(ERRORS, prefix, kind, str(error), _name(resource)))
        except ResourceFailure as error:
            report.findings.append(Finding(ERRORS, prefix, kind, str(error), _name(resource)))
        report.checked.append((kind, prefix))
    return report


RULE_KIND = "pull-through cache rule"
TEMPLATE_KIND = "repository creation template"


def _declared_things(declared: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    rule = declared_rule(declared)
    if rule is not None:
        found.append((RULE_KIND, rule.ecr_repository_prefix))
    template = declared_template(declared)
    if template is not None:
        found.append((TEMPLATE_KIND, template.prefix))
    return found


def _check_one(
    kind: str, prefix: str, resource: DeclaredResource, ecr: EcrGateway, deadline: Deadline
) -> list[Finding]:
    """Read-only calls only: DescribePullThroughCacheRules, ValidatePullThroughCacheRule,
    DescribeRepositoryCreationTemplates."""
    backoff = Backoff(deadline)
    rule = declared_rule(resource.declared)
    if kind == RULE_KIND and rule is not None:
        return [Finding(metric, prefix, kind, detail, _name(resource)) for metric, detail in _rule(rule, ecr, backoff)]
    template = declared_template(resource.declared)
    if kind == TEMPLATE_KIND and template is not None:
        found = _template(template, ecr, backoff)
        return [Finding(metric, prefix, kind, detail, _name(resource)) for metric, detail in found]
    return []


def _rule(wanted: RuleSettings, ecr: EcrGateway, backoff: Backoff) -> list[tuple[str, str]]:
    prefix = wanted.ecr_repository_prefix
    live = ecr.find_rule(prefix, backoff)
    if live is None:
        return [(DRIFTED, "missing: the rule was deleted")]
    found = []
    drifted = rule_drift(wanted, live)
    if drifted:
        found.append((DRIFTED, f"differs from what was declared: {', '.join(drifted)}"))
    validation = ecr.validate_rule(prefix, backoff)
    if not validation.is_valid:
        found.append((LOGIN_FAILED, f"upstream login failed: {validation.failure or 'ECR gave no reason'}"))
    return found


def _template(wanted: CreationTemplate, ecr: EcrGateway, backoff: Backoff) -> list[tuple[str, str]]:
    live = ecr.find_template(wanted.prefix, backoff)
    if live is None:
        return [(DRIFTED, "missing: the template was deleted")]
    drifted = template_drift(wanted, live)
    return [(DRIFTED, f"differs from what was declared: {', '.join(drifted)}")] if drifted else []


def _region_and_account(stack_id: str) -> tuple[str, str]:
    parts = stack_id.split(":")
    return (parts[3], parts[4]) if len(parts) > 4 else ("", "")


def _name(resource: DeclaredResource) -> str:
    return f"{resource.owner.stack_id}/{resource.owner.logical_id}"


def _publish(schedule: str, report: HealthReport) -> None:
    """One log line per finding, one summary line, and per cache prefix one EMF document per metric (each with
    its own CachePrefix dimension, which the function's shared metrics object cannot give)."""
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
    logger.info(
        "Health check finished" if not report.unchecked else "Health check stopped at the deadline",
        extra={
            "schedule": schedule,
            "checked": len(report.checked),
            "findings": len(report.findings),
            "unchecked": report.unchecked,
            "ThrottledCalls": report.throttled_calls,
        },
    )
    for prefix, counts in sorted(report.counts().items()):
        for name in METRIC_NAMES:
            with single_metric(
                name=name, unit=MetricUnit.Count, value=counts[name], namespace=metrics.namespace
            ) as metric:
                metric.add_dimension(name=PREFIX_DIMENSION, value=prefix or LEDGER)
