"""How a batch of a cache namespace's repositories is brought to the settings (setting_kinds.py), with what was
there before each change recorded in the ownership ledger first.

Each setting is optional. Ownership is proved, never inferred from matching values: before a resource changes a
setting on a repository, it records in the ledger (one record per repository, a batch of repositories a write) the
value it found there and the value it sets. A value is this resource's while the repository still carries exactly
the value the record says it set. For each setting of a repository:
- ours (recorded, and still there), or none (no value; for tag mutability, ECR's default MUTABLE): replaced;
- anything else is someone else's, even when it equals a value this resource uses: replaced only with
  OverwriteExistingSettings (and then recorded, so that Delete puts it back);
- a removal (a setting no longer named, Delete) puts back the value found before, where the repository still
  carries ours; elsewhere it changes nothing. A repository without a record is never touched.

Repositories ECR creates from the namespace's creation template carry the template's settings because ECR applied
them, not this resource, and the ledger cannot tell them from values someone set: they are left as they are (an
Update counts them as skipped unless OverwriteExistingSettings), and Delete leaves them.

Resources created before the ledger kept these records (their resource record does not go back to their Create)
recognised their values by equality with their old properties, as the provider then did: for them, and only
within their namespace, a value equal to the old properties' still counts as theirs, and is recorded when changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ecr_cache_provider.aws.ecr import DEFAULT_TAG_MUTABILITY, EcrGateway
from ecr_cache_provider.aws.ledger import Ledger, Owner, SettingsRecord
from ecr_cache_provider.engine.batches import CONCURRENCY, Outcome, Workers
from ecr_cache_provider.engine.setting_kinds import TAG, TAG_MUTABILITY, Change, Repository, recorded


@dataclass
class Plan:
    """What a request does to one repository: the changes, the record as it will be, and the outcome."""

    repository: str
    record: SettingsRecord | None  # as the ledger held it before
    entries: dict[str, dict[str, Any]]  # the record's settings once the changes are made
    changes: list[Change] = field(default_factory=list)
    skipped: bool = False

    @property
    def outcome(self) -> Outcome:
        return "skipped" if self.skipped else "updated" if self.changes else "unchanged"


@dataclass(frozen=True)
class Target:
    """What a request wants of each repository: the settings (by key; None for a removal of what is ours), whether
    others' values are replaced, and, for a resource older than the ledger's records, the values its old properties
    named (taken as its own)."""

    wanted: dict[str, Any]
    overwrite: bool = False
    legacy: dict[str, Any] = field(default_factory=dict)
    # A successor handing the namespace back: a removal puts back the predecessor's values (its record's, else these,
    # its template's) rather than those found before.
    restore: dict[str, Any] | None = None


def plan(
    repository: Repository, target: Target, record: SettingsRecord | None, inherited: SettingsRecord | None
) -> Plan:
    """What to do to one repository, given this resource's record of it and, for a resource that took the namespace
    over from another, the predecessor's record (`inherited`)."""
    own = dict(record.settings) if record else {}
    theirs = inherited.settings if inherited else {}
    result = Plan(repository.name, record, {})
    keys = list(dict.fromkeys([*target.wanted, *own, *theirs, *target.legacy]))
    for key in keys:
        if (key == TAG_MUTABILITY or key.startswith(TAG)) and not repository.exists:
            continue  # gone meanwhile (policies read as none then): its record goes too
        entry = own.get(key) or theirs.get(key)
        current = repository.value(key)
        ours = entry is not None and current == entry["set"]
        legacy_ours = current is not None and current == target.legacy.get(key)
        if key not in target.wanted or target.wanted[key] is None:
            if ours or legacy_ours:  # a removal: what was there before, where ours is still there
                before = entry["before"] if ours and entry is not None else None
                restored = before
                if target.restore is not None:  # handed back to the predecessor: its values
                    restored = theirs[key]["set"] if key in theirs else target.restore.get(key, before)
                if restored != current:
                    result.changes.append(Change(key, current, restored))
            continue
        wanted = target.wanted[key]
        if current == wanted:
            if ours and entry is not None:
                result.entries[key] = entry
            elif legacy_ours:
                result.entries[key] = {"before": None, "set": wanted}
            continue
        if _is_none(key, current) or ours or legacy_ours or target.overwrite:
            before = entry["before"] if ours and entry is not None else None if legacy_ours else current
            result.entries[key] = {"before": before, "set": wanted}
            result.changes.append(Change(key, current, wanted))
        else:
            result.skipped = True
    return result


@dataclass
class RecordedBatch:
    """Brings a batch of repositories to a Target: reads their records (one ledger read), plans each, records
    every change in the ledger (one batched write) before making it, then makes the changes. After a batch,
    `confirm` checks the request is still current; `undo_last` puts back what the last batch changed."""

    ecr: EcrGateway
    ledger: Ledger
    owner: Owner
    namespace: str
    target: Target
    confirm: Callable[[], None]
    predecessor: Owner | None = None
    _last: list[Plan] = field(default_factory=list)

    def run(self, batch: list[str], workers: Workers) -> list[Outcome | None]:
        """Each worker takes a share of the batch: reads and plans its repositories, records them in one ledger
        write, then makes the changes. The workers' reads and writes interleave, as the calls of one repository
        would: a request-rate quota on one ECR operation is not met with a burst of it."""
        records = self.ledger.settings_records(self.owner, batch)
        inherited = self.ledger.settings_records(self.predecessor, batch) if self.predecessor else {}
        share = -(-len(batch) // CONCURRENCY)
        shares = [batch[start : start + share] for start in range(0, len(batch), share)]

        def bring(names: list[str]) -> list[tuple[Plan | None, Outcome | None]]:
            repositories = {name: Repository(self.ecr, name) for name in names}

            def planned(name: str) -> Plan:
                return plan(repositories[name], self.target, records.get(name), inherited.get(name))

            def applied(item: Plan) -> Outcome:
                repositories[item.repository].apply(item.changes)
                return item.outcome

            plans: list[Plan | None] = [workers.guard(partial(planned, name)) for name in names]
            made = [item for item in plans if item is not None]
            rewritten = [item for item in made if _rewritten(item, self.namespace)]
            self.ledger.write_settings_records(  # before any change is made
                self.owner, [SettingsRecord(item.repository, self.namespace, item.entries) for item in rewritten]
            )
            done: list[tuple[Plan | None, Outcome | None]] = [
                (item, None if item is None else workers.guard(partial(applied, item))) for item in plans
            ]
            emptied = [
                item.repository for item, outcome in done if item and outcome and item.record and not item.entries
            ]
            self.ledger.drop_settings_records(self.owner, emptied)  # after the changes: they record nothing any more
            return done

        results = [pair for part in workers.map(bring, shares) for pair in (part or [])]
        self._last = [item for item, outcome in results if item is not None and outcome is not None]
        outcomes = {item.repository: outcome for item, outcome in results if item is not None}
        return [outcomes.get(name) for name in batch]

    def undo_last(self) -> None:
        """Put back the values the last batch replaced, where ours is still there, and its records as they were."""
        for item in self._last:
            repository = Repository(self.ecr, item.repository)
            undo = [Change(c.key, c.target, c.found) for c in item.changes if repository.value(c.key) == c.target]
            repository.apply(undo)
            if item.record is None:
                self.ledger.drop_settings_record_if_mine(self.owner, item.repository)
            else:
                self.ledger.restore_settings_record_unless_newer(self.owner, item.record)
        self._last = []


def _rewritten(item: Plan, namespace: str) -> bool:
    """Whether the plan's record must be written: it records something, and not exactly what the ledger holds."""
    return bool(item.entries) and (
        item.record is None or (item.record.settings, item.record.namespace) != (item.entries, namespace)
    )


def _is_none(key: str, value: Any) -> bool:
    """No value: nothing set (for tag mutability, ECR's default for a repository created without one)."""
    return value is None or (key == TAG_MUTABILITY and value == recorded(DEFAULT_TAG_MUTABILITY))
