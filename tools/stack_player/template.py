"""template.yaml as CloudFormation reads it: its transforms, parameters checked against their constraints,
conditions, intrinsic functions, and the order in which resources can be created.

cfn-lint parses the file (its YAML loader turns `!Ref`/`!GetAtt`/`!Sub` into their long forms, the same loader
`make lint` relies on), tools/sam_transform writes out the Fn::ForEach loops and runs the SAM transform (as for the
StackSet render), and cfn-lint's template graph gives the dependencies. The evaluation is ours, because attribute
values only exist once a resource has answered (docs/local.md says why no library fit).
"""

from __future__ import annotations

import base64
import difflib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import cfnlint.template
import networkx
from cfnlint.decode import decode

from tools.sam_transform import expand, has_sam_transform, plain, set_code_uri, translate


class TemplateError(Exception):
    """The template, its parameters or an intrinsic function cannot be evaluated (CloudFormation would refuse)."""


class ParameterError(TemplateError):
    """Parameter values CloudFormation would refuse, one message per parameter."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _NoValue:
    """AWS::NoValue: the key or list item holding it disappears."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()

# The SAM transform accepts only code in S3; the code is not deployed locally, so any URI does.
LOCAL_CODE_URI = "s3://stack-player-local-code/provider.zip"

# Resolves Ref and Fn::GetAtt of a resource: (logical id, attribute or None for Ref) -> value.
ResourceResolver = Callable[[str, str | None], Any]


@dataclass(frozen=True)
class Template:
    path: Path
    body: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> Template:
        """The template as CloudFormation plays it: after its transforms (AWS::LanguageExtensions's loops written
        out, then the SAM transform), when it has them."""
        body, errors = decode(str(path))
        if errors or not isinstance(body, dict):
            raise TemplateError(f"Cannot read {path}: {'; '.join(str(error) for error in errors)}")
        expanded = expand(plain(body))
        if has_sam_transform(expanded):
            set_code_uri(expanded, LOCAL_CODE_URI)
            expanded = translate(expanded)
        return cls(path=path, body=expanded)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.body.get("Resources", {}))

    @property
    def parameters(self) -> dict[str, dict[str, Any]]:
        return dict(self.body.get("Parameters", {}))

    @cached_property
    def dependencies(self) -> networkx.MultiDiGraph:
        """cfn-lint's template graph: an edge from each resource to those it names (Ref, Fn::GetAtt, Fn::Sub,
        DependsOn), whichever way its conditions go."""
        graph = cfnlint.template.Template(str(self.path), self.body).graph
        if graph is None:
            raise TemplateError(f"Cannot work out the dependencies between the resources of {self.path}")
        return graph.graph

    def lambda_function(self, logical_id: str) -> dict[str, Any]:
        """The properties of an AWS::Lambda::Function (Globals applied by the transform), or {}."""
        resource = self.resources.get(logical_id, {})
        return dict(resource.get("Properties", {})) if resource.get("Type") == "AWS::Lambda::Function" else {}


def resolve_parameters(template: Template, overrides: dict[str, str]) -> dict[str, Any]:
    """Parameter values as CloudFormation accepts them: defaults, overrides, and every constraint checked.
    Raises ParameterError naming every parameter at fault."""
    declared = template.parameters
    problems = [f"Parameter {name} does not exist in the template{_closest(name, declared)}"
                for name in sorted(set(overrides) - set(declared))]  # fmt: skip
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in overrides:
            raw = overrides[name]
        elif "Default" in spec:
            raw = str(spec["Default"])
        else:
            problems.append(f"Parameter {name} has no default and no value was given")
            continue
        problem = _parameter_problem(raw, spec)
        if problem:
            problems.append(f"Parameter {name} {raw!r} {spec.get('ConstraintDescription') or problem}")
        kind = str(spec.get("Type", "String"))
        values[name] = (
            [item.strip() for item in raw.split(",")]
            if kind.startswith("List<") or kind == ("CommaDelimitedList")
            else raw
        )
    if not problems:
        problems = _broken_rules(template, values)
    if problems:
        raise ParameterError(problems)
    return values


def _broken_rules(template: Template, values: dict[str, Any]) -> list[str]:
    """The template's Rules whose assertions the parameter values break, as CloudFormation refuses them before
    creating anything: each failed assertion's AssertDescription (rules-section-structure.html). A rule applies when
    its RuleCondition holds (or it has none)."""

    def rule_value(node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            ((function, argument),) = node.items()
            if function == "Ref":
                return values[argument]
            arguments = [rule_value(item) for item in argument] if isinstance(argument, list) else argument
            functions: dict[str, Callable[[Any], Any]] = {
                "Fn::Equals": lambda items: str(items[0]) == str(items[1]),
                "Fn::Not": lambda items: not items[0],
                "Fn::And": all,
                "Fn::Or": any,
                "Fn::Contains": lambda items: str(items[1]) in [str(item) for item in items[0]],
            }
            if function not in functions:
                raise TemplateError(f"Rules: the stack player does not evaluate {function}")
            return functions[function](arguments)
        return node

    broken = []
    for name, rule in template.body.get("Rules", {}).items():
        if "RuleCondition" in rule and not rule_value(rule["RuleCondition"]):
            continue
        broken += [f"Template rule {name}: {assertion.get('AssertDescription', 'assertion failed')}"
                   for assertion in rule.get("Assertions", []) if not rule_value(assertion["Assert"])]  # fmt: skip
    return broken


def _closest(name: str, declared: Iterable[str]) -> str:
    """`: did you mean X?` for the declared parameter closest to a misspelled name (difflib), or nothing."""
    by_lowercase = {candidate.lower(): candidate for candidate in declared}
    found = difflib.get_close_matches(name.lower(), list(by_lowercase), n=1, cutoff=0.6)
    return f": did you mean {by_lowercase[found[0]]}?" if found else ""


def _parameter_problem(value: str, spec: dict[str, Any]) -> str:
    """What is wrong with a parameter value, in CloudFormation's terms, or an empty string."""
    allowed = [str(item) for item in spec.get("AllowedValues", [])]
    if allowed and value not in allowed:
        return f"must be one of {allowed}"
    if "AllowedPattern" in spec and not re.fullmatch(str(spec["AllowedPattern"]), value):
        return f"must match pattern {spec['AllowedPattern']}"
    if not int(spec.get("MinLength", 0)) <= len(value) <= int(spec.get("MaxLength", len(value))):
        return f"must be {spec.get('MinLength', 0)} to {spec.get('MaxLength', 'any number of')} characters long"
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            return "must be a number"
        if not float(spec.get("MinValue", number)) <= number <= float(spec.get("MaxValue", number)):
            return f"must be from {spec.get('MinValue', '-inf')} to {spec.get('MaxValue', 'inf')}"
    return ""


@dataclass
class Renderer:
    """Evaluates conditions and intrinsic functions for one stack operation."""

    template: Template
    parameters: dict[str, Any]
    pseudo: dict[str, Any]
    resolve_resource: ResourceResolver
    # Exports of the other local stacks, for Fn::ImportValue.
    imports: dict[str, Any] = field(default_factory=dict)
    _conditions: dict[str, bool] = field(default_factory=dict)

    # Conditions and the resources they keep

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            definitions = self.template.body.get("Conditions", {})
            if name not in definitions:
                raise TemplateError(f"Unknown condition {name}")
            self._conditions[name] = bool(self.evaluate(definitions[name]))
        return self._conditions[name]

    def active_resources(self) -> dict[str, dict[str, Any]]:
        """The resources this stack has: those without a Condition, or whose Condition is true."""
        return {
            logical_id: resource
            for logical_id, resource in self.template.resources.items()
            if "Condition" not in resource or self.condition(str(resource["Condition"]))
        }

    def creation_order(self) -> list[str]:
        """Logical ids in an order where every resource comes after the ones it refers to or DependsOn.
        Ties keep the template's order, so runs are repeatable."""
        active = self.active_resources()
        position = {logical_id: index for index, logical_id in enumerate(active)}
        # The graph's edges point from a resource to what it needs; creation goes the other way.
        needs = self.template.dependencies.subgraph(active).reverse()
        try:
            return list(networkx.lexicographical_topological_sort(needs, key=position.__getitem__))
        except networkx.NetworkXUnfeasible:
            cycle = [edge[:2] for edge in networkx.find_cycle(needs)]
            raise TemplateError(f"Circular dependency between resources: {cycle}") from None

    # Intrinsic functions

    def evaluate(self, node: Any) -> Any:
        if isinstance(node, list):
            return [item for item in (self.evaluate(item) for item in node) if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, argument),) = node.items()
            function = _FUNCTIONS.get(key)
            if function is not None:
                return function(self, argument)
        return {
            key: value
            for key, value in ((key, self.evaluate(item)) for key, item in node.items())
            if value is not NO_VALUE
        }

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.template.resources:
            self._require_active(name)
            return self.resolve_resource(name, None)
        raise TemplateError(f"Unresolved reference {name}")

    def get_att(self, name: str, attribute: str) -> Any:
        if name not in self.template.resources:
            raise TemplateError(f"Fn::GetAtt names an unknown resource {name}")
        self._require_active(name)
        return self.resolve_resource(name, attribute)

    def _require_active(self, name: str) -> None:
        condition = self.template.resources[name].get("Condition")
        if condition is not None and not self.condition(str(condition)):
            raise TemplateError(f"Resource {name} is referenced but its condition {condition} is false")

    def sub(self, text: str, variables: dict[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            inner = match.group(1)
            if inner.startswith("!"):
                return "${" + inner[1:] + "}"  # ${!Literal} is written as ${Literal}
            if inner in variables:
                return _text(variables[inner])
            if "." in inner and not inner.startswith("AWS::"):
                resource, attribute = inner.split(".", 1)
                return _text(self.get_att(resource, attribute))
            return _text(self.ref(inner))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)) or value is NO_VALUE:
        raise TemplateError(f"Fn::Sub cannot insert {value!r} into a string")
    return str(value)


def _fn_get_att(renderer: Renderer, argument: Any) -> Any:
    if isinstance(argument, str):
        argument = argument.split(".", 1)
    name, attribute = (renderer.evaluate(part) for part in argument)
    return renderer.get_att(str(name), str(attribute))


def _fn_sub(renderer: Renderer, argument: Any) -> str:
    if isinstance(argument, str):
        return renderer.sub(argument, {})
    text, variables = argument
    return renderer.sub(str(text), {key: renderer.evaluate(value) for key, value in variables.items()})


def _fn_if(renderer: Renderer, argument: Any) -> Any:
    name, when_true, when_false = argument
    return renderer.evaluate(when_true if renderer.condition(str(name)) else when_false)


def _fn_select(renderer: Renderer, argument: Any) -> Any:
    index, items = renderer.evaluate(argument)
    try:
        return items[int(index)]
    except (IndexError, ValueError, TypeError):
        raise TemplateError(f"Fn::Select index {index!r} is out of range for {items!r}") from None


def _fn_find_in_map(renderer: Renderer, argument: Any) -> Any:
    map_name, top, second = (renderer.evaluate(part) for part in argument[:3])
    try:
        return renderer.template.body["Mappings"][map_name][top][second]
    except KeyError:
        raise TemplateError(f"Fn::FindInMap cannot find {map_name}/{top}/{second}") from None


def _fn_import_value(renderer: Renderer, argument: Any) -> Any:
    name = str(renderer.evaluate(argument))
    if name not in renderer.imports:
        raise TemplateError(
            f"No export named {name} (play the stack that exports it first, with the same state folder)"
        )
    return renderer.imports[name]


_FUNCTIONS: dict[str, Callable[[Renderer, Any], Any]] = {
    "Ref": lambda renderer, argument: renderer.ref(str(renderer.evaluate(argument))),
    "Fn::GetAtt": _fn_get_att,
    "Fn::Sub": _fn_sub,
    "Fn::If": _fn_if,
    "Fn::Join": lambda renderer, argument: str(renderer.evaluate(argument[0])).join(
        _text(item) for item in renderer.evaluate(argument[1])
    ),
    "Fn::Select": _fn_select,
    "Fn::Split": lambda renderer, argument: _text(renderer.evaluate(argument[1])).split(
        str(renderer.evaluate(argument[0]))
    ),
    "Fn::FindInMap": _fn_find_in_map,
    "Fn::Base64": lambda renderer, argument: base64.b64encode(_text(renderer.evaluate(argument)).encode()).decode(),
    "Fn::ToJsonString": lambda renderer, argument: json.dumps(renderer.evaluate(argument), separators=(",", ":")),
    "Fn::GetAZs": lambda renderer, argument: [f"{renderer.pseudo['AWS::Region']}{zone}" for zone in "abc"],
    "Fn::Equals": lambda renderer, argument: (
        _text(renderer.evaluate(argument[0])) == _text(renderer.evaluate(argument[1]))
    ),
    "Fn::Not": lambda renderer, argument: not renderer.evaluate(argument[0]),
    "Fn::And": lambda renderer, argument: all(renderer.evaluate(item) for item in argument),
    "Fn::Or": lambda renderer, argument: any(renderer.evaluate(item) for item in argument),
    "Condition": lambda renderer, argument: renderer.condition(str(argument)),
    "Fn::ImportValue": _fn_import_value,
}
