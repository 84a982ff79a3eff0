"""CloudFormation's two transforms of template.yaml, run offline as CloudFormation runs them, in its order:

- AWS::LanguageExtensions: `expand` writes out every Fn::ForEach loop (one cache written once becomes
  EcrPublicCacheRule, QuayCacheRule, ...) with SAM CLI's port of CloudFormation's implementation
  (samcli.lib.cfn_language_extensions), its ForEach processing only: parameters stay parameters (the port's whole
  pipeline would fill in their defaults). Then, as the transform does, a Ref or Fn::GetAtt whose name is an
  intrinsic function gets the name it resolves to, and an Fn::FindInMap of literals its value.
- AWS::Serverless-2016-10-31: `translate` runs samtranslator.

Used by everything that reads template.yaml: the StackSet render (tools/render_stackset.py), the stack player
(tools/stack_player, so also the IAM tier's test stack), `make lint`/`make checkov` (cfn-lint and checkov read the
expansion: cfn-lint and checkov do not expand a loop the way CloudFormation does, docs/template.md) and the template
tests.

Usage: python -m tools.sam_transform template.yaml --output .aws-sam/expanded/template.yaml (the expansion only)
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import boto3
import yaml
from cfnlint.decode import decode
from samcli.lib.cfn_language_extensions.models import TemplateProcessingContext  # type: ignore[import-untyped]
from samcli.lib.cfn_language_extensions.processors.foreach import ForEachProcessor  # type: ignore[import-untyped]
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

# The translator wants a Region to fill AWS::Region/AWS::Partition into the few properties it resolves
# itself; our templates leave them to CloudFormation, so the output is the same whatever this is (tested).
TRANSLATOR_REGION = "us-east-1"


def no_managed_policies() -> dict[str, str]:
    """The translator asks IAM for AWS managed policy ARNs only when a function names one in Policies.
    Ours has an explicit Role, so nothing needs the network; say so clearly if that ever changes."""
    raise SystemExit("sam_transform: a function names a managed policy; use its ARN so the transform stays offline")


LANGUAGE_EXTENSIONS = "AWS::LanguageExtensions"


def transforms(template: dict[str, Any]) -> list[str]:
    transform = template.get("Transform", [])
    return [str(name) for name in ([transform] if isinstance(transform, str) else transform)]


def has_sam_transform(template: dict[str, Any]) -> bool:
    return any(name.startswith("AWS::Serverless") for name in transforms(template))


def expand(template: dict[str, Any]) -> dict[str, Any]:
    """`template` with AWS::LanguageExtensions applied (`template` is left alone); as it is without that transform."""
    if LANGUAGE_EXTENSIONS not in transforms(template):
        return copy.deepcopy(template)
    context = TemplateProcessingContext(fragment=copy.deepcopy(template))
    ForEachProcessor().process_template(context)
    expanded: dict[str, Any] = _resolve_names(context.fragment, context.fragment.get("Mappings", {}))
    _drop_unused_mappings(expanded)
    remaining = [name for name in transforms(template) if name != LANGUAGE_EXTENSIONS]
    if remaining:
        expanded["Transform"] = remaining[0] if len(remaining) == 1 else remaining
    else:
        expanded.pop("Transform", None)
    return expanded


def _resolve_names(node: Any, mappings: dict[str, Any]) -> Any:
    """What the transform resolves once the loops are written out: the name in `Ref: {Fn::Sub: QuayPrefix}` and
    `Fn::GetAtt: [{Fn::Sub: QuayCacheRule}, ...]`, an Fn::Sub with nothing left to substitute, an Fn::FindInMap of
    literals (the transform's documented output: intrinsic-function-reference-foreach-example-*.html)."""
    if isinstance(node, list):
        return [_resolve_names(item, mappings) for item in node]
    if not isinstance(node, dict):
        return node
    resolved = {key: _resolve_names(value, mappings) for key, value in node.items()}
    if len(resolved) != 1:
        return resolved
    ((function, argument),) = resolved.items()
    if function == "Fn::Sub" and isinstance(argument, str) and "${" not in argument:
        return argument
    if function == "Fn::FindInMap" and len(argument) == 3 and all(isinstance(part, str) for part in argument):
        map_name, top, second = argument
        return mappings[map_name][top][second]
    return resolved


def _drop_unused_mappings(template: dict[str, Any]) -> None:
    """A mapping only the loops read has been resolved away with them: left, cfn-lint warns it is unused (W7001)."""
    used: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("Fn::FindInMap"), list) and isinstance(node["Fn::FindInMap"][0], str):
                used.add(node["Fn::FindInMap"][0])
            for key, value in node.items():
                if key != "Mappings":
                    visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(template)
    mappings = {name: value for name, value in template.get("Mappings", {}).items() if name in used}
    if mappings:
        template["Mappings"] = mappings
    else:
        template.pop("Mappings", None)


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write template.yaml with its Fn::ForEach loops expanded.")
    parser.add_argument("template", type=Path, nargs="?", default=Path("template.yaml"))
    parser.add_argument("--output", type=Path, default=Path(".aws-sam/expanded/template.yaml"))
    args = parser.parse_args(argv)
    body, errors = decode(str(args.template))  # cfn-lint's YAML loader: !Ref, !Sub, ... in their long forms
    if errors or not isinstance(body, dict):
        raise SystemExit(f"sam_transform: cannot read {args.template}: {'; '.join(map(str, errors))}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(dump(expand(plain(body))))
    print(f"sam_transform: wrote {args.output}", file=sys.stderr)
    return 0


def plain(value: Any) -> Any:
    """cfn-lint's nodes (dict/str subclasses carrying line marks) as plain Python values."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, str):
        return str(value)
    return value


class NoAliasDumper(yaml.SafeDumper):  # type: ignore[misc]  # PyYAML has no type information here
    """CloudFormation rejects YAML aliases: write shared objects out in full."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(template: dict[str, Any]) -> str:
    return str(yaml.dump(template, Dumper=NoAliasDumper, sort_keys=False, width=120))


if __name__ == "__main__":
    sys.exit(main())
