"""Load a policy file: YAML, then each section's shape, then the checks across sections.

Every problem is collected and reported at once, each with the path of the bad field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

import yaml
from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from tower.policy.checks import run_checks
from tower.policy.errors import PolicyError, PolicyIssue
from tower.policy.schema import Policy
from tower.policy.trees import format_loc

# libyaml's parser when PyYAML was built with it (ten times faster on a large policy).
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_SafeLoader):  # type: ignore[valid-type, misc]
    """A safe YAML loader that refuses a key given twice in one mapping."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        try:
            repeated = key in seen
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                "a key must be a plain value, not a list or mapping",
                key_node.start_mark,
            ) from None
        if repeated:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice in the same mapping", mark
            )
        seen.add(key)
    mapping: dict[Any, Any] = loader.construct_mapping(node)
    return mapping


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def load_policy(path: Path | str) -> Policy:
    """Read and validate the policy file at `path`; raise `PolicyError` listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(str(path), [PolicyIssue("", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyError(str(path), [PolicyIssue("", f"cannot read the file: {error}")]) from None
    return parse_policy(text, source=str(path))


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Validate a policy given as YAML text."""
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as error:
        raise PolicyError(source, [PolicyIssue("", _yaml_message(error))]) from None
    return validate_policy(data, source=source)


def validate_policy(data: Any, source: str = "<policy>") -> Policy:
    """Validate already-parsed policy data section by section, then across sections."""
    if not isinstance(data, dict):
        found = "an empty file" if data is None else type(data).__name__
        raise PolicyError(
            source, [PolicyIssue("", f"expected a mapping of sections, found {found}")]
        )
    issues: list[PolicyIssue] = []
    sections: dict[str, Any] = {}
    for name in data:
        if name not in Policy.model_fields:
            allowed = ", ".join(Policy.model_fields)
            issues.append(PolicyIssue(str(name), f"unknown section (sections: {allowed})"))
    for name, field in Policy.model_fields.items():
        if name not in data:
            if field.is_required():
                issues.append(PolicyIssue(name, "required section is missing"))
            else:
                sections[name] = field.get_default(call_default_factory=True)
            continue
        annotation: Any = field.annotation
        if field.metadata:
            annotation = Annotated[(annotation, *field.metadata)]
        try:
            sections[name] = TypeAdapter(annotation).validate_python(data[name])
        except ValidationError as error:
            issues.extend(_issue_from(name, detail) for detail in error.errors())
            items = _valid_items(annotation, data[name])
            if items is not None:
                sections[name] = items  # the cross-checks still read the good ones
    issues.extend(run_checks(sections))
    if issues:
        raise PolicyError(source, sorted(set(issues), key=issues.index))
    return Policy.model_construct(**sections)


def _valid_items(annotation: Any, value: Any) -> list[Any] | None:
    """For a list section that failed its schema, each item that passes its own, in its
    place (None where one fails), so the cross-checks still find the other items'
    mistakes by their true paths; None for any other kind of section."""
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) is not list or not isinstance(value, list):
        return None
    item = TypeAdapter(get_args(annotation)[0])
    valid: list[Any] = []
    for entry in value:
        try:
            valid.append(item.validate_python(entry))
        except ValidationError:
            valid.append(None)
    return valid


def _issue_from(section: str, detail: ErrorDetails) -> PolicyIssue:
    loc = tuple(part for part in detail["loc"] if part != "[key]")
    path = format_loc((section, *loc))
    kind = detail["type"]
    if kind == "value_error":
        message = str(detail.get("ctx", {}).get("error", detail["msg"]))
    elif kind == "missing":
        message = "required field is missing"
    elif kind == "extra_forbidden":
        message = "unknown field"
    else:
        message = detail["msg"][:1].lower() + detail["msg"][1:]
        value = detail.get("input")
        if isinstance(value, str | int | float | bool) or value is None:
            message += f" (got {value!r})"
    return PolicyIssue(path, message)


def _yaml_message(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    if mark is None:
        return f"invalid YAML: {problem}"
    return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"
