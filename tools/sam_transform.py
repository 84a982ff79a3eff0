"""The SAM transform (AWS::Serverless-2016-10-31), run offline with samtranslator as CloudFormation runs it.
Used by the StackSet render (tools/render_stackset.py) and the stack player (tools/stack_player), so that both see
the resources CloudFormation would create: the function with its Globals applied, its event invoke config, ...
"""

from __future__ import annotations

import copy
from typing import Any

import boto3
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

# The translator wants a Region to fill AWS::Region/AWS::Partition into the few properties it resolves
# itself; our templates leave them to CloudFormation, so the output is the same whatever this is (tested).
TRANSLATOR_REGION = "us-east-1"


def no_managed_policies() -> dict[str, str]:
    """The translator asks IAM for AWS managed policy ARNs only when a function names one in Policies.
    Ours has an explicit Role, so nothing needs the network; say so clearly if that ever changes."""
    raise SystemExit("sam_transform: a function names a managed policy; use its ARN so the transform stays offline")


def has_sam_transform(template: dict[str, Any]) -> bool:
    transform = template.get("Transform", [])
    return any(
        str(name).startswith("AWS::Serverless") for name in ([transform] if isinstance(transform, str) else transform)
    )


def set_code_uri(template: dict[str, Any], code_uri: str) -> None:
    """Point every AWS::Serverless::Function at `code_uri` (the transform accepts only S3 code)."""
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource.setdefault("Properties", {})["CodeUri"] = code_uri


def translate(template: dict[str, Any], region: str = TRANSLATOR_REGION) -> dict[str, Any]:
    """`template` with its SAM resources and Globals turned into plain CloudFormation (`template` is left alone).
    Function code must already be an S3 URI."""
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    rendered: dict[str, Any] = translator.translate(
        copy.deepcopy(template),
        parameter_values={},
        passthrough_metadata=True,
        get_managed_policy_map=no_managed_policies,
    )
    rendered.pop("Transform", None)
    return rendered
