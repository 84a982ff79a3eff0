"""Stack tests: template.yaml played by tools.stack_player against one moto server per worker, reset per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from emulation.cloudformation import ResponseEndpoint
from emulation.moto_ecr import faults
from tools.stack_player import LocalAws, Options, RunResult, run
from tools.stack_player.progress import Progress

ROOT = Path(__file__).resolve().parents[2]
Play = Callable[..., RunResult]
STACK_NAME = "ecr-pull-through-cache"  # samconfig.toml's default stack_name


def organization_sid(state_dir: Path, stack_name: str = STACK_NAME) -> str:
    """The Sid of a played stack's organisation statement: OrganizationFillsCache and the 32 hexadecimal digits of
    the stack's unique id (template.yaml, OrganizationRegistryPolicyStatements)."""
    from tools.stack_player.state import load_state

    return "OrganizationFillsCache" + load_state(state_dir, stack_name).stack_id.rsplit("/", 1)[1].replace("-", "")


@pytest.fixture
def local_aws(
    moto_endpoint: str, response_endpoint: ResponseEndpoint, fast_retries: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalAws]:
    aws = LocalAws(moto_url=moto_endpoint, responses=response_endpoint)
    for name, value in aws.environment().items():
        monkeypatch.setenv(name, value)
    aws.reset()
    yield aws
    faults.reset()


@pytest.fixture
def play(local_aws: LocalAws, tmp_path: Path) -> Play:
    """One `make local` run: play(*"KEY=VALUE", delete=False, template=..., seed_repositories=0, progress=None)."""

    def run_stack(*overrides: str, progress: Progress | None = None, **options: Any) -> RunResult:
        options.setdefault("template", ROOT / "template.yaml")
        options.setdefault("samconfig", ROOT / "samconfig.toml")
        state_dir = tmp_path / "state"
        return run(Options(parameter_overrides=list(overrides), state_dir=state_dir, **options), local_aws, progress)

    return run_stack
