"""The user README and the contributor documents hold to what they promise: the README stays short, every `make`
target they name exists, every relative link (and anchor) resolves, and the README's tables list every parameter
and output of template.yaml, no more."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

pytestmark = pytest.mark.template

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
CONTRIBUTING = ROOT / "CONTRIBUTING.md"
INTERNALS = ROOT / "docs" / "internals.md"
TEMPLATE = ROOT / "template.yaml"
MAKEFILES = [ROOT / "Makefile", *sorted((ROOT / "mk").glob("*.mk"))]
TEMPLATE_DATA: dict[str, Any] = cfn_yaml.load(str(TEMPLATE))

# The README is a user guide of about 1,000 words (issue 19); contributor material goes to CONTRIBUTING.md and
# docs/internals.md. Counted as `wc -w` counts: every whitespace-separated word, tables and code included.
README_WORD_LIMIT = 1_200

# Documents whose make targets and relative links are checked: the three the issue names, the changelog, and every
# other page in docs/ (they link into internals.md, whose anchors moved there from the README).
DOCUMENTS = sorted({README, CONTRIBUTING, INTERNALS, ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md")})

# What these documents name that work done in parallel on issue 19 brings (the template's page and the release
# target): each entry must still be missing, so the test fails once it lands, asking for the entry to go.
PENDING: dict[str, str] = {}

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)
# A rule's targets: a line not indented, not a variable assignment (=, :=, ::=, ?=, +=), up to its colon.
RULE = re.compile(r"^([^\s#:=$.][^:=#\n]*?)[ \t]*::?(?!=)", re.MULTILINE)
MAKE_COMMAND = re.compile(r"(?:^|[\s;&|(])make\s+([a-z][a-z0-9_.-]*)(?![=\w])", re.MULTILINE)


def without_code_blocks(text: str) -> str:
    return FENCE.sub("", text)


def code(text: str) -> Iterator[str]:
    """The code in a Markdown text: fenced blocks and inline code spans, where commands are written."""
    for block in FENCE.finditer(text):
        yield block.group(0)
    yield from re.findall(r"`([^`\n]+)`", without_code_blocks(text))


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def make_targets() -> set[str]:
    targets: set[str] = set()
    for makefile in MAKEFILES:
        for rule in RULE.finditer(makefile.read_text()):
            targets |= set(rule.group(1).split())
    return targets


def targets_named(document: Path) -> set[str]:
    return {match.group(1) for span in code(document.read_text()) for match in MAKE_COMMAND.finditer(span)}


def github_anchors(markdown: str) -> set[str]:
    """The ids GitHub gives a page's headings: lower case, punctuation dropped, spaces as dashes, repeats numbered."""
    anchors: set[str] = set()
    for heading in HEADING.finditer(without_code_blocks(markdown)):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.group(2))  # a link's text stays, its target goes
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        anchor, repeat = slug, 0
        while anchor in anchors:
            repeat += 1
            anchor = f"{slug}-{repeat}"
        anchors.add(anchor)
    return anchors


def relative_links(document: Path) -> Iterator[tuple[Path, str]]:
    """Each relative link of a document: the file it points to and its anchor ('' for none)."""
    for match in LINK.finditer(without_code_blocks(document.read_text())):
        target = match.group(1)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: and the like
            continue
        path, _, anchor = target.partition("#")
        yield (document.parent / path).resolve() if path else document, anchor


def test_pending_items_are_still_missing() -> None:
    """Once docs/template.md or the publish target exists, its entry in PENDING must go: the checks below then
    hold the documents to it like to everything else."""
    landed = [
        item
        for item in PENDING
        if (item.startswith("make ") and item.removeprefix("make ") in make_targets()) or (ROOT / item).exists()
    ]
    assert not landed, f"remove from PENDING in {relative(Path(__file__))}: {landed}"


def test_readme_is_short() -> None:
    words = len(README.read_text().split())
    assert words < README_WORD_LIMIT, f"README.md has {words} words; keep it under {README_WORD_LIMIT}"


@pytest.mark.parametrize("document", [README, CONTRIBUTING, INTERNALS], ids=relative)
def test_every_make_target_named_exists(document: Path) -> None:
    named = targets_named(document)
    assert named, f"{relative(document)} names no make target: the parser no longer finds them"
    known = make_targets() | {item.removeprefix("make ") for item in PENDING if item.startswith("make ")}
    missing = sorted(named - known)
    assert not missing, f"{relative(document)} names make targets that Makefile and mk/*.mk lack: {missing}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=relative)
def test_every_relative_link_resolves(document: Path) -> None:
    broken = []
    for target, anchor in relative_links(document):
        if relative(target) in PENDING:
            continue
        if not target.exists():
            broken.append(f"{relative(target)} (no such file)")
        elif anchor and (target.suffix != ".md" or anchor not in github_anchors(target.read_text())):
            broken.append(f"{relative(target)}#{anchor} (no such heading)")
    assert not broken, f"{relative(document)} links to {broken}"


def test_anchors_are_made_as_github_makes_them() -> None:
    page = "# Custom::CacheLifecyclePolicy\n## Moving from `Custom::CacheLifecyclePolicy`\n## Steps\n## Steps\n"
    assert github_anchors(page) == {
        "customcachelifecyclepolicy",
        "moving-from-customcachelifecyclepolicy",
        "steps",
        "steps-1",
    }


def expand_for_each(section: dict[str, Any]) -> set[str]:
    """The keys of a template section, with AWS::LanguageExtensions' Fn::ForEach loops expanded: each loop's
    identifier replaced, as ${Id} or &{Id} (non-alphanumerics dropped), by each value of its collection."""
    keys: set[str] = set()
    for key, value in section.items():
        if not key.startswith("Fn::ForEach::"):
            keys.add(key)
            continue
        identifier, collection, fragment = value
        if isinstance(collection, dict) and set(collection) == {"Ref"}:  # a CommaDelimitedList parameter
            collection = str(TEMPLATE_DATA["Parameters"][collection["Ref"]]["Default"]).split(",")
        assert isinstance(collection, list), f"{key}: a collection this test cannot read: {collection!r}"
        for item in collection:
            for inner in expand_for_each(fragment):
                keys.add(
                    inner.replace(f"${{{identifier}}}", item).replace(
                        f"&{{{identifier}}}", re.sub(r"[^A-Za-z0-9]", "", item)
                    )
                )
    return keys


# Where each table is: the outputs in the README; the parameters, too many for the README's word limit once the
# health check's came (issue 20), in docs/parameters.md, the README naming the few most stacks set.
TABLES = {"Parameters": ROOT / "docs" / "parameters.md", "Outputs": README}


def readme_table_names(heading: str) -> set[str]:
    """The names in the first column of the table under a heading of the document holding it (TABLES; each name
    written as `code`)."""
    document = TABLES[heading]
    section = re.search(rf"^## {heading}\n(.*?)(?=^## |\Z)", document.read_text(), re.MULTILINE | re.DOTALL)
    assert section, f"{relative(document)} has no '## {heading}' section"
    rows = [line for line in section.group(1).splitlines() if line.startswith("|")][2:]  # after header, separator
    return {name for row in rows for name in re.findall(r"`([^`]+)`", row.split("|")[1])}


@pytest.mark.parametrize("section", ["Parameters", "Outputs"])
def test_readme_tables_list_the_template(section: str) -> None:
    """A section of the same name as the template's holds the table (this tells whoever renames one), in the
    README or, for the parameters, docs/parameters.md; every name both ways."""
    in_template = expand_for_each(TEMPLATE_DATA[section])
    in_readme = readme_table_names(section)
    assert in_template, f"template.yaml has no {section}"
    where = relative(TABLES[section])
    assert not in_template - in_readme, f"{where}'s {section} table lacks {sorted(in_template - in_readme)}"
    assert not in_readme - in_template, f"{where}'s {section} table names what template.yaml lacks: " + str(
        sorted(in_readme - in_template)
    )
