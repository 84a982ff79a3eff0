"""The Serverless Application Repository: template.yaml's AWS::ServerlessRepo::Application metadata as SAR checks it,
and the template `make publish` publishes (the `sam build` output, its loops written out) as `sam validate` reads it.
Publishing itself needs AWS and is not run here."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from tools.sam_transform import dump, expand, plain

pytestmark = pytest.mark.template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
VENV_BIN = Path(sys.executable).parent

# serverless-sam-template-publishing-applications-metadata-properties.html: each property's limits.
NAME = re.compile(r"[a-zA-Z0-9\-]+")
AUTHOR = re.compile(r"^[a-z0-9](([a-z0-9]|-(?!-))*[a-z0-9])?$")
LABEL = re.compile(r"^[a-zA-Z0-9+\-_:\/@]+$")
# semver.org 2.0.0, MAJOR.MINOR.PATCH without leading zeros (pre-release and build labels not used here).
SEMANTIC_VERSION = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)")


@pytest.fixture(scope="module")
def application() -> dict[str, Any]:
    metadata: dict[str, Any] = plain(cfn_yaml.load(str(TEMPLATE)))["Metadata"]["AWS::ServerlessRepo::Application"]
    return metadata


def test_the_required_properties_within_their_limits(application: dict[str, Any]) -> None:
    assert NAME.fullmatch(application["Name"])
    assert len(application["Name"]) <= 140
    assert 1 <= len(application["Description"]) <= 256
    assert AUTHOR.fullmatch(application["Author"])
    assert len(application["Author"]) <= 127
    assert SEMANTIC_VERSION.fullmatch(application["SemanticVersion"]), application["SemanticVersion"]


def test_labels_and_links(application: dict[str, Any]) -> None:
    assert 1 <= len(application["Labels"]) <= 10
    assert all(LABEL.fullmatch(label) for label in application["Labels"]), application["Labels"]
    for key in ("HomePageUrl", "SourceCodeUrl"):
        assert application[key].startswith("https://"), key


def test_no_intrinsic_function(application: dict[str, Any]) -> None:
    """SAR reads no intrinsic function in this metadata: every value is literal text."""
    for key, value in application.items():
        assert all(isinstance(item, str) for item in (value if isinstance(value, list) else [value])), key


def test_the_licence_is_the_projects_and_ships_with_the_readme(application: dict[str, Any]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert application["SpdxLicenseId"] == project["license"] == "Apache-2.0"
    license_text = (TEMPLATE.parent / application["LicenseUrl"]).read_text()
    assert "Apache License" in license_text
    assert "Version 2.0, January 2004" in license_text
    readme = TEMPLATE.parent / application["ReadmeUrl"]
    assert readme.is_file()
    # sam package uploads both; SAR takes at most 5 MB each.
    assert max(len(license_text.encode()), readme.stat().st_size) < 5 * 1024 * 1024


def test_what_make_publish_publishes_is_a_valid_sam_template(built_function: Path) -> None:
    """`make sar-template`'s steps on the `sam build` output: the loops written out, only the SAM transform left,
    the metadata and the paths relative to the build's folder kept, and `sam validate` content."""
    build_dir = built_function.parent
    built: dict[str, Any] = plain(cfn_yaml.load(str(build_dir / "template.yaml")))
    published = expand(built)
    assert published["Transform"] == "AWS::Serverless-2016-10-31"
    assert "EcrPublicCacheRule" in published["Resources"]
    application = published["Metadata"]["AWS::ServerlessRepo::Application"]
    assert (build_dir / application["LicenseUrl"]).resolve() == (ROOT / "LICENSE").resolve()
    assert (build_dir / application["ReadmeUrl"]).resolve() == (ROOT / "README.md").resolve()
    path = build_dir / "sar-template.yaml"
    path.write_text(dump(published))
    result = subprocess.run(
        [str(VENV_BIN / "sam"), "validate", "--template-file", str(path), "--region", "us-east-1"],
        cwd=ROOT,
        env={"PATH": f"{VENV_BIN}:/usr/bin:/bin", "SAM_CLI_TELEMETRY": "0", "HOME": str(build_dir)},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr
