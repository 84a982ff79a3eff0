"""What a run prints: the resources table, the stack's outputs, then the registry as ECR now has it; and the
progress bar shown while seeding repositories or waiting on a long answer. Plain text, no dependency."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

from tools.stack_player.aws import LocalAws, registry_repositories
from tools.stack_player.player import StackResult


@dataclass
class Registry:
    """The account's pull-through caching as ECR describes it after the run."""

    rules: list[dict[str, Any]] = field(default_factory=list)
    templates: list[dict[str, Any]] = field(default_factory=list)
    repositories: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def read(cls, aws: LocalAws) -> Registry:
        ecr = aws.client("ecr")
        rules = [rule for page in ecr.get_paginator("describe_pull_through_cache_rules").paginate()
                 for rule in page["pullThroughCacheRules"]]  # fmt: skip
        templates = ecr.describe_repository_creation_templates().get("repositoryCreationTemplates", [])
        return cls(rules=rules, templates=templates, repositories=registry_repositories(ecr))


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=False)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in [headers, *rows]]  # fmt: skip
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def render(result: StackResult, registry: Registry, notes: list[str] | None = None) -> str:
    lines = [f"Stack {result.stack_name}: {result.stack_status}", ""]
    rows = []
    for outcome in result.outcomes:
        sent = outcome.status in ("SUCCEEDED", "FAILED") and outcome.action != "Unchanged"
        seconds = f"{outcome.seconds:.2f}s" if sent else "-"
        rows.append([outcome.logical_id, outcome.resource_type, outcome.action, outcome.status, seconds,
                     outcome.physical_id or "-"])  # fmt: skip
    lines += table(["Resource", "Type", "Action", "Status", "Time", "Physical id"], rows)
    details = [(outcome.logical_id, outcome) for outcome in result.outcomes if outcome.attributes or outcome.reason]
    if details:
        lines += ["", "Attributes and reasons"]
        for logical_id, outcome in details:
            if outcome.reason:
                lines.append(f"  {logical_id} ({outcome.action}): {outcome.reason}")
            for name, value in outcome.attributes.items():
                lines.append(f"  {logical_id}.{name} = {value}")
    if result.outputs:
        lines += ["", "Outputs"] + [f"  {name} = {value}" for name, value in result.outputs.items()]
    for message in [*result.warnings, *(notes or [])]:
        lines.append(f"Note: {message}")
    lines += ["", *_registry_lines(registry)]
    return "\n".join(lines) + "\n"


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
    return lines


class Progress:
    """A one-line progress bar on a terminal; silent elsewhere (CI logs, tests)."""

    def __init__(self, stream: TextIO | None, width: int = 30) -> None:
        self.stream = stream if stream is not None and stream.isatty() else None
        self.width = width
        self._shown = False
        self._last = 0.0

    def bar(self, label: str, done: float, total: float, suffix: str = "") -> None:
        if self.stream is None or (time.monotonic() - self._last < 0.1 and done < total):
            return
        self._last = time.monotonic()
        filled = int(self.width * min(done / total, 1.0)) if total else self.width
        self.stream.write(f"\r{label} [{'#' * filled}{'.' * (self.width - filled)}] {suffix}\033[K")
        self.stream.flush()
        self._shown = True

    def done(self) -> None:
        if self.stream is not None and self._shown:
            self.stream.write("\n")
            self.stream.flush()
        self._shown = False
