"""One stack operation, as `make local` runs it: read the template and samconfig.toml, stub the credentials the
local endpoint cannot read, play the stack (or delete it), seed repositories, keep the state, read the registry."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from tools.stack_player.aws import LocalAws
from tools.stack_player.config import load_config
from tools.stack_player.player import Hooks, Player, StackResult
from tools.stack_player.report import Progress, Registry
from tools.stack_player.state import ResourceRecord, load_exports, load_state, save_state
from tools.stack_player.template import Template, TemplateError, resolve_parameters

RULE_TYPE = "Custom::PullThroughCacheRule"


@dataclass
class Options:
    template: Path = Path("template.yaml")
    samconfig: Path | None = None  # default: samconfig.toml next to the template
    config_env: str = "default"
    parameter_overrides: list[str] = field(default_factory=list)
    state_dir: Path = Path(".local-stack")
    seed_repositories: int = 0
    delete: bool = False


@dataclass
class RunResult:
    stack: StackResult
    registry: Registry
    notes: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.stack.succeeded


def run(options: Options, aws: LocalAws, progress: Progress | None = None) -> RunResult:
    """Play the stack once against `aws` (whose environment this process's AWS clients must already use).
    Raises ConfigError or TemplateError when the template or samconfig.toml cannot be read."""
    progress = progress or Progress(None)
    template = Template.load(options.template)
    samconfig = options.samconfig or options.template.parent / "samconfig.toml"
    config = load_config(samconfig, options.config_env, options.parameter_overrides, options.template.stem)
    state = load_state(options.state_dir, config.stack_name)
    notes: list[str] = []
    seeding = _Seeding(aws, options.seed_repositories, progress)
    hooks = Hooks(before_custom=seeding.before_custom, waiting=_WaitingBar(aws, progress).show)
    player = Player(template, state, aws.responses, hooks, imports=load_exports(options.state_dir, config.stack_name))
    if options.delete:
        result = player.delete()
    else:
        try:
            parameters = resolve_parameters(template, config.parameter_overrides)
        except TemplateError as error:
            result = StackResult(config.stack_name, "VALIDATION_FAILED", succeeded=False, warnings=[str(error)])
            return RunResult(result, Registry.read(aws))
        stubbed = aws.ensure_secrets(value for value in parameters.values() if isinstance(value, str))
        notes += [f"created a stub secret for {arn} (the local endpoint cannot read the real one)" for arn in stubbed]
        result = player.deploy(parameters)
        seeding.at_end(state.resources)
    progress.done()
    save_state(options.state_dir, state)
    if seeding.count:
        notes.append(f"seeded {seeding.count} cached repositories under {', '.join(seeding.prefixes)}")
    return RunResult(result, Registry.read(aws), notes)


class _Seeding:
    """--seed-repositories: pull images through the stack's cache rules once the rules exist, before any other
    custom resource (a lifecycle policy's backfill then finds them), or at the end when nothing else follows."""

    def __init__(self, aws: LocalAws, wanted: int, progress: Progress) -> None:
        self.aws, self.wanted, self.progress = aws, wanted, progress
        self.count = 0
        self.prefixes: list[str] = []
        self._done = wanted <= 0

    def before_custom(self, resource_type: str, records: dict[str, ResourceRecord]) -> None:
        if resource_type != RULE_TYPE:
            self.at_end(records)

    def at_end(self, records: dict[str, ResourceRecord]) -> None:
        if self._done:
            return
        self._done = True
        self.prefixes = [record.physical_id for record in records.values() if record.resource_type == RULE_TYPE]

        def show(done: int, total: int) -> None:
            self.progress.bar("Seeding repositories", done, total, f"{done}/{total}")

        self.count = self.aws.seed_repositories(self.prefixes, self.wanted, show)
        self.progress.done()


class _WaitingBar:
    """While an answer takes more than a second: time waited against ServiceTimeout, and how many repositories
    have a lifecycle policy (a backfill at work), counted once a second."""

    def __init__(self, aws: LocalAws, progress: Progress) -> None:
        self.aws, self.progress = aws, progress
        self._counted_at = 0.0
        self._counts = ""

    def show(self, logical_id: str, waited: float, timeout: float) -> None:
        if waited < 1.0 or self.progress.stream is None:
            return
        if time.monotonic() - self._counted_at > 1.0:
            with_policy, total = self.aws.lifecycle_policy_counts()
            self._counts = f", lifecycle policy on {with_policy}/{total} repositories" if total else ""
            self._counted_at = time.monotonic()
        self.progress.bar(
            f"Waiting for {logical_id}", waited, timeout, f"{waited:.0f}s of {timeout:.0f}s{self._counts}"
        )
