"""Policy as code: the organisation and its rules, loaded from one reviewed YAML file."""

from tower.policy.errors import PolicyError, PolicyIssue
from tower.policy.loader import load_policy, parse_policy, validate_policy
from tower.policy.schema import Policy

__all__ = ["Policy", "PolicyError", "PolicyIssue", "load_policy", "parse_policy", "validate_policy"]
