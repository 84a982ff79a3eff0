"""python -m tools.stack_player.invoke EVENT: play one request file from events/ through the provider, against the
local AWS that `make local` keeps (its state folder), and print the answer CloudFormation would get.

The event gets a fresh RequestId and a ResponseURL on the local response endpoint; its ServiceToken names the
provider function, which must have been deployed locally by `make local` (the ownership table and the function's
environment come from that run). What the request changes is kept for the next `make local` or `make invoke`, and
what it made is deleted by `make local-delete` with the stack the event names (invoked.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from tools import lambda_runtime
from tools.stack_player.aws import LocalAws
from tools.stack_player.invoked import Invoked, request, stack_name_of
from tools.stack_player.progress import Progress


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.stack_player.invoke", description=__doc__)
    parser.add_argument("event", type=Path, help="a request file, e.g. events/pull-through-cache-rule-create.json")
    parser.add_argument("--state-dir", type=Path, default=Path(".local-stack"), help="default: .local-stack")
    parser.add_argument("--built-function", type=Path, metavar="DIR", help="the `sam build` function folder "
                        "(default: the handler from src/ in this process)")  # fmt: skip
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    try:
        event: dict[str, Any] = json.loads(arguments.event.read_text())
    except (OSError, ValueError) as error:
        print(f"error: cannot read the event {arguments.event}: {error}", file=sys.stderr)
        return 2
    if lambda_runtime.refuses_to_load(arguments.built_function):
        return 2
    arguments.state_dir.mkdir(parents=True, exist_ok=True)
    log = arguments.state_dir / "provider.log"
    logging.basicConfig(filename=log, level=logging.WARNING, force=True)
    aws = LocalAws.start(arguments.built_function)
    aws.provider_log = log
    try:
        registry = arguments.state_dir / "registry.json"
        aws.restore_registry(registry, Progress(sys.stderr))
        function = str(event.get("ServiceToken", "")).rsplit(":", 1)[-1]
        deployed = sorted(aws.functions)
        if not aws.function_environment(function) and len(deployed) == 1:
            # The files in events/ name a function; CloudFormation names the one make local deploys.
            print(f"Playing the event against {deployed[0]}, the provider function make local deployed",
                  file=sys.stderr)  # fmt: skip
            function = deployed[0]
            event["ServiceToken"] = aws.function_arn(function)
        if not aws.function_environment(function):
            print(f"error: no provider function {function} was deployed locally: run `make local` first "
                  f"(the event's ServiceToken names it)", file=sys.stderr)  # fmt: skip
            return 2
        secrets = [value for value in event.get("ResourceProperties", {}).values() if isinstance(value, str)]
        # Tagged with the event's stack: make local-delete deletes them with it.
        for note in aws.ensure_secrets(secrets, stack_name_of(event)):
            print(note, file=sys.stderr)
        invoked = Invoked(arguments.state_dir)
        answer = _play(aws, event, log)
        cleanup = invoked.answered(event, answer)
        if cleanup is not None:  # a replacement: CloudFormation deletes the old physical id in its cleanup phase
            cleaned = _play(aws, cleanup, log)
            invoked.answered(cleanup, cleaned)
            print(f"Cleanup, as CloudFormation's after a replacement: Delete {cleanup['PhysicalResourceId']}: "
                  f"{cleaned.get('Status')} {cleaned.get('Reason', '')}".rstrip(), file=sys.stderr)  # fmt: skip
        invoked.save()
        aws.save_registry(registry, Progress(sys.stderr))
    finally:
        aws.close()
    print(json.dumps(answer, indent=2))
    print(f"provider logs: {log}", file=sys.stderr)
    return 0 if answer.get("Status") == "SUCCESS" else 1


def _play(aws: LocalAws, event: dict[str, Any], log: Path) -> dict[str, Any]:
    """The event through the provider; its one answer. The in-process handler's JSON logs go to stdout as on Lambda:
    here to the log, as the answer is what this prints (the built function's go there as each invocation ends)."""
    with log.open("a") as provider_log:
        stdout, sys.stdout = sys.stdout, provider_log
        try:
            return request(aws, event)
        finally:
            sys.stdout = stdout


if __name__ == "__main__":
    sys.exit(main())
