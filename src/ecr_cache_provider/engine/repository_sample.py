"""The health check's look at a namespace's existing repositories: a bounded sample a run, compared with the
settings the resource (Custom::CachedRepositorySettings, Custom::CacheLifecyclePolicy) declared.

A registry may hold tens of thousands of cached repositories; a run reads at most HEALTH_CHECK_SAMPLE_SIZE of each
namespace (10 unless set; 0 turns the sampling off), so it costs a bounded number of calls. The sample is a window
of the namespace's repositories in name order that moves on by its own size at every hour: deterministic (two runs
of the same hour look at the same repositories) and rotating (hourly runs cover a namespace of N repositories in
N / size hours).

Only what the ledger's repository records say the resource set is compared: a setting of a repository the resource
never set (ECR applied the template, or someone else set it) is nobody's drift. A repair writes the record first
(the value found, the value set back), then the setting, as the backfill does (recorded_settings.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ecr_cache_provider.aws.ecr import RepositoryRecord
from ecr_cache_provider.aws.ledger import SettingsRecord
from ecr_cache_provider.engine.declared_state import REPOSITORIES
from ecr_cache_provider.engine.drift_checks import DRIFTED, Checker, Outcome, Subject, fence
from ecr_cache_provider.engine.setting_kinds import Change, Repository
from ecr_cache_provider.failures import ResourceFailure, Superseded

SAMPLE_VARIABLE = "HEALTH_CHECK_SAMPLE_SIZE"
DEFAULT_SAMPLE_SIZE = 10
ROTATION_SECONDS = 3600
LISTING = "repositories"


def sample(names: list[str], size: int, run_at: datetime) -> list[str]:
    """At most `size` of `names` (sorted): the window of this hour, wrapping round at the end."""
    if size <= 0 or not names:
        return []
    ordered = sorted(names)
    if len(ordered) <= size:
        return ordered
    start = (int(run_at.timestamp()) // ROTATION_SECONDS * size) % len(ordered)
    return (ordered + ordered)[start : start + size]


def under(records: list[RepositoryRecord], namespace: str) -> list[RepositoryRecord]:
    return [record for record in records if record.name.startswith(f"{namespace}/")]


@dataclass(frozen=True)
class Drifted:
    repository: str
    changes: list[Change]
    record: SettingsRecord


def check_repositories(subject: Subject, checker: Checker) -> Outcome:
    """The namespace's sample: each repository's settings the resource set, compared with those declared."""
    declared: dict[str, Any] = subject.resource.declared[REPOSITORIES]["settings"]
    outcome = Outcome()
    if checker.sample_size <= 0:
        return outcome
    if LISTING not in checker.listing:  # one walk of DescribeRepositories serves every namespace of the run
        checker.listing[LISTING] = checker.ecr.repositories()
    found = {record.name: record for record in under(checker.listing[LISTING], subject.prefix)}
    names = sample(list(found), checker.sample_size, checker.run_at)
    outcome.sampled = len(names)
    owner = subject.resource.owner
    records = checker.ledger.settings_records(owner, names) if names else {}
    drifted: list[Drifted] = []
    for name in names:
        record = records.get(name)
        if record is None:
            continue  # the resource never set anything here
        repository = Repository(checker.ecr, name)
        repository.__dict__["described"] = found[name]  # read once, by the listing
        changes = [
            Change(key, current, wanted)
            for key, wanted in declared.items()
            if key in record.settings and (current := repository.value(key)) != wanted
        ]
        if changes:
            drifted.append(Drifted(name, changes, record))
            settings = ", ".join(change.key for change in changes)
            outcome.findings.append((DRIFTED, f"repository {name} differs from what was declared: {settings}"))
    if drifted and checker.repair:
        _repair(subject, checker, outcome, drifted)
    return outcome


def _repair(subject: Subject, checker: Checker, outcome: Outcome, drifted: list[Drifted]) -> None:
    """The declared settings back where the records prove them the resource's: each record rewritten first."""
    resource = subject.resource
    reason = ""
    if resource.request_in_progress:
        reason = "a request of the resource is in progress (or its last one failed)"
    else:
        owner = replace(resource.owner, request_id=resource.declared_by)
        try:
            fence(checker.ledger, resource)
            checker.ledger.write_settings_records(owner, [_rerecorded(item) for item in drifted])
            for item in drifted:
                Repository(checker.ecr, item.repository).apply(item.changes)
                keys = ", ".join(change.key for change in item.changes)
                outcome.repaired.append(f"set {keys} back on {item.repository}")
            return
        except Superseded:
            reason = "a request of the resource began meanwhile"
        except ResourceFailure as error:
            reason = str(error)
    outcome.findings = [(metric, f"{detail}; not repaired: {reason}") for metric, detail in outcome.findings]


def _rerecorded(item: Drifted) -> SettingsRecord:
    """The record once the declared values are back: what was there before the resource first set each value
    stays what a Delete puts back."""
    settings = dict(item.record.settings)
    for change in item.changes:
        settings[change.key] = {"before": settings[change.key]["before"], "set": change.target}
    return replace(item.record, settings=settings)
