"""One stack operation, as `make local` runs it: read the template and samconfig.toml, stub the credentials the
local endpoint cannot read, play the stack (or delete it), seed repositories, keep the state, read the registry."""

from __future__ import annotations

import dataclasses
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.stack_player.aws import LocalAws
from tools.stack_player.config import ConfigError, DeployConfig, load_config
from tools.stack_player.health import BreakError, HealthCheckRun, break_stack, health_check_now
from tools.stack_player.invoked import Invoked
from tools.stack_player.player import Hooks, Player, StackResult
from tools.stack_player.progress import Progress
from tools.stack_player.report import Registry
from tools.stack_player.state import ResourceRecord, StackState, load_exports, load_state, save_state
from tools.stack_player.sweep import SweepReport, expiry_prefixes, seed_images, sweep_now
from tools.stack_player.template import Template, resolve_parameters
from tools.stack_player.warm import WARM_UP_TEMPLATE, Registries, WarmUpReport, check_images
from tools.stack_player.warm import report as warm_up_report

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
    # Restore the registry from the state folder before the run and save it after (moto forgets it on exit).
    keep_registry: bool = False
    # The provider as it ships: the `sam build` output's function folder, run in a clean python3.13
    # (tools.lambda_runtime). None runs the handler from src/ in this process.
    built_function: Path | None = None
    # Run every Custom::CacheImageExpiry's sweep once the stack is played, rather than at its schedule's time.
    sweep_now: bool = False
    # A sibling fails `cancel_after` seconds into this resource's Create or Update: CloudFormation cancels it and
    # rolls back.
    cancel_during: str = ""
    cancel_after: float = 0.5
    # Once the stack is played, break this out of band (health.BREAKS), as a person would on the registry.
    break_what: str = ""
    # Then run the provider's health check now, rather than at its schedule's time, and show what it found.
    health_check_now: bool = False
    # Once the stack is played, a Custom::CacheWarmUp of these images through the cache of `warm_prefix`
    # (warm.py), reported per image.
    warm: list[str] = field(default_factory=list)
    warm_prefix: str = "ecr-public"


@dataclass
class RunResult:
    stack: StackResult
    registry: Registry
    notes: list[str] = field(default_factory=list)
    sweeps: list[SweepReport] = field(default_factory=list)
    health: HealthCheckRun | None = None
    broken: str = ""  # what --break broke; empty when it broke nothing
    break_error: str = ""  # why --break could not break what it was asked to
    warm_up: WarmUpReport | None = None

    @property
    def succeeded(self) -> bool:
        return self.stack.succeeded and (self.warm_up is None or self.warm_up.succeeded)


@dataclass(frozen=True)
class Plan:
    """What a run plays: the template, its samconfig.toml environment, and the parameter values (None for a
    delete, which needs none)."""

    template: Template
    config: DeployConfig
    parameters: dict[str, Any] | None


def plan(options: Options) -> Plan:
    """Read the template, samconfig.toml and the parameters, before anything starts. Raises ConfigError, or
    TemplateError (ParameterError naming each parameter at fault)."""
    template = Template.load(options.template)
    samconfig = options.samconfig or options.template.parent / "samconfig.toml"
    config = load_config(samconfig, options.config_env, options.parameter_overrides, options.template.stem)
    parameters = None if options.delete else resolve_parameters(template, config.parameter_overrides)
    if options.warm:
        if options.delete:
            raise ConfigError("--warm plays a warm-up once the stack is played: not with --delete")
        check_images(options.warm, options.warm_prefix)
    return Plan(template, config, parameters)


def run(options: Options, aws: LocalAws, progress: Progress | None = None) -> RunResult:
    """Play the stack once against `aws` (whose environment this process's AWS clients must already use).
    Raises ConfigError or TemplateError, before anything changes, when the template, samconfig.toml or a
    parameter cannot be used."""
    progress = progress or Progress(None)
    planned = plan(options)
    stack_name, parameters = planned.config.stack_name, planned.parameters
    if options.keep_registry:
        aws.restore_registry(options.state_dir / "registry.json", progress)
    state = load_state(options.state_dir, stack_name)
    seeding = _Seeding(aws, options.seed_repositories, progress)
    hooks = Hooks(
        before_custom=seeding.before_custom,
        native=aws.emulate_native,
        native_deleted=aws.native_deleted,
        backlog=aws.lifecycle_policy_counts,
        invocations=aws.invocations,
        busy=aws.busy,
        settle=aws.settle,
    )
    imports = load_exports(options.state_dir, stack_name)
    player = Player(
        planned.template,
        state,
        aws.responses,
        hooks,
        aws.invoke_provider,
        imports,
        progress,
        cancel_during=options.cancel_during,
        cancel_after=options.cancel_after,
    )
    warm_up = None
    if parameters is None:
        # What make invoke made in this stack goes first, while the stack's function and role still serve it.
        notes = Invoked(options.state_dir).delete(aws, stack_name)
        result = player.delete()
        notes += aws.delete_stub_secrets(stack_name) if result.succeeded else []
    else:
        notes = aws.ensure_secrets((value for value in parameters.values() if isinstance(value, str)), stack_name)
        result = player.deploy(parameters)
        seeding.at_end(state.resources)
        seeding.images = seed_images(aws, seeding.repositories, expiry_prefixes(state.resources))
        if options.warm and result.succeeded:
            warm_up = _warm_up(options, aws, state, dataclasses.replace(hooks, before_custom=_nothing), progress)
    sweeps = sweep_now(aws, state.resources) if options.sweep_now and parameters is not None else []
    broken = break_error = ""
    if options.break_what and parameters is not None:
        try:
            broken = break_stack(aws, options.break_what, state)
        except BreakError as error:
            break_error = f"--break {options.break_what}: {error}"
    health = health_check_now(aws, state) if options.health_check_now and parameters is not None else None
    with interrupts_deferred():  # the stack and the registry are saved together, or neither is
        save_state(options.state_dir, state)
        if options.keep_registry:
            aws.save_registry(options.state_dir / "registry.json", progress)
    if seeding.repositories:
        notes.append(f"seeded {len(seeding.repositories)} cached repositories under {', '.join(seeding.prefixes)}")
    if seeding.images:
        namespaces = ", ".join(expiry_prefixes(state.resources))
        notes.append(f"seeded {seeding.images} images with spread-out pull times in the repositories of {namespaces}")
    notes += [broken] if broken else []
    return RunResult(result, Registry.read(aws, progress), notes, sweeps, health, broken, break_error, warm_up)


def _nothing(resource_type: str, records: dict[str, ResourceRecord]) -> None:
    return


def _warm_up(options: Options, aws: LocalAws, provider: StackState, hooks: Hooks, progress: Progress) -> WarmUpReport:
    """warm_up.yaml played as a consumer stack of the provider just played, through its exported ServiceToken;
    reported per image as ECR then has it, and deleted again (a warm-up's Delete removes no image). The local
    registries are those `make local` started with the local AWS, or started for this warm-up alone."""
    started = None if aws.registries is not None else Registries.start()
    try:
        template = Template.load(WARM_UP_TEMPLATE)
        name = f"{provider.stack_name}-warm-up"
        overrides = {"ProviderStackName": provider.stack_name, "RepositoryPrefix": options.warm_prefix,
                     "Images": ",".join(options.warm)}  # fmt: skip
        parameters = resolve_parameters(template, overrides)
        imports = {**load_exports(options.state_dir, name), **provider.exports}
        player = Player(template, StackState.new(name), aws.responses, hooks, aws.invoke_provider, imports, progress)
        played = player.deploy(parameters)
        created = [outcome for outcome in played.outcomes if outcome.logical_id == "WarmUp"]
        status = created[0].status if created else played.stack_status
        reason = created[0].reason if created else "; ".join(played.warnings)
        lines = warm_up_report(aws.client("ecr"), options.warm_prefix, options.warm, status, reason)
        if player.state.exists:
            player.delete()
        return lines
    finally:
        if started is not None:
            started.close()


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Ctrl-C during the block takes effect when it ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def defer(signum: int, frame: object) -> None:
        received.append(signum)
        print("Ctrl-C: stopping once the state is saved", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, defer)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


class _Seeding:
    """--seed-repositories: pull images through the stack's cache rules once the rules exist, before any other
    custom resource (a lifecycle policy's backfill then finds them), or at the end when nothing else follows. At the
    end, images with spread-out pull times in those a CacheImageExpiry sweeps (sweep.py)."""

    def __init__(self, aws: LocalAws, wanted: int, progress: Progress) -> None:
        self.aws, self.wanted, self.progress = aws, wanted, progress
        self.repositories: list[str] = []
        self.images = 0
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
        self.repositories = self.aws.seed_repositories(self.prefixes, self.wanted, self.progress)
