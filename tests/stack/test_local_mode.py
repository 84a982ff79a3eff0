"""Local mode tells the truth: what `make local`, `make invoke` and `make local-delete` say and leave behind, the
examples played from a reset state, and the request files of events/ against the default stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.stack.conftest import ROOT, Play
from tests.stack.test_stack_player import EXAMPLE_PARAMETERS, actions, rules
from tools.stack_player import LocalAws, render
from tools.stack_player.state import load_state
from tools.stack_player.template import ParameterError, Template

pytestmark = pytest.mark.stack

CONSUMER = ROOT / "examples" / "consumer.yaml"
CONSUMER_STACK = {"template": CONSUMER, "samconfig": CONSUMER.with_suffix(".toml")}

# Every file of events/, in the order a developer would play them: each request answers SUCCESS against the default
# stack, whatever the ones before it left. (A Delete after a failed Create names a physical id the provider never
# answered: it removes whatever the ledger says the resource claimed, so it comes before the Create.)
EVENT_ORDER = [
    "pull-through-cache-rule-delete-after-failed-create.json",
    "pull-through-cache-rule-create.json",
    "pull-through-cache-rule-rotate-credential.json",
    "pull-through-cache-rule-change-upstream.json",
    "pull-through-cache-rule-change-prefix.json",  # a replacement: the old prefix is deleted in the cleanup
    "pull-through-cache-rule-delete.json",  # the old prefix again: already gone, the rule now at ghcr stays
    "cache-lifecycle-policy-delete-after-failed-create.json",
    "cache-lifecycle-policy-create.json",
    "cache-lifecycle-policy-change-policy.json",
    "cache-lifecycle-policy-delete.json",
    "cached-repository-settings-create.json",
    "cached-repository-settings-delete.json",
]


def test_every_event_file_is_played() -> None:
    assert sorted(EVENT_ORDER) == sorted(path.name for path in (ROOT / "events").glob("*.json"))


def test_the_events_name_no_resource_of_the_default_stack() -> None:
    """A request file naming one of the stack's own resources would change it behind make local's back."""
    stack = Template.load(ROOT / "template.yaml").resources
    for name in EVENT_ORDER:
        event = json.loads((ROOT / "events" / name).read_text())
        assert event["LogicalResourceId"] not in stack, name
        if event["RequestType"] == "Delete" and not event["PhysicalResourceId"].startswith("failed-create:"):
            prefix = event["ResourceProperties"].get("EcrRepositoryPrefix") or event["ResourceProperties"].get(
                "RepositoryPrefix"
            )
            assert event["PhysicalResourceId"] == prefix, f"{name}: a Delete names the resource it describes"


@pytest.mark.built
def test_the_events_play_against_the_default_stack_and_local_delete_leaves_nothing(
    tmp_path: Path, built_function: Path
) -> None:
    """make local, make invoke with every file of events/, make local-delete: each request succeeds, the provider's
    log holds the built function's output, and nothing the stack or the events made is left."""
    state = tmp_path / "state"
    common = ["--state-dir", str(state), "--built-function", str(built_function)]

    def command(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", *arguments], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
        )

    local = command("tools.stack_player", *common)
    assert local.returncode == 0, local.stdout + local.stderr
    log = (state / "provider.log").read_text()
    # The built function's Powertools output, one block per invocation (six custom resources by default).
    assert log.count("--- Create ") == 6
    assert '"service":"ecr-pull-through-cache"' in log

    answers = {}
    for name in EVENT_ORDER:
        played = command("tools.stack_player.invoke", f"events/{name}", *common)
        answers[name] = json.loads(played.stdout)
        assert (played.returncode, answers[name]["Status"]) == (0, "SUCCESS"), f"{name}: {answers[name]['Reason']}"
    assert answers["pull-through-cache-rule-change-prefix.json"]["PhysicalResourceId"] == "ghcr"
    assert "--- Delete HubCacheRule" in (state / "provider.log").read_text()
    registry = json.loads((state / "registry.json").read_text())
    assert sorted(rule["ecrRepositoryPrefix"] for rule in registry["rules"]) == ["ecr-public", "ghcr", "k8s", "quay"]

    deleted = command("tools.stack_player", "--delete", *common)

    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    assert "Note: deleted HubCacheRule (ghcr), which make invoke made" in deleted.stdout
    assert deleted.stdout.split("Held by the provider (ownership ledger and image expiry schedules)\n")[1] == (
        "  (nothing)\n"
    )
    registry = json.loads((state / "registry.json").read_text())
    leftovers = {key: registry[key] for key in ("secrets", "rules", "templates", "repositories", "schedules")}
    assert leftovers == {"secrets": [], "rules": [], "templates": [], "repositories": [], "schedules": []}
    assert registry["schedule_groups"] == ["default"]
    assert not (state / "invoked.json").exists()


def test_make_local_checks_the_parameters_before_building(tmp_path: Path) -> None:
    """A bad parameter is the first line on stderr, with the closest name for a misspelled one, before sam build."""
    environment = {**os.environ, "STATE_DIR": str(tmp_path / "state")}
    environment.pop("MAKEFLAGS", None)
    local = subprocess.run(
        ["make", "-s", "local", "ARGS=--parameter-overrides QuayPrefx=mirror UntaggedImageExpiryDays=1.5"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip

    assert local.returncode == 2
    lines = local.stderr.splitlines()
    assert lines[0] == "error: Parameter QuayPrefx does not exist in the template: did you mean QuayPrefix?"
    assert lines[1].startswith("error: Parameter UntaggedImageExpiryDays '1.5' must be a whole number")
    assert "sam build" not in local.stdout + local.stderr
    assert not (tmp_path / "state").exists()


def test_the_result_table_folds_the_native_resources_into_one_line(play: Play) -> None:
    result = play()

    report = render(result.stack, result.registry)

    assert "NOT EMULATED" not in report
    assert (
        "32 native resources (AWS::Logs::LogGroup, AWS::DynamoDB::Table, AWS::Scheduler::ScheduleGroup, "
        "AWS::IAM::Role x3, AWS::CloudWatch::Alarm x18, AWS::Lambda::Function, AWS::IAM::RolePolicy x2, "
        "AWS::Scheduler::Schedule, AWS::Lambda::EventInvokeConfig, AWS::IAM::ManagedPolicy x2, "
        "AWS::CloudWatch::Dashboard): not emulated, made as the provider needs"
    ) in report.splitlines()


# --- examples/consumer.yaml --------------------------------------------------------------------------------------


def schedules(aws: LocalAws) -> list[dict[str, Any]]:
    scheduler = aws.client("scheduler")
    return [
        scheduler.get_schedule(Name=listed["Name"], GroupName=group["Name"])
        for group in scheduler.list_schedule_groups()["ScheduleGroups"]
        if group["Name"] != "default"  # the provider stack's health check schedule, not an image expiry's
        for listed in scheduler.list_schedules(GroupName=group["Name"])["Schedules"]
    ]


def test_the_consumer_plays_from_a_reset_state_its_image_expiry_off_then_a_dry_run(
    play: Play, local_aws: LocalAws, tmp_path: Path
) -> None:
    """As make local runs it: each run a new process whose registry is restored from the state folder (the
    provider stack's schedule group has no schedule yet). Image expiry is off by default, and a dry run once on."""
    provider = play("ConsumerRepositoryPrefixes=team-a", keep_registry=True)
    assert provider.succeeded, render(provider.stack, provider.registry)

    consumer = play(*EXAMPLE_PARAMETERS["consumer.yaml"], keep_registry=True, **CONSUMER_STACK)
    assert consumer.succeeded, render(consumer.stack, consumer.registry)
    assert "CacheImageExpiry" not in [logical_id for logical_id, _, _ in actions(consumer)]
    assert "ImagesToExpire" not in consumer.stack.outputs
    assert schedules(local_aws) == []

    expiring = play(*EXAMPLE_PARAMETERS["consumer.yaml"], "ExpireImagesNotPulledForDays=30", keep_registry=True,
                    **CONSUMER_STACK)  # fmt: skip
    assert expiring.succeeded, render(expiring.stack, expiring.registry)
    assert ("CacheImageExpiry", "Create", "SUCCEEDED") in actions(expiring)
    assert len(schedules(local_aws)) == 1
    assert load_state(tmp_path / "state", "consumer").resources["CacheImageExpiry"].properties["DryRun"] == "true"

    assert play(delete=True, keep_registry=True, **CONSUMER_STACK).succeeded
    assert play(delete=True, keep_registry=True).succeeded
    assert rules(local_aws) == {}
    assert schedules(local_aws) == []


CONSUMER_WHOLE_NUMBERS = [
    ("UntaggedExpiryDays", "1.5"),
    ("MaxImageCount", "1.5"),
    ("ExpireImagesNotPulledForDays", "1.5"),
    ("ResourceTimeoutSeconds", "600.5"),
]


def test_the_consumer_has_no_number_parameter() -> None:
    """A Number parameter accepts 1.5, which ECR refuses: whole numbers are Strings with a digits-only pattern."""
    parameters = Template.load(CONSUMER).parameters
    assert [name for name, spec in parameters.items() if spec["Type"] == "Number"] == []
    whole_numbers = {name for name, spec in parameters.items() if str(spec.get("Default", "")).isdigit()}
    assert whole_numbers == {name for name, _ in CONSUMER_WHOLE_NUMBERS}
    assert all("AllowedPattern" in parameters[name] for name in whole_numbers)


@pytest.mark.parametrize(("name", "value"), CONSUMER_WHOLE_NUMBERS, ids=[name for name, _ in CONSUMER_WHOLE_NUMBERS])
def test_the_consumer_refuses_a_fraction(play: Play, local_aws: LocalAws, name: str, value: str) -> None:
    with pytest.raises(ParameterError) as raised:
        play(*EXAMPLE_PARAMETERS["consumer.yaml"], f"{name}={value}", **CONSUMER_STACK)

    assert raised.value.problems == [f"Parameter {name} {value!r} " + Template.load(CONSUMER)
                                     .parameters[name]["ConstraintDescription"]]  # fmt: skip
    assert "whole number" in raised.value.problems[0]
    assert rules(local_aws) == {}
