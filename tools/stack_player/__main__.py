"""python -m tools.stack_player: play template.yaml's stack against a local AWS (see docs/local.md)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from tools.stack_player.aws import LocalAws
from tools.stack_player.config import ConfigError
from tools.stack_player.report import Progress, render
from tools.stack_player.runner import Options, run
from tools.stack_player.template import Template, TemplateError

ROOT = Path(__file__).resolve().parents[2]


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.stack_player", description=__doc__)
    parser.add_argument("--template", type=Path, default=Path("template.yaml"), help="default: template.yaml")
    parser.add_argument("--config-file", type=Path, help="samconfig.toml (default: next to the template)")
    parser.add_argument("--config-env", default="default", help="samconfig.toml environment (default: default)")
    parser.add_argument(
        "--parameter-overrides", nargs="+", default=[], metavar="KEY=VALUE", help="as sam deploy takes them"
    )
    parser.add_argument("--seed-repositories", type=int, default=0, metavar="N",
                        help="create N cached repositories under the stack's cache prefixes")  # fmt: skip
    parser.add_argument("--state-dir", type=Path, default=Path(".local-stack"), help="default: .local-stack")
    parser.add_argument("--delete", action="store_true", help="delete the stack instead of creating or updating it")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    sys.path.insert(0, str(ROOT / "src"))  # the handler's package, imported at the first request

    options = Options(
        template=arguments.template,
        samconfig=arguments.config_file,
        config_env=arguments.config_env,
        parameter_overrides=arguments.parameter_overrides,
        state_dir=arguments.state_dir,
        seed_repositories=arguments.seed_repositories,
        delete=arguments.delete,
    )
    report = sys.stdout
    arguments.state_dir.mkdir(parents=True, exist_ok=True)
    log_path = arguments.state_dir / "provider.log"
    # The provider's JSON logs and metrics go to stdout, as in Lambda; here they go to a file, the report to stdout.
    with log_path.open("a") as log:
        sys.stdout = log
        logging.basicConfig(stream=log, level=logging.WARNING, force=True)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
        try:
            os.environ.update(_function_environment(Template.load(arguments.template)))
            aws = LocalAws.start()
            try:
                aws.restore_registry(arguments.state_dir / "registry.json")
                result = run(options, aws, Progress(sys.stderr))
                aws.save_registry(arguments.state_dir / "registry.json")
            finally:
                aws.close()
        except (ConfigError, TemplateError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        finally:
            sys.stdout = report
    report.write(render(result.stack, result.registry, [*result.notes, f"provider logs: {log_path}"]))
    return 0 if result.succeeded else 1


def _function_environment(template: Template) -> dict[str, str]:
    """The provider function's environment variables (Globals.Function and its own), as Lambda would set them."""
    variables: dict[str, str] = {}
    for logical_id, resource in template.resources.items():
        if resource.get("Type") == "AWS::Serverless::Function":
            environment = template.function_setting(logical_id, "Environment", {}) or {}
            variables.update({key: str(value) for key, value in environment.get("Variables", {}).items()})
    return {key: value for key, value in variables.items() if isinstance(value, str) and "{" not in value}


if __name__ == "__main__":
    sys.exit(main())
