"""Run the whole stack locally, without an AWS account: template.yaml's custom resources played through the real
handler against moto, with CloudFormation's ordering, updates, replacements, rollbacks and deletes.

As a library (the stack tests use it this way)::

    aws = LocalAws.start()          # or LocalAws(moto_url, response_endpoint) for servers already running
    result = run(Options(parameter_overrides=["QuayPrefix=quay-mirror"], state_dir=tmp), aws)
    print(render(result.stack, result.registry))
"""

from tools.stack_player.aws import LocalAws
from tools.stack_player.player import Outcome, StackResult
from tools.stack_player.report import Registry, render
from tools.stack_player.runner import Options, RunResult, run

__all__ = ["LocalAws", "Options", "Outcome", "Registry", "RunResult", "StackResult", "render", "run"]
