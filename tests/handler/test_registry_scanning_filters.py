"""Custom::RegistryScanningFilters through the real handler: filters merged into the scanning configuration."""

from __future__ import annotations

from typing import Any

import pytest

from emulation.cloudformation import ACCOUNT_ID, REGION, ResponseEndpoint, make_event
from tests.handler.conftest import Invoke

TYPE = "Custom::RegistryScanningFilters"
PHYSICAL_ID = "registry-scanning/cache-stack/CacheScanning"
OTHER_STACK = f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/team-stack/77aa0000"


def props(frequency: str = "SCAN_ON_PUSH", *filters: str, **extra: Any) -> dict[str, Any]:
    return {"ScanFrequency": frequency, "Filters": list(filters or ("ecr-public/*", "quay/*")), **extra}


def event(endpoint: ResponseEndpoint, request_type: str, properties: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("logical_id", "CacheScanning")
    if request_type != "Create":
        kwargs.setdefault("physical_id", PHYSICAL_ID)
    return make_event(endpoint, request_type, properties, resource_type=TYPE, **kwargs)


def rule(frequency: str, *filters: str) -> dict[str, Any]:
    return {"scanFrequency": frequency, "repositoryFilters": [{"filter": f, "filterType": "WILDCARD"} for f in filters]}


def scanning(ecr: Any) -> dict[str, Any]:
    return dict(ecr.get_registry_scanning_configuration()["scanningConfiguration"])


@pytest.fixture
def team_scans(ecr: Any) -> Any:
    """A registry on enhanced scanning where another team scans its repositories continuously and on push."""
    ecr.put_registry_scanning_configuration(
        scanType="ENHANCED", rules=[rule("CONTINUOUS_SCAN", "team/*"), rule("SCAN_ON_PUSH", "team-builds/*")]
    )
    return ecr


def test_create_update_delete_keep_every_other_rule_and_filter(
    invoke: Invoke, response_endpoint: ResponseEndpoint, team_scans: Any
) -> None:
    created = invoke(event(response_endpoint, "Create", props()))
    assert created["Status"] == "SUCCESS", created["Reason"]
    assert created["PhysicalResourceId"] == PHYSICAL_ID
    assert created["Data"] == {"ScanFrequency": "SCAN_ON_PUSH", "ScanType": "ENHANCED"}
    assert scanning(team_scans) == {
        "scanType": "ENHANCED",
        "rules": [rule("CONTINUOUS_SCAN", "team/*"), rule("SCAN_ON_PUSH", "team-builds/*", "ecr-public/*", "quay/*")],
    }

    moved = props("CONTINUOUS_SCAN", "ecr-public/*")
    updated = invoke(event(response_endpoint, "Update", moved, old_properties=props()))
    assert updated["Status"] == "SUCCESS", updated["Reason"]
    assert updated["PhysicalResourceId"] == PHYSICAL_ID
    assert scanning(team_scans) == {
        "scanType": "ENHANCED",
        "rules": [rule("CONTINUOUS_SCAN", "team/*", "ecr-public/*"), rule("SCAN_ON_PUSH", "team-builds/*")],
    }

    for _ in range(2):  # Delete is idempotent
        deleted = invoke(event(response_endpoint, "Delete", moved))
        assert deleted["Status"] == "SUCCESS", deleted["Reason"]
        assert scanning(team_scans) == {
            "scanType": "ENHANCED",
            "rules": [rule("CONTINUOUS_SCAN", "team/*"), rule("SCAN_ON_PUSH", "team-builds/*")],
        }


def test_a_rule_left_without_filters_is_removed(
    invoke: Invoke, response_endpoint: ResponseEndpoint, team_scans: Any
) -> None:
    properties = props("CONTINUOUS_SCAN", "docker-hub/*")
    assert invoke(event(response_endpoint, "Create", properties))["Status"] == "SUCCESS"
    invoke(event(response_endpoint, "Delete", properties))

    team_scans.put_registry_scanning_configuration(scanType="ENHANCED", rules=[rule("CONTINUOUS_SCAN", "team/*")])
    assert invoke(event(response_endpoint, "Create", props()))["Status"] == "SUCCESS"
    assert invoke(event(response_endpoint, "Delete", props()))["Status"] == "SUCCESS"
    assert scanning(team_scans) == {"scanType": "ENHANCED", "rules": [rule("CONTINUOUS_SCAN", "team/*")]}


def test_a_basic_registry_is_left_basic_unless_enhanced_scanning_is_allowed(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any
) -> None:
    ecr.put_registry_scanning_configuration(scanType="BASIC", rules=[rule("SCAN_ON_PUSH", "legacy/*")])

    refused = invoke(event(response_endpoint, "Create", props()))
    assert refused["Status"] == "FAILED"
    assert "whole registry" in refused["Reason"]
    assert "Inspector billing" in refused["Reason"]
    assert "AllowEnhancedScanning" in refused["Reason"]
    assert refused["PhysicalResourceId"].startswith("failed-create:")
    assert scanning(ecr) == {"scanType": "BASIC", "rules": [rule("SCAN_ON_PUSH", "legacy/*")]}

    allowed = invoke(event(response_endpoint, "Create", props(AllowEnhancedScanning="true")))
    assert allowed["Status"] == "SUCCESS", allowed["Reason"]
    assert scanning(ecr) == {
        "scanType": "ENHANCED",
        "rules": [rule("SCAN_ON_PUSH", "legacy/*", "ecr-public/*", "quay/*")],
    }


def test_allow_enhanced_scanning_false_as_a_string_is_false(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any
) -> None:
    answer = invoke(event(response_endpoint, "Create", props(AllowEnhancedScanning="false")))
    assert answer["Status"] == "FAILED"
    assert scanning(ecr) == {"scanType": "BASIC", "rules": []}


def test_a_filter_already_there_and_not_ours_fails(
    invoke: Invoke, response_endpoint: ResponseEndpoint, team_scans: Any
) -> None:
    answer = invoke(event(response_endpoint, "Create", props("CONTINUOUS_SCAN", "team/*")))

    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith("The registry scanning filter 'CONTINUOUS_SCAN/team/*' already exists")
    invoke(
        event(response_endpoint, "Delete", props("CONTINUOUS_SCAN", "team/*"), physical_id=answer["PhysicalResourceId"])
    )
    assert rule("CONTINUOUS_SCAN", "team/*") in scanning(team_scans)["rules"]


def test_a_filter_another_stack_owns_is_refused_and_never_removed_by_us(
    invoke: Invoke, response_endpoint: ResponseEndpoint, team_scans: Any
) -> None:
    theirs = event(response_endpoint, "Create", props(), logical_id="TeamScanning")
    theirs["StackId"] = OTHER_STACK
    assert invoke(theirs)["Status"] == "SUCCESS"

    ours = invoke(event(response_endpoint, "Create", props("SCAN_ON_PUSH", "quay/*")))
    assert ours["Status"] == "FAILED"
    assert "belongs to TeamScanning in stack team-stack" in ours["Reason"]
    invoke(event(response_endpoint, "Delete", props("SCAN_ON_PUSH", "quay/*")))
    assert rule("SCAN_ON_PUSH", "team-builds/*", "ecr-public/*", "quay/*") in scanning(team_scans)["rules"]


@pytest.mark.parametrize(
    ("properties", "reason"),
    [
        ({"ScanFrequency": "MANUAL", "Filters": ["a/*"]}, "Invalid ScanFrequency"),
        ({"ScanFrequency": "SCAN_ON_PUSH", "Filters": ["Upper/*"]}, "Invalid Filters.0"),
        ({"ScanFrequency": "SCAN_ON_PUSH", "Filters": []}, "Invalid Filters"),
        ({"ScanFrequency": "SCAN_ON_PUSH", "Filters": ["a/*", "a/*"]}, "Invalid Filters"),
        ({"ScanFrequency": "SCAN_ON_PUSH"}, "Missing required property: Filters"),
        ({**props(), "AllowEnhancedScanning": "perhaps"}, "Invalid AllowEnhancedScanning"),
        ({**props(), "Rules": "x"}, "Unknown property Rules"),
    ],
)
def test_bad_properties_fail_naming_the_property_and_change_nothing(
    invoke: Invoke, response_endpoint: ResponseEndpoint, team_scans: Any, properties: dict[str, Any], reason: str
) -> None:
    before = scanning(team_scans)

    answer = invoke(event(response_endpoint, "Create", properties))

    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith(reason), answer["Reason"]
    assert scanning(team_scans) == before
    assert invoke(event(response_endpoint, "Delete", properties))["Status"] == "SUCCESS"
    assert scanning(team_scans) == before
