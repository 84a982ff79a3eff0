"""The deploy parameters `sam deploy` would use: samconfig.toml's environment, then command-line overrides."""

from __future__ import annotations

import shlex
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


class ConfigError(Exception):
    """samconfig.toml or an override cannot be used."""


@dataclass(frozen=True)
class DeployConfig:
    stack_name: str
    parameter_overrides: dict[str, str]


def load_config(
    path: Path, config_env: str = "default", overrides: Iterable[str] = (), default_stack_name: str = ""
) -> DeployConfig:
    """The stack name and parameter overrides of one samconfig.toml environment, with `overrides` applied last.
    Without a samconfig.toml (a template in examples/), the stack is named `default_stack_name`."""
    document = tomllib.loads(path.read_text()) if path.exists() else {}
    environments = sorted(name for name, table in document.items() if isinstance(table, dict))  # not `version`
    if path.exists() and config_env not in environments:
        raise ConfigError(f"{path} has no environment {config_env!r} (it has {', '.join(environments)})")
    environment = document.get(config_env, {})
    deploy = environment.get("deploy", {}).get("parameters", {})
    stack_name = (
        deploy.get("stack_name")
        or environment.get("global", {}).get("parameters", {}).get("stack_name")
        or default_stack_name
    )
    if not stack_name:
        raise ConfigError(f"No stack_name for environment {config_env!r} in {path}")
    parameters = parse_overrides(deploy.get("parameter_overrides", []))
    parameters.update(parse_overrides(list(overrides)))
    return DeployConfig(stack_name=str(stack_name), parameter_overrides=parameters)


def parse_overrides(value: str | list[str]) -> dict[str, str]:
    """`K=V` items as `sam deploy --parameter-overrides` takes them: a string (shell-quoted, space-separated),
    a list of such strings, or the long form `ParameterKey=K,ParameterValue=V`."""
    items = value if isinstance(value, list) else [value]
    parameters: dict[str, str] = {}
    for item in items:
        for word in shlex.split(item):
            if word.startswith("ParameterKey="):
                key_part, _, value_part = word.partition(",ParameterValue=")
                parameters[key_part.removeprefix("ParameterKey=")] = value_part
                continue
            key, equals, text = word.partition("=")
            if not equals or not key:
                raise ConfigError(f"Parameter override {word!r} is not KEY=VALUE")
            parameters[key] = text
    return parameters
