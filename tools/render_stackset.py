"""Render template.yaml into a transform-free CloudFormation template for service-managed StackSets.

Service-managed StackSets refuse templates with macros, and the SAM transform is one, so we run the SAM
translator here, offline, exactly as CloudFormation would run it. The function code must already be in S3:
pass a template written by `sam package`, or `--code-uri s3://bucket/key` for template.yaml.

StackSet instances are named "StackSet-<name>-<36-char uuid>", so "${AWS::StackName}-provider" exceeds
Lambda's 64-character function name limit for any StackSet name over 9 characters. The render names the
function after the instance stack's own uuid instead ("ecr-ptc-<uuid>", 44 characters), everywhere the
template spells the name (function, log group, self-invoke permission). For the same reason exports are named
"<export prefix>-..." rather than "${AWS::StackName}-...", so consumer stacks can import a name they know.

Lambda reads its code from a bucket in its own Region: a code URI may say s3://bucket-${AWS::Region}/key.

Usage: python tools/render_stackset.py --template template.yaml --code-uri s3://bucket/key --output out.yaml
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import boto3
import yaml
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

STACK_NAMED_FUNCTION = "${AWS::StackName}-provider"
STACK_NAMED_EXPORT = "${AWS::StackName}-"
DEFAULT_EXPORT_PREFIX = "ecr-pull-through-cache"  # samconfig.toml's stack name: consumers import the same names
STACKSET_FUNCTION = "ecr-ptc-${StackUuid}"
# arn:...:stack/<stack name>/<uuid>: the uuid is unique per stack and always 36 characters.
STACK_UUID = {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}
# The translator wants a Region to fill AWS::Region/AWS::Partition into the few properties it resolves
# itself; our template leaves them to CloudFormation, so the output is the same whatever this is (tested).
TRANSLATOR_REGION = "us-east-1"


def no_managed_policies() -> dict[str, str]:
    """The translator asks IAM for AWS managed policy ARNs only when a function names one in Policies.
    Ours has an explicit Role, so nothing needs the network; say so clearly if that ever changes."""
    raise SystemExit("render_stackset: a function names a managed policy; use its ARN so the render stays offline")


def set_code_uri(template: dict[str, Any], code_uri: str) -> None:
    if not code_uri.startswith("s3://"):
        raise SystemExit(f"render_stackset: --code-uri must be an s3:// URI, not {code_uri!r}")
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource.setdefault("Properties", {})["CodeUri"] = code_uri


def check_code_is_in_s3(template: dict[str, Any]) -> None:
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        code_uri = resource.get("Properties", {}).get("CodeUri")
        if not (isinstance(code_uri, dict) or (isinstance(code_uri, str) and code_uri.startswith("s3://"))):
            raise SystemExit(
                f"render_stackset: {logical_id} CodeUri {code_uri!r} is local; run `sam package` or pass --code-uri"
            )


def rename_function(node: Any) -> Any:
    """Every Fn::Sub naming the function by stack name names it by stack uuid instead."""
    if isinstance(node, list):
        return [rename_function(item) for item in node]
    if not isinstance(node, dict):
        return node
    sub = node.get("Fn::Sub")
    if len(node) == 1 and isinstance(sub, str) and STACK_NAMED_FUNCTION in sub:
        return {"Fn::Sub": [sub.replace(STACK_NAMED_FUNCTION, STACKSET_FUNCTION), {"StackUuid": STACK_UUID}]}
    return {key: rename_function(value) for key, value in node.items()}


def name_exports(template: dict[str, Any], export_prefix: str) -> None:
    for output in template.get("Outputs", {}).values():
        name = output.get("Export", {}).get("Name", {})
        if isinstance(name, dict) and isinstance(name.get("Fn::Sub"), str):
            named = name["Fn::Sub"].replace(STACK_NAMED_EXPORT, f"{export_prefix}-")
            output["Export"]["Name"] = {"Fn::Sub": named} if "${" in named else named


def code_bucket_per_region(template: dict[str, Any]) -> None:
    for resource in template.get("Resources", {}).values():
        code = resource.get("Properties", {}).get("Code", {}) if resource.get("Type") == "AWS::Lambda::Function" else {}
        if "${AWS::Region}" in str(code.get("S3Bucket", "")):
            code["S3Bucket"] = {"Fn::Sub": code["S3Bucket"]}


def render(
    source: str,
    code_uri: str | None,
    region: str = TRANSLATOR_REGION,
    export_prefix: str = DEFAULT_EXPORT_PREFIX,
) -> dict[str, Any]:
    template: dict[str, Any] = yaml_parse(source)
    if code_uri:
        set_code_uri(template, code_uri)
    check_code_is_in_s3(template)
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    rendered = translator.translate(
        copy.deepcopy(template),
        parameter_values={},
        passthrough_metadata=True,
        get_managed_policy_map=no_managed_policies,
    )
    rendered.pop("Transform", None)
    name_exports(rendered, export_prefix)
    code_bucket_per_region(rendered)
    renamed: dict[str, Any] = rename_function(rendered)
    return renamed


class NoAliasDumper(yaml.SafeDumper):  # type: ignore[misc]  # PyYAML has no type information here
    """CloudFormation rejects YAML aliases: write shared objects out in full."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, default=Path("template.yaml"))
    parser.add_argument("--code-uri", help="s3://bucket/key of the function's zip (not needed for a packaged template)")
    parser.add_argument("--export-prefix", default=DEFAULT_EXPORT_PREFIX, help="exports are named <this>-...")
    parser.add_argument("--output", type=Path, default=Path(".aws-sam/stackset/template.yaml"))
    args = parser.parse_args(argv)

    rendered = render(args.template.read_text(), args.code_uri, export_prefix=args.export_prefix)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(yaml.dump(rendered, Dumper=NoAliasDumper, sort_keys=False, width=120))
    print(f"render_stackset: wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
