"""Custom::RegistryPolicyStatements through the real handler: statements merged into the registry policy."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulation.cloudformation import ACCOUNT_ID, REGION, ResponseEndpoint, make_event
from tests.emulation.test_moto_ecr_registry import ORGANIZATION_CONDITION, REPLICATION, registry_statement
from tests.handler.conftest import Invoke

TYPE = "Custom::RegistryPolicyStatements"
PHYSICAL_ID = "registry-policy/cache-stack/OrganizationStatements"
OTHER_STACK = f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/team-stack/77aa0000"


def statement(sid: str = "OrganizationFillsTheCache", prefix: str = "ecr-public") -> dict[str, Any]:
    actions = ["ecr:CreateRepository", "ecr:BatchImportUpstreamImage"]
    resource = f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/{prefix}/*"
    return registry_statement(sid, "*", actions, resource, Condition=ORGANIZATION_CONDITION)


def event(endpoint: ResponseEndpoint, request_type: str, statements: list[Any], **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("logical_id", "OrganizationStatements")
    if request_type != "Create":
        kwargs.setdefault("physical_id", PHYSICAL_ID)
    return make_event(endpoint, request_type, {"Statements": statements}, resource_type=TYPE, **kwargs)


def registry_statements(ecr: Any) -> list[dict[str, Any]] | None:
    try:
        return list(json.loads(ecr.get_registry_policy()["policyText"])["Statement"])
    except ecr.exceptions.RegistryPolicyNotFoundException:
        return None


@pytest.fixture
def replicated(ecr: Any) -> Any:
    """A registry whose policy already lets a source registry replicate into it."""
    ecr.put_registry_policy(policyText=json.dumps({"Version": "2012-10-17", "Statement": [REPLICATION]}))
    return ecr


def test_create_update_delete_keep_every_other_statement(
    invoke: Invoke, response_endpoint: ResponseEndpoint, replicated: Any
) -> None:
    created = invoke(event(response_endpoint, "Create", [statement()]))
    assert created["Status"] == "SUCCESS", created["Reason"]
    assert created["PhysicalResourceId"] == PHYSICAL_ID
    assert created["Data"] == {"StatementIds": "OrganizationFillsTheCache"}
    assert registry_statements(replicated) == [REPLICATION, statement()]

    changed = [statement(prefix="quay"), statement("OrganizationFillsTheK8sCache", "k8s")]
    updated = invoke(event(response_endpoint, "Update", changed, old_properties={"Statements": [statement()]}))
    assert updated["Status"] == "SUCCESS", updated["Reason"]
    assert updated["PhysicalResourceId"] == PHYSICAL_ID
    assert registry_statements(replicated) == [REPLICATION, *changed]

    renamed = [statement("OrganizationFillsTheK8sCache", "k8s")]
    updated = invoke(event(response_endpoint, "Update", renamed, old_properties={"Statements": changed}))
    assert updated["Status"] == "SUCCESS", updated["Reason"]
    assert registry_statements(replicated) == [REPLICATION, *renamed]  # the Sid no longer listed is taken out

    deleted = invoke(event(response_endpoint, "Delete", renamed))
    assert deleted["Status"] == "SUCCESS", deleted["Reason"]
    assert registry_statements(replicated) == [REPLICATION]
    again = invoke(event(response_endpoint, "Delete", renamed))
    assert again["Status"] == "SUCCESS", again["Reason"]
    assert registry_statements(replicated) == [REPLICATION]


def test_the_policy_keeps_its_id(invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any) -> None:
    """A merge rewrites only the statements: the policy's other top-level elements (its Id) are someone else's."""
    ecr.put_registry_policy(
        policyText=json.dumps({"Version": "2012-10-17", "Id": "ReplicationFromProd", "Statement": [REPLICATION]})
    )

    created = invoke(event(response_endpoint, "Create", [statement()]))
    written = json.loads(ecr.get_registry_policy()["policyText"])
    deleted = invoke(event(response_endpoint, "Delete", [statement()]))

    assert created["Status"] == deleted["Status"] == "SUCCESS"
    assert (written["Id"], written["Version"]) == ("ReplicationFromProd", "2012-10-17")
    assert json.loads(ecr.get_registry_policy()["policyText"]) == {
        "Version": "2012-10-17",
        "Id": "ReplicationFromProd",
        "Statement": [REPLICATION],
    }


def test_the_registry_policy_is_made_and_deleted_when_it_holds_only_ours(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any
) -> None:
    assert invoke(event(response_endpoint, "Create", [statement()]))["Status"] == "SUCCESS"
    assert registry_statements(ecr) == [statement()]

    assert invoke(event(response_endpoint, "Delete", [statement()]))["Status"] == "SUCCESS"
    assert registry_statements(ecr) is None


def test_a_replayed_create_succeeds_and_changes_nothing_more(
    invoke: Invoke, response_endpoint: ResponseEndpoint, replicated: Any
) -> None:
    for _ in range(2):
        answer = invoke(event(response_endpoint, "Create", [statement()]))
        assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert registry_statements(replicated) == [REPLICATION, statement()]


def test_a_sid_already_in_the_policy_and_not_ours_fails_and_changes_nothing(
    invoke: Invoke, response_endpoint: ResponseEndpoint, replicated: Any
) -> None:
    answer = invoke(event(response_endpoint, "Create", [{**statement(), "Sid": "ReplicationFromSource"}]))

    assert answer["Status"] == "FAILED"
    assert answer["Reason"] == (
        "The registry policy statement 'ReplicationFromSource' already exists and is not this resource's: "
        "rename ours, or remove that one first"
    )
    assert answer["PhysicalResourceId"].startswith("failed-create:")
    assert registry_statements(replicated) == [REPLICATION]
    rollback = invoke(event(response_endpoint, "Delete", [{**statement(), "Sid": "ReplicationFromSource"}]))
    assert rollback["Status"] == "SUCCESS"
    assert registry_statements(replicated) == [REPLICATION]  # the rollback's Delete removed nothing


def test_a_sid_another_stack_owns_is_refused_naming_it_and_never_removed_by_us(
    invoke: Invoke, response_endpoint: ResponseEndpoint, replicated: Any
) -> None:
    theirs = event(response_endpoint, "Create", [statement("SharedSid")], logical_id="TeamStatements")
    theirs["StackId"] = OTHER_STACK
    assert invoke(theirs)["Status"] == "SUCCESS"

    ours = invoke(event(response_endpoint, "Create", [statement("SharedSid", "quay")]))
    assert ours["Status"] == "FAILED"
    assert "belongs to TeamStatements in stack team-stack" in ours["Reason"]

    invoke(event(response_endpoint, "Delete", [statement("SharedSid", "quay")]))
    assert registry_statements(replicated) == [REPLICATION, statement("SharedSid")]


def test_a_statement_ecr_refuses_fails_with_its_reason_and_leaves_no_claim(
    invoke: Invoke, response_endpoint: ResponseEndpoint, replicated: Any
) -> None:
    pulling = {**statement(), "Action": ["ecr:BatchGetImage"]}  # a repository permission, not a registry one

    answer = invoke(event(response_endpoint, "Create", [pulling]))
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith("InvalidParameterException: ")
    assert registry_statements(replicated) == [REPLICATION]

    fixed = invoke(event(response_endpoint, "Create", [statement()], logical_id="AnotherResource"))
    assert fixed["Status"] == "SUCCESS", fixed["Reason"]  # the Sid was left free


@pytest.mark.parametrize(
    ("statements", "reason"),
    [
        ([{k: v for k, v in statement().items() if k != "Sid"}], "Missing required property: Sid"),
        ([statement(), statement(prefix="quay")], "Invalid Statements: each statement needs its own Sid"),
        ([{**statement(), "Sid": "has spaces"}], "Invalid Statements.0.Sid"),
        ([{**statement(), "Effect": "Maybe"}], "Invalid Statements.0.Effect"),
        ([], "Invalid Statements"),
        ("not a list", "Invalid Statements"),
    ],
)
def test_bad_statements_fail_naming_the_property_and_change_nothing(
    invoke: Invoke, response_endpoint: ResponseEndpoint, replicated: Any, statements: Any, reason: str
) -> None:
    answer = invoke(event(response_endpoint, "Create", statements))

    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith(reason), answer["Reason"]
    assert registry_statements(replicated) == [REPLICATION]


def test_an_unknown_property_fails_create_but_never_a_delete(
    invoke: Invoke, response_endpoint: ResponseEndpoint, replicated: Any
) -> None:
    bad = event(response_endpoint, "Create", [statement()])
    bad["ResourceProperties"]["Sids"] = "x"
    answer = invoke(bad)
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith("Unknown property Sids")

    delete = event(response_endpoint, "Delete", [statement()])
    delete["ResourceProperties"]["Sids"] = "x"
    assert invoke(delete)["Status"] == "SUCCESS"
    assert registry_statements(replicated) == [REPLICATION]


def test_statements_arrive_as_json_text_too(invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any) -> None:
    answer = invoke(event(response_endpoint, "Create", json.dumps([statement()])))  # type: ignore[arg-type]
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert registry_statements(ecr) == [statement()]
