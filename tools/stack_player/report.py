"""What a run prints: why it failed (first), the resources table, the stack's outputs, then the registry as ECR
now has it."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tools.stack_player.aws import LocalAws, registry_repositories
from tools.stack_player.monitoring import DEFAULT_GROUP
from tools.stack_player.player import Outcome, StackResult
from tools.stack_player.progress import Progress
from tools.stack_player.sweep import MEGABYTE, SweepReport


@dataclass
class Registry:
    """The account's pull-through caching as ECR describes it after the run."""

    rules: list[dict[str, Any]] = field(default_factory=list)
    templates: list[dict[str, Any]] = field(default_factory=list)
    repositories: list[dict[str, Any]] = field(default_factory=list)
    # Registry-wide settings, merged by the provider's types: the registry policy's statements, and the scanning.
    policy_statements: list[dict[str, Any]] = field(default_factory=list)
    scanning: dict[str, Any] = field(default_factory=dict)
    # What the provider holds in its ownership ledger (claims and repository records) and its image expiry
    # schedules: after the stack is deleted, nothing.
    ledger: list[dict[str, str]] = field(default_factory=list)
    schedules: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, aws: LocalAws, progress: Progress | None = None) -> Registry:
        ecr = aws.client("ecr")
        rules = [rule for page in ecr.get_paginator("describe_pull_through_cache_rules").paginate()
                 for rule in page["pullThroughCacheRules"]]  # fmt: skip
        templates = ecr.describe_repository_creation_templates().get("repositoryCreationTemplates", [])
        repositories = registry_repositories(ecr, progress or Progress(None), "Reading the registry")
        try:
            statements = json.loads(ecr.get_registry_policy()["policyText"]).get("Statement", [])
        except ecr.exceptions.RegistryPolicyNotFoundException:
            statements = []
        scanning = ecr.get_registry_scanning_configuration()["scanningConfiguration"]
        return cls(rules=rules, templates=templates, repositories=repositories, policy_statements=statements,
                   scanning=scanning, ledger=_ledger(aws), schedules=_schedules(aws))  # fmt: skip


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=False)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in [headers, *rows]]  # fmt: skip
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def render(result: StackResult, registry: Registry, notes: list[str] | None = None) -> str:
    lines = [f"Stack {result.stack_name}: {result.stack_status}", ""]
    failures = [outcome for outcome in result.outcomes if outcome.reason]
    if failures or result.warnings:
        lines += ["Why", *[f"  {outcome.logical_id} ({outcome.action}): {outcome.reason}" for outcome in failures]]
        lines += [*[f"  {warning}" for warning in result.warnings], ""]
    rows = []
    natives = [outcome for outcome in result.outcomes if outcome.status == "NOT EMULATED"]
    for outcome in result.outcomes:
        if outcome.status == "NOT EMULATED":
            continue  # folded into one line below the table
        sent = outcome.status in ("SUCCEEDED", "FAILED") and outcome.action != "Unchanged"
        seconds = f"{outcome.seconds:.2f}s" if sent else "-"
        rows.append([outcome.logical_id, outcome.resource_type, outcome.action, outcome.status, seconds,
                     outcome.physical_id or "-"])  # fmt: skip
    if rows:
        lines += table(["Resource", "Type", "Action", "Status", "Time", "Physical id"], rows)
    if natives:
        lines.append(native_line(natives))
    attributes = [f"  {outcome.logical_id}.{name} = {value}" for outcome in result.outcomes
                  for name, value in outcome.attributes.items()]  # fmt: skip
    if attributes:
        lines += ["", "Attributes", *attributes]
    if result.outputs:
        lines += ["", "Outputs"] + [f"  {name} = {value}" for name, value in result.outputs.items()]
    lines += [f"Note: {note}" for note in notes or []]
    lines += ["", *_registry_lines(registry)]
    return "\n".join(lines) + "\n"


def native_line(natives: list[Outcome]) -> str:
    """The native resources folded into one line: how many, of which types, and what is done with them (docs/local.md:
    not emulated; what the provider needs of them is made, and IAM roles and policies are enforced)."""
    types = Counter(outcome.resource_type for outcome in natives)
    listed = ", ".join(kind if count == 1 else f"{kind} x{count}" for kind, count in types.items())
    actions = Counter(outcome.action for outcome in natives)
    if set(actions) == {"Native"}:
        return f"{len(natives)} native resources ({listed}): not emulated, made as the provider needs"
    done = ", ".join(f"{action} {count}" for action, count in actions.items())
    return f"{len(natives)} native resources ({listed}), {done}: not emulated"


def _registry_lines(registry: Registry) -> list[str]:
    lines = ["Pull-through cache rules in ECR"]
    if registry.rules:
        rows = [[rule["ecrRepositoryPrefix"], rule["upstreamRegistryUrl"], rule.get("upstreamRegistry", "-"),
                 rule.get("credentialArn") or rule.get("customRoleArn") or "-"]
                for rule in sorted(registry.rules, key=lambda rule: str(rule["ecrRepositoryPrefix"]))]  # fmt: skip
        lines += table(["Prefix", "Upstream URL", "Upstream registry", "Credential"], rows)
    else:
        lines.append("  (none)")
    lines += ["", "Repository creation templates"]
    if registry.templates:
        rows = [[template["prefix"], ",".join(template.get("appliedFor", [])),
                 "yes" if template.get("lifecyclePolicy") else "no"] for template in registry.templates]  # fmt: skip
        lines += table(["Prefix", "Applied for", "Lifecycle policy"], rows)
    else:
        lines.append("  (none)")
    lines += ["", "Registry policy statements"]
    if registry.policy_statements:
        rows = [[str(statement.get("Sid", "-")), ",".join(_listed(statement.get("Action"))),
                 str(len(_listed(statement.get("Resource"))))] for statement in registry.policy_statements]  # fmt: skip
        lines += table(["Sid", "Actions", "Resources"], rows)
    else:
        lines.append("  (no registry policy)")
    lines += ["", f"Registry scanning: {registry.scanning.get('scanType', 'BASIC')}"]
    rows = [[rule["scanFrequency"], " ".join(item["filter"] for item in rule["repositoryFilters"])]
            for rule in registry.scanning.get("rules", [])]  # fmt: skip
    lines += table(["Frequency", "Filters"], rows) if rows else ["  (no rules)"]
    lines += ["", f"Repositories: {len(registry.repositories)}"]
    if registry.repositories:
        totals: Counter[str] = Counter()
        with_policy: Counter[str] = Counter()
        for repository in registry.repositories:
            top = repository["name"].split("/", 1)[0]
            totals[top] += 1
            with_policy[top] += bool(repository["lifecyclePolicy"])
        rows = [[top, str(totals[top]), str(with_policy[top])] for top in sorted(totals)]
        lines += table(["First path component", "Repositories", "With a lifecycle policy"], rows)
    lines += ["", "Held by the provider (ownership ledger and image expiry schedules)"]
    counts = Counter((item["kind"], item["owner"]) for item in registry.ledger)
    rows = [[kind, owner, str(count)] for (kind, owner), count in sorted(counts.items())]
    rows += [["image expiry schedule (EventBridge Scheduler)", name, "1"] for name in registry.schedules]
    lines += table(["What", "Owner", "Count"], rows) if rows else ["  (nothing)"]
    return lines


def _ledger(aws: LocalAws) -> list[dict[str, str]]:
    """Every claim and repository record in the ownership tables (a resource's record, kept a while after it is
    deleted, and a lock are neither)."""
    dynamodb = aws.client("dynamodb")
    found = []
    for table in dynamodb.list_tables()["TableNames"]:
        for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
            for item in page["Items"]:
                kind = item.get("Kind", {}).get("S", "")
                if kind and kind != "resource":
                    found.append({"kind": kind, "name": item.get("Name", {}).get("S", ""),
                                  "owner": item.get("LogicalResourceId", {}).get("S", "")})  # fmt: skip
    return sorted(found, key=lambda item: (item["kind"], item["name"]))


def _schedules(aws: LocalAws) -> list[str]:
    """The provider's schedules: those of the schedule groups its stacks made (the health check's schedule, in the
    default group, is the stack's own, listed with the native resources)."""
    scheduler = aws.client("scheduler")
    return sorted(
        f"{group['Name']}/{schedule['Name']}"
        for group in scheduler.list_schedule_groups()["ScheduleGroups"]
        if group["Name"] != DEFAULT_GROUP
        for schedule in scheduler.list_schedules(GroupName=group["Name"])["Schedules"]
    )


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def render_sweeps(sweeps: list[SweepReport], now: datetime | None = None) -> str:
    """--sweep-now: per CacheImageExpiry, the images its sweep expired (a table) and what that freed."""
    if not sweeps:
        return ""
    now = now or datetime.now(UTC)
    lines = ["", "Image expiry sweeps, run now"]
    for sweep in sweeps:
        if sweep.error:
            lines.append(f"  {sweep.logical_id} ({sweep.prefix}): FAILED: {sweep.error}")
            continue
        if sweep.dry_run:
            lines.append(f"  {sweep.logical_id} ({sweep.prefix}): DryRun, nothing deleted; what it would delete is in "
                         "the provider's log (\"Dry run: images that would expire\")")  # fmt: skip
            continue
        freed = f"{sweep.bytes_freed / MEGABYTE:.0f} MB"
        deleted = f", {len(sweep.repositories_deleted)} repositories deleted" if sweep.repositories_deleted else ""
        lines.append(f"  {sweep.logical_id} ({sweep.prefix}): {len(sweep.expired)} images expired, {freed} freed"
                     f"{deleted}, in {sweep.seconds:.1f} s")  # fmt: skip
        if sweep.kept_in_use:
            lines.append(f"    kept, in use: {', '.join(sweep.kept_in_use)}")
        rows = [[image["repository"], image["tags"], image["digest"][7:19], _age(image, now),
                 "index" if image["index"] else f"{image['size'] / MEGABYTE:.0f} MB"]
                for image in sweep.expired]  # fmt: skip
        if rows:
            lines += ["    " + line for line in table(["Repository", "Tags", "Digest", "Last pulled", "Size"], rows)]
    return "\n".join(lines) + "\n"


def _age(image: dict[str, Any], now: datetime) -> str:
    days = (now - image["last_used"]).days
    return f"{days} days ago" if image["pulled"] else f"never (cached {days} days ago)"
