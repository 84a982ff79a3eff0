"""The health check in `make local`: things a person breaks out of band on the local registry (--break), and the
provider's health check run now against it (--health-check-now), shown per cache prefix with the metric values
the function printed (EMF), so that each alarm's metric can be seen to move."""

from __future__ import annotations

import difflib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from emulation.cloudformation import LambdaContext
from emulation.moto_ecr import faults
from tools.stack_player.aws import STUB_TAG, LocalAws
from tools.stack_player.report import table
from tools.stack_player.state import StackState

RULE_TYPE = "Custom::PullThroughCacheRule"
SETTINGS_TYPE = "Custom::CachedRepositorySettings"
STATEMENTS_TYPE = "Custom::RegistryPolicyStatements"
# How long the health check may run here: the provider's Timeout in template.yaml.
HEALTH_CHECK_SECONDS = 300.0
# The health check's event (src/ecr_cache_provider/engine/health_check.py, HEALTH_CHECK_KEY) and the schedule it names.
HEALTH_CHECK_KEY = "CacheProviderHealthCheck"
SCHEDULE_NAME = "make-local-health-check-now"
# The metrics per cache prefix (docs/health-check.md), in the order the table shows them.
METRICS = ("UpstreamLoginFailed", "DriftedSettings", "HealthCheckErrors", "DriftRepaired")
LOGIN_FAILED, DRIFTED, ERRORS = METRICS[:3]
# The secret an out-of-band rule edit points the rule at (tagged as the stack's stub: make local-delete removes it).
EDIT_SECRET_NAME = "ecr-pullthroughcache/edited-out-of-band"
EDIT_SECRET_VALUE = json.dumps({"username": "someone-else", "accessToken": "edited-out-of-band"})
# Upstream registries whose rules take a credential: Docker Hub, Azure, GitHub, GitLab and Chainguard require one, Quay
# takes one if given (template.yaml's QuayCredentialArn); ECR Public and registry.k8s.io take none, another ECR
# registry a role (https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache.html).
TAKES_A_CREDENTIAL = ("docker-hub", "quay", "github-container-registry", "gitlab-container-registry",
                      "azure-container-registry", "chainguard")  # fmt: skip

# --break: what a person breaks, and the metric that moves for it.
BREAKS = {
    "revoke-credential": (
        "the upstream registry refuses a cache rule's credential, as after its token was revoked (UpstreamLoginFailed)"
    ),
    "edit-rule": "a cache rule is pointed at another credential out of band, UpdatePullThroughCacheRule "
    "(DriftedSettings)",
    "delete-template": "a cache's repository creation template is deleted, DeleteRepositoryCreationTemplate "
    "(DriftedSettings)",
    "drop-statement": "the stack's statement is taken out of the registry policy, PutRegistryPolicy (DriftedSettings)",
}
LIST = "list"


class BreakError(Exception):
    """What --break was asked to break does not exist in the played stack."""


def break_menu() -> str:
    width = max(len(name) for name in BREAKS)
    lines = ["--break WHAT: break one thing out of band on the local registry, as a person would", ""]
    lines += [f"  {name.ljust(width)}  {description}" for name, description in BREAKS.items()]
    lines += ["", 'then: make local ARGS="--health-check-now" shows the metric move (docs/local.md)']
    return "\n".join(lines) + "\n"


def unknown_break(what: str) -> str:
    """The error for a --break value that is not on the menu (empty when it is), with the closest one."""
    if not what or what in BREAKS or what == LIST:
        return ""
    closest = difflib.get_close_matches(what, list(BREAKS), n=1, cutoff=0.6)
    hint = f": did you mean {closest[0]}?" if closest else f" (one of {', '.join(BREAKS)})"
    return f"--break {what} is not something the player can break{hint}"


def break_stack(aws: LocalAws, what: str, state: StackState) -> str:
    """Break `what` in the played stack out of band (the admin's calls, not the provider's); one line saying what
    was broken. Raises BreakError when the stack has nothing of that kind."""
    breakers = {"revoke-credential": _revoke_credential, "edit-rule": _edit_rule,
                "delete-template": _delete_template, "drop-statement": _drop_statement}  # fmt: skip
    breaker = breakers.get(what)
    if breaker is None:
        raise BreakError(unknown_break(what) or "nothing to break: pick one of the menu")
    return f"broken out of band: {breaker(aws, state)}"


def _stack_rules(aws: LocalAws, state: StackState) -> list[dict[str, Any]]:
    prefixes = {record.physical_id for record in state.resources.values() if record.resource_type == RULE_TYPE}
    ecr = aws.client("ecr")
    rules = [rule for page in ecr.get_paginator("describe_pull_through_cache_rules").paginate()
             for rule in page["pullThroughCacheRules"] if rule["ecrRepositoryPrefix"] in prefixes]  # fmt: skip
    return sorted(rules, key=lambda rule: str(rule["ecrRepositoryPrefix"]))


def _revoke_credential(aws: LocalAws, state: StackState) -> str:
    rules = [rule for rule in _stack_rules(aws, state) if rule.get("credentialArn")]
    if not rules:
        raise BreakError("no cache rule of the stack has a credential: add one, e.g. --parameter-overrides "
                         "DockerHubCredentialArn=arn:aws:secretsmanager:us-east-1:123456789012:secret:"
                         "ecr-pullthroughcache/docker-hub-AbCdEf")  # fmt: skip
    rule = rules[0]
    arn = str(rule["credentialArn"])
    value = aws.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    faults.revoke_upstream_credentials(arn, str(json.loads(value)["accessToken"]))
    return (f"the upstream registry of {rule['ecrRepositoryPrefix']} refuses the token in {arn} (revoked); "
            "a new value of the secret (a rotated token) is accepted again")  # fmt: skip


def _edit_rule(aws: LocalAws, state: StackState) -> str:
    rules = _stack_rules(aws, state)
    rules = [rule for rule in rules if rule.get("credentialArn")] or [
        rule for rule in rules if rule.get("upstreamRegistry") in TAKES_A_CREDENTIAL
    ]
    if not rules:
        raise BreakError("no cache rule of the stack takes a credential (Quay, Docker Hub, GitHub, GitLab, ...)")
    prefix = str(rules[0]["ecrRepositoryPrefix"])
    secrets = aws.client("secretsmanager")
    try:
        arn = secrets.describe_secret(SecretId=EDIT_SECRET_NAME)["ARN"]
    except secrets.exceptions.ResourceNotFoundException:
        tags = [{"Key": STUB_TAG, "Value": state.stack_name}]  # make local-delete deletes it with the stack
        arn = secrets.create_secret(Name=EDIT_SECRET_NAME, SecretString=EDIT_SECRET_VALUE, Tags=tags)["ARN"]
    aws.client("ecr").update_pull_through_cache_rule(ecrRepositoryPrefix=prefix, credentialArn=arn)
    return f"the cache rule {prefix} now uses the credential {arn} (UpdatePullThroughCacheRule)"


def _delete_template(aws: LocalAws, state: StackState) -> str:
    declared = {str(record.properties.get("RepositoryPrefix")) for record in state.resources.values()
                if record.resource_type == SETTINGS_TYPE and not record.native}  # fmt: skip
    ecr = aws.client("ecr")
    templates = ecr.describe_repository_creation_templates().get("repositoryCreationTemplates", [])
    prefixes = sorted(str(template["prefix"]) for template in templates if template["prefix"] in declared)
    if not prefixes:
        raise BreakError("the stack has no repository creation template (EnableLifecyclePolicies=true makes them)")
    ecr.delete_repository_creation_template(prefix=prefixes[0])
    return f"the repository creation template {prefixes[0]} was deleted (DeleteRepositoryCreationTemplate)"


def _drop_statement(aws: LocalAws, state: StackState) -> str:
    sids = {str(statement.get("Sid")) for record in state.resources.values()
            if record.resource_type == STATEMENTS_TYPE and not record.native
            for statement in record.properties.get("Statements", []) if isinstance(statement, dict)}  # fmt: skip
    ecr = aws.client("ecr")
    try:
        policy = json.loads(ecr.get_registry_policy()["policyText"])
    except ecr.exceptions.RegistryPolicyNotFoundException:
        policy = {"Statement": []}
    statements = policy.get("Statement", [])
    dropped = sorted(str(statement.get("Sid")) for statement in statements if statement.get("Sid") in sids)
    if not dropped:
        raise BreakError("the stack has no registry policy statement: set OrganizationId, e.g. "
                         "--parameter-overrides OrganizationId=o-a1b2c3d4e5")  # fmt: skip
    policy["Statement"] = [statement for statement in statements if statement.get("Sid") != dropped[0]]
    if policy["Statement"]:
        ecr.put_registry_policy(policyText=json.dumps(policy))
    else:
        ecr.delete_registry_policy()
    return f"the statement {dropped[0]} was taken out of the registry policy"


@dataclass
class HealthCheckRun:
    """One health check run now: the summary the provider returned, and the metric values it printed (EMF), per
    cache prefix."""

    summary: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    rule_prefixes: list[str] = field(default_factory=list)  # the stack's cache rules: their login is checked
    seconds: float = 0.0
    error: str = ""


def health_check_now(aws: LocalAws, state: StackState) -> HealthCheckRun:
    """Invoke the provider function with the health check's event, as its schedule would, against the local
    registry; its summary and the metrics it printed."""
    tokens = [record.properties["ServiceToken"] for record in state.resources.values()
              if not record.native and "ServiceToken" in record.properties]  # fmt: skip
    run = HealthCheckRun(rule_prefixes=[str(rule["ecrRepositoryPrefix"]) for rule in _stack_rules(aws, state)])
    if not tokens:
        run.error = "the stack has no provider function to run the health check (play the stack first)"
        return run
    event = {HEALTH_CHECK_KEY: {"schedule": SCHEDULE_NAME}, "ServiceToken": tokens[0]}
    output: list[str] = []
    started = time.monotonic()
    try:
        returned = aws.invoke_provider(event, LambdaContext(HEALTH_CHECK_SECONDS, str(tokens[0])), output)
    except RuntimeError as error:
        run.error = str(error).splitlines()[0]
        returned = None
    run.seconds = time.monotonic() - started
    if not run.error and not isinstance(returned, dict):
        run.error = f"the provider returned no summary ({returned!r})"
    run.summary = returned if isinstance(returned, dict) else {}
    run.metrics = emf_metrics("".join(output))
    return run


def emf_metrics(output: str) -> dict[str, dict[str, float]]:
    """The EMF metric values with a CachePrefix dimension in what the function printed: prefix -> name -> total."""
    metrics: dict[str, dict[str, float]] = {}
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if not isinstance(document, dict) or "_aws" not in document or "CachePrefix" not in document:
            continue
        for directive in document["_aws"].get("CloudWatchMetrics", []):
            for metric in directive.get("Metrics", []):
                value = document.get(metric["Name"], 0)  # one value, or a list of them
                total = sum(value) if isinstance(value, list) else value
                by_name = metrics.setdefault(str(document["CachePrefix"]), {})
                by_name[metric["Name"]] = by_name.get(metric["Name"], 0) + total
    return metrics


def render_health(run: HealthCheckRun | None) -> str:
    """--health-check-now: a table per cache prefix (the upstream login, the drift, the repositories sampled, what
    was repaired, and the value of each metric the function printed), then what was found, one line each."""
    if run is None:
        return ""
    lines = ["", "Health check, run now"]
    if run.error:
        return "\n".join([*lines, f"  FAILED: {run.error}"]) + "\n"
    summary = run.summary
    findings = summary.get("findings", [])
    sampled: dict[str, int] = summary.get("sampled", {})
    repaired = summary.get("repaired", [])
    prefixes = sorted({*run.metrics, *(str(item["prefix"]) for item in [*findings, *repaired]), *sampled})
    names = [name for name in METRICS if any(name in values for values in run.metrics.values())]
    names += sorted({name for values in run.metrics.values() for name in values} - set(names))
    rows, found = [], []
    for prefix in prefixes:
        shown = prefix or "(ledger)"
        mine = [item for item in findings if item["prefix"] == prefix]
        failed = [item for item in mine if item["metric"] == LOGIN_FAILED]
        drifted = [item for item in mine if item["metric"] == DRIFTED]
        fixed = [item for item in repaired if item["prefix"] == prefix]
        found += [f"{shown}: login failed: {str(item['detail']).removeprefix('upstream login failed: ')}"
                  for item in failed]  # fmt: skip
        found += [f"{shown}: drift: {item['checked']} {item['detail']}" for item in drifted]
        found += [f"{shown}: repaired: {item['checked']} {item['detail']}" for item in fixed]
        found += [f"{shown}: error: {item['checked']}: {item['detail']}" for item in mine if item["metric"] == ERRORS]
        login = "failed" if failed else "ok" if prefix in run.rule_prefixes else "-"
        counts = run.metrics.get(prefix, {})
        values = [f"{counts[name]:g}" if name in counts else "-" for name in names]
        rows.append([shown, login, f"{len(drifted)} found" if drifted else "none", str(sampled.get(prefix, "-")),
                     f"{len(fixed)} repaired" if fixed else "-", *values])  # fmt: skip
    unchecked = summary.get("unchecked", [])
    continued = " (continued in a follow-up invocation)" if summary.get("continued") else ""
    plural = "" if len(findings) == 1 else "s"
    lines.append(f"  {summary.get('checked', 0)} checked in {run.seconds:.1f} s, {len(findings)} finding{plural}"
                 f"{continued}; unchecked: {', '.join(unchecked) or 'nothing'}")  # fmt: skip
    if rows:
        headers = ["Cache prefix", "Login", "Drift", "Sampled repositories", "Repaired", *names]
        lines += ["    " + line for line in table(headers, rows)]
    lines += [f"  {line}" for line in found]
    lines.append("  metrics: from the EMF lines the function printed (provider.log), as CloudWatch would count them")
    return "\n".join(lines) + "\n"
