"""The health check at scale: a ledger holding 1,000 rules' worth of entries (each rule's resource record with its
declared state, and its claim; ECR holds at most 50 rules a registry, so the others' rules were deleted by hand and
each is reported missing) and a registry of 10,000 cached repositories in namespaces whose lifecycle policy
resources the ledger records (with a repository record for every repository), all on a local moto server with a
latency injected into every ECR call.

    python bench/health_check.py [--rules 1000] [--repositories 10000] [--namespaces 10] [--latency 0.02]
                                 [--lambda-timeout 120]

Measured in the same run, against the same seeded server:
- the provider's health check, invoked as its schedule does through the local Lambda emulator, following its own
  hand-offs to follow-up invocations when an invocation's time runs short: the time, the invocations, the calls per
  run (ECR, by operation, as the server counted them), and what it checked and sampled;
- a bare boto3 loop making the same calls (the ledger's Scan and BatchGetItem, each rule's describe and validate,
  each template's describe, the repository listing, the sampled repositories' lifecycle policies), with nothing
  compared, logged or published: the baseline. The ratio of the two times is the engine's overhead.

Asserts nothing. ECR is served from a separate process, as the real one is remote (see bench/backfill.py)."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from emulation import ecr_process, moto_ecr  # noqa: E402
from emulation.cloudformation import ACCOUNT_ID, REGION, STACK_ID  # noqa: E402
from emulation.ecr_process import EcrProcess, serve_until_stdin_closes  # noqa: E402
from emulation.lambda_emulator import start_lambda_emulator  # noqa: E402
from emulation.moto_ecr import faults  # noqa: E402
from emulation.moto_server import start_moto_server  # noqa: E402
from emulation.ownership import TABLE_NAME, create_ownership_table  # noqa: E402

FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:ecr-pull-through-cache-provider"
CALLS = (
    "DescribePullThroughCacheRules",
    "ValidatePullThroughCacheRule",
    "DescribeRepositoryCreationTemplates",
    "DescribeRepositories",
    "GetLifecyclePolicy",
)
# ECR's quota of pull-through cache rules per registry, which the emulation enforces: past it, the ledger's records
# are of rules deleted by hand (each still checked: one DescribePullThroughCacheRules, and a finding).
RULES_PER_REGISTRY = 50
POLICY = {
    "rules": [
        {
            "rulePriority": 1,
            "description": "Keep at most 100 images",
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 100},
            "action": {"type": "expire"},
        }
    ]
}


def serve(options: argparse.Namespace) -> None:
    """The ECR and DynamoDB side, in its own process: the rules and the namespaces' repositories, and the ledger
    entries their resources would have written; then latency, and serve."""
    from ecr_cache_provider.aws.ecr import RuleSettings
    from ecr_cache_provider.aws.ledger import Ledger, Owner, SettingsRecord, Thing
    from ecr_cache_provider.deadline import Deadline
    from ecr_cache_provider.engine.declared_state import (
        declared_properties,
        repositories_state,
        rule_state,
        template_state,
    )
    from ecr_cache_provider.engine.setting_kinds import Settings

    server, endpoint_url = start_moto_server()
    os.environ["AWS_ENDPOINT_URL"] = endpoint_url
    create_ownership_table(endpoint_url)
    ecr: Any = boto3.client("ecr", endpoint_url=endpoint_url)
    ledger = Ledger(Deadline(time.monotonic() + 3600))
    now = datetime.now(UTC)

    def record(logical_id: str, resource_type: str, declared: dict[str, Any], thing: Thing) -> Owner:
        owner = Owner(STACK_ID, logical_id, f"request-{logical_id}", resource_type)
        ledger.begin(owner, "Create", now)
        ledger.keep_declared(owner, declared)
        ledger.claim(thing, owner)
        return owner

    for index in range(options.rules):
        rule = RuleSettings(f"cache-{index:04d}", "public.ecr.aws")
        prefix = rule.ecr_repository_prefix
        if index < RULES_PER_REGISTRY:  # past them, recorded in the ledger and deleted by hand since: reported
            ecr.create_pull_through_cache_rule(ecrRepositoryPrefix=prefix, upstreamRegistryUrl="public.ecr.aws")
        properties = {"EcrRepositoryPrefix": prefix, "UpstreamRegistryUrl": "public.ecr.aws"}
        declared = declared_properties("Custom::PullThroughCacheRule", properties) | rule_state(rule)
        record(f"Rule{index}", "Custom::PullThroughCacheRule", declared, Thing("pull-through cache rule", prefix))
    settings = Settings(lifecycle_policy=POLICY)
    per_namespace = options.repositories // options.namespaces
    for index in range(options.namespaces):
        namespace = f"cache-{index:04d}"
        template = settings.template(namespace, "")
        ecr.create_repository_creation_template(
            prefix=namespace, lifecyclePolicy=template.lifecycle_policy, appliedFor=["PULL_THROUGH_CACHE"]
        )
        properties = {"RepositoryPrefix": namespace, "LifecyclePolicyText": json.dumps(POLICY)}
        declared = (
            declared_properties("Custom::CacheLifecyclePolicy", properties)
            | template_state(template)
            | repositories_state((namespace,), settings.values)
        )
        owner = record(
            f"Policy{index}", "Custom::CacheLifecyclePolicy", declared, Thing("repository creation template", namespace)
        )
        names = [f"{namespace}/library/image-{number:05d}" for number in range(per_namespace)]
        for name in names:
            moto_ecr.simulate_cached_pull(ACCOUNT_ID, REGION, name)
        entry = {"lifecycle_policy": {"before": None, "set": settings.values["lifecycle_policy"]}}
        ledger.write_settings_records(owner, [SettingsRecord(name, namespace, entry) for name in names])
    faults.reset()
    faults.latency(options.latency)
    serve_until_stdin_closes(endpoint_url, lambda: {"calls": {name: faults.count(name) for name in CALLS}})
    server.stop()


def provider(options: argparse.Namespace) -> dict[str, Any]:
    """The health check as its schedule invokes it, with every follow-up invocation it hands off to."""
    ecr = EcrProcess.start(__file__, sys.argv[1:])
    os.environ["AWS_ENDPOINT_URL"] = ecr.endpoint_url
    summaries: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> Any:
        from ecr_cache_provider.handler import lambda_handler

        summary = lambda_handler(event, context)
        summaries.append(summary or {})
        return summary

    lambda_service = start_lambda_emulator(handler, timeout_seconds=options.lambda_timeout)
    os.environ["AWS_ENDPOINT_URL_LAMBDA"] = lambda_service.url
    started, cpu = time.monotonic(), time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):  # the EMF documents
        lambda_service.invoke(
            {"CacheProviderHealthCheck": {"schedule": "bench"}}, asynchronous=True, function=FUNCTION_ARN
        )
        lambda_service.wait_idle(timeout=3600)
    elapsed, cpu = time.monotonic() - started, time.process_time() - cpu
    lambda_service.close()
    server = ecr.finish()
    return {
        "elapsed": elapsed,
        "cpu": cpu,
        "invocations": len(lambda_service.invocations),
        "calls": server["calls"],
        "checked": sum(item.get("checked", 0) for item in summaries),
        "findings": sum(len(item.get("findings", [])) for item in summaries),
        "sampled": sum(sum(item.get("sampled", {}).values()) for item in summaries),
        "unchecked": sum(len(item.get("unchecked", [])) for item in summaries),
    }


def bare_loop(options: argparse.Namespace) -> dict[str, Any]:
    """The same calls, made by boto3 with the provider's client settings: nothing compared, logged or counted."""
    from ecr_cache_provider.aws.ecr import CLIENT_CONFIG
    from ecr_cache_provider.aws.ledger.repository_records import _settings_key
    from ecr_cache_provider.aws.ledger.table import Owner

    ecr_side = EcrProcess.start(__file__, sys.argv[1:])
    ecr: Any = boto3.client("ecr", endpoint_url=ecr_side.endpoint_url, config=CLIENT_CONFIG)
    dynamodb: Any = boto3.client("dynamodb", endpoint_url=ecr_side.endpoint_url)
    started, cpu = time.monotonic(), time.process_time()
    items: list[dict[str, Any]] = []
    arguments: dict[str, Any] = {"TableName": TABLE_NAME}
    while True:
        page = dynamodb.scan(**arguments)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    for index in range(options.rules):
        try:
            ecr.describe_pull_through_cache_rules(ecrRepositoryPrefixes=[f"cache-{index:04d}"])
        except ecr.exceptions.PullThroughCacheRuleNotFoundException:
            continue
        ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix=f"cache-{index:04d}")
    names = [repository["repositoryName"] for page in ecr.get_paginator("describe_repositories").paginate(
        PaginationConfig={"PageSize": 1000}) for repository in page["repositories"]]  # fmt: skip
    for index in range(options.namespaces):
        namespace = f"cache-{index:04d}"
        ecr.describe_repository_creation_templates(prefixes=[namespace])
        sample = sorted(name for name in names if name.startswith(f"{namespace}/"))[:10]
        owner = Owner(STACK_ID, f"Policy{index}", "")
        keys = [_settings_key(owner, name) for name in sample]
        dynamodb.batch_get_item(RequestItems={TABLE_NAME: {"Keys": keys, "ConsistentRead": True}})
        for name in sample:
            ecr.get_lifecycle_policy(repositoryName=name)
    elapsed, cpu = time.monotonic() - started, time.process_time() - cpu
    server = ecr_side.finish()
    return {"elapsed": elapsed, "cpu": cpu, "calls": server["calls"], "ledger_items": len(items)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--repositories", type=int, default=10000)
    parser.add_argument("--namespaces", type=int, default=10)
    ecr_process.add_arguments(parser)
    options = parser.parse_args()
    if ecr_process.serves(options, serve):
        return
    os.environ.update({"OWNERSHIP_TABLE": TABLE_NAME, "HEALTH_CHECK_REPAIR_DRIFT": "false"})
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    print(
        f"rules: {options.rules}, repositories: {options.repositories} in {options.namespaces} namespaces, "
        f"latency per call: {options.latency * 1000:.0f} ms, Lambda timeout {options.lambda_timeout:.0f} s"
    )
    bare = bare_loop(options)
    ran = provider(options)
    ecr_calls = sum(ran["calls"].values())
    print(
        f"  health check: {ran['checked']} checked, {ran['sampled']} repositories sampled, {ran['findings']} "
        f"findings, {ran['unchecked']} unchecked, in {ran['invocations']} invocation(s), {ran['elapsed']:.1f} s "
        f"(CPU {ran['cpu']:.1f} s); ECR calls per run {ecr_calls}: {ran['calls']}"
    )
    print(
        f"  bare boto3 loop: {bare['elapsed']:.1f} s (CPU {bare['cpu']:.1f} s), ECR calls "
        f"{sum(bare['calls'].values())}: {bare['calls']}; ledger items scanned {bare['ledger_items']}"
    )
    print(
        f"  ratio to the bare loop: time {ran['elapsed'] / bare['elapsed']:.2f}, CPU {ran['cpu'] / bare['cpu']:.2f}, "
        f"ECR calls {ecr_calls / sum(bare['calls'].values()):.2f}"
    )


if __name__ == "__main__":
    main()
