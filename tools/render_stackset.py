"""Render template.yaml into a transform-free CloudFormation template for service-managed StackSets.

Service-managed StackSets refuse templates with macros, and AWS::LanguageExtensions and the SAM transform are
macros, so we run both here, offline, as CloudFormation would (tools/sam_transform). The function code must
already be in S3: pass a template written by `sam package`, or `--code-uri s3://bucket/key` for template.yaml.

StackSet instances are named "StackSet-<name>-<36-char uuid>": template.yaml names nothing after the stack that
could outgrow a limit (CloudFormation names the function itself), but exports are named "<export prefix>-..."
rather than "${AWS::StackName}-...", so that consumer stacks can import a name they know.

Lambda reads its code from a bucket in its own Region: a code URI may say s3://bucket-${AWS::Region}/key.

Usage: python -m tools.render_stackset --template template.yaml --code-uri s3://bucket/key --output out.yaml
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from samtranslator.yaml_helper import yaml_parse

from tools.sam_transform import TRANSLATOR_REGION, dump, expand, set_code_uri, translate

STACK_NAMED_EXPORT = "${AWS::StackName}-"
DEFAULT_EXPORT_PREFIX = "ecr-pull-through-cache"  # samconfig.toml's stack name: consumers import the same names
# The default CODE_URI of `make stackset-template`: renders offline, deploys nowhere.
PLACEHOLDER_BUCKET = "change-me-"


def check_code_uri(code_uri: str) -> None:
    """An s3://bucket/key URI whose bucket name is not empty (once ${AWS::Region} is filled in, it must still
    name a bucket); a loud warning for the placeholder bucket."""
    if not code_uri.startswith("s3://"):
        raise SystemExit(f"render_stackset: --code-uri must be an s3:// URI, not {code_uri!r}")
    bucket, _, key = code_uri.removeprefix("s3://").partition("/")
    if not bucket.replace("${AWS::Region}", "").strip("-.") or not key:
        raise SystemExit(f"render_stackset: --code-uri {code_uri!r} has no bucket name or no key: s3://bucket/key")
    if bucket.startswith(PLACEHOLDER_BUCKET):
        print(
            f"render_stackset: WARNING: {code_uri} is the placeholder code bucket: this render is NOT deployable."
            " Pass CODE_URI=s3://<your bucket>/<key> (see docs/distribution.md).",
            file=sys.stderr,
        )


def check_code_is_in_s3(template: dict[str, Any]) -> None:
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        code_uri = resource.get("Properties", {}).get("CodeUri")
        if not (isinstance(code_uri, dict) or (isinstance(code_uri, str) and code_uri.startswith("s3://"))):
            raise SystemExit(
                f"render_stackset: {logical_id} CodeUri {code_uri!r} is local; run `sam package` or pass --code-uri"
            )


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
    template = expand(yaml_parse(source))
    if code_uri:
        check_code_uri(code_uri)
        set_code_uri(template, code_uri)
    check_code_is_in_s3(template)
    rendered = translate(template, region)
    name_exports(rendered, export_prefix)
    code_bucket_per_region(rendered)
    return rendered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, default=Path("template.yaml"))
    parser.add_argument("--code-uri", help="s3://bucket/key of the function's zip (not needed for a packaged template)")
    parser.add_argument("--export-prefix", default=DEFAULT_EXPORT_PREFIX, help="exports are named <this>-...")
    parser.add_argument("--output", type=Path, default=Path(".aws-sam/stackset/template.yaml"))
    args = parser.parse_args(argv)
    if not args.template.is_file():
        raise SystemExit(
            f"render_stackset: no template at {args.template} (PACKAGED_TEMPLATE is the output of sam package)"
        )

    rendered = render(args.template.read_text(), args.code_uri, export_prefix=args.export_prefix)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(dump(rendered))
    print(f"render_stackset: wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
