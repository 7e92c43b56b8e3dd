"""Falco-compatible rules engine: load rule files, match events, produce Falco alerts.

    rs = load(["rules/"])             # Ruleset, or RuleLoadError with file:line messages
    rs.evttypes()                     # syscalls the enabled rules can match
    for alert in rs.match(event):     # every matching enabled rule, in rule order
        print(alert.to_json_line())
"""

from .alert import Alert, parse_priority, priority_name
from .errors import (
    CompileError,
    ConditionSyntaxError,
    LoadMessage,
    LoadResult,
    Location,
    RuleLoadError,
    RulesError,
)
from .loader import ENGINE_VERSION, bundled_rules_path, expand_paths, load, load_result, loads
from .ruleset import Rule, Ruleset

__all__ = [
    "ENGINE_VERSION",
    "Alert",
    "CompileError",
    "ConditionSyntaxError",
    "LoadMessage",
    "LoadResult",
    "Location",
    "Rule",
    "RuleLoadError",
    "RulesError",
    "Ruleset",
    "bundled_rules_path",
    "expand_paths",
    "load",
    "load_result",
    "loads",
    "parse_priority",
    "priority_name",
]
