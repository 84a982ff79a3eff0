"""Tests of the moto ECR extension (pull-through cache rules, creation templates, faults)."""

from __future__ import annotations

import json
import time
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from emulation import moto_ecr
from emulation.moto_ecr import faults

if TYPE_CHECKING:
    from collections.abc import Iterator

ACCOUNT = "123456789012"
REGION = "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/ecr-ptc"
PULL_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "Pull", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["ecr:BatchGetImage"]}],
}
LIFECYCLE = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "description": "expire untagged",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 7,
                },
                "action": {"type": "expire"},
            }
        ]
    }
)
NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})
UNVALIDATED = Config(parameter_validation=False, retries={"mode": "standard", "total_max_attempts": 1})


@cache
def client(service: str, region: str = REGION, config: Config = NO_RETRY, endpoint_url: str | None = None) -> Any:
    """Clients are cached: creating one costs ~0.15 s, and moto intercepts cached clients just the same."""
    make: Any = boto3.client
    return make(
        service,
        region_name=region,
        config=config,
        endpoint_url=endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def moto_mock(aws: None) -> None:
    """moto in-process with the extension (tests/conftest.py's `aws`; fake credentials are set there)."""


@pytest.fixture
def ecr(moto_mock: None) -> Any:
    return client("ecr")


@pytest.fixture
def ecr_raw(moto_mock: None) -> Any:
    """A client without client-side parameter validation, so the server-side checks are reached."""
    return client("ecr", config=UNVALIDATED)


def pages_of(describe: Any, **request: Any) -> list[dict[str, Any]]:
    """Every page of a describe call, following nextToken by hand so that each page the emulation made is seen."""
    pages = [describe(**request)]
    while "nextToken" in pages[-1]:
        pages.append(describe(**request, nextToken=pages[-1]["nextToken"]))
    return pages


def make_secret(name: str = "ecr-pullthroughcache/docker-hub", value: Any = None) -> str:
    sm = client("secretsmanager")
    payload = value if value is not None else {"username": "user", "accessToken": "token"}
    secret_string = payload if isinstance(payload, str) else json.dumps(payload)
    return str(sm.create_secret(Name=name, SecretString=secret_string)["ARN"])


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


# --------------------------------------------------------------------------- installation


def test_install_is_idempotent(moto_mock: None) -> None:
    from moto.ecr.responses import ECRResponse

    first = ECRResponse.call_action
    moto_ecr.install()
    moto_ecr.install()
    assert ECRResponse.call_action is first
    assert moto_ecr.is_installed()


# --------------------------------------------------------------------------- pull-through cache: happy paths


def test_create_rule_infers_upstream_and_strips_slash(ecr: Any) -> None:
    resp = ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="ecr-public/", upstreamRegistryUrl="public.ecr.aws")
    assert resp["ecrRepositoryPrefix"] == "ecr-public"
    assert resp["upstreamRegistry"] == "ecr-public"
    assert resp["registryId"] == ACCOUNT
    assert "createdAt" in resp
    assert "upstreamRepositoryPrefix" not in resp


@pytest.mark.parametrize(
    ("url", "registry"),
    [
        ("public.ecr.aws", "ecr-public"),
        ("quay.io", "quay"),
        ("registry.k8s.io", "k8s"),
        ("registry-1.docker.io", "docker-hub"),
        ("ghcr.io", "github-container-registry"),
        ("registry.gitlab.com", "gitlab-container-registry"),
        ("myregistry.azurecr.io", "azure-container-registry"),
        ("cgr.dev", "chainguard"),
        ("210987654321.dkr.ecr.eu-west-1.amazonaws.com", "ecr"),
    ],
)
def test_infer_upstream_registry(url: str, registry: str) -> None:
    assert moto_ecr.infer_upstream_registry(url) == registry


def test_create_rule_with_credentials(ecr: Any) -> None:
    arn = make_secret()
    resp = ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="docker-hub", upstreamRegistryUrl="registry-1.docker.io", credentialArn=arn
    )
    assert resp["upstreamRegistry"] == "docker-hub"
    assert resp["credentialArn"] == arn


def test_create_ecr_upstream_rule(ecr: Any) -> None:
    resp = ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="upstream",
        upstreamRegistryUrl="210987654321.dkr.ecr.eu-west-1.amazonaws.com",
        upstreamRegistry="ecr",
        customRoleArn=ROLE,
        upstreamRepositoryPrefix="team-a/",
    )
    assert resp["upstreamRepositoryPrefix"] == "team-a"
    assert resp["customRoleArn"] == ROLE
    root = ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="ROOT", upstreamRegistryUrl=f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com"
    )
    assert root["upstreamRepositoryPrefix"] == "ROOT"


def test_describe_rules(ecr: Any) -> None:
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io")
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="k8s", upstreamRegistryUrl="registry.k8s.io")
    rules = ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"]
    assert [r["ecrRepositoryPrefix"] for r in rules] == ["k8s", "quay"]
    assert {"createdAt", "updatedAt", "registryId", "upstreamRegistry", "upstreamRegistryUrl"} <= rules[0].keys()
    only = ecr.describe_pull_through_cache_rules(ecrRepositoryPrefixes=["quay/"])["pullThroughCacheRules"]
    assert [r["ecrRepositoryPrefix"] for r in only] == ["quay"]


def test_describe_rules_pagination(ecr: Any) -> None:
    for i in range(7):
        ecr.create_pull_through_cache_rule(ecrRepositoryPrefix=f"p{i}", upstreamRegistryUrl="quay.io")
    pages = pages_of(ecr.describe_pull_through_cache_rules, maxResults=3)
    seen = [r["ecrRepositoryPrefix"] for page in pages for r in page["pullThroughCacheRules"]]
    assert len(pages) == 3
    assert sorted(seen) == [f"p{i}" for i in range(7)]
    assert len(seen) == 7
    paginated = ecr.get_paginator("describe_pull_through_cache_rules").paginate(PaginationConfig={"PageSize": 2})
    assert sum(len(p["pullThroughCacheRules"]) for p in paginated) == 7


def test_update_rule(ecr: Any) -> None:
    old = make_secret("ecr-pullthroughcache/old")
    new = make_secret("ecr-pullthroughcache/new")
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="ghcr", upstreamRegistryUrl="ghcr.io", credentialArn=old)
    created = ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"][0]
    time.sleep(0.01)
    resp = ecr.update_pull_through_cache_rule(ecrRepositoryPrefix="ghcr", credentialArn=new)
    assert resp["credentialArn"] == new
    assert resp["updatedAt"] > created["createdAt"]
    rule = ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"][0]
    assert rule["credentialArn"] == new
    assert rule["upstreamRegistryUrl"] == "ghcr.io"


def test_update_ecr_rule_role(ecr: Any) -> None:
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="mirror",
        upstreamRegistryUrl="210987654321.dkr.ecr.us-east-1.amazonaws.com",
        customRoleArn=ROLE,
    )
    other = f"arn:aws:iam::{ACCOUNT}:role/other"
    assert (
        ecr.update_pull_through_cache_rule(ecrRepositoryPrefix="mirror", customRoleArn=other)["customRoleArn"] == other
    )


def test_delete_rule(ecr: Any) -> None:
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io")
    resp = ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="quay")
    assert resp["ecrRepositoryPrefix"] == "quay"
    assert resp["upstreamRegistryUrl"] == "quay.io"
    assert ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"] == []


def test_validate_rule(ecr: Any) -> None:
    arn = make_secret()
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="docker-hub", upstreamRegistryUrl="registry-1.docker.io", credentialArn=arn
    )
    resp = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub")
    assert resp["isValid"] is True
    assert resp["credentialArn"] == arn
    assert resp["upstreamRegistryUrl"] == "registry-1.docker.io"


def test_validate_rule_secret_deleted_afterwards(ecr: Any) -> None:
    arn = make_secret()
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="docker-hub", upstreamRegistryUrl="registry-1.docker.io", credentialArn=arn
    )
    client("secretsmanager").delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    resp = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub")
    assert resp["isValid"] is False
    assert resp["failure"].startswith("Unable to access the secret")


def test_validate_rule_answers_only_what_the_model_documents(ecr: Any) -> None:
    """ValidatePullThroughCacheRule's output: the rule's fields, isValid, and failure only when it is not valid
    (botocore's ECR model, ValidatePullThroughCacheRuleResponse)."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("ecr")
    output = model.operation_model("ValidatePullThroughCacheRule").output_shape
    assert output is not None
    members = set(output.members)
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="ecr-public", upstreamRegistryUrl="public.ecr.aws")
    valid = {key: value for key, value in ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="ecr-public")
             .items() if key != "ResponseMetadata"}  # fmt: skip
    assert set(valid) <= members
    assert valid["isValid"] is True
    assert "failure" not in valid
    faults.reject_upstream_credentials("ecr-public")
    refused = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="ecr-public")
    assert set(refused) - {"ResponseMetadata"} <= members
    assert refused["isValid"] is False
    assert refused["failure"] == faults.DEFAULT_REJECTION_FAILURE


def test_validate_rule_secret_whose_value_was_broken_afterwards(ecr: Any) -> None:
    """A secret edited after the rule was made (no accessToken any more): the rule stays, and validation says
    why ECR cannot use it, as a failure string (not an error)."""
    arn = make_secret()
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="docker-hub", upstreamRegistryUrl="registry-1.docker.io", credentialArn=arn
    )
    client("secretsmanager").put_secret_value(SecretId=arn, SecretString=json.dumps({"username": "u"}))
    resp = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub")
    assert resp["isValid"] is False
    assert resp["failure"].startswith(f"Unable to access the secret '{arn}'")


def test_validate_rule_whose_token_the_upstream_revoked_until_the_secret_is_rotated(ecr: Any) -> None:
    """A revoked token: the secret still reads and its syntax is right, so Create and Update accept it, but the
    upstream login fails (ValidatePullThroughCacheRule's third step); a new value (a rotated token) logs in again."""
    arn = make_secret()
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="docker-hub", upstreamRegistryUrl="registry-1.docker.io", credentialArn=arn
    )
    secrets = client("secretsmanager")
    secret = json.loads(secrets.get_secret_value(SecretId=arn)["SecretString"])
    faults.revoke_upstream_credentials(arn, secret["accessToken"])

    refused = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub")
    assert refused["isValid"] is False
    assert refused["failure"] == faults.DEFAULT_REJECTION_FAILURE
    ecr.update_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub", credentialArn=arn)  # the syntax is fine
    secrets.put_secret_value(SecretId=arn, SecretString=json.dumps({"username": "user", "accessToken": "rotated"}))
    assert ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub")["isValid"] is True


def test_rules_are_per_region(ecr: Any) -> None:
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io")
    other = client("ecr", region="eu-west-1")
    assert other.describe_pull_through_cache_rules()["pullThroughCacheRules"] == []


# --------------------------------------------------------------------------- pull-through cache: errors


@pytest.mark.parametrize(
    "prefix",
    ["Upper", "bad//slash", "a" * 31, "-lead", "x"],
)
def test_create_rule_invalid_prefix(ecr_raw: Any, prefix: str) -> None:
    with pytest.raises(ClientError) as exc:
        ecr_raw.create_pull_through_cache_rule(ecrRepositoryPrefix=prefix, upstreamRegistryUrl="quay.io")
    assert error_code(exc) == "ValidationException"
    assert f"Value '{prefix}' at 'ecrRepositoryPrefix' failed to satisfy constraint" in str(exc.value)
    assert str(exc.value).count("1 validation error detected") == 1


def test_create_rule_invalid_upstream_prefix(ecr_raw: Any) -> None:
    with pytest.raises(ClientError) as exc:
        ecr_raw.create_pull_through_cache_rule(
            ecrRepositoryPrefix="mirror",
            upstreamRegistryUrl=f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com",
            upstreamRepositoryPrefix="NOPE",
        )
    assert error_code(exc) == "ValidationException"


def test_create_rule_invalid_upstream_registry_enum(ecr_raw: Any) -> None:
    with pytest.raises(ClientError) as exc:
        ecr_raw.create_pull_through_cache_rule(
            ecrRepositoryPrefix="x1", upstreamRegistryUrl="quay.io", upstreamRegistry="harbor"
        )
    assert error_code(exc) == "ValidationException"
    assert "enum value set" in str(exc.value)


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:other/name-abcdef",
        "arn:aws:secretsmanager:short",  # shorter than 50
    ],
)
def test_create_rule_invalid_credential_arn(ecr_raw: Any, arn: str) -> None:
    with pytest.raises(ClientError) as exc:
        ecr_raw.create_pull_through_cache_rule(
            ecrRepositoryPrefix="docker", upstreamRegistryUrl="registry-1.docker.io", credentialArn=arn
        )
    assert error_code(exc) == "ValidationException"
    assert "at 'credentialArn'" in str(exc.value)


def test_create_rule_custom_role_too_long(ecr_raw: Any) -> None:
    with pytest.raises(ClientError) as exc:
        ecr_raw.create_pull_through_cache_rule(
            ecrRepositoryPrefix="mirror",
            upstreamRegistryUrl=f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com",
            customRoleArn="arn:aws:iam::123456789012:role/" + "r" * 2048,
        )
    assert error_code(exc) == "ValidationException"
    assert "less than or equal to 2048" in str(exc.value)


def test_create_rule_unknown_url(ecr: Any) -> None:
    with pytest.raises(ClientError) as exc:
        ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="foo", upstreamRegistryUrl="registry.example.com")
    assert error_code(exc) == "UnsupportedUpstreamRegistryException"


def test_create_rule_registry_url_mismatch(ecr: Any) -> None:
    with pytest.raises(ClientError) as exc:
        ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix="foo", upstreamRegistryUrl="quay.io", upstreamRegistry="k8s"
        )
    assert error_code(exc) == "InvalidParameterException"


@pytest.mark.parametrize(
    "url",
    ["registry-1.docker.io", "ghcr.io", "registry.gitlab.com", "example.azurecr.io", "cgr.dev"],
)
def test_create_rule_requires_authentication(ecr: Any, url: str) -> None:
    with pytest.raises(ClientError) as exc:
        ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="auth", upstreamRegistryUrl=url)
    assert error_code(exc) == "UnsupportedUpstreamRegistryException"
    assert "requires authentication" in exc.value.response["Error"]["Message"]


def test_upstream_prefix_only_for_ecr(ecr: Any) -> None:
    with pytest.raises(ClientError) as exc:
        ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io", upstreamRepositoryPrefix="team"
        )
    assert error_code(exc) == "InvalidParameterException"


def test_upstream_prefix_not_with_root(ecr: Any) -> None:
    with pytest.raises(ClientError) as exc:
        ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix="ROOT",
            upstreamRegistryUrl=f"{ACCOUNT}.dkr.ecr.us-west-2.amazonaws.com",
            upstreamRepositoryPrefix="team",
        )
    assert error_code(exc) == "InvalidParameterException"


def test_custom_role_only_for_ecr(ecr: Any) -> None:
    with pytest.raises(ClientError) as exc:
        ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io", customRoleArn=ROLE
        )
    assert error_code(exc) == "InvalidParameterException"


def test_cross_account_ecr_upstream_needs_role(ecr: Any) -> None:
    with pytest.raises(ClientError) as exc:
        ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix="mirror", upstreamRegistryUrl="210987654321.dkr.ecr.us-east-1.amazonaws.com"
        )
    assert error_code(exc) == "InvalidParameterException"


def test_create_rule_secret_not_found(ecr: Any) -> None:
    arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:ecr-pullthroughcache/missing-AbCdEf"
    with pytest.raises(ClientError) as exc:
        ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix="docker-hub", upstreamRegistryUrl="registry-1.docker.io", credentialArn=arn
        )
    assert error_code(exc) == "SecretNotFoundException"


@pytest.mark.parametrize("value", ["not json", {"username": "u"}, {"accessToken": "t"}, ["u", "t"]])
def test_create_rule_secret_unusable(ecr: Any, value: Any) -> None:
    arn = make_secret(value=value)
    with pytest.raises(ClientError) as exc:
        ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix="docker-hub", upstreamRegistryUrl="registry-1.docker.io", credentialArn=arn
        )
    assert error_code(exc) == "UnableToAccessSecretException"


def test_create_rule_duplicate(ecr: Any) -> None:
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io")
    with pytest.raises(ClientError) as exc:
        ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay/", upstreamRegistryUrl="quay.io")
    assert error_code(exc) == "PullThroughCacheRuleAlreadyExistsException"


def test_create_rule_limit(ecr: Any) -> None:
    for i in range(moto_ecr.PULL_THROUGH_CACHE_RULE_LIMIT):
        ecr.create_pull_through_cache_rule(ecrRepositoryPrefix=f"r{i}", upstreamRegistryUrl="quay.io")
    with pytest.raises(ClientError) as exc:
        ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="one-more", upstreamRegistryUrl="quay.io")
    assert error_code(exc) == "LimitExceededException"


@pytest.mark.parametrize("operation", ["update", "delete", "validate", "describe"])
def test_rule_not_found(ecr: Any, operation: str) -> None:
    calls = {
        "update": lambda: ecr.update_pull_through_cache_rule(ecrRepositoryPrefix="nope", customRoleArn=ROLE),
        "delete": lambda: ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="nope"),
        "validate": lambda: ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="nope"),
        "describe": lambda: ecr.describe_pull_through_cache_rules(ecrRepositoryPrefixes=["nope"]),
    }
    with pytest.raises(ClientError) as exc:
        calls[operation]()
    assert error_code(exc) == "PullThroughCacheRuleNotFoundException"


def test_update_rule_needs_a_change(ecr: Any) -> None:
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io")
    with pytest.raises(ClientError) as exc:
        ecr.update_pull_through_cache_rule(ecrRepositoryPrefix="quay")
    assert error_code(exc) == "InvalidParameterException"


def test_update_rule_secret_not_found(ecr: Any) -> None:
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="docker-hub", upstreamRegistryUrl="registry-1.docker.io", credentialArn=make_secret()
    )
    missing = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:ecr-pullthroughcache/gone-AbCdEf"
    with pytest.raises(ClientError) as exc:
        ecr.update_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub", credentialArn=missing)
    assert error_code(exc) == "SecretNotFoundException"


@pytest.mark.parametrize("max_results", [0, 1001])
def test_describe_rules_max_results_bounds(ecr_raw: Any, max_results: int) -> None:
    with pytest.raises(ClientError) as exc:
        ecr_raw.describe_pull_through_cache_rules(maxResults=max_results)
    assert error_code(exc) == "ValidationException"
    assert "at 'maxResults'" in str(exc.value)


def test_describe_rules_too_many_prefixes(ecr_raw: Any) -> None:
    with pytest.raises(ClientError) as exc:
        ecr_raw.describe_pull_through_cache_rules(ecrRepositoryPrefixes=[f"p{i}" for i in range(101)])
    assert error_code(exc) == "ValidationException"


def test_describe_rules_invalid_token(ecr: Any) -> None:
    with pytest.raises(ClientError) as exc:
        ecr.describe_pull_through_cache_rules(nextToken="garbage!")
    assert error_code(exc) == "InvalidParameterException"


# --------------------------------------------------------------------------- repository creation templates


def test_template_crud(ecr: Any) -> None:
    created = ecr.create_repository_creation_template(
        prefix="ecr-public/",
        description="public mirrors",
        appliedFor=["PULL_THROUGH_CACHE"],
        imageTagMutability="IMMUTABLE",
        lifecyclePolicy=LIFECYCLE,
        resourceTags=[{"Key": "team", "Value": "platform"}],
        customRoleArn=ROLE,
    )
    assert created["registryId"] == ACCOUNT
    template = created["repositoryCreationTemplate"]
    assert template["prefix"] == "ecr-public"
    assert template["encryptionConfiguration"] == {"encryptionType": "AES256"}
    assert {"createdAt", "updatedAt"} <= template.keys()

    described = ecr.describe_repository_creation_templates(prefixes=["ecr-public"])
    assert described["registryId"] == ACCOUNT
    assert described["repositoryCreationTemplates"][0]["lifecyclePolicy"] == LIFECYCLE

    updated = ecr.update_repository_creation_template(prefix="ecr-public", description="changed")
    tmpl = updated["repositoryCreationTemplate"]
    assert tmpl["description"] == "changed"
    assert tmpl["imageTagMutability"] == "IMMUTABLE"
    assert tmpl["lifecyclePolicy"] == LIFECYCLE
    assert tmpl["updatedAt"] >= tmpl["createdAt"]

    deleted = ecr.delete_repository_creation_template(prefix="ecr-public")
    assert deleted["repositoryCreationTemplate"]["description"] == "changed"
    assert ecr.describe_repository_creation_templates()["repositoryCreationTemplates"] == []


def test_template_pagination(ecr: Any) -> None:
    for i in range(7):
        ecr.create_repository_creation_template(prefix=f"t{i}", appliedFor=["PULL_THROUGH_CACHE"])
    pages = pages_of(ecr.describe_repository_creation_templates, maxResults=3)
    seen = [t["prefix"] for page in pages for t in page["repositoryCreationTemplates"]]
    assert len(pages) == 3
    assert sorted(seen) == [f"t{i}" for i in range(7)]
    assert len(seen) == 7


def test_template_describe_unknown_prefix_is_empty(ecr: Any) -> None:
    assert ecr.describe_repository_creation_templates(prefixes=["nope"])["repositoryCreationTemplates"] == []


def test_template_duplicate(ecr: Any) -> None:
    ecr.create_repository_creation_template(prefix="ROOT", appliedFor=["PULL_THROUGH_CACHE"])
    with pytest.raises(ClientError) as exc:
        ecr.create_repository_creation_template(prefix="ROOT", appliedFor=["REPLICATION"])
    assert error_code(exc) == "TemplateAlreadyExistsException"


@pytest.mark.parametrize("operation", ["update", "delete"])
def test_template_not_found(ecr: Any, operation: str) -> None:
    calls = {
        "update": lambda: ecr.update_repository_creation_template(prefix="nope", description="x"),
        "delete": lambda: ecr.delete_repository_creation_template(prefix="nope"),
    }
    with pytest.raises(ClientError) as exc:
        calls[operation]()
    assert error_code(exc) == "TemplateNotFoundException"


def test_template_limit(ecr: Any) -> None:
    for i in range(moto_ecr.REPOSITORY_CREATION_TEMPLATE_LIMIT):
        ecr.create_repository_creation_template(prefix=f"t{i}", appliedFor=["REPLICATION"])
    with pytest.raises(ClientError) as exc:
        ecr.create_repository_creation_template(prefix="extra", appliedFor=["REPLICATION"])
    assert error_code(exc) == "LimitExceededException"


@pytest.mark.parametrize(
    ("kwargs", "where"),
    [
        ({"prefix": "Bad Prefix"}, "prefix"),
        ({"prefix": "p" * 257}, "prefix"),
        ({"appliedFor": ["SOMETIMES"]}, "appliedFor"),
        ({"description": "d" * 257}, "description"),
        ({"lifecyclePolicy": "x" * 30721}, "lifecyclePolicy"),
        ({"repositoryPolicy": "x" * 10241}, "repositoryPolicy"),
        ({"imageTagMutability": "SOMETIMES"}, "imageTagMutability"),
        ({"encryptionConfiguration": {"encryptionType": "ROT13"}}, "encryptionConfiguration.encryptionType"),
        ({"customRoleArn": "r" * 2049}, "customRoleArn"),
    ],
)
def test_template_validation(ecr_raw: Any, kwargs: dict[str, Any], where: str) -> None:
    params: dict[str, Any] = {"prefix": "valid", "appliedFor": ["PULL_THROUGH_CACHE"], **kwargs}
    with pytest.raises(ClientError) as exc:
        ecr_raw.create_repository_creation_template(**params)
    assert error_code(exc) == "ValidationException"
    assert f"at '{where}'" in str(exc.value)


def test_template_max_results_bounds(ecr_raw: Any) -> None:
    with pytest.raises(ClientError) as exc:
        ecr_raw.describe_repository_creation_templates(maxResults=1001)
    assert error_code(exc) == "ValidationException"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"appliedFor": []},
        {"encryptionConfiguration": {"encryptionType": "KMS"}},
        {"resourceTags": [{"Key": "a", "Value": "b"}]},
        {"lifecyclePolicy": "{not json"},
        {"imageTagMutability": "IMMUTABLE_WITH_EXCLUSION"},
        {"customRoleArn": "arn:aws:iam::999999999999:role/elsewhere"},
    ],
)
def test_template_invalid_parameter(ecr: Any, kwargs: dict[str, Any]) -> None:
    params: dict[str, Any] = {"prefix": "valid", "appliedFor": ["PULL_THROUGH_CACHE"], **kwargs}
    with pytest.raises(ClientError) as exc:
        ecr.create_repository_creation_template(**params)
    assert error_code(exc) == "InvalidParameterException"


def test_template_kms_with_role(ecr: Any) -> None:
    resp = ecr.create_repository_creation_template(
        prefix="secure",
        appliedFor=["PULL_THROUGH_CACHE"],
        encryptionConfiguration={"encryptionType": "KMS"},
        customRoleArn=ROLE,
    )
    assert resp["repositoryCreationTemplate"]["encryptionConfiguration"]["encryptionType"] == "KMS"


def test_template_update_revalidates(ecr: Any) -> None:
    ecr.create_repository_creation_template(prefix="plain", appliedFor=["PULL_THROUGH_CACHE"])
    with pytest.raises(ClientError) as exc:
        ecr.update_repository_creation_template(prefix="plain", resourceTags=[{"Key": "a", "Value": "b"}])
    assert error_code(exc) == "InvalidParameterException"


# --------------------------------------------------------------------------- simulate_cached_pull


def test_simulate_cached_pull_applies_template(ecr: Any) -> None:
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="ecr-public", upstreamRegistryUrl="public.ecr.aws")
    ecr.create_repository_creation_template(
        prefix="ROOT", appliedFor=["PULL_THROUGH_CACHE"], lifecyclePolicy=json.dumps({"rules": []})
    )
    ecr.create_repository_creation_template(
        prefix="ecr-public",
        appliedFor=["PULL_THROUGH_CACHE"],
        lifecyclePolicy=LIFECYCLE,
        imageTagMutability="IMMUTABLE",
        resourceTags=[{"Key": "cache", "Value": "yes"}],
        customRoleArn=ROLE,
    )
    ecr.create_repository_creation_template(
        prefix="ecr-public/library", appliedFor=["REPLICATION"], lifecyclePolicy=json.dumps({"rules": []})
    )
    moto_ecr.simulate_cached_pull(ACCOUNT, REGION, "ecr-public/library/nginx")
    repo = ecr.describe_repositories(repositoryNames=["ecr-public/library/nginx"])["repositories"][0]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert ecr.get_lifecycle_policy(repositoryName="ecr-public/library/nginx")["lifecyclePolicyText"] == LIFECYCLE
    assert ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"] == [{"Key": "cache", "Value": "yes"}]


def test_simulate_cached_pull_root_template_fallback(ecr: Any) -> None:
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io")
    ecr.create_repository_creation_template(prefix="ROOT", appliedFor=["PULL_THROUGH_CACHE"], lifecyclePolicy=LIFECYCLE)
    moto_ecr.simulate_cached_pull(ACCOUNT, REGION, "quay/coreos/etcd")
    assert ecr.get_lifecycle_policy(repositoryName="quay/coreos/etcd")["lifecyclePolicyText"] == LIFECYCLE


def test_simulate_cached_pull_without_template_uses_defaults(ecr: Any) -> None:
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io")
    moto_ecr.simulate_cached_pull(ACCOUNT, REGION, "quay/coreos/etcd")
    repo = ecr.describe_repositories(repositoryNames=["quay/coreos/etcd"])["repositories"][0]
    assert repo["imageTagMutability"] == "MUTABLE"
    with pytest.raises(ClientError) as exc:
        ecr.get_lifecycle_policy(repositoryName="quay/coreos/etcd")
    assert error_code(exc) == "LifecyclePolicyNotFoundException"


def test_simulate_cached_pull_needs_rule(ecr: Any) -> None:
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io")
    with pytest.raises(moto_ecr.NoMatchingPullThroughCacheRuleError):
        moto_ecr.simulate_cached_pull(ACCOUNT, REGION, "quayx/image")
    with pytest.raises(moto_ecr.NoMatchingPullThroughCacheRuleError):
        moto_ecr.simulate_cached_pull(ACCOUNT, REGION, "quay")


# --------------------------------------------------------------------------- faults


def test_fault_throttle_native_operation_is_retried(moto_mock: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda _seconds: None)  # skip the retry backoff
    retrying = client("ecr", config=Config(retries={"mode": "standard", "total_max_attempts": 3}))
    faults.throttle("DescribeRepositories", times=2)
    response = retrying.describe_repositories()
    assert response["repositories"] == []
    assert response["ResponseMetadata"]["RetryAttempts"] == 2
    assert faults.count("DescribeRepositories") == 3


@pytest.mark.parametrize(
    "operation", ["PutLifecyclePolicy", "GetLifecyclePolicy", "DeleteLifecyclePolicy", "CreatePullThroughCacheRule"]
)
def test_fault_throttle_any_operation(ecr: Any, operation: str) -> None:
    faults.throttle(operation, times=1)
    calls = {
        "PutLifecyclePolicy": lambda: ecr.put_lifecycle_policy(repositoryName="repo", lifecyclePolicyText=LIFECYCLE),
        "GetLifecyclePolicy": lambda: ecr.get_lifecycle_policy(repositoryName="repo"),
        "DeleteLifecyclePolicy": lambda: ecr.delete_lifecycle_policy(repositoryName="repo"),
        "CreatePullThroughCacheRule": lambda: ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io"
        ),
    }
    with pytest.raises(ClientError) as exc:
        calls[operation]()
    assert error_code(exc) == "ThrottlingException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_fault_throttle_in_bursts(ecr: Any) -> None:
    faults.throttle_in_bursts("DescribeRepositories", length=2, every=5)

    answers = []
    for _ in range(12):
        try:
            ecr.describe_repositories()
            answers.append((200, "ok"))
        except ClientError as error:
            answers.append((error.response["ResponseMetadata"]["HTTPStatusCode"], error.response["Error"]["Code"]))

    throttled = (400, "ThrottlingException")
    assert answers == [throttled, throttled, (200, "ok"), (200, "ok"), (200, "ok")] * 2 + [throttled, throttled]
    assert faults.throttled("DescribeRepositories") == 6
    assert faults.count("DescribeRepositories") == 12


def test_fault_throttled_counts_only_throttling(ecr: Any) -> None:
    faults.fail("DescribeRepositories", "ServerException", times=1)
    faults.throttle("DescribeRepositories", times=1)
    for _ in range(2):
        with pytest.raises(ClientError):
            ecr.describe_repositories()
    ecr.describe_repositories()

    assert faults.throttled("DescribeRepositories") == 1


def test_fault_server_exception(ecr: Any) -> None:
    faults.fail("describe_pull_through_cache_rules", "ServerException", "boom", times=1)
    with pytest.raises(ClientError) as exc:
        ecr.describe_pull_through_cache_rules()
    assert error_code(exc) == "ServerException"
    assert exc.value.response["Error"]["Message"] == "boom"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"] == []


def test_fault_custom_code(ecr: Any) -> None:
    faults.fail("UpdatePullThroughCacheRule", "SecretNotFoundException", "gone", times=2)
    for _ in range(2):
        with pytest.raises(ClientError) as exc:
            ecr.update_pull_through_cache_rule(ecrRepositoryPrefix="quay", customRoleArn=ROLE)
        assert error_code(exc) == "SecretNotFoundException"
    with pytest.raises(ClientError) as exc:
        ecr.update_pull_through_cache_rule(ecrRepositoryPrefix="quay", customRoleArn=ROLE)
    assert error_code(exc) == "PullThroughCacheRuleNotFoundException"


def test_fault_reject_upstream_credentials(ecr: Any) -> None:
    arn = make_secret()
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="docker-hub", upstreamRegistryUrl="registry-1.docker.io", credentialArn=arn
    )
    faults.reject_upstream_credentials("docker-hub", "Authentication failed: 401 Unauthorized")
    resp = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub")
    assert resp["isValid"] is False
    assert resp["failure"] == "Authentication failed: 401 Unauthorized"


def test_fault_latency(ecr: Any) -> None:
    faults.latency(0.2)
    start = time.monotonic()
    ecr.describe_repositories()
    assert time.monotonic() - start >= 0.2
    faults.latency(0)


def test_fault_rate_limit_throttles_beyond_the_quota(ecr_raw: Any) -> None:
    faults.rate_limit("DescribeRepositories", per_second=3)
    outcomes = []
    for _ in range(8):  # far faster than 3 a second
        try:
            ecr_raw.describe_repositories()
            outcomes.append("ok")
        except ClientError as error:
            outcomes.append(error.response["Error"]["Code"])
    assert outcomes[:3] == ["ok"] * 3
    assert "ThrottlingException" in outcomes[3:]
    assert outcomes.count("ok") <= 4
    faults.reset()
    ecr_raw.describe_repositories()


def test_fault_rate_limit_already_spent_throttles_the_first_call(ecr_raw: Any) -> None:
    faults.rate_limit("DescribeRepositories", per_second=1, already_spent=True)
    with pytest.raises(ClientError) as raised:
        ecr_raw.describe_repositories()
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    assert faults.throttled("DescribeRepositories") == 1
    faults.reset()


def test_fault_count_and_reset(ecr: Any) -> None:
    ecr.describe_repositories()
    ecr.describe_repositories()
    assert faults.count("DescribeRepositories") == 2
    faults.throttle("DescribeRepositories", 5)
    faults.reset()
    assert faults.count("DescribeRepositories") == 0
    ecr.describe_repositories()


def test_fault_unknown_operation_rejected() -> None:
    with pytest.raises(ValueError, match="Unknown ECR operation"):
        faults.throttle("DescribeRepositoriez", 1)


# --------------------------------------------------------------------------- ThreadedMotoServer


@pytest.fixture
def moto_server_url(moto_endpoint: str) -> str:
    """moto's threaded server with the extension (tests/conftest.py's `moto_endpoint`)."""
    return moto_endpoint


@pytest.fixture
def server_ecr(moto_server_url: str) -> Iterator[Any]:
    import requests

    faults.reset()
    requests.post(f"{moto_server_url}/moto-api/reset", timeout=10)
    yield client("ecr", endpoint_url=moto_server_url)
    faults.reset()


def test_server_create_and_describe_rule(server_ecr: Any) -> None:
    server_ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="k8s", upstreamRegistryUrl="registry.k8s.io")
    rules = server_ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"]
    assert [(r["ecrRepositoryPrefix"], r["upstreamRegistry"]) for r in rules] == [("k8s", "k8s")]
    with pytest.raises(ClientError) as exc:
        server_ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="k8s", upstreamRegistryUrl="registry.k8s.io")
    assert error_code(exc) == "PullThroughCacheRuleAlreadyExistsException"


def test_server_throttle_fault(server_ecr: Any) -> None:
    faults.throttle("DescribePullThroughCacheRules", times=1)
    with pytest.raises(ClientError) as exc:
        server_ecr.describe_pull_through_cache_rules()
    assert error_code(exc) == "ThrottlingException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert server_ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"] == []
    assert faults.count("DescribePullThroughCacheRules") == 2


def test_server_templates_and_cached_pull(server_ecr: Any) -> None:
    server_ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io")
    server_ecr.create_repository_creation_template(
        prefix="quay", appliedFor=["PULL_THROUGH_CACHE"], lifecyclePolicy=LIFECYCLE
    )
    moto_ecr.simulate_cached_pull(ACCOUNT, REGION, "quay/prometheus/node-exporter")
    policy = server_ecr.get_lifecycle_policy(repositoryName="quay/prometheus/node-exporter")
    assert policy["lifecyclePolicyText"] == LIFECYCLE


def test_describe_repositories_pages_like_ecr(ecr: Any) -> None:
    for index in range(7):
        ecr.create_repository(repositoryName=f"cache/image-{index}")

    pages = pages_of(ecr.describe_repositories, maxResults=3)
    names = [repository["repositoryName"] for page in pages for repository in page["repositories"]]

    assert names == [f"cache/image-{index}" for index in range(7)]
    assert [len(page["repositories"]) for page in pages] == [3, 3, 1]
    assert "nextToken" not in ecr.describe_repositories(repositoryNames=["cache/image-1"])


def test_describe_repositories_returns_100_by_default(ecr: Any) -> None:
    for index in range(101):
        ecr.create_repository(repositoryName=f"many/image-{index:03d}")

    response = ecr.describe_repositories()

    assert len(response["repositories"]) == 100
    assert "nextToken" in response


# --------------------------------------------------------------------------- template settings: clearing, every one


def test_template_update_clears_what_it_sends_empty(ecr: Any) -> None:
    """The model allows 0 characters for repositoryPolicy and lifecyclePolicy: an empty one clears it; a new
    imageTagMutability without exclusion filters drops the old filters; an empty tag list clears the tags."""
    ecr.create_repository_creation_template(
        prefix="team",
        appliedFor=["PULL_THROUGH_CACHE"],
        lifecyclePolicy=LIFECYCLE,
        repositoryPolicy=json.dumps(PULL_POLICY),
        resourceTags=[{"Key": "a", "Value": "b"}],
        imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=[{"filter": "latest", "filterType": "WILDCARD"}],
        customRoleArn=ROLE,
    )
    updated = ecr.update_repository_creation_template(
        prefix="team", lifecyclePolicy="", repositoryPolicy="", resourceTags=[], imageTagMutability="MUTABLE"
    )["repositoryCreationTemplate"]
    assert "lifecyclePolicy" not in updated
    assert "repositoryPolicy" not in updated
    assert updated["resourceTags"] == []
    assert (updated["imageTagMutability"], updated.get("imageTagMutabilityExclusionFilters")) == ("MUTABLE", None)
    assert updated["customRoleArn"] == ROLE  # not sent: kept


def test_simulate_cached_pull_applies_repository_policy_exclusions_and_encryption(ecr: Any) -> None:
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="ecr-public", upstreamRegistryUrl="public.ecr.aws")
    ecr.create_repository_creation_template(
        prefix="ecr-public",
        appliedFor=["PULL_THROUGH_CACHE"],
        repositoryPolicy=json.dumps(PULL_POLICY),
        imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=[{"filter": "latest", "filterType": "WILDCARD"}],
        encryptionConfiguration={"encryptionType": "KMS"},
        customRoleArn=ROLE,
    )
    moto_ecr.simulate_cached_pull(ACCOUNT, REGION, "ecr-public/library/nginx")
    repo = ecr.describe_repositories(repositoryNames=["ecr-public/library/nginx"])["repositories"][0]
    assert json.loads(ecr.get_repository_policy(repositoryName="ecr-public/library/nginx")["policyText"]) == PULL_POLICY
    assert repo["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert repo["imageTagMutabilityExclusionFilters"] == [{"filter": "latest", "filterType": "WILDCARD"}]
    assert repo["encryptionConfiguration"]["encryptionType"] == "KMS"


def test_repository_policy_validation_and_errors(ecr: Any) -> None:
    """What moto 5 itself models for repository policies and tag mutability, relied on by the settings type."""
    ecr.create_repository(repositoryName="team/app")
    with pytest.raises(ClientError) as missing:
        ecr.get_repository_policy(repositoryName="team/app")
    assert error_code(missing) == "RepositoryPolicyNotFoundException"
    with pytest.raises(ClientError) as invalid:
        ecr.set_repository_policy(repositoryName="team/app", policyText="{}")
    assert error_code(invalid) == "InvalidParameterException"
    with pytest.raises(ClientError) as bad_filters:
        ecr.put_image_tag_mutability(repositoryName="team/app", imageTagMutability="IMMUTABLE_WITH_EXCLUSION")
    assert error_code(bad_filters) == "InvalidParameterException"
