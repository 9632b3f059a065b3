"""Load a policy file: YAML, then each section's shape, then the checks across sections.

Every problem is collected and reported at once, each with the path of the bad field.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from tower.policy.checks import Flawed, run_checks
from tower.policy.errors import PolicyError, PolicyIssue
from tower.policy.schema import Policy
from tower.policy.trees import Loc, format_loc

# libyaml's parser when PyYAML was built with it (ten times faster on a large policy).
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"  # `<<: *anchor`: its keys join the mapping it is in


def _read_yaml(text: str) -> tuple[Any, list[PolicyIssue]]:
    """The data in `text`, with a problem for each key given twice in one mapping (the
    value given last is the one kept and validated, as YAML loaders do) and for each key
    that is a list or mapping (left out)."""
    loader = _SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, []
        issues = _key_problems(loader, root)
        return loader.construct_document(root), issues
    finally:
        loader.dispose()


_Found = list[tuple[tuple[int, int], PolicyIssue]]  # problems with their line and column


def _key_problems(loader: yaml.SafeLoader, root: yaml.Node) -> list[PolicyIssue]:
    """Each mapping's repeated and unreadable keys, by path, in file order."""
    found: _Found = []
    walked: set[int] = set()  # an alias's node is walked once, where its anchor is
    stack: list[tuple[Loc, yaml.Node]] = [((), root)]
    while stack:
        loc, node = stack.pop()
        if id(node) in walked:
            continue
        walked.add(id(node))
        children: list[tuple[Loc, yaml.Node]] = []
        if isinstance(node, yaml.SequenceNode):
            children = [((*loc, index), item) for index, item in enumerate(node.value)]
        elif isinstance(node, yaml.MappingNode):
            children = _check_keys(loader, loc, node, found)
        stack += reversed(children)  # taken in file order: an anchor before its aliases
    return [issue for _, issue in sorted(found, key=lambda pair: pair[0])]


def _check_keys(
    loader: yaml.SafeLoader, loc: Loc, node: yaml.MappingNode, found: _Found
) -> list[tuple[Loc, yaml.Node]]:
    """Add to `found` each key of the mapping at `loc` given twice, and each that is a
    list or mapping (taken out of the mapping, so the rest of the file is still read);
    return the mapping's values with their paths."""
    first_line: dict[Any, int] = {}
    kept: list[tuple[yaml.Node, yaml.Node]] = []
    values: list[tuple[Loc, yaml.Node]] = []
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE_TAG:
            kept.append((key_node, value_node))
            values.append((loc, value_node))
            continue
        line = key_node.start_mark.line + 1
        where = (line, key_node.start_mark.column)
        key = loader.construct_object(key_node, deep=True)
        try:
            first = first_line.get(key)
        except TypeError:
            message = f"line {line}: a key must be a plain value, not a list or mapping"
            found.append((where, PolicyIssue(format_loc(loc), message)))
            continue
        kept.append((key_node, value_node))
        key_loc = (*loc, key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key))
        values.append((key_loc, value_node))
        if first is None:
            first_line[key] = line
        else:
            lines = f"line {line}" if first == line else f"lines {first} and {line}"
            message = f"twice: given at {lines}; the value given last is used"
            found.append((where, PolicyIssue(format_loc(key_loc), message)))
    node.value = kept
    return values


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
        data, found = _read_yaml(text)
    except yaml.YAMLError as error:
        raise PolicyError(source, [PolicyIssue("", _yaml_message(error))]) from None
    return validate_policy(data, source=source, found=found)


def validate_policy(
    data: Any, source: str = "<policy>", found: Sequence[PolicyIssue] = ()
) -> Policy:
    """Validate already-parsed policy data section by section, then across sections;
    `found`: problems already found in reading it, reported first."""
    issues = list(found)
    if not isinstance(data, dict):
        kind = "an empty file" if data is None else type(data).__name__
        issues.append(PolicyIssue("", f"expected a mapping of sections, found {kind}"))
        raise PolicyError(source, issues)
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
        adapter = _field_adapter(Policy, name)
        try:
            sections[name] = adapter.validate_python(data[name])
        except ValidationError as error:
            issues.extend(_issue_from(name, detail) for detail in error.errors())
            items = _valid_items(field.annotation, data[name])
            if items is not None:
                sections[name] = items  # the cross-checks still read the good ones
    issues.extend(run_checks(sections))
    if issues:
        raise PolicyError(source, sorted(set(issues), key=issues.index))
    return Policy.model_construct(**sections)


@cache
def _field_adapter(model: type[BaseModel], name: str) -> TypeAdapter[Any]:
    """A validator of one field of `model` alone, with the field's constraints."""
    field = model.model_fields[name]
    annotation: Any = field.annotation
    if field.metadata:
        annotation = Annotated[(annotation, *field.metadata)]
    return TypeAdapter(annotation)


def _valid_items(annotation: Any, value: Any) -> list[Any] | None:
    """For a list section that failed its schema, each item that passes its own, in its
    place, so the cross-checks still find the other items' mistakes by their true paths;
    where one fails, what of it can be read (`Flawed`, or None); None for any other kind
    of section."""
    if get_origin(annotation) is not list or not isinstance(value, list):
        return None
    [kind] = get_args(annotation)
    item = TypeAdapter(kind)
    has_fields = isinstance(kind, type) and issubclass(kind, BaseModel)
    valid: list[Any] = []
    for entry in value:
        try:
            valid.append(item.validate_python(entry))
        except ValidationError as error:
            valid.append(_flawed(kind, entry, error) if has_fields else None)
    return valid


def _flawed(model: type[BaseModel], entry: Any, error: ValidationError) -> Flawed[Any] | None:
    """The fields of a list item that pass their own schema, so the cross-checks still
    check them (an item that is not a mapping has none: None)."""
    if not isinstance(entry, dict):
        return None
    failed = frozenset(str(detail["loc"][0]) for detail in error.errors() if detail["loc"])
    good = {
        name: _field_adapter(model, name).validate_python(entry[name])
        for name in model.model_fields
        if name in entry and name not in failed
    }
    return Flawed(model.model_construct(**good), failed)


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
