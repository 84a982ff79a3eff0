"""`make local --break WHAT --health-check-now`: the stack played, one thing broken out of band as a person would
break it, and the provider's health check run now against the local registry. Each break moves its metric, for
its cache prefix, from 0 to 1 or more (read from the EMF lines the function printed), and nothing else moves."""

from __future__ import annotations

import pytest

from tests.stack.conftest import Play
from tools.stack_player.health import BREAKS, METRICS, break_menu, emf_metrics, render_health, unknown_break

pytestmark = pytest.mark.stack

# The default stack, with a credential (Docker Hub's cache) and the organisation's registry policy statement, so
# that there is something of each kind to break.
OVERRIDES = (
    "DockerHubCredentialArn=arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/docker-hub-AbCdEf",
    "OrganizationId=o-a1b2c3d4e5",
)
CACHES = {"docker-hub", "ecr-public", "k8s", "quay"}
# Registry-wide things (policy statements, scanning filters) are counted under the CachePrefix `registry`.
CHECKED = CACHES | {"registry"}
ALARMED = METRICS[:3]  # UpstreamLoginFailed, DriftedSettings, HealthCheckErrors: every run sends each, 0 included
# What each break moves: (metric, cache prefix).
EXPECTED: dict[str, tuple[str, str]] = {
    "revoke-credential": ("UpstreamLoginFailed", "docker-hub"),
    "edit-rule": ("DriftedSettings", "docker-hub"),
    "delete-template": ("DriftedSettings", "docker-hub"),
    "drop-statement": ("DriftedSettings", "registry"),
}


def moved(metrics: dict[str, dict[str, float]]) -> set[tuple[str, str]]:
    return {(name, prefix) for prefix, values in metrics.items() for name, value in values.items() if value}


def test_every_break_on_the_menu_is_tested() -> None:
    assert set(EXPECTED) == set(BREAKS)
    assert all(name in break_menu() for name in BREAKS)


@pytest.mark.parametrize("what", list(EXPECTED))
def test_each_break_moves_its_metric_for_its_cache_and_nothing_else(play: Play, what: str) -> None:
    healthy = play(*OVERRIDES, health_check_now=True)
    assert healthy.succeeded, healthy.stack.outcomes
    assert healthy.health is not None
    assert not healthy.health.error, healthy.health
    # An unbroken stack: every cache checked, every metric sent, all zero; no finding.
    assert set(healthy.health.metrics) == CHECKED
    assert all(set(values) >= set(ALARMED) for values in healthy.health.metrics.values())
    assert moved(healthy.health.metrics) == set()
    assert healthy.health.summary["findings"] == []
    assert healthy.health.summary["checked"] >= 2 * len(CACHES)  # a rule and a creation template per cache

    broken = play(*OVERRIDES, break_what=what, health_check_now=True)  # the next `make local`, nothing changed

    assert broken.broken.startswith("broken out of band: "), broken.break_error
    assert broken.stack.stack_status == "NO_CHANGES"  # the provider did not put anything back
    health = broken.health
    assert health is not None
    assert not health.error, health
    assert set(health.metrics) == CHECKED
    expected = EXPECTED[what]
    assert moved(health.metrics) == {expected}  # negative control: every other cache and metric stayed 0
    name, prefix = expected
    assert health.metrics[prefix][name] >= 1
    assert [(item["metric"], item["prefix"]) for item in health.summary["findings"]] == [expected]
    kind = "login failed" if name == "UpstreamLoginFailed" else "drift"
    assert f"\n  {prefix}: {kind}: " in render_health(health)  # what make local prints under its table


def test_a_break_the_stack_has_nothing_for_is_an_error_and_breaks_nothing(play: Play) -> None:
    result = play(break_what="drop-statement", health_check_now=True)  # no OrganizationId: no statement

    assert result.broken == ""
    assert result.break_error.startswith("--break drop-statement: the stack has no registry policy statement")
    assert result.health is not None
    assert moved(result.health.metrics) == set()


def test_the_metrics_are_read_from_emf_documents_only() -> None:
    document = (
        '{"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [["CachePrefix"]], '
        '"Metrics": [{"Name": "DriftedSettings", "Unit": "Count"}]}]}, '
        '"CachePrefix": "quay", "DriftedSettings": [1, 2]}'
    )
    output = "\n".join(['{"level": "INFO", "CachePrefix": "quay", "DriftedSettings": 9}', "not json {", document])

    assert emf_metrics(output) == {"quay": {"DriftedSettings": 3}}


def test_a_wrong_break_gets_the_closest_one() -> None:
    assert unknown_break("revoke-credentials") == (
        "--break revoke-credentials is not something the player can break: did you mean revoke-credential?"
    )
    assert unknown_break("everything").endswith(
        "(one of revoke-credential, edit-rule, delete-template, drop-statement)"
    )
    assert unknown_break("edit-rule") == unknown_break("list") == unknown_break("") == ""


def test_the_registry_policy_and_scanning_survive_between_runs(play: Play) -> None:
    """make local keeps the registry between runs (registry.json): the registry-wide settings the stack merged into
    too, or a second run would find the organisation's statement and the scanning filters gone (and --break
    drop-statement nothing to drop)."""
    overrides = (*OVERRIDES, "RegistryScanning=SCAN_ON_PUSH")
    first = play(*overrides, keep_registry=True)
    second = play(*overrides, keep_registry=True)

    assert second.stack.stack_status == "NO_CHANGES"
    assert second.registry.policy_statements == first.registry.policy_statements != []
    assert second.registry.scanning == first.registry.scanning
    assert second.registry.scanning["rules"] != []


def test_a_revoked_token_outlives_a_run_but_not_its_secret(play: Play) -> None:
    """The emulated upstream keeps refusing a revoked token in the next run (registry.json keeps it), until the secret
    is deleted (make local-delete): a stack made again, with a new stub under the same ARN, logs in."""
    play(*OVERRIDES, break_what="revoke-credential", keep_registry=True)
    later = play(*OVERRIDES, health_check_now=True, keep_registry=True)
    assert later.health is not None
    assert moved(later.health.metrics) == {("UpstreamLoginFailed", "docker-hub")}

    assert play(delete=True, keep_registry=True).succeeded
    again = play(*OVERRIDES, health_check_now=True, keep_registry=True)

    assert again.health is not None
    assert set(again.health.metrics) == CHECKED
    assert moved(again.health.metrics) == set()
