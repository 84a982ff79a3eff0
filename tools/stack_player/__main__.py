"""python -m tools.stack_player: play template.yaml's stack against a local AWS (see docs/local.md)."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from tools import lambda_runtime
from tools.stack_player.aws import LocalAws
from tools.stack_player.config import ConfigError
from tools.stack_player.health import LIST, break_menu, render_health, unknown_break
from tools.stack_player.progress import Progress
from tools.stack_player.report import render, render_sweeps
from tools.stack_player.runner import Options, RunResult, plan, run
from tools.stack_player.template import Template, TemplateError
from tools.stack_player.warm import split_images

ROOT = Path(__file__).resolve().parents[2]
INTERRUPTED = 130  # as a shell reports a command ended by Ctrl-C


def count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    """The command line, each argument named after the field of Options it sets."""
    parser = argparse.ArgumentParser(prog="python -m tools.stack_player", description=__doc__)
    parser.add_argument("--template", type=Path, default=Path("template.yaml"), help="default: template.yaml")
    parser.add_argument(
        "--config-file", dest="samconfig", type=Path, help="samconfig.toml (default: next to the template)"
    )
    parser.add_argument("--config-env", default="default", help="samconfig.toml environment (default: default)")
    parser.add_argument(
        "--parameter-overrides", nargs="+", default=[], metavar="KEY=VALUE", help="as sam deploy takes them"
    )
    parser.add_argument("--seed-repositories", type=count, default=0, metavar="N",
                        help="create N cached repositories under the stack's cache prefixes")  # fmt: skip
    parser.add_argument("--sweep-now", action="store_true",
                        help="run every Custom::CacheImageExpiry's sweep now and show what it expired")  # fmt: skip
    parser.add_argument("--cancel-during", metavar="LOGICAL_ID", default="",
                        help="a sibling fails while this resource's Create or Update runs: CloudFormation cancels it "
                             "and rolls the stack back while its work goes on")  # fmt: skip
    parser.add_argument("--cancel-after", metavar="SECONDS", type=float, default=0.5,
                        help="with --cancel-during: when the sibling fails (default 0.5)")  # fmt: skip
    parser.add_argument("--break", dest="break_what", nargs="?", const=LIST, default="", metavar="WHAT",
                        help="once the stack is played, break one thing out of band on the local registry "
                             "(revoke-credential, edit-rule, delete-template, drop-statement; alone or `list`: "
                             "the menu)")  # fmt: skip
    parser.add_argument("--health-check-now", action="store_true",
                        help="run the provider's health check now and show, per cache prefix, the upstream login, "
                             "the drift and the metrics it printed")  # fmt: skip
    parser.add_argument("--warm", action="append", default=[], metavar="IMAGE[,IMAGE...]",
                        help="once the stack is played, warm these images (repository:tag, repository@sha256:..., "
                             "as the upstream names them) with a Custom::CacheWarmUp and show each one; "
                             "repeatable")  # fmt: skip
    parser.add_argument("--warm-prefix", default="ecr-public", metavar="PREFIX",
                        help="with --warm: the cache the images are pulled through (default: ecr-public)")  # fmt: skip
    parser.add_argument("--state-dir", type=Path, default=Path(".local-stack"), help="default: .local-stack")
    parser.add_argument("--delete", action="store_true", help="delete the stack instead of creating or updating it")
    parser.add_argument("--sam-build", action="store_true",
                        help="once the template, samconfig.toml and the parameters are checked, run `sam build "
                             "--config-env ENV`, its output shown only when it fails (make local)")  # fmt: skip
    parser.add_argument("--built-function", type=Path, metavar="DIR",
                        help="run this `sam build` function folder in a clean python3.13, as Lambda does "
                             "(default: the handler from src/ in this process)")  # fmt: skip
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    build = arguments.__dict__.pop("sam_build")
    arguments.warm = split_images(arguments.warm)
    sys.path.insert(0, str(ROOT / "src"))  # the handler's package, imported at the first request
    options = Options(**vars(arguments), keep_registry=True)  # the arguments are named after Options' fields
    menu = break_menu_answer(options.break_what)  # --break's menu, or a value not on it: nothing is started
    if menu is not None:
        return menu
    try:
        planned = plan(options)  # errors first, before anything starts
    except (ConfigError, TemplateError) as error:
        print("\n".join(f"error: {line}" for line in str(error).splitlines()), file=sys.stderr)
        return 2
    if build and not sam_build(options.config_env):
        return 1
    if lambda_runtime.refuses_to_load(options.built_function):
        return 2
    action = "Deleting" if options.delete else "Playing"
    print(f"{action} stack {planned.config.stack_name} against a local AWS ({options.template})", file=sys.stderr)
    try:
        result = _play(options, planned.template)
    except KeyboardInterrupt:
        print(f"Interrupted: {options.state_dir} holds the state of the last completed run", file=sys.stderr)
        return INTERRUPTED
    if result.break_error:
        print(f"error: {result.break_error}", file=sys.stderr)
    return 0 if result.succeeded and not result.break_error else 1


def break_menu_answer(what: str) -> int | None:
    """`--break` alone (or `list`) prints the menu: 0; a value not on it is an error on stderr's first line: 2;
    None for a value on the menu or no --break."""
    problem = unknown_break(what)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if what == LIST:
        print(break_menu(), end="")
        return 0
    return None


def sam_build(config_env: str) -> bool:
    """`sam build --config-env ENV` in the project (as `make build`), its twenty lines of output kept aside and shown
    only when it fails; a line on stderr says how long it took. Whether it succeeded."""
    started = time.monotonic()
    sam = Path(sys.executable).parent / "sam"
    environment = {**os.environ, "PATH": f"{sam.parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # its python3.13
    built = subprocess.run(  # noqa: S603 - the venv's sam, no shell
        [str(sam), "build", "--config-env", config_env],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        print(built.stdout + built.stderr, file=sys.stderr)
        print(f"error: sam build failed (exit {built.returncode}; its output above)", file=sys.stderr)
        return False
    print(f"sam build: .aws-sam/build ready in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return True


def _play(options: Options, template: Template) -> RunResult:
    """Run against a local AWS, the provider's logs and metrics in provider.log, then print the report."""
    report = sys.stdout
    options.state_dir.mkdir(parents=True, exist_ok=True)
    log_path = options.state_dir / "provider.log"
    # The provider's JSON logs and metrics go to stdout, as in Lambda; here they go to a file, the report to stdout:
    # the built function's output as each invocation ends, the in-process handler's through sys.stdout.
    with log_path.open("a") as log:
        sys.stdout = log
        logging.basicConfig(stream=log, level=logging.WARNING, force=True)
        try:
            aws = LocalAws.start(options.built_function)
            aws.provider_log = log_path
            try:
                result = run(options, aws, Progress(sys.stderr))
            finally:
                aws.close()
        finally:
            sys.stdout = report
    report.write(render(result.stack, result.registry, [*result.notes, f"provider logs: {log_path}"]))
    report.write(render_sweeps(result.sweeps))
    report.write(render_health(result.health))
    if result.warm_up is not None:
        report.write(result.warm_up.render())
    return result


if __name__ == "__main__":
    sys.exit(main())
