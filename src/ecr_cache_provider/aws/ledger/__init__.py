"""The ownership ledger: which resource owns each thing the provider manages, proved by a claim written before the
thing is made, never inferred from timestamps or matching settings.

One DynamoDB item per managed thing (a pull-through cache rule's prefix, a repository creation template's prefix,
a schedule, ...) in the table the provider stack creates (its name in OWNERSHIP_TABLE), shared by every stack that
uses the provider's ServiceToken. The item names the owner: StackId, LogicalResourceId and the RequestId that
claimed it. A conditional write lets exactly one claimant win, even when two stacks race for the same prefix.

Its parts, one module each: the table and who owns what (table.py), claims and take-overs (claims.py), which
request is a resource's current one (resource_records.py), what a resource changed on repositories
(repository_records.py), and locks (lock.py).
"""

from __future__ import annotations

from ecr_cache_provider.aws.ledger.claims import Claim, Claims, TakeOver
from ecr_cache_provider.aws.ledger.lock import HeldLock, Locks
from ecr_cache_provider.aws.ledger.repository_records import (
    SETTINGS_KIND,
    RepositoryRecords,
    SettingsRecord,
    settings_record,
)
from ecr_cache_provider.aws.ledger.resource_records import DeclaredResource, ResourceRecord, ResourceRecords
from ecr_cache_provider.aws.ledger.table import OwnedByAnother, Owner, Thing, stack_name

__all__ = [
    "SETTINGS_KIND",
    "Claim",
    "DeclaredResource",
    "HeldLock",
    "Ledger",
    "OwnedByAnother",
    "Owner",
    "ResourceRecord",
    "SettingsRecord",
    "TakeOver",
    "Thing",
    "settings_record",
    "stack_name",
]


class Ledger(Claims, ResourceRecords, RepositoryRecords, Locks):
    """The ownership table, every part of it: claims, resource records, repository records and locks."""
