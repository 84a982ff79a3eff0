"""The ownership ledger against DynamoDB (moto in-process): one owner per thing, proved by a conditional write."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecr_cache_provider.aws.ledger import Ledger, OwnedByAnother, Owner, TakeOver, Thing
from ecr_cache_provider.deadline import Deadline
from ecr_cache_provider.failures import ResourceFailure, Superseded

STACK = "arn:aws:cloudformation:us-east-1:123456789012:stack/cache-stack/5b1a6c80"
OTHER_STACK = "arn:aws:cloudformation:us-east-1:123456789012:stack/prod-stack/77aa0000"
RULE = Thing("pull-through cache rule", "quay")


@pytest.fixture
def ledger(aws: None) -> Ledger:
    return Ledger(Deadline(time.monotonic() + 300))


def test_a_free_thing_is_claimed(ledger: Ledger) -> None:
    owner = Owner(STACK, "QuayCacheRule", "request-1")

    assert ledger.claim(RULE, owner) is None
    assert ledger.owner_of(RULE) == owner


def test_a_replayed_request_finds_its_own_claim(ledger: Ledger) -> None:
    owner = Owner(STACK, "QuayCacheRule", "request-1")
    ledger.claim(RULE, owner)

    assert ledger.claim(RULE, owner) == owner


def test_a_later_request_of_the_same_resource_takes_the_claim_over(ledger: Ledger) -> None:
    ledger.claim(RULE, Owner(STACK, "QuayCacheRule", "request-1"))

    previous = ledger.claim(RULE, Owner(STACK, "QuayCacheRule", "request-2"))

    assert previous == Owner(STACK, "QuayCacheRule", "request-1")
    assert ledger.owner_of(RULE) == Owner(STACK, "QuayCacheRule", "request-2")


@pytest.mark.parametrize(
    "claimant", [Owner(OTHER_STACK, "QuayCacheRule", "request-9"), Owner(STACK, "OtherCacheRule", "request-9")]
)
def test_another_resource_is_refused_with_the_owner_named(ledger: Ledger, claimant: Owner) -> None:
    ledger.claim(RULE, Owner(STACK, "QuayCacheRule", "request-1"))

    with pytest.raises(OwnedByAnother) as refused:
        ledger.claim(RULE, claimant)

    assert str(refused.value) == (
        "The pull-through cache rule 'quay' belongs to QuayCacheRule in stack cache-stack "
        "(claimed by request request-1)"
    )
    assert ledger.owner_of(RULE) == Owner(STACK, "QuayCacheRule", "request-1")


def test_only_the_owner_releases(ledger: Ledger) -> None:
    owner = Owner(STACK, "QuayCacheRule", "request-1")
    ledger.claim(RULE, owner)

    assert ledger.release(RULE, Owner(OTHER_STACK, "QuayCacheRule", "request-9")) is False
    assert ledger.owner_of(RULE) == owner
    assert ledger.release(RULE, Owner(STACK, "QuayCacheRule", "a-later-request")) is True
    assert ledger.owner_of(RULE) is None
    assert ledger.release(RULE, owner) is False  # nothing left to release


def test_in_a_race_exactly_one_claimant_wins(ledger: Ledger) -> None:
    claimants = [Owner(f"{STACK}-{number}", "QuayCacheRule", f"request-{number}") for number in range(8)]
    outcomes: list[Any] = []
    start = threading.Barrier(len(claimants))

    def claim(owner: Owner) -> None:
        start.wait()
        try:
            outcomes.append(ledger.claim(RULE, owner))
        except OwnedByAnother as refused:
            outcomes.append(refused)

    threads = [threading.Thread(target=claim, args=(owner,)) for owner in claimants]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    winners = [outcome for outcome in outcomes if outcome is None]
    assert len(winners) == 1
    winner = ledger.owner_of(RULE)
    assert winner in claimants
    assert all(refused.owner == winner for refused in outcomes if refused is not None)


def test_without_a_table_the_request_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OWNERSHIP_TABLE")

    with pytest.raises(ResourceFailure, match="OWNERSHIP_TABLE is not set"):
        Ledger(Deadline(time.monotonic() + 300))


# The lock: a short critical section across stacks (registry-wide settings)


def test_the_lock_lets_one_holder_in_at_a_time(ledger: Ledger) -> None:
    inside: list[int] = []
    overlaps: list[int] = []

    def hold(index: int) -> None:
        with ledger.lock("registry policy", Owner(STACK, f"Statements{index}", f"request-{index}")):
            inside.append(index)
            if len(inside) > 1:
                overlaps.append(index)
            time.sleep(0.02)  # stay inside long enough for the others to try
            inside.remove(index)

    threads = [threading.Thread(target=hold, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert overlaps == []
    assert ledger.client.get_item(TableName=ledger.table, Key={"Id": {"S": "lock/registry policy"}}).get("Item") is None


def test_the_lock_is_released_when_the_block_fails(ledger: Ledger) -> None:
    owner = Owner(STACK, "Statements", "request-1")
    with pytest.raises(ValueError, match="boom"), ledger.lock("registry policy", owner):
        raise ValueError("boom")

    with ledger.lock("registry policy", owner):
        pass  # taken again at once


def test_an_expired_lock_is_taken_over(ledger: Ledger) -> None:
    stopped = Owner(OTHER_STACK, "Statements", "request-0")
    holder = ledger.lock("registry policy", stopped, seconds=-5)  # a holder stopped long ago
    holder.__enter__()

    with ledger.lock("registry policy", Owner(STACK, "Statements", "request-1")):
        item = ledger.client.get_item(TableName=ledger.table, Key={"Id": {"S": "lock/registry policy"}})["Item"]
        assert item["RequestId"]["S"] == "request-1"


def test_a_lock_held_longer_than_its_expiry_is_renewed_and_never_shared(ledger: Ledger) -> None:
    """A slow ECR keeps the holder inside longer than the lock's expiry: the holder's renewals keep everyone else
    out until it releases the lock (a second writer would otherwise drop the first one's statement)."""
    events: list[str] = []
    inside = threading.Event()

    def slow_holder() -> None:
        with ledger.lock("registry policy", Owner(STACK, "Statements", "request-1"), seconds=1) as held:
            inside.set()
            time.sleep(2.5)  # the holder's ECR calls, slower than the lock's expiry
            held.confirm()
            events.append("first released")

    holder = threading.Thread(target=slow_holder)
    holder.start()
    inside.wait()
    with ledger.lock("registry policy", Owner(OTHER_STACK, "Statements", "request-2"), seconds=1):
        events.append("second entered")
    holder.join()

    assert events == ["first released", "second entered"]


def test_a_lock_taken_by_another_is_lost_and_stops_the_write(ledger: Ledger) -> None:
    with ledger.lock("registry policy", Owner(STACK, "Statements", "request-1"), seconds=1) as held:
        ledger.client.update_item(  # another request took it (its holder's renewals had stopped)
            TableName=ledger.table,
            Key={"Id": {"S": "lock/registry policy"}},
            UpdateExpression="SET #token = :other",
            ExpressionAttributeNames={"#token": "Token"},
            ExpressionAttributeValues={":other": {"S": "another-holder"}},
        )
        held.lost.wait(5)
        with pytest.raises(ResourceFailure, match="Lost the registry policy lock"):
            held.confirm()


def test_waiting_for_a_held_lock_stops_at_the_deadline(aws: None) -> None:
    patient = Ledger(Deadline(time.monotonic() + 300))
    hurried = Ledger(Deadline(time.monotonic() + 30.3))  # the deadline keeps a 30 s margin for the answer
    with patient.lock("registry policy", Owner(OTHER_STACK, "Statements", "request-0")):
        started = time.monotonic()
        with (
            pytest.raises(ResourceFailure, match="calling DynamoDB put_item"),
            hurried.lock("registry policy", Owner(STACK, "Statements", "request-1")),
        ):
            pass
        assert time.monotonic() - started < 5


# Take-over: a resource replacing another of the same stack (Custom::CachedRepositorySettings, TakeOverFrom)

TEMPLATE = Thing("repository creation template", "ecr-public")
OLD = Owner(STACK, "EcrPublicCacheLifecyclePolicy", "request-1")
NEW = Owner(STACK, "EcrPublicCachedRepositorySettings", "request-2")


def taken_over(ledger: Ledger) -> TakeOver:
    """The template claimed by OLD, then taken over by NEW: the take-over the ledger records."""
    ledger.claim(TEMPLATE, OLD)
    ledger.take_over(TEMPLATE, OLD, NEW, "snapshot")
    recorded = ledger.take_over_of(TEMPLATE)
    assert recorded is not None
    return recorded


def test_a_successor_takes_the_claim_and_the_take_over_is_recorded(ledger: Ledger) -> None:
    ledger.claim(TEMPLATE, OLD)

    assert ledger.take_over(TEMPLATE, OLD, NEW, "snapshot") == OLD

    assert ledger.owner_of(TEMPLATE) == NEW
    take_over = ledger.take_over_of(TEMPLATE)
    assert take_over is not None
    assert (take_over.successor, take_over.predecessor, take_over.snapshot) == (NEW, OLD, "snapshot")
    assert not take_over.settled


def test_settling_keeps_the_record_and_a_later_claim_keeps_it_too(ledger: Ledger) -> None:
    recorded = taken_over(ledger)

    ledger.settle_take_over(TEMPLATE, recorded)
    ledger.claim(TEMPLATE, Owner(STACK, NEW.logical_id, "request-3"))  # a later Update of the successor

    settled = ledger.take_over_of(TEMPLATE)
    assert settled is not None
    assert settled.settled
    assert settled.predecessor.is_same_resource(OLD)


def test_handing_back_restores_the_predecessor(ledger: Ledger) -> None:
    recorded = taken_over(ledger)

    ledger.hand_back(TEMPLATE, recorded)

    assert ledger.owner_of(TEMPLATE) == OLD
    assert ledger.take_over_of(TEMPLATE) is None


@pytest.mark.parametrize("holder", [Owner(OTHER_STACK, OLD.logical_id, "request-9"), Owner(STACK, "Other", "r-9")])
def test_only_the_named_resource_of_the_same_stack_is_taken_over(ledger: Ledger, holder: Owner) -> None:
    ledger.claim(TEMPLATE, holder)

    with pytest.raises(OwnedByAnother):
        ledger.take_over(TEMPLATE, OLD, NEW, "snapshot")
    assert ledger.owner_of(TEMPLATE) == holder


def test_a_replayed_take_over_finds_its_own_claim(ledger: Ledger) -> None:
    ledger.claim(TEMPLATE, OLD)
    ledger.take_over(TEMPLATE, OLD, NEW, "snapshot")

    assert ledger.take_over(TEMPLATE, OLD, NEW, "snapshot") == NEW
    recorded = ledger.take_over_of(TEMPLATE)
    assert recorded is not None
    assert recorded.predecessor.is_same_resource(OLD)  # still recorded: the claim's other attributes stay


def test_claims_of_several_kinds_in_one_scan(ledger: Ledger) -> None:
    owner = Owner(STACK, "QuayCacheRule", "request-1")
    template = Thing("repository creation template", "quay")
    schedule = Thing("image expiry schedule", "cache-image-expiry-0123456789abcdef0123")
    for thing in (RULE, template, schedule):
        ledger.claim(thing, owner)

    both = ledger.claims("pull-through cache rule", "repository creation template")

    assert {thing for thing, _ in both} == {RULE, template}
    assert len(both) == 2
    assert {claimant for _, claimant in both} == {owner}
    assert ledger.claims("image expiry schedule") == [(schedule, owner)]


def test_settling_or_handing_back_a_take_over_the_claim_no_longer_records_changes_nothing(ledger: Ledger) -> None:
    recorded = taken_over(ledger)
    ledger.hand_back(TEMPLATE, recorded)

    ledger.hand_back(TEMPLATE, recorded)  # a replayed Delete of the successor
    ledger.settle_take_over(TEMPLATE, recorded)  # the predecessor's Delete, racing the hand-back

    assert ledger.owner_of(TEMPLATE) == OLD
    assert ledger.take_over_of(TEMPLATE) is None


# The resource record: which request is a resource's current one (every newer request moves it)

RESOURCE = "CacheRule"
T0 = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


def request(number: int, resource_type: str = "Custom::PullThroughCacheRule") -> Owner:
    return Owner(STACK, RESOURCE, f"request-{number}", resource_type)


def test_each_newer_request_moves_the_generation_and_older_work_stops(ledger: Ledger) -> None:
    created = ledger.begin(request(1), "Create", T0)
    updated = ledger.begin(request(2), "Update", T0 + timedelta(minutes=5))

    assert (created.generation, updated.generation) == (1, 2)
    assert ledger.ensure_current(request(2), "Update").request_id == "request-2"
    with pytest.raises(Superseded, match="Update request request-2, generation 2"):
        ledger.ensure_current(request(1), "Create")


def test_a_replayed_request_keeps_its_generation(ledger: Ledger) -> None:
    ledger.begin(request(1), "Create", T0)

    assert ledger.begin(request(1), "Create", T0).generation == 1


def test_a_request_older_than_the_current_one_is_superseded(ledger: Ledger) -> None:
    """Lambda ran the Delete of a cancelled Create before the Create itself: the Create must not start."""
    ledger.begin(request(2), "Delete", T0 + timedelta(seconds=3))

    with pytest.raises(Superseded, match="came first"):
        ledger.begin(request(1), "Create", T0)


def test_within_one_second_a_delete_wins(ledger: Ledger) -> None:
    ledger.begin(request(1), "Create", T0)
    ledger.begin(request(2), "Delete", T0)
    ledger.finish_delete(request(2))

    with pytest.raises(Superseded):
        ledger.begin(request(3), "Create", T0, stack_undoing=lambda: True)  # the stack is rolling back
    assert ledger.begin(request(4), "Create", T0, stack_undoing=lambda: False).request_id == "request-4"
    assert ledger.begin(request(5), "Delete", T0).request_id == "request-5"  # a second Delete, same second


def test_a_deleted_resource_stops_work_and_remembers_the_ids_it_answered(ledger: Ledger) -> None:
    ledger.begin(request(1), "Create", T0)
    ledger.record_issued(request(1), "quay")
    ledger.begin(request(2), "Delete", T0 + timedelta(minutes=1))
    ledger.finish_delete(request(2))

    record = ledger.resource(request(2))
    assert record is not None
    assert (record.deleted, record.issued, record.issued_complete) == (True, frozenset({"quay"}), True)
    assert ledger.ensure_current(request(2), "Delete").deleted
    expires = ledger.client.get_item(TableName=ledger.table, Key={"Id": {"S": f"resource/{STACK}/{RESOURCE}"}})
    assert int(expires["Item"]["ExpiresAt"]["N"]) > time.time() + 3600


def test_a_record_first_made_by_an_update_does_not_know_every_id(ledger: Ledger) -> None:
    """A resource created before the ledger kept records: its record starts with a later request."""
    assert ledger.begin(request(1), "Update", T0).issued_complete is False


def test_settings_records_are_batched_and_owned(ledger: Ledger) -> None:
    from ecr_cache_provider.aws.ledger import SETTINGS_KIND, SettingsRecord, settings_record

    owner, other = request(1, "Custom::CachedRepositorySettings"), Owner(OTHER_STACK, RESOURCE, "r", "")
    records = [SettingsRecord(f"ecr-public/image-{n:03d}", "ecr-public", {"lifecycle_policy": {}}) for n in range(130)]
    ledger.write_settings_records(owner, records)
    ledger.write_settings_records(other, records[:1])

    found = ledger.settings_records(owner, [record.repository for record in records] + ["ecr-public/none"])
    owned = [settings_record(item) for page in ledger.owned(owner, [SETTINGS_KIND]) for item in page]
    ledger.drop_settings_records(owner, [record.repository for record in records[:100]])

    assert set(found) == {record.repository for record in records}
    assert found["ecr-public/image-007"].request_id == "request-1"
    assert sorted(record.repository for record in owned) == [record.repository for record in records]
    assert len(ledger.settings_records(owner, [record.repository for record in records])) == 30
    assert len(ledger.settings_records(other, [records[0].repository])) == 1


def test_unprocessed_batch_writes_are_sent_again(ledger: Ledger) -> None:
    from ecr_cache_provider.aws.ledger import SettingsRecord
    from emulation import dynamodb

    owner = request(1, "Custom::CachedRepositorySettings")
    dynamodb.leave_unprocessed(3)
    records = [SettingsRecord(f"quay/image-{n}", "quay", {}) for n in range(30)]

    ledger.write_settings_records(owner, records)

    assert len(ledger.settings_records(owner, [record.repository for record in records])) == 30
