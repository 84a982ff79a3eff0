"""Repository records: what a resource changed on one repository (the value it found, the value it set), written
before the change is made, one item per repository and resource."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from ecr_cache_provider.aws.ledger.table import BATCH_GET_SIZE, ConditionFailed, Owner, Table

logger = logging.getLogger(__name__)

SETTINGS_KIND = "repository settings"


@dataclass(frozen=True)
class SettingsRecord:
    """What one resource changed on one repository, recorded before it changed it: for each setting, the value it
    found there (`before`, None for none) and the value it set (`set`). A value is this resource's only while the
    repository still carries exactly the value it set."""

    repository: str
    namespace: str  # the resource's RepositoryPrefix when it made the change
    settings: dict[str, dict[str, Any]]
    request_id: str = ""


class RepositoryRecords(Table):
    """The repository records."""

    def settings_records(self, owner: Owner, repositories: Iterable[str]) -> dict[str, SettingsRecord]:
        """The records `owner`'s resource keeps for these repositories (consistent reads, 100 a call)."""
        names = list(dict.fromkeys(repositories))
        found: dict[str, SettingsRecord] = {}
        for start in range(0, len(names), BATCH_GET_SIZE):
            keys = [_settings_key(owner, name) for name in names[start : start + BATCH_GET_SIZE]]
            attempt = 0
            while keys:
                response = self._call(
                    "batch_get_item", RequestItems={self.table: {"Keys": keys, "ConsistentRead": True}}
                )
                for item in response.get("Responses", {}).get(self.table, []):
                    record = settings_record(item)
                    found[record.repository] = record
                keys = response.get("UnprocessedKeys", {}).get(self.table, {}).get("Keys", [])
                attempt = self._pause_for_unprocessed(keys, attempt)
        return found

    def write_settings_records(self, owner: Owner, records: Iterable[SettingsRecord]) -> None:
        """Write the records (25 a call), before the changes they record are made."""
        self._batch_write([{"PutRequest": {"Item": _settings_item(owner, record)}} for record in records])

    def drop_settings_records(self, owner: Owner, repositories: Iterable[str]) -> None:
        """Remove the records of these repositories (25 a call)."""
        self._batch_write(
            [{"DeleteRequest": {"Key": _settings_key(owner, name)}} for name in dict.fromkeys(repositories)]
        )

    def drop_settings_record_if_mine(self, owner: Owner, repository: str) -> None:
        """Remove the repository's record only if `owner`'s request wrote it last (a stale request undoing its own
        change must not remove what a newer request of the resource recorded)."""
        try:
            self._call(
                "delete_item",
                Key=_settings_key(owner, repository),
                ConditionExpression="RequestId = :request",
                ExpressionAttributeValues={":request": {"S": owner.request_id}},
            )
        except ConditionFailed:
            logger.info("Record left: a newer request wrote it", extra={"repository": repository})

    def restore_settings_record_unless_newer(self, owner: Owner, record: SettingsRecord) -> None:
        """Put a repository's record back as it was, unless a newer request of the resource wrote it since: only if
        `owner`'s request wrote it last, or there is none (`owner`'s request dropped it in the batch it undoes; a
        newer request that read it may have put its value back, and relies on the record saying it set it)."""
        try:
            self._call(
                "put_item",
                Item=_settings_item(replace(owner, request_id=record.request_id), record),
                ConditionExpression="attribute_not_exists(Id) OR RequestId = :request",
                ExpressionAttributeValues={":request": {"S": owner.request_id}},
            )
        except ConditionFailed:
            logger.info("Record left: a newer request wrote it", extra={"repository": record.repository})


def _owner_digest(owner: Owner) -> str:
    return hashlib.sha256(f"{owner.stack_id}/{owner.logical_id}".encode()).hexdigest()[:24]


def _settings_key(owner: Owner, repository: str) -> dict[str, Any]:
    return {"Id": {"S": f"{SETTINGS_KIND}/{_owner_digest(owner)}/{repository}"}}


def _settings_item(owner: Owner, record: SettingsRecord) -> dict[str, Any]:
    return _settings_key(owner, record.repository) | {
        "Kind": {"S": SETTINGS_KIND},
        "Name": {"S": record.repository},
        "Namespace": {"S": record.namespace},
        "StackId": {"S": owner.stack_id},
        "LogicalResourceId": {"S": owner.logical_id},
        "ResourceType": {"S": owner.resource_type},
        "RequestId": {"S": owner.request_id},
        "Settings": {"S": json.dumps(record.settings, separators=(",", ":"), sort_keys=True)},
    }


def settings_record(item: dict[str, Any]) -> SettingsRecord:
    """A repository record, from its item (as `Ledger.owned` returns it)."""
    return SettingsRecord(
        repository=item["Name"]["S"],
        namespace=item.get("Namespace", {}).get("S", ""),
        settings=json.loads(item.get("Settings", {}).get("S", "{}")),
        request_id=item.get("RequestId", {}).get("S", ""),
    )
