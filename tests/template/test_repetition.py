"""Each cache is written once in template.yaml: no block of one cache's text is repeated for another cache.

A line belongs to a cache when it, or a key it sits under, names the cache (EcrPublicCacheRule, QuayPrefix, ...).
With the caches' names replaced by one placeholder, no two consecutive lines of one cache may read the same as two
of another cache's. Lists with one line per cache (the function's namespaces, the scanning filters, the policies'
ARNs) are not blocks of one cache, and stay lists. The sections Fn::ForEach cannot reach, Parameters and Metadata
(intrinsic-function-reference-foreach.html), declare one parameter per cache and are left out; the
<Cache>Prefix parameters' constraints are checked to be one text elsewhere (test_prefix_parameters_follow_ecr).
"""

from __future__ import annotations

import re
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

import pytest

pytestmark = pytest.mark.template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
TEMPLATE_BEFORE = ROOT / "tests" / "stack" / "fixtures" / "template-2f3a17d.yaml"
CACHE = re.compile(r"EcrPublic|Quay|K8s|DockerHub|GitHub|GitLab")
UNREACHABLE_SECTIONS = ("Parameters", "Metadata")


def cache_lines(text: str) -> list[tuple[int, str, str]]:
    """(line number, the line with cache names replaced, its cache) of each line belonging to exactly one cache,
    outside Parameters and Metadata."""
    found = []
    ancestors: list[tuple[int, set[str]]] = []  # (indent, caches named) of the keys above the line
    section = ""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" -"))
        if indent == 0:
            section = stripped.split(":", 1)[0]
        while ancestors and ancestors[-1][0] >= indent:
            ancestors.pop()
        named = set(CACHE.findall(stripped))
        caches = named or next((caches for _, caches in reversed(ancestors) if caches), set())
        ancestors.append((indent, named))
        if section not in UNREACHABLE_SECTIONS and len(caches) == 1:
            found.append((number, CACHE.sub("<Cache>", stripped), next(iter(caches))))
    return found


def repeated_blocks(text: str) -> dict[tuple[str, str], dict[str, int]]:
    """Each run of two consecutive lines of one cache that reads the same for another: {run: {cache: line}}."""
    runs: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    lines = cache_lines(text)
    for (number, first, cache), (next_number, second, next_cache) in pairwise(lines):
        if cache == next_cache and next_number == number + 1:
            runs[(first, second)].setdefault(cache, number)
    return {run: where for run, where in runs.items() if len(where) > 1}


def test_each_cache_is_written_once() -> None:
    repeated = repeated_blocks(TEMPLATE.read_text())
    assert not repeated, "\n".join(
        f"lines {sorted(where.values())}: {run[0]} / {run[1]}" for run, where in repeated.items()
    )


def test_the_count_finds_the_repetition_of_the_template_before() -> None:
    """The check can fail: the template before the loop (six caches written out) has 62 runs of two lines repeated
    for every cache, over 430 lines."""
    repeated = repeated_blocks(TEMPLATE_BEFORE.read_text())
    assert len(repeated) > 50
    assert ("Type: Custom::PullThroughCacheRule", "Condition: <Cache>CacheEnabled") in repeated
    assert len(repeated[("Type: Custom::PullThroughCacheRule", "Condition: <Cache>CacheEnabled")]) == 6
