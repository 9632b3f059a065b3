"""Errors found in a policy file, each tied to the path of the field that is wrong."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class PolicyIssue:
    """One problem: `path` names the field (`funnels.purchase[2]`), `message` says why."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class PolicyError(Exception):
    """A policy file that cannot be used, with every problem found in it."""

    def __init__(self, source: str, issues: Sequence[PolicyIssue]) -> None:
        self.source = source
        self.issues = list(issues)
        count = len(self.issues)
        lines = [f"{source}: {count} problem{'s' if count != 1 else ''}"]
        lines += [f"  {issue}" for issue in self.issues]
        super().__init__("\n".join(lines))
