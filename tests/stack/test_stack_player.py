"""The whole stack, as `make local` plays it: template.yaml and samconfig.toml resolved like CloudFormation, every
custom resource through the real handler against moto. These catch what no single-handler test sees: a property
name, a boolean passed as a string, a condition that drops a rule, a replacement or rollback gone wrong."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from emulation.moto_ecr import faults
from tests.conftest import create_secret
from tests.stack.conftest import ROOT, Play
from tools.stack_player import LocalAws, RunResult, render
from tools.stack_player.__main__ import main
from tools.stack_player.progress import Progress
from tools.stack_player.state import load_state
from tools.stack_player.template import ParameterError, Template

pytestmark = pytest.mark.stack

DEFAULT_RULES = {"ecr-public": "public.ecr.aws", "k8s": "registry.k8s.io", "quay": "quay.io"}


def rules(aws: LocalAws) -> dict[str, dict[str, Any]]:
    described = aws.client("ecr").describe_pull_through_cache_rules()["pullThroughCacheRules"]
    return {rule["ecrRepositoryPrefix"]: rule for rule in described}


def actions(result: RunResult) -> list[tuple[str, str, str]]:
    """(logical id, action, status) of every custom resource request, in the order they were played."""
    return [
        (outcome.logical_id, outcome.action, outcome.status)
        for outcome in result.stack.outcomes
        if outcome.resource_type.startswith("Custom::")
    ]


def credential(name: str) -> str:
    return create_secret(f"ecr-pullthroughcache/{name}")


def test_default_parameters_create_the_three_public_caches(play: Play, local_aws: LocalAws, tmp_path: Path) -> None:
    result = play()

    assert result.succeeded, render(result.stack, result.registry)
    assert result.stack.stack_status == "CREATE_COMPLETE"
    assert actions(result) == [
        ("EcrPublicCacheRule", "Create", "SUCCEEDED"),
        ("QuayCacheRule", "Create", "SUCCEEDED"),
        ("K8sCacheRule", "Create", "SUCCEEDED"),
        ("EcrPublicCachedRepositorySettings", "Create", "SUCCEEDED"),  # each after its rule: it reads the rule's prefix
        ("QuayCachedRepositorySettings", "Create", "SUCCEEDED"),
        ("K8sCachedRepositorySettings", "Create", "SUCCEEDED"),
    ]
    templates = local_aws.client("ecr").describe_repository_creation_templates()["repositoryCreationTemplates"]
    assert sorted(template["prefix"] for template in templates) == sorted(DEFAULT_RULES)
    lifecycle = json.loads(templates[0]["lifecyclePolicy"])
    assert [rule["selection"]["countNumber"] for rule in lifecycle["rules"]] == [14, 100]  # numbers, not strings
    natives = {outcome.logical_id: outcome.status for outcome in result.stack.outcomes if outcome.action == "Native"}
    # The resources CloudFormation creates once the SAM transform has run (samtranslator), not the raw template's.
    assert natives == dict.fromkeys(
        ["ProviderLogGroup", "OwnershipTable", "ImageExpiryScheduleGroup", "ImageExpirySchedulerRole", "ProviderRole",
         "ProviderFunction", "ProviderFunctionEventInvokeConfig", "ProviderInvokesItselfPolicy",
         "ImageExpirySchedulerInvokePolicy", "CachedRepositoriesPolicy", "CacheConsumerPolicy",
         # The health check (docs/health-check.md): its schedule and role, alarms and dashboard.
         "ProviderHealthCheckSchedule", "HealthCheckSchedulerRole",
         *[f"{cache}{metric}Alarm" for cache in ("EcrPublic", "Quay", "K8s")
           for metric in ("UpstreamLoginFailed", "DriftedSettings", "HealthCheckErrors")],
         "HealthCheckLedgerErrorsAlarm", "HealthCheckRegistryDriftedSettingsAlarm", "HealthCheckRegistryErrorsAlarm",
         "ProviderCreateFailedAlarm", "ProviderUpdateFailedAlarm",
         "ProviderDeleteFailedAlarm", "ProviderThrottledAlarm", "SweepStoppedAlarm", "ProviderFunctionErrorsAlarm",
         "CachesDashboard"],
        "NOT EMULATED",
    )  # fmt: skip
    assert {prefix: rule["upstreamRegistryUrl"] for prefix, rule in rules(local_aws).items()} == DEFAULT_RULES
    assert result.stack.outputs["QuayCachePullUriPrefix"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/quay"
    # No FunctionName: CloudFormation's generated one, whatever the stack name's length.
    assert result.stack.outputs["ServiceToken"].endswith(":function:ecr-pull-through-cache-ProviderFunction-LOCAL")
    # Ref of an AWS::IAM::ManagedPolicy is its ARN, as in CloudFormation.
    assert result.stack.outputs["CacheConsumerPolicyArn"].startswith("arn:aws:iam::123456789012:policy/")
    # What CloudFormation sent: every scalar a string, ServiceTimeout from samconfig.toml, QuayCredentialArn as it is
    # ('': no credential, as the rule shows), and no CredentialArn key at all for an upstream that takes none.
    sent = load_state(tmp_path / "state", "ecr-pull-through-cache").resources
    assert sent["QuayCacheRule"].properties["Validate"] == "true"
    assert sent["QuayCacheRule"].properties["ServiceTimeout"] == "600"
    assert sent["QuayCacheRule"].properties["CredentialArn"] == ""
    assert "credentialArn" not in rules(local_aws)["quay"]
    assert "CredentialArn" not in sent["EcrPublicCacheRule"].properties
    report = render(result.stack, result.registry)
    assert "QuayCacheRule" in report
    assert "Pull-through cache rules in ECR" in report


def test_every_cache_switched_on(play: Play, local_aws: LocalAws) -> None:
    arns = {name: credential(name) for name in ("quay", "docker-hub", "ghcr", "gitlab")}

    result = play(
        f"QuayCredentialArn={arns['quay']}",
        f"DockerHubCredentialArn={arns['docker-hub']}",
        f"GitHubCredentialArn={arns['ghcr']}",
        f"GitLabCredentialArn={arns['gitlab']}",
    )

    assert result.succeeded, render(result.stack, result.registry)
    assert all(action == "Create" and status == "SUCCEEDED" for _, action, status in actions(result))
    created = rules(local_aws)
    assert set(created) == {"ecr-public", "quay", "k8s", "docker-hub", "ghcr", "gitlab"}
    assert {prefix: created[prefix].get("credentialArn") for prefix in arns} == arns
    assert created["ghcr"]["upstreamRegistry"] == "github-container-registry"


def test_a_credential_added_to_a_running_stack(play: Play, local_aws: LocalAws) -> None:
    play()
    quay, docker_hub = credential("quay"), credential("docker-hub")

    result = play(f"QuayCredentialArn={quay}", f"DockerHubCredentialArn={docker_hub}")

    assert result.succeeded, render(result.stack, result.registry)
    assert result.stack.stack_status == "UPDATE_COMPLETE"
    assert actions(result) == [
        ("EcrPublicCacheRule", "Unchanged", "SUCCEEDED"),
        ("QuayCacheRule", "Update", "SUCCEEDED"),  # in place: same physical id, nothing to clean up
        ("K8sCacheRule", "Unchanged", "SUCCEEDED"),
        ("DockerHubCacheRule", "Create", "SUCCEEDED"),
        ("EcrPublicCachedRepositorySettings", "Unchanged", "SUCCEEDED"),
        ("QuayCachedRepositorySettings", "Unchanged", "SUCCEEDED"),
        ("K8sCachedRepositorySettings", "Unchanged", "SUCCEEDED"),
        ("DockerHubCachedRepositorySettings", "Create", "SUCCEEDED"),
    ]
    assert rules(local_aws)["quay"]["credentialArn"] == quay
    assert rules(local_aws)["docker-hub"]["credentialArn"] == docker_hub


def test_a_prefix_renamed_replaces_the_rule_and_deletes_the_old_one(play: Play, local_aws: LocalAws) -> None:
    play()

    result = play("QuayPrefix=quay-mirror")

    assert result.succeeded, render(result.stack, result.registry)
    assert ("QuayCacheRule", "Replace", "SUCCEEDED") in actions(result)
    assert actions(result)[-1] == ("QuayCacheRule", "Cleanup delete", "SUCCEEDED")
    assert set(rules(local_aws)) == {"ecr-public", "k8s", "quay-mirror"}
    assert result.stack.outputs["QuayCachePrefix"] == "quay-mirror"


def test_a_cache_switched_off_is_deleted(play: Play, local_aws: LocalAws, tmp_path: Path) -> None:
    play()

    result = play("EnableK8sCache=false")

    assert result.succeeded, render(result.stack, result.registry)
    assert actions(result)[-1] == ("K8sCacheRule", "Cleanup delete", "SUCCEEDED")
    assert set(rules(local_aws)) == {"ecr-public", "quay"}
    assert "K8sCacheRule" not in load_state(tmp_path / "state", "ecr-pull-through-cache").resources
    assert "K8sCachePrefix" not in result.stack.outputs


def test_a_failed_create_rolls_back_the_whole_stack(play: Play, local_aws: LocalAws, tmp_path: Path) -> None:
    faults.reject_upstream_credentials("quay")  # ValidatePullThroughCacheRule says no: QuayCacheRule fails

    result = play()

    assert not result.succeeded
    assert result.stack.stack_status == "ROLLBACK_COMPLETE"
    assert actions(result) == [
        ("EcrPublicCacheRule", "Create", "SUCCEEDED"),
        ("QuayCacheRule", "Create", "FAILED"),
        ("K8sCacheRule", "Not reached", "SKIPPED"),  # the table still lists every resource
        ("EcrPublicCachedRepositorySettings", "Not reached", "SKIPPED"),
        ("QuayCachedRepositorySettings", "Not reached", "SKIPPED"),
        ("K8sCachedRepositorySettings", "Not reached", "SKIPPED"),
        ("QuayCacheRule", "Rollback delete", "SUCCEEDED"),
        ("EcrPublicCacheRule", "Rollback delete", "SUCCEEDED"),
    ]
    failed = next(outcome for outcome in result.stack.outcomes if outcome.status == "FAILED")
    assert "ECR rejected the rule for quay.io" in failed.reason
    assert rules(local_aws) == {}
    assert not load_state(tmp_path / "state", "ecr-pull-through-cache").exists  # the next run creates it anew


def test_a_failed_update_rolls_back_to_the_previous_properties(play: Play, local_aws: LocalAws) -> None:
    play()
    before = {prefix: rule.get("credentialArn") for prefix, rule in rules(local_aws).items()}
    faults.reject_upstream_credentials("ghcr")

    result = play(f"QuayCredentialArn={credential('quay')}", f"GitHubCredentialArn={credential('ghcr')}")

    assert not result.succeeded
    assert result.stack.stack_status == "UPDATE_ROLLBACK_COMPLETE"
    assert actions(result) == [
        ("EcrPublicCacheRule", "Unchanged", "SUCCEEDED"),
        ("QuayCacheRule", "Update", "SUCCEEDED"),
        ("K8sCacheRule", "Unchanged", "SUCCEEDED"),
        ("GitHubCacheRule", "Create", "FAILED"),
        ("EcrPublicCachedRepositorySettings", "Not reached", "SKIPPED"),  # the table still lists every resource
        ("QuayCachedRepositorySettings", "Not reached", "SKIPPED"),
        ("K8sCachedRepositorySettings", "Not reached", "SKIPPED"),
        ("GitHubCachedRepositorySettings", "Not reached", "SKIPPED"),
        # updates rolled back first (UPDATE_ROLLBACK_IN_PROGRESS), then what the update created is removed
        # (UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS)
        ("QuayCacheRule", "Rollback update", "SUCCEEDED"),
        ("GitHubCacheRule", "Rollback delete", "SUCCEEDED"),
    ]
    assert {prefix: rule.get("credentialArn") for prefix, rule in rules(local_aws).items()} == before
    # The stack keeps its outputs, and the report says why it failed before anything else.
    assert result.stack.outputs["QuayCachePrefix"] == "quay"
    report = render(result.stack, result.registry).splitlines()
    assert report[0] == "Stack ecr-pull-through-cache: UPDATE_ROLLBACK_COMPLETE"
    assert report[2] == "Why"
    assert report[3].startswith("  GitHubCacheRule (Create): ECR rejected the rule for ghcr.io: Authentication failed")
    assert "Outputs" in report
    # The stack is as it was: a run with the old parameters changes nothing.
    again = play()
    assert {action for _, action, _ in actions(again)} == {"Unchanged"}
    assert again.stack.stack_status == "NO_CHANGES"


def test_a_full_delete_leaves_the_registry_as_it_was(play: Play, local_aws: LocalAws, tmp_path: Path) -> None:
    ecr = local_aws.client("ecr")
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="team-k8s", upstreamRegistryUrl="registry.k8s.io")
    ecr.create_repository(repositoryName="team/app")
    before = (rules(local_aws), ecr.describe_repositories()["repositories"])
    docker_hub = f"DockerHubCredentialArn={credential('docker-hub')}"
    play(docker_hub)
    play(docker_hub, "QuayPrefix=quay-mirror")  # a replacement on the way must not leave anything behind either

    result = play(delete=True)

    assert result.succeeded, render(result.stack, result.registry)
    assert result.stack.stack_status == "DELETE_COMPLETE"
    assert [logical_id for logical_id, _, _ in actions(result)] == [
        "DockerHubCachedRepositorySettings",
        "K8sCachedRepositorySettings",
        "QuayCachedRepositorySettings",
        "EcrPublicCachedRepositorySettings",
        "DockerHubCacheRule",
        "K8sCacheRule",
        "QuayCacheRule",
        "EcrPublicCacheRule",
    ]
    assert (rules(local_aws), ecr.describe_repositories()["repositories"]) == before
    assert ecr.describe_repository_creation_templates()["repositoryCreationTemplates"] == []
    assert not load_state(tmp_path / "state", "ecr-pull-through-cache").exists


def test_seed_repositories_under_the_stack_prefixes(play: Play) -> None:
    result = play(seed_repositories=9)

    assert result.succeeded
    names = sorted(repository["name"] for repository in result.registry.repositories)
    assert len(names) == 9
    assert {name.split("/")[0] for name in names} == set(DEFAULT_RULES)
    assert "seeded 9 cached repositories" in " ".join(result.notes)


def test_a_template_mismatch_fails_and_rolls_back(play: Play, local_aws: LocalAws, tmp_path: Path) -> None:
    """A property the provider does not know (here Validate misspelt) fails at Create, not at deploy time."""
    template = tmp_path / "template.yaml"
    template.write_text((ROOT / "template.yaml").read_text().replace("Validate: !Ref", "Validation: !Ref"))

    result = play(template=template)

    assert not result.succeeded
    assert result.stack.stack_status == "ROLLBACK_COMPLETE"
    failed = next(outcome for outcome in result.stack.outcomes if outcome.status == "FAILED")
    assert "Unknown property Validation" in failed.reason
    assert rules(local_aws) == {}


# A bad value for every constrained parameter of template.yaml, and what its error must say.
NOT_UNDER_PREFIX = "arn:aws:secretsmanager:us-east-1:123456789012:secret:docker-hub-AbCdEf"
NOT_A_SECRET = "arn:aws:iam::123456789012:role/ecr-pullthroughcache/docker-hub"
CREDENTIAL_MESSAGE = "Secrets Manager secret ARN"
BAD_PARAMETERS = [
    *[(f"Enable{name}Cache", "yes", "must be true or false") for name in ("EcrPublic", "Quay", "K8s")],
    *[("EnableLifecyclePolicies", "1", "must be true or false"), ("ValidateCredentials", "no", "true or false")],
    ("OverwriteExistingLifecyclePolicies", "True", "must be true or false"),
    *[(f"{name}Prefix", "Bad_Prefix!", "lowercase letters and digits")
      for name in ("EcrPublic", "Quay", "K8s", "DockerHub", "GitHub", "GitLab")],
    *[(f"{name}CredentialArn", arn, CREDENTIAL_MESSAGE)
      for name in ("Quay", "DockerHub", "GitHub", "GitLab") for arn in (NOT_UNDER_PREFIX, NOT_A_SECRET)],
    ("UntaggedImageExpiryDays", "1.5", "whole number of days from 1 to 3650"),
    ("UntaggedImageExpiryDays", "0", "whole number of days from 1 to 3650"),
    ("MaxImagesPerRepository", "100.0", "whole number of images from 1 to 10000"),
    ("MaxImagesPerRepository", "10001", "whole number of images from 1 to 10000"),
    ("ExpireImagesNotPulledForDays", "1.5", "whole number of days from 0 (off) to 3650"),
    ("ExpireImagesNotPulledForDays", "3651", "whole number of days from 0 (off) to 3650"),
    ("ResourceTimeoutSeconds", "59", "whole number of seconds from 60 to 3600"),
    ("ResourceTimeoutSeconds", "600.5", "whole number of seconds from 60 to 3600"),
    ("LogRetentionInDays", "2", "retention periods CloudWatch Logs offers"),
    ("RegistryScanning", "on", "must be off, SCAN_ON_PUSH or CONTINUOUS_SCAN"),
    ("OrganizationId", "org-123", "AWS Organizations id"),
    ("ConsumerRepositoryPrefixes", "team-a;team-b", "repository namespaces separated by commas"),
    ("ConsumerRepositoryPrefixes", "team-a/", "without a trailing slash"),
    ("ConsumerRepositoryPrefixes", "team-a,ROOT", "must be empty, ROOT, or repository namespaces"),
    ("HealthCheckSchedule", "hourly", "EventBridge Scheduler rate or cron expression"),
    ("HealthCheckSchedule", "cron()", "EventBridge Scheduler rate or cron expression"),
    ("RepairDrift", "yes", "must be true or false"),
    ("HealthCheckSampleSize", "0", "whole number of repositories from 1 to 1000"),
    ("AlarmEmail", "platform-team", "one e-mail address"),
    ("AlarmTopicArn", "arn:aws:sns:us-east-1:123456789012:alarms.fifo", "standard (not FIFO) SNS topic"),
    ("EnableDashboard", "no", "must be true or false"),
]  # fmt: skip


def test_every_constrained_parameter_has_a_bad_value_here() -> None:
    template = Template.load(ROOT / "template.yaml")
    constrained = {name for name, spec in template.parameters.items() if set(spec) - {"Type", "Default", "Description"}}
    assert constrained == {name for name, _, _ in BAD_PARAMETERS}


@pytest.mark.parametrize(("name", "value", "message"), BAD_PARAMETERS, ids=[f"{n}={v}" for n, v, _ in BAD_PARAMETERS])
def test_a_bad_parameter_is_named_before_anything_changes(
    play: Play, local_aws: LocalAws, tmp_path: Path, name: str, value: str, message: str
) -> None:
    with pytest.raises(ParameterError) as raised:
        play(f"{name}={value}")

    assert raised.value.problems == [f"Parameter {name} {value!r} " + Template.load(ROOT / "template.yaml")
                                     .parameters[name]["ConstraintDescription"]]  # fmt: skip
    assert message in raised.value.problems[0]
    assert rules(local_aws) == {}
    assert not (tmp_path / "state").exists()


def test_every_bad_parameter_is_reported_at_once(play: Play) -> None:
    with pytest.raises(ParameterError) as raised:
        play("EnableQuayCache=yes", f"DockerHubCredentialArn={NOT_UNDER_PREFIX}", "NoSuchParameter=1")

    assert [problem.split()[1] for problem in raised.value.problems] == [
        "NoSuchParameter",
        "EnableQuayCache",
        "DockerHubCredentialArn",
    ]


def test_the_command_prints_parameter_errors_first_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "--template",
            str(ROOT / "template.yaml"),
            "--parameter-overrides",
            "UntaggedImageExpiryDays=1.5",
            "EcrPublicPrefix=Bad_Prefix!",
        ]
    )

    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.splitlines()[0].startswith("error: Parameter EcrPublicPrefix 'Bad_Prefix!' must be 2 to 30 characters")
    assert err.splitlines()[1].startswith("error: Parameter UntaggedImageExpiryDays '1.5' must be a whole number")


def test_the_registry_survives_a_restart(play: Play, local_aws: LocalAws, tmp_path: Path) -> None:
    """moto keeps its state in memory: the snapshot in the state folder carries it to the next `make local`."""
    play(f"DockerHubCredentialArn={credential('docker-hub')}", seed_repositories=4)
    snapshot = tmp_path / "registry.json"
    local_aws.save_registry(snapshot, Progress(None))
    before = rules(local_aws)

    local_aws.restore_registry(snapshot, Progress(None))  # resets moto first, as a new process starts empty

    assert {prefix: rule.get("credentialArn") for prefix, rule in rules(local_aws).items()} == {
        prefix: rule.get("credentialArn") for prefix, rule in before.items()
    }
    assert len(json.loads(snapshot.read_text())["repositories"]) == 4
    assert {
        action for _, action, _ in actions(play(f"DockerHubCredentialArn={before['docker-hub']['credentialArn']}"))
    } == {"Unchanged"}


# Parameters each example needs beyond its defaults. A new example fails here until it is given its own.
EXAMPLE_PARAMETERS = {
    "consumer.yaml": [
        "UpstreamRegistryUrl=ghcr.io",
        "EcrRepositoryPrefix=team-a/ghcr",
        "CredentialArn=arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/team-a-ghcr-AbCdEf",
        "RepositoryName=team-a/ghcr/org/app",
    ],
}
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def test_every_example_is_played() -> None:
    assert sorted(path.name for path in EXAMPLES) == sorted(EXAMPLE_PARAMETERS)


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_example_templates_play(play: Play, example: Path, local_aws: LocalAws) -> None:
    """Each example is played after the main stack (whose exports it may import, and which lets them manage the
    team-a namespace), then deleted before it."""
    assert play("ConsumerRepositoryPrefixes=team-a").succeeded
    own_stack = {"template": example, "samconfig": example.with_suffix(".toml")}  # no samconfig: its own defaults
    created = play(*EXAMPLE_PARAMETERS[example.name], **own_stack)
    assert created.succeeded, render(created.stack, created.registry)
    assert created.stack.stack_name == example.stem
    assert {outcome.status for outcome in created.stack.outcomes} <= {"SUCCEEDED", "NOT EMULATED"}
    assert any(outcome.status == "SUCCEEDED" for outcome in created.stack.outcomes)
    assert play(**own_stack, delete=True).succeeded
    assert play(delete=True).succeeded
    assert rules(local_aws) == {}


def test_a_recreated_secret_is_an_in_place_update(play: Play, local_aws: LocalAws) -> None:
    """Re-creating a secret gives it a new random suffix: the rule is updated in place to the new ARN."""
    old = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/docker-hub-AAAAAA"
    new = old.replace("AAAAAA", "BBBBBB")
    assert play(f"DockerHubCredentialArn={old}").succeeded

    result = play(f"DockerHubCredentialArn={new}")

    assert result.succeeded, render(result.stack, result.registry)
    assert ("DockerHubCacheRule", "Update", "SUCCEEDED") in actions(result)
    assert rules(local_aws)["docker-hub"]["credentialArn"] == new
    assert f"re-created the secret ecr-pullthroughcache/docker-hub as {new}" in " ".join(result.notes)
    secrets = local_aws.client("secretsmanager").list_secrets()["SecretList"]
    assert [secret["ARN"] for secret in secrets] == [new]


def test_a_delete_removes_the_stub_secrets_it_made(play: Play, local_aws: LocalAws) -> None:
    stubbed = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/gitlab-AbCdEf"
    own = credential("docker-hub")  # a secret of the account's, not a stub: it stays
    play(f"GitLabCredentialArn={stubbed}", f"DockerHubCredentialArn={own}")

    result = play(delete=True)

    assert result.succeeded
    assert f"deleted the stub secret {stubbed}" in result.notes
    secrets = local_aws.client("secretsmanager").list_secrets()["SecretList"]
    assert [secret["ARN"] for secret in secrets] == [own]


def test_a_rerun_without_changes_says_so(play: Play) -> None:
    play()

    result = play()

    assert result.succeeded
    assert result.stack.stack_status == "NO_CHANGES"


def test_a_negative_seed_count_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["--seed-repositories", "-5"])

    assert raised.value.code == 2
    assert "--seed-repositories: must be 0 or more, not -5" in capsys.readouterr().err


def test_an_unknown_environment_lists_only_real_ones(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--template", str(ROOT / "template.yaml"), "--config-env", "staging"])

    assert code == 2
    assert capsys.readouterr().err.strip().endswith("has no environment 'staging' (it has default, prod)")


def test_make_local_reset_clears_the_state_folder(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "stacks").mkdir(parents=True)
    (state / "registry.json").write_text("{}")

    subprocess.run(["make", "-s", "local-reset", f"STATE_DIR={state}"], cwd=ROOT, check=True, capture_output=True)

    assert not state.exists()


def test_image_expiry_schedule_per_cache_sweeps_and_goes_with_the_stack(play: Play, local_aws: LocalAws) -> None:
    from datetime import UTC, datetime, timedelta

    from emulation.cloudformation import LambdaContext
    from emulation.moto_ecr import seed_image
    from tools.stack_player.aws import ACCOUNT_ID, REGION

    now = datetime.now(UTC)
    old = seed_image(ACCOUNT_ID, REGION, "quay/org/app", pushed_at=now - timedelta(days=90), name="old")
    fresh = seed_image(ACCOUNT_ID, REGION, "quay/org/app", pushed_at=now - timedelta(days=90),
                       last_pulled_at=now - timedelta(days=1), name="fresh")  # fmt: skip
    result = play("ExpireImagesNotPulledForDays=30")
    assert result.succeeded, render(result.stack, result.registry)
    expiries = [action for action in actions(result) if action[0].endswith("CacheImageExpiry")]
    assert expiries == [(f"{name}CacheImageExpiry", "Create", "SUCCEEDED") for name in ("EcrPublic", "Quay", "K8s")]
    scheduler = local_aws.client("scheduler")
    (group,) = [g["Name"] for g in scheduler.list_schedule_groups()["ScheduleGroups"] if g["Name"] != "default"]
    schedules = scheduler.list_schedules(GroupName=group)["Schedules"]
    assert len(schedules) == 3
    for listed in schedules:  # what each schedule does at its time: invoke the function with its input
        target = scheduler.get_schedule(Name=listed["Name"], GroupName=group)["Target"]
        event = json.loads(target["Input"]) | {"ServiceToken": target["Arn"]}
        local_aws.invoke_provider(event, LambdaContext())
    details = local_aws.client("ecr").describe_images(repositoryName="quay/org/app", filter={"imageStatus": "ANY"})[
        "imageDetails"
    ]
    assert {detail["imageDigest"] for detail in details} == {fresh}
    assert old != fresh
    assert play(delete=True).succeeded
    assert scheduler.list_schedules(GroupName=group)["Schedules"] == []
    details = local_aws.client("ecr").describe_images(repositoryName="quay/org/app", filter={"imageStatus": "ANY"})[
        "imageDetails"
    ]
    assert {detail["imageDigest"] for detail in details} == {fresh}  # images stay after Delete


# Ownership across stacks

MIGRATION = ROOT / "examples" / "migrate-from-native"


def test_a_second_provider_stack_fails_on_the_first_ones_rules_and_leaves_them(play: Play, local_aws: LocalAws) -> None:
    """make local, then make local ENV=prod: the prod stack's caches collide with the default stack's prefixes."""
    assert play().succeeded
    before = rules(local_aws)

    prod = play(config_env="prod")

    assert not prod.succeeded
    assert prod.stack.stack_status == "ROLLBACK_COMPLETE"
    failure = next(outcome for outcome in prod.stack.outcomes if outcome.status == "FAILED")
    assert "already exists" in failure.reason
    assert rules(local_aws) == before  # the default stack's rules, untouched by the prod stack's rollback
    assert {action for _, action, _ in actions(play())} == {"Unchanged"}


def test_moving_from_the_native_rule_type_adopts_the_rule(play: Play, local_aws: LocalAws) -> None:
    assert play().succeeded  # the provider stack, whose ServiceToken the migrated stack imports
    stack = {"samconfig": MIGRATION / "samconfig.toml"}

    native = play(template=MIGRATION / "1-native-retained.yaml", **stack)
    made = rules(local_aws)["team-quay"]
    moved = play(template=MIGRATION / "2-custom-adopts.yaml", **stack)

    assert native.succeeded, render(native.stack, native.registry)
    assert moved.succeeded, render(moved.stack, moved.registry)
    assert ("TeamQuayCache", "Create", "SUCCEEDED") in actions(moved)
    assert rules(local_aws)["team-quay"] == made  # the same rule, adopted, not made again
    assert play(template=MIGRATION / "2-custom-adopts.yaml", delete=True, **stack).succeeded
    assert "team-quay" not in rules(local_aws)  # now the stack's: deleting the stack deletes it


def test_two_consumer_stacks_asking_for_one_prefix_leave_it_to_the_first(
    play: Play, local_aws: LocalAws, tmp_path: Path
) -> None:
    assert play("ConsumerRepositoryPrefixes=team-a").succeeded  # the provider, whose ServiceToken both import
    consumer = ROOT / "examples" / "consumer.yaml"
    parameters = [value for value in EXAMPLE_PARAMETERS["consumer.yaml"] if not value.startswith("RepositoryName=")]
    second = tmp_path / "second-consumer.toml"
    second.write_text('version = 0.1\n[default.global.parameters]\nstack_name = "second-consumer"\n')

    first = play(*parameters, template=consumer, samconfig=consumer.with_suffix(".toml"))
    made = rules(local_aws)["team-a/ghcr"]
    colliding = play(*parameters, template=consumer, samconfig=second)

    assert first.succeeded, render(first.stack, first.registry)
    assert not colliding.succeeded
    failure = next(outcome for outcome in colliding.stack.outcomes if outcome.status == "FAILED")
    assert failure.reason.startswith("The pull-through cache rule 'team-a/ghcr' belongs to CacheRule in stack consumer")
    assert rules(local_aws)["team-a/ghcr"] == made  # its rollback removed nothing of the first stack's
