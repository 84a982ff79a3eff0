"""`make local` and `make bench` as a person runs them: separate processes, their output as printed."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.stack.conftest import ROOT

pytestmark = pytest.mark.stack


def test_ctrl_c_ends_with_one_line_and_keeps_the_last_state(tmp_path: Path) -> None:
    state = tmp_path / "state"
    player = subprocess.Popen(
        [sys.executable, "-m", "tools.stack_player", "--state-dir", str(state), "--seed-repositories", "100000"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert player.stderr is not None
    seen = []
    for line in player.stderr:  # off a terminal, a step longer than a second prints a line
        seen.append(line)
        if line.startswith("Seeding repositories:"):
            break
    player.send_signal(signal.SIGINT)
    out, err = player.communicate(timeout=120)

    assert player.returncode == 130, "".join(seen) + err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"Interrupted: {state} holds the state of the last completed run"
    assert out == ""
    # Nothing of the interrupted run was kept: the next run starts from where the last completed one left off.
    assert not (state / "stacks").exists()
    assert not (state / "registry.json").exists()


def test_bench_output_is_the_report_only() -> None:
    bench = subprocess.run(
        [sys.executable, "bench/backfill.py", "--repositories", "16", "--latency", "0.001", "--burst", "4"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )

    output = bench.stdout + bench.stderr
    assert "HTTP/1.1" not in output  # werkzeug's line per request
    assert '"_aws"' not in output  # embedded metrics JSON
    assert [line.split(",")[0].split(":")[0] for line in output.splitlines()[2:]] == [
        "  baseline",
        "rate-limit",
        "    bursts",
        "  bare ECR loop",
    ]
    assert all(" SUCCESS," in line for line in output.splitlines()[2:5])
    assert "CPU ratio to the bare loop" in output.splitlines()[5]


@pytest.mark.built
def test_make_invoke_plays_an_event_through_the_built_function_against_make_locals_state(
    tmp_path: Path, built_function: Path
) -> None:
    state = tmp_path / "state"
    common = ["--state-dir", str(state), "--built-function", str(built_function)]

    def command(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", *arguments], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
        )

    before_make_local = command("tools.stack_player.invoke", "events/pull-through-cache-rule-create.json", *common)
    local = command("tools.stack_player", *common)
    created = command("tools.stack_player.invoke", "events/pull-through-cache-rule-create.json", *common)
    rotated = command("tools.stack_player.invoke", "events/pull-through-cache-rule-rotate-credential.json", *common)

    assert before_make_local.returncode == 2
    assert "run `make local` first" in before_make_local.stderr
    assert local.returncode == 0, local.stderr
    assert created.returncode == 0, created.stdout + created.stderr
    assert json.loads(created.stdout)["Status"] == "SUCCESS"
    assert json.loads(created.stdout)["PhysicalResourceId"] == "hub"
    assert json.loads(rotated.stdout)["Status"] == "SUCCESS"  # an Update of the rule the first request made
    saved = {rule["ecrRepositoryPrefix"]: rule for rule in json.loads((state / "registry.json").read_text())["rules"]}
    assert saved["hub"]["credentialArn"].endswith(":secret:ecr-pullthroughcache/docker-hub-rotated-GhIjKl")


def test_make_local_refuses_a_built_package_that_does_not_load(tmp_path: Path, built_function: Path) -> None:
    broken = tmp_path / "function"
    shutil.copytree(built_function, broken)
    shutil.rmtree(broken / "aws_lambda_powertools")

    local = subprocess.run(
        [sys.executable, "-m", "tools.stack_player", "--state-dir", str(tmp_path / "state"), "--built-function",
         str(broken)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip

    assert local.returncode == 2
    assert local.stderr.startswith("error: the built provider does not load as Lambda would load it: ")
    assert "No module named 'aws_lambda_powertools'" in local.stderr
    assert local.stdout == ""


@pytest.mark.built
def test_make_local_plays_a_cancelled_stack_and_a_rolled_back_rename_and_leaves_nothing(
    tmp_path: Path, built_function: Path
) -> None:
    """What issue 18 asked of `make local`: a stack whose Create is cancelled while a resource works (the built
    provider runs in its own processes, so the cancelled work and the rollback really overlap), a stack whose rename
    is cancelled and rolled back, then `make local-delete`: the provider holds nothing."""
    common = ["--state-dir", str(tmp_path / "state"), "--built-function", str(built_function)]

    def local(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tools.stack_player", *common, *arguments],
            cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip

    cancel = ["--cancel-during", "QuayCachedRepositorySettings", "--cancel-after", "0"]
    cancelled = local("--seed-repositories", "30", *cancel)
    created = local("--seed-repositories", "30")
    renamed = local("--parameter-overrides", "QuayPrefix=quay-mirror", *cancel)
    deleted = local("--delete")

    assert cancelled.returncode == 1, cancelled.stdout + cancelled.stderr
    assert cancelled.stdout.startswith("Stack ecr-pull-through-cache: ROLLBACK_COMPLETE")
    assert "Resource creation cancelled" in cancelled.stdout
    assert held(cancelled.stdout) == ["  (nothing)"]
    assert created.returncode == 0, created.stdout + created.stderr
    assert renamed.returncode == 1, renamed.stdout + renamed.stderr
    assert renamed.stdout.startswith("Stack ecr-pull-through-cache: UPDATE_ROLLBACK_COMPLETE")
    assert "quay-mirror" not in "\n".join(held(renamed.stdout))
    assert "quay-mirror" not in renamed.stdout.split("Repository creation templates")[1].split("Registry policy")[0]
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    assert held(deleted.stdout) == ["  (nothing)"]


def held(report: str) -> list[str]:
    """The report's lines on what the provider holds (its ownership ledger and schedules)."""
    return report.split("Held by the provider (ownership ledger and image expiry schedules)\n")[1].splitlines()


def test_break_alone_shows_the_menu_and_a_wrong_value_is_refused_before_anything_starts(tmp_path: Path) -> None:
    def player(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tools.stack_player", "--state-dir", str(tmp_path / "state"), *arguments],
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    for menu in (player("--break"), player("--break", "list")):
        assert menu.returncode == 0, menu.stderr
        assert menu.stdout.startswith("--break WHAT: break one thing out of band on the local registry")
        for what in ("revoke-credential", "edit-rule", "delete-template", "drop-statement"):
            assert f"  {what}  " in menu.stdout
    misspelled = player("--break", "revoke-credentials", "--health-check-now")
    unknown = player("--break", "everything")

    assert misspelled.returncode == unknown.returncode == 2
    assert misspelled.stderr.splitlines()[0] == (
        "error: --break revoke-credentials is not something the player can break: did you mean revoke-credential?"
    )
    assert unknown.stderr.splitlines()[0].startswith("error: --break everything is not something the player can break")
    assert misspelled.stdout == unknown.stdout == ""
    assert not (tmp_path / "state").exists()  # nothing started


@pytest.mark.built
def test_make_local_breaks_a_credential_and_the_built_functions_health_check_shows_its_metric(
    tmp_path: Path, built_function: Path
) -> None:
    credential = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/docker-hub-AbCdEf"

    def local(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tools.stack_player", "--state-dir", str(tmp_path / "state"), "--built-function",
             str(built_function), "--parameter-overrides", f"DockerHubCredentialArn={credential}", *arguments],
            cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip

    def rows(output: str) -> dict[str, list[str]]:
        """The health check table's rows by cache prefix (its columns are two or more spaces apart)."""
        table = output.split("Health check, run now\n", 1)[1].splitlines()[3:]
        found = {}
        for line in table:
            cells = [cell for cell in line.strip().split("  ") if cell.strip()]
            if not line.startswith("    ") or len(cells) < 8:
                break
            found[cells[0].strip()] = [cell.strip() for cell in cells[1:]]
        return found

    broken = local("--break", "revoke-credential", "--health-check-now")
    again = local("--health-check-now")  # a later make local: the upstream still refuses the token

    assert broken.returncode == 0, broken.stdout + broken.stderr
    assert f"Note: broken out of band: the upstream registry of docker-hub refuses the token in {credential}" in (
        broken.stdout
    )
    header = broken.stdout.split("Health check, run now\n", 1)[1].splitlines()[1].split()
    assert header[-3:] == ["UpstreamLoginFailed", "DriftedSettings", "HealthCheckErrors"]
    for output in (broken.stdout, again.stdout):
        found = rows(output)
        assert set(found) == {"docker-hub", "ecr-public", "k8s", "quay"}, output
        assert found["docker-hub"][0] == "failed"
        assert found["docker-hub"][-3:] == ["1", "0", "0"]
        assert (
            "\n  docker-hub: login failed: Authentication failed for the upstream registry using the credentials "
            "in the secret." in output
        )
        assert all(found[prefix][0] == "ok" and found[prefix][-3:] == ["0", "0", "0"]
                   for prefix in ("ecr-public", "k8s", "quay"))  # fmt: skip
    assert again.returncode == 0, again.stderr
