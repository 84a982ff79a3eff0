"""What the health check compares, kind by kind, and how it puts back what a resource declared (RepairDrift).

Each kind reads what ECR (or EventBridge Scheduler) holds, compares it with the resource's declared state
(declared_state.py), and, only when asked to repair, writes the declared state back where the ownership ledger
proves the resource owns the thing: its claim on the rule's prefix, the template's prefix, each statement's Sid,
each scanning filter, its schedule's name. A repair is fenced as the resource's own requests are: it is skipped
when a request of the resource is in progress (its record names a request newer than the one that declared the
state), the record is read again right before the write, and a registry-wide setting is rewritten under the same
ledger lock its resource types take (registry_merge.py). A login that upstream refuses is never repairable: only
the secret's owner can renew a credential.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ecr_cache_provider.aws.ecr import Backoff, CreationTemplate, EcrGateway, RuleSettings
from ecr_cache_provider.aws.ledger import DeclaredResource, Ledger, Owner, Thing
from ecr_cache_provider.engine.declared_state import (
    SCANNING,
    STATEMENTS,
    declared_rule,
    declared_schedule,
    declared_template,
    rule_drift,
    template_drift,
)
from ecr_cache_provider.engine.expiry_sweep import SCHEDULE_KIND
from ecr_cache_provider.engine.owner_token import owner_text
from ecr_cache_provider.engine.registry_merge import rewrite
from ecr_cache_provider.engine.registry_settings import (
    RegistryPolicy,
    RegistryScanning,
    policy_statements,
    scanning_key,
)
from ecr_cache_provider.engine.template_claim import TEMPLATE_KIND
from ecr_cache_provider.failures import ResourceFailure, Superseded

if TYPE_CHECKING:
    from datetime import datetime

    from ecr_cache_provider.aws.scheduler import SchedulerGateway
    from ecr_cache_provider.deadline import Deadline

LOGIN_FAILED = "UpstreamLoginFailed"
DRIFTED = "DriftedSettings"
RULE_KIND = "pull-through cache rule"  # the claim's kind, as types/pull_through_cache_rule.py records it
STATEMENTS_KIND = "registry policy statements"
SCANNING_KIND = "registry scanning filters"
SCHEDULE_CHECK = "image expiry schedule"
REPOSITORIES_KIND = "cached repositories"
# The CachePrefix of what belongs to the whole registry, not to one cache.
REGISTRY = "registry"
# Rule settings UpdatePullThroughCacheRule changes in place; the others need the rule made again.
ACCESS_SETTINGS = frozenset({"CredentialArn", "CustomRoleArn"})


@dataclass
class Checker:
    """What each check is given: the gateways, the ledger, whether to repair, and the run's sampling."""

    ecr: EcrGateway
    ledger: Ledger
    deadline: Deadline
    scheduler: Callable[[], SchedulerGateway]
    repair: bool
    sample_size: int
    run_at: datetime
    listing: dict[str, Any] = field(default_factory=dict)  # the registry's repositories, listed once per run


@dataclass
class Outcome:
    """What one check found (metric, detail), what it put back, and how many repositories it sampled."""

    findings: list[tuple[str, str]] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    sampled: int = 0


@dataclass(frozen=True)
class Subject:
    """One thing a resource declared, to check: its kind, its CachePrefix, the resource."""

    kind: str
    prefix: str
    resource: DeclaredResource

    @property
    def key(self) -> str:
        """Its place in a run's order, which a continuation's cursor names."""
        owner = self.resource.owner
        return f"{self.kind}|{self.prefix}|{owner.stack_id}/{owner.logical_id}"

    @property
    def name(self) -> str:
        return f"{self.kind} {self.prefix}"


def repair(subject: Subject, checker: Checker, outcome: Outcome, things: list[Thing], write: Callable[[], str]) -> None:
    """Put the declared state back with `write` (which says what it did), when asked to and when the resource owns
    every one of `things`; otherwise say, in the last finding, why not."""
    if not checker.repair:
        return
    resource = subject.resource
    reason = ""
    if resource.request_in_progress:
        reason = "a request of the resource is in progress (or its last one failed)"
    else:
        others = [thing for thing in things if not _owned(checker.ledger, thing, resource.owner)]
        if others:
            reason = f"the ledger does not record the {others[0]} as the resource's"
    if not reason:
        try:
            fence(checker.ledger, resource)
            outcome.repaired.append(write())
            return
        except Superseded:
            reason = "a request of the resource began meanwhile"
        except ResourceFailure as error:
            reason = str(error)
    if outcome.findings:
        metric, detail = outcome.findings[-1]
        outcome.findings[-1] = (metric, f"{detail}; not repaired: {reason}")


def fence(ledger: Ledger, resource: DeclaredResource) -> None:
    """Raise Superseded when a request of the resource began since the run read the ledger (it will put its own
    state in place), or the resource was deleted: read right before each repair's write."""
    ledger.ensure_current(replace(resource.owner, request_id=resource.declared_by), "Update")


def _owned(ledger: Ledger, thing: Thing, owner: Owner) -> bool:
    holder = ledger.owner_of(thing)
    return holder is not None and holder.is_same_resource(owner)


# Pull-through cache rules


def check_rule(subject: Subject, checker: Checker) -> Outcome:
    """DescribePullThroughCacheRules, compared; ValidatePullThroughCacheRule (after any repair, so that it reports
    the rule as it is now)."""
    wanted = declared_rule(subject.resource.declared)
    assert wanted is not None  # a rule subject is made only from a declared rule
    outcome = Outcome()
    backoff = Backoff(checker.deadline)
    ecr, prefix = checker.ecr, wanted.ecr_repository_prefix
    live = ecr.find_rule(prefix, backoff)
    thing = [Thing(RULE_KIND, prefix)]
    if live is None:
        outcome.findings.append((DRIFTED, "missing: the rule was deleted"))
        repair(subject, checker, outcome, thing, _doing(lambda: ecr.create_rule(wanted), "made the rule again"))
    else:
        drifted = rule_drift(wanted, live)
        if drifted:
            outcome.findings.append((DRIFTED, f"differs from what was declared: {', '.join(drifted)}"))
            repair(subject, checker, outcome, thing, lambda: _put_rule_back(ecr, wanted, live, drifted))
    if live is not None or outcome.repaired:
        validation = ecr.validate_rule(prefix, backoff)
        if not validation.is_valid:
            failure = validation.failure or "ECR gave no reason"
            outcome.findings.append((LOGIN_FAILED, f"upstream login failed: {failure}; not repairable: renew the "
                                                   "credential (or role) and update the stack"))  # fmt: skip
    return outcome


def _put_rule_back(ecr: EcrGateway, wanted: RuleSettings, live: RuleSettings, drifted: list[str]) -> str:
    """The credential or role in place (UpdatePullThroughCacheRule); anything else as the resource's Update
    replaces a rule: deleted and made again, the rule found put back if that fails."""
    declared_values = {"CredentialArn": wanted.credential_arn, "CustomRoleArn": wanted.custom_role_arn}
    if set(drifted) <= ACCESS_SETTINGS and all(declared_values[name] for name in drifted):
        ecr.update_rule_access(wanted)  # sets what was declared; cannot clear a setting, hence the condition
        return _back(drifted)
    ecr.delete_rule(wanted.ecr_repository_prefix)
    try:
        ecr.create_rule(wanted)
    except ResourceFailure:
        ecr.create_rule(live)
        raise
    return f"made the rule again as declared ({', '.join(drifted)})"


def _doing(action: Callable[[], object], what: str) -> Callable[[], str]:
    """A repair's write, saying what it did."""

    def write() -> str:
        action()
        return what

    return write


# Repository creation templates


def check_template(subject: Subject, checker: Checker) -> Outcome:
    """DescribeRepositoryCreationTemplates, compared; put back with Create/UpdateRepositoryCreationTemplate."""
    wanted = declared_template(subject.resource.declared)
    assert wanted is not None  # made only from a declared template
    outcome = Outcome()
    ecr = checker.ecr
    live = ecr.find_template(wanted.prefix, Backoff(checker.deadline))
    thing = [Thing(TEMPLATE_KIND, wanted.prefix)]
    if live is None:
        outcome.findings.append((DRIFTED, "missing: the template was deleted"))
        made = replace(wanted, description=owner_text(subject.resource.owner, "Put back by the health check"))
        repair(subject, checker, outcome, thing, _doing(lambda: ecr.create_template(made), "made the template again"))
        return outcome
    drifted = template_drift(wanted, live)
    if drifted:
        outcome.findings.append((DRIFTED, f"differs from what was declared: {', '.join(drifted)}"))
        kept: CreationTemplate = replace(wanted, description=live.description)  # the description names its request
        repair(subject, checker, outcome, thing, _doing(lambda: ecr.update_template(kept, live), _back(drifted)))
    return outcome


def _back(drifted: list[str]) -> str:
    return f"set {', '.join(drifted)} back"


# Registry policy statements


def check_statements(subject: Subject, checker: Checker) -> Outcome:
    """GetRegistryPolicy: each declared statement present, by Sid, and equal. Put back under the registry policy's
    ledger lock, merged with every other statement (only the statements whose Sid the resource holds)."""
    wanted: dict[str, Any] = subject.resource.declared[STATEMENTS]
    setting = RegistryPolicy()
    outcome = Outcome()
    live = {str(item.get("Sid")): item for item in policy_statements(setting.read(checker.ecr))}
    missing = [sid for sid in wanted if sid not in live]
    differing = [sid for sid in wanted if sid in live and _normal(live[sid]) != _normal(wanted[sid])]
    if missing:
        outcome.findings.append((DRIFTED, f"missing from the registry policy: {', '.join(missing)}"))
    if differing:
        outcome.findings.append((DRIFTED, f"differ from what was declared: {', '.join(differing)}"))
    drifted = missing + differing
    if drifted:
        put = {sid: wanted[sid] for sid in drifted}
        things = [Thing(setting.part_kind, sid) for sid in drifted]
        what = f"put statements {', '.join(drifted)} back in the registry policy"
        repair(subject, checker, outcome, things, lambda: _merged(checker, subject, setting, put, what))
    return outcome


def _normal(statement: dict[str, Any]) -> str:
    """A statement as a comparable text: IAM takes a one-item list as its item."""

    def unlisted(value: Any) -> Any:
        return value[0] if isinstance(value, list) and len(value) == 1 else value

    return json.dumps({key: unlisted(value) for key, value in statement.items()}, sort_keys=True)


# Registry scanning filters


def check_scanning(subject: Subject, checker: Checker) -> Outcome:
    """GetRegistryScanningConfiguration: ENHANCED, and each declared filter in the rule of its frequency. Put back
    under the scanning configuration's ledger lock, merged with every other rule and filter."""
    declared = subject.resource.declared[SCANNING]
    frequency, filters = declared["frequency"], list(declared["filters"])
    setting = RegistryScanning(allow_enhanced=bool(declared["allow_enhanced"]))
    outcome = Outcome()
    live = setting.read(checker.ecr)
    missing = [name for name in filters if name not in live.rules.get(frequency, ())]
    if live.scan_type != "ENHANCED":
        outcome.findings.append((DRIFTED, f"the registry's scanning is {live.scan_type}, not ENHANCED"))
    if missing:
        outcome.findings.append((DRIFTED, f"missing from the {frequency} rule: {', '.join(missing)}"))
    if missing or live.scan_type != "ENHANCED":
        put = {scanning_key(frequency, name): name for name in filters}
        things = [Thing(setting.part_kind, key) for key in put]
        what = f"put the {frequency} filters {', '.join(missing or filters)} back"
        repair(subject, checker, outcome, things, lambda: _merged(checker, subject, setting, put, what))
    return outcome


def _merged(checker: Checker, subject: Subject, setting: Any, put: dict[str, Any], what: str) -> str:
    """A read-modify-write of a registry-wide setting under its resource types' lock, the fence read again once
    the lock is held."""
    owner = replace(subject.resource.owner, request_id=subject.resource.declared_by)
    with checker.ledger.lock(setting.lock_name, owner) as held:
        fence(checker.ledger, subject.resource)
        rewrite(checker.ecr, setting, lambda state: setting.merged(state, put, set()), None, held)
    return what


# Image expiry schedules


def check_schedule(subject: Subject, checker: Checker) -> Outcome:
    """scheduler:GetSchedule: present, enabled, with the declared expression, target and input. Put back with the
    type's own write (CreateSchedule or UpdateSchedule)."""
    wanted = declared_schedule(subject.resource.declared)
    assert wanted is not None  # made only from a declared schedule
    outcome = Outcome()
    scheduler = checker.scheduler()
    live = scheduler.find(wanted.name)
    if live is None:
        outcome.findings.append((DRIFTED, f"missing: the schedule {wanted.name} was deleted"))
    else:
        target = live.get("Target") or {}
        drifted = [
            name
            for name, differs in (
                ("ScheduleExpression", live.get("ScheduleExpression") != wanted.expression),
                ("State", live.get("State", "ENABLED") != "ENABLED"),
                ("Target", target.get("Arn") != wanted.target_arn or target.get("RoleArn") != scheduler.role_arn),
                ("Input", _json(target.get("Input")) != wanted.payload),
            )
            if differs
        ]
        if not drifted:
            return outcome
        outcome.findings.append((DRIFTED, f"differs from what was declared: {', '.join(drifted)}"))
    what = "made the schedule again" if live is None else "set the schedule back"
    things = [Thing(SCHEDULE_KIND, wanted.name)]
    repair(subject, checker, outcome, things, _doing(lambda: scheduler.put(wanted), what))
    return outcome


def _json(text: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return text
