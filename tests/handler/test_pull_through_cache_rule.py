"""Custom::PullThroughCacheRule through the real handler: properties, create, update, delete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emulation.cloudformation import ACCOUNT_ID, REGION, ResponseEndpoint, make_event
from emulation.moto_ecr import faults
from tests.conftest import create_secret
from tests.handler.conftest import Invoke

ECR_PUBLIC = {"EcrRepositoryPrefix": "ecr-public", "UpstreamRegistryUrl": "public.ecr.aws"}
QUAY = {"EcrRepositoryPrefix": "quay", "UpstreamRegistryUrl": "quay.io", "UpstreamRegistry": "quay"}
OTHER_ACCOUNT_ECR = "210987654321.dkr.ecr.us-east-1.amazonaws.com"
SAME_ACCOUNT_ECR = f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/ecr-pull-through-cache"


def rules(ecr: Any) -> dict[str, dict[str, Any]]:
    found = ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"]
    return {rule["ecrRepositoryPrefix"]: rule for rule in found}


def docker_hub(credential_arn: str, prefix: str = "docker-hub") -> dict[str, Any]:
    return {
        "EcrRepositoryPrefix": prefix,
        "UpstreamRegistryUrl": "registry-1.docker.io",
        "UpstreamRegistry": "docker-hub",
        "CredentialArn": credential_arn,
    }


@pytest.fixture
def docker_secret(aws: None) -> str:
    return create_secret("ecr-pullthroughcache/docker-hub")


# Create


def test_create_answers_the_prefix_and_attributes(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any
) -> None:
    answer = invoke(make_event(response_endpoint, "Create", ECR_PUBLIC))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"] == "ecr-public"
    assert answer["Data"] == {
        "EcrRepositoryPrefix": "ecr-public",
        "UpstreamRegistryUrl": "public.ecr.aws",
        "UpstreamRegistry": "ecr-public",
        "RegistryId": ACCOUNT_ID,
        "RepositoryUriPrefix": f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com/ecr-public",
    }
    assert rules(ecr)["ecr-public"]["upstreamRegistryUrl"] == "public.ecr.aws"


def test_create_with_credential(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, docker_secret: str
) -> None:
    answer = invoke(make_event(response_endpoint, "Create", docker_hub(docker_secret)))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert rules(ecr)["docker-hub"]["credentialArn"] == docker_secret
    assert faults.count("ValidatePullThroughCacheRule") == 1


def test_trailing_slash_in_prefix_is_implied(invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any) -> None:
    answer = invoke(make_event(response_endpoint, "Create", {**QUAY, "EcrRepositoryPrefix": "mirror/quay/"}))

    assert answer["PhysicalResourceId"] == "mirror/quay"
    assert "mirror/quay" in rules(ecr)


def test_root_prefix_for_the_same_accounts_ecr(invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any) -> None:
    properties = {"EcrRepositoryPrefix": "ROOT", "UpstreamRegistryUrl": SAME_ACCOUNT_ECR, "UpstreamRegistry": "ecr"}
    answer = invoke(make_event(response_endpoint, "Create", properties))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["Data"]["RepositoryUriPrefix"] == f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com"


def test_cross_account_ecr_with_role_and_upstream_prefix(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any
) -> None:
    properties = {
        "EcrRepositoryPrefix": "team-a",
        "UpstreamRegistryUrl": OTHER_ACCOUNT_ECR,
        "UpstreamRegistry": "ecr",
        "CustomRoleArn": ROLE_ARN,
        "UpstreamRepositoryPrefix": "shared/base",
    }
    answer = invoke(make_event(response_endpoint, "Create", properties))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    rule = rules(ecr)["team-a"]
    assert (rule["customRoleArn"], rule["upstreamRepositoryPrefix"]) == (ROLE_ARN, "shared/base")


def test_validate_given_as_the_string_false_skips_validation(
    invoke: Invoke, response_endpoint: ResponseEndpoint
) -> None:
    answer = invoke(make_event(response_endpoint, "Create", {**ECR_PUBLIC, "Validate": "false"}))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert faults.count("ValidatePullThroughCacheRule") == 0


def test_rejected_credentials_fail_the_create_and_leave_nothing(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, docker_secret: str
) -> None:
    faults.reject_upstream_credentials("docker-hub", "Authentication failed: incorrect username or token")

    answer = invoke(make_event(response_endpoint, "Create", docker_hub(docker_secret)))

    assert answer["Status"] == "FAILED"
    assert "Authentication failed: incorrect username or token" in answer["Reason"]
    assert answer["PhysicalResourceId"].startswith("failed-create:")
    assert rules(ecr) == {}
    rollback = invoke(
        make_event(response_endpoint, "Delete", docker_hub(docker_secret), physical_id=answer["PhysicalResourceId"])
    )
    assert rollback["Status"] == "SUCCESS"


def test_create_over_an_existing_rule_fails_and_its_rollback_keeps_the_rule(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any
) -> None:
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io")
    before = rules(ecr)["quay"]

    answer = invoke(make_event(response_endpoint, "Create", {**ECR_PUBLIC, "EcrRepositoryPrefix": "quay"}))

    assert answer["Status"] == "FAILED"
    assert "already exists" in answer["Reason"]
    assert "quay.io" in answer["Reason"]
    assert answer["PhysicalResourceId"].startswith("failed-create:")
    rollback = invoke(
        make_event(
            response_endpoint,
            "Delete",
            {**ECR_PUBLIC, "EcrRepositoryPrefix": "quay"},
            physical_id=answer["PhysicalResourceId"],
        )
    )
    assert rollback["Status"] == "SUCCESS"
    assert rules(ecr)["quay"] == before


def test_an_identical_rule_nobody_owns_is_not_taken_over(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any
) -> None:
    issued = datetime.now(UTC) - timedelta(minutes=1)  # the rule is newer than the request, and still not ours
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="ecr-public", upstreamRegistryUrl="public.ecr.aws")

    answer = invoke(make_event(response_endpoint, "Create", ECR_PUBLIC, issued=issued))

    assert answer["Status"] == "FAILED"
    assert "already exists (upstream public.ecr.aws) and no stack using this provider owns it" in answer["Reason"]


def test_a_replayed_create_succeeds_with_the_rule_it_made(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any
) -> None:
    event = make_event(response_endpoint, "Create", ECR_PUBLIC)
    first = invoke(event)
    made = rules(ecr)["ecr-public"]
    response_endpoint.received.pop(event["RequestId"])

    replay = invoke(event)

    assert first["Status"] == replay["Status"] == "SUCCESS", replay["Reason"]
    assert replay["PhysicalResourceId"] == first["PhysicalResourceId"] == "ecr-public"
    assert rules(ecr) == {"ecr-public": made}  # the same rule, not a new one


def test_a_secret_not_yet_visible_to_ecr_is_retried(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, docker_secret: str
) -> None:
    faults.fail("CreatePullThroughCacheRule", "SecretNotFoundException", "Secret not found", times=2)

    answer = invoke(make_event(response_endpoint, "Create", docker_hub(docker_secret)))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert faults.count("CreatePullThroughCacheRule") == 3


@pytest.mark.parametrize("code", ["ThrottlingException", "ServerException"])
def test_throttling_and_server_errors_are_retried(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, code: str
) -> None:
    if code == "ThrottlingException":
        faults.throttle("CreatePullThroughCacheRule", times=1)
    else:
        faults.fail("CreatePullThroughCacheRule", code, "Internal error", times=1)

    answer = invoke(make_event(response_endpoint, "Create", ECR_PUBLIC))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert faults.count("CreatePullThroughCacheRule") == 2


def test_a_persistent_error_fails_with_ecrs_code(invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any) -> None:
    # botocore retries LimitExceededException as throttling; the quota error persists, so the request fails.
    faults.fail("CreatePullThroughCacheRule", "LimitExceededException", "50 rules per registry", times=100)

    answer = invoke(make_event(response_endpoint, "Create", ECR_PUBLIC))

    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith("LimitExceededException: 50 rules per registry")
    assert 1 < faults.count("CreatePullThroughCacheRule") < 10
    assert rules(ecr) == {}


def test_an_empty_credential_is_none(invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any) -> None:
    """template.yaml passes QuayCredentialArn straight through: '' when the parameter is left empty."""
    answer = invoke(make_event(response_endpoint, "Create", {**QUAY, "CredentialArn": ""}))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert "credentialArn" not in rules(ecr)["quay"]


# Update


def test_an_empty_credential_where_there_was_none_changes_nothing(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any
) -> None:
    """The update of a stack deployed before template.yaml's loop: Quay's rule had no CredentialArn, now ''."""
    invoke(make_event(response_endpoint, "Create", QUAY))
    faults.reset()

    answer = invoke(
        make_event(response_endpoint, "Update", {**QUAY, "CredentialArn": ""}, physical_id="quay", old_properties=QUAY)
    )

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"] == "quay"
    assert "credentialArn" not in rules(ecr)["quay"]
    assert faults.count("UpdatePullThroughCacheRule") == faults.count("DeletePullThroughCacheRule") == 0
    assert faults.count("CreatePullThroughCacheRule") == 0


def test_rotating_the_credential_updates_in_place(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, docker_secret: str
) -> None:
    rotated = create_secret("ecr-pullthroughcache/docker-hub-rotated")
    invoke(make_event(response_endpoint, "Create", docker_hub(docker_secret)))

    answer = invoke(
        make_event(
            response_endpoint,
            "Update",
            docker_hub(rotated),
            physical_id="docker-hub",
            old_properties=docker_hub(docker_secret),
        )
    )

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"] == "docker-hub"
    assert rules(ecr)["docker-hub"]["credentialArn"] == rotated
    assert faults.count("UpdatePullThroughCacheRule") == 1
    assert faults.count("DeletePullThroughCacheRule") == 0


def test_a_rejected_rotation_puts_the_old_credential_back(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, docker_secret: str
) -> None:
    rotated = create_secret("ecr-pullthroughcache/docker-hub-rotated")
    invoke(make_event(response_endpoint, "Create", docker_hub(docker_secret)))
    faults.reject_upstream_credentials("docker-hub", "Authentication failed")
    event = make_event(
        response_endpoint,
        "Update",
        docker_hub(rotated),
        physical_id="docker-hub",
        old_properties=docker_hub(docker_secret),
    )

    answer = invoke(event)

    assert answer["Status"] == "FAILED"
    assert answer["PhysicalResourceId"] == "docker-hub"
    assert rules(ecr)["docker-hub"]["credentialArn"] == docker_secret


def test_a_new_upstream_under_the_same_prefix_replaces_the_rule_and_keeps_the_id(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any
) -> None:
    mirror_public = {**ECR_PUBLIC, "EcrRepositoryPrefix": "mirror"}
    mirror_quay = {**QUAY, "EcrRepositoryPrefix": "mirror"}
    invoke(make_event(response_endpoint, "Create", mirror_public))

    answer = invoke(
        make_event(response_endpoint, "Update", mirror_quay, physical_id="mirror", old_properties=mirror_public)
    )

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"] == "mirror"
    assert rules(ecr)["mirror"]["upstreamRegistryUrl"] == "quay.io"


def test_a_failed_replacement_puts_the_old_rule_back(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, docker_secret: str
) -> None:
    mirror_public = {**ECR_PUBLIC, "EcrRepositoryPrefix": "mirror"}
    invoke(make_event(response_endpoint, "Create", mirror_public))
    faults.fail("CreatePullThroughCacheRule", "UnableToAccessSecretException", "Access denied to the secret", times=1)
    event = make_event(
        response_endpoint,
        "Update",
        docker_hub(docker_secret, "mirror"),
        physical_id="mirror",
        old_properties=mirror_public,
    )

    answer = invoke(event)

    assert answer["Status"] == "FAILED"
    assert "UnableToAccessSecretException" in answer["Reason"]
    assert answer["PhysicalResourceId"] == "mirror"
    assert rules(ecr)["mirror"]["upstreamRegistryUrl"] == "public.ecr.aws"


def test_removing_a_credential_replaces_the_rule(invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any) -> None:
    secret = create_secret("ecr-pullthroughcache/quay")
    with_credential = {**QUAY, "CredentialArn": secret}
    invoke(make_event(response_endpoint, "Create", with_credential))

    answer = invoke(make_event(response_endpoint, "Update", QUAY, physical_id="quay", old_properties=with_credential))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert "credentialArn" not in rules(ecr)["quay"]


def test_a_new_prefix_makes_a_new_rule_and_the_old_goes_with_cloudformations_delete(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any
) -> None:
    invoke(make_event(response_endpoint, "Create", QUAY))
    renamed = {**QUAY, "EcrRepositoryPrefix": "quay-io"}

    answer = invoke(make_event(response_endpoint, "Update", renamed, physical_id="quay", old_properties=QUAY))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"] == "quay-io"
    assert set(rules(ecr)) == {"quay", "quay-io"}
    cleanup = invoke(make_event(response_endpoint, "Delete", QUAY, physical_id="quay"))
    assert cleanup["Status"] == "SUCCESS"
    assert set(rules(ecr)) == {"quay-io"}


def test_the_rollback_of_a_rename_returns_to_the_old_rule(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any
) -> None:
    invoke(make_event(response_endpoint, "Create", QUAY))
    renamed = {**QUAY, "EcrRepositoryPrefix": "quay-io"}
    invoke(make_event(response_endpoint, "Update", renamed, physical_id="quay", old_properties=QUAY))
    original = rules(ecr)["quay"]

    # Another resource fails; CloudFormation rolls back: the old properties, to the new physical resource.
    an_hour_later = datetime.now(UTC) + timedelta(hours=1)
    back = make_event(
        response_endpoint, "Update", QUAY, physical_id="quay-io", old_properties=renamed, issued=an_hour_later
    )
    answer = invoke(back)
    cleanup = invoke(
        make_event(
            response_endpoint, "Delete", renamed, physical_id="quay-io", issued=an_hour_later + timedelta(seconds=1)
        )
    )

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"] == "quay"
    assert cleanup["Status"] == "SUCCESS"
    assert rules(ecr) == {"quay": original}


def test_a_new_prefix_that_is_taken_fails_and_keeps_the_old_id(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any
) -> None:
    invoke(make_event(response_endpoint, "Create", QUAY))
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="taken", upstreamRegistryUrl="public.ecr.aws")

    answer = invoke(
        make_event(
            response_endpoint,
            "Update",
            {**QUAY, "EcrRepositoryPrefix": "taken"},
            physical_id="quay",
            old_properties=QUAY,
        )
    )

    assert answer["Status"] == "FAILED"
    assert answer["PhysicalResourceId"] == "quay"
    assert rules(ecr)["taken"]["upstreamRegistryUrl"] == "public.ecr.aws"


def test_a_rule_deleted_outside_cloudformation_is_made_again(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any
) -> None:
    invoke(make_event(response_endpoint, "Create", QUAY))
    ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="quay")

    answer = invoke(
        make_event(response_endpoint, "Update", {**QUAY, "Validate": "false"}, physical_id="quay", old_properties=QUAY)
    )

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert "quay" in rules(ecr)


def test_an_update_that_changes_nothing_in_ecr_calls_no_write(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any
) -> None:
    invoke(make_event(response_endpoint, "Create", QUAY))

    answer = invoke(
        make_event(response_endpoint, "Update", {**QUAY, "Validate": "false"}, physical_id="quay", old_properties=QUAY)
    )

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert faults.count("CreatePullThroughCacheRule") == 1
    assert faults.count("UpdatePullThroughCacheRule") == faults.count("DeletePullThroughCacheRule") == 0


def test_an_update_with_bad_properties_changes_nothing(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any
) -> None:
    invoke(make_event(response_endpoint, "Create", QUAY))
    before = rules(ecr)

    answer = invoke(
        make_event(
            response_endpoint, "Update", {**QUAY, "UpstreamRegistry": "nope"}, physical_id="quay", old_properties=QUAY
        )
    )

    assert answer["Status"] == "FAILED"
    assert answer["PhysicalResourceId"] == "quay"
    assert rules(ecr) == before


# Delete


def test_delete_removes_the_rule_and_is_idempotent(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any
) -> None:
    invoke(make_event(response_endpoint, "Create", QUAY))

    first = invoke(make_event(response_endpoint, "Delete", QUAY, physical_id="quay"))
    second = invoke(make_event(response_endpoint, "Delete", QUAY, physical_id="quay"))

    assert first["Status"] == second["Status"] == "SUCCESS"
    assert first["PhysicalResourceId"] == "quay"
    assert rules(ecr) == {}


def test_delete_with_properties_that_no_longer_validate_still_succeeds(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any
) -> None:
    invoke(make_event(response_endpoint, "Create", QUAY))

    answer = invoke(make_event(response_endpoint, "Delete", {**QUAY, "Unknown": "x"}, physical_id="quay"))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert rules(ecr) == {}


def test_delete_of_a_failed_create_touches_nothing(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any
) -> None:
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io")

    answer = invoke(make_event(response_endpoint, "Delete", QUAY, physical_id="failed-create:0b5e8f1c"))

    assert answer["Status"] == "SUCCESS"
    assert "quay" in rules(ecr)
    assert faults.count("DeletePullThroughCacheRule") == 0


def test_time_running_out_after_the_rule_was_made_hands_it_to_the_rollback(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ecr_cache_provider.deadline import Deadline
    from ecr_cache_provider.failures import DeadlineApproaching

    real_check = Deadline.check

    def out_of_time_after_create(self: Deadline, doing: str) -> None:
        if "Validate" in doing or "Delete" in doing:
            raise DeadlineApproaching(f"Stopped before {doing}: the Lambda function is about to time out")
        real_check(self, doing)

    monkeypatch.setattr(Deadline, "check", out_of_time_after_create)

    answer = invoke(make_event(response_endpoint, "Create", QUAY))

    assert answer["Status"] == "FAILED"
    assert "about to time out" in answer["Reason"]
    assert answer["PhysicalResourceId"] == "quay"  # made but not undone: the rollback's Delete removes it
    monkeypatch.undo()
    rollback = invoke(make_event(response_endpoint, "Delete", QUAY, physical_id=answer["PhysicalResourceId"]))
    assert rollback["Status"] == "SUCCESS"
    assert rules(ecr) == {}
