"""YAML rules files -> collector -> compiled Ruleset, with Falco's errors and warnings.

Loading is cumulative like Falco's: one collector holds every list, macro and rule across files
(so a later file can append to or override an earlier one), and after each file the whole set is
validated from scratch; the first file that fails stops the load. The final pass generates code.
YAML node positions are kept so every message names its file and line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import fields as F
from .alert import parse_priority
from .ast import And, MacroRef, Node, Not, Or
from .compiler import UNIVERSE, CodeGen, compile_condition, evttypes
from .errors import CompileError, ConditionSyntaxError, LoadResult, Location, RuleLoadError
from .lists import apply_exceptions, exception_condition, substitute_list
from .output import SUGGESTED_OUTPUT, OutputFormat
from .parser import ALL_OPS, parse
from .ruleset import ListInfo, MacroInfo, Rule, Ruleset

ENGINE_VERSION = (0, 63, 0)
# plugins whose fields we provide ourselves, and the version we answer for
PROVIDED_PLUGINS = {"container": (0, 6, 0)}
SYSCALL_SOURCE = "syscall"
NO_EVTTYPE_LIMIT = 100

_LIST_NAME = re.compile(r"^[^()\"'\s=,]+$")
_MACRO_NAME = re.compile(r"^[a-zA-Z]+[a-zA-Z0-9_]*$")
_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$")

ITEM_KINDS = ("required_engine_version", "required_plugin_versions", "list", "macro", "rule")
KNOWN_KEYS = {
    "required_engine_version": {"required_engine_version"},
    "required_plugin_versions": {"required_plugin_versions"},
    "list": {"list", "items", "append", "override"},
    "macro": {"macro", "condition", "append", "override"},
    "rule": {"rule", "condition", "output", "desc", "priority", "source", "enabled", "tags", "exceptions",
             "warn_evttypes", "skip-if-unknown-filter", "capture", "capture_duration", "append", "override"},
}
RULE_APPENDABLE = ("condition", "output", "desc", "tags", "exceptions")
RULE_REPLACEABLE = ("condition", "output", "desc", "priority", "capture", "capture_duration", "tags", "exceptions",
                    "enabled", "warn_evttypes", "skip-if-unknown-filter")
MODIFIERS = ("oneof", "anyof", "allof")


class _Stop(Exception):
    """Reading a file stops at its first error."""


# -- YAML with positions ---------------------------------------------------------------------------
@dataclass
class YItem:
    """A mapping item with its key lines."""

    data: dict[str, Any]
    line: int
    key_lines: dict[str, int]


def _scalar(node: yaml.ScalarNode) -> Any:
    if node.tag.endswith(":null") and not node.style and node.value in ("", "~", "null", "Null", "NULL"):
        return None
    return node.value


def to_py(node: yaml.Node) -> Any:
    """Node -> Python, keeping every scalar as its text (yaml-cpp style: `yes` stays "yes")."""
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return [to_py(n) for n in node.value]
    if isinstance(node, yaml.MappingNode):
        return {str(to_py(k)): to_py(v) for k, v in node.value}
    return None


def as_bool(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, str):
        low = v.strip().lower()
        if low in ("true", "yes", "on", "y"):
            return True
        if low in ("false", "no", "off", "n"):
            return False
    return None


# -- collector -------------------------------------------------------------------------------------
@dataclass
class ListDef:
    name: str
    items: list[str]
    index: int
    loc: Location


@dataclass
class MacroDef:
    name: str
    condition: str
    index: int
    visibility: int
    loc: Location
    cond_line: int | None


@dataclass
class ExceptionDef:
    name: str
    fields: Any  # list[str] or str
    comps: Any  # list[str] or str
    values: list
    line: int | None


@dataclass
class RuleDef:
    name: str
    condition: str
    output: str
    desc: str
    priority: int
    source: str
    enabled: bool
    tags: list[str]
    exceptions: list[ExceptionDef]
    warn_evttypes: bool
    skip_if_unknown_filter: bool
    capture: bool
    capture_duration: int
    index: int
    loc: Location
    cond_line: int | None
    output_line: int | None


@dataclass
class Collector:
    lists: dict[str, ListDef] = field(default_factory=dict)
    macros: dict[str, MacroDef] = field(default_factory=dict)
    rules: dict[str, RuleDef] = field(default_factory=dict)
    counter: int = 0
    engine_version: tuple[int, int, int] | None = None
    plugin_reqs: list[tuple[list[tuple[str, tuple[int, int, int]]], Location]] = field(default_factory=list)

    def next(self) -> int:
        self.counter += 1
        return self.counter


def _semver(v: str) -> tuple[int, int, int] | None:
    m = _SEMVER.match(v.strip())
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def _fmt_ver(v: tuple[int, int, int]) -> str:
    return ".".join(str(x) for x in v)


# -- reading one file ------------------------------------------------------------------------------
class FileReader:
    def __init__(self, coll: Collector, result: LoadResult, name: str):
        self.c = coll
        self.r = result
        self.name = name

    def loc(self, line: int | None, item_type: str | None = None, item_name: str | None = None) -> Location:
        return Location(self.name, line, None, item_type, item_name)

    def fail(self, code: str, msg: str, line: int | None, item_type=None, item_name=None):
        self.r.error(code, msg, self.loc(line, item_type, item_name))
        raise _Stop

    def warn(self, code: str, msg: str, line: int | None, item_type=None, item_name=None) -> None:
        self.r.warn(code, msg, self.loc(line, item_type, item_name))

    def read(self, text: str) -> bool:
        try:
            items = self.parse_yaml(text)
            for it in items:
                self.item(it)
        except _Stop:
            return False
        return True

    def parse_yaml(self, text: str) -> list[YItem]:
        loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        out: list[YItem] = []
        try:
            loader = loader_cls(text)
            try:
                while loader.check_node():
                    doc = loader.get_node()
                    if doc is None or (isinstance(doc, yaml.ScalarNode) and _scalar(doc) is None):
                        continue
                    if not isinstance(doc, yaml.SequenceNode):
                        self.fail("LOAD_ERR_YAML_VALIDATE", "Rules content is not yaml array of objects",
                                  doc.start_mark.line + 1)
                    for n in doc.value:
                        if isinstance(n, yaml.ScalarNode) and _scalar(n) is None:
                            continue
                        if not isinstance(n, yaml.MappingNode):
                            self.fail("LOAD_ERR_YAML_VALIDATE",
                                      "Unexpected element type. Each element should be a yaml associative array.",
                                      n.start_mark.line + 1)
                        data: dict[str, Any] = {}
                        key_lines: dict[str, int] = {}
                        for k, v in n.value:
                            key = str(to_py(k))
                            data[key] = to_py(v)
                            key_lines[key] = k.start_mark.line + 1
                        out.append(YItem(data, n.start_mark.line + 1, key_lines))
            finally:
                loader.dispose()
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            line = mark.line + 1 if mark is not None else None
            problem = getattr(exc, "problem", None) or str(exc)
            ctx = getattr(exc, "context", None)
            msg = f"{ctx}: {problem}" if ctx else str(problem)
            self.fail("LOAD_ERR_YAML_PARSE", msg, line)
        return out

    # -- items -------------------------------------------------------------------------------------
    def item(self, it: YItem) -> None:
        kind = next((k for k in ITEM_KINDS if k in it.data), None)
        if kind is None:
            self.warn("LOAD_UNKNOWN_ITEM", "Unknown top level item", it.line)
            return
        name = it.data.get(kind) if kind in ("list", "macro", "rule") else None
        item_name = name if isinstance(name, str) else None
        for key in it.data:
            if key not in KNOWN_KEYS[kind]:
                self.warn("LOAD_UNKNOWN_KEY", f"Unknown key '{key}'. The key will be ignored.",
                          it.key_lines.get(key, it.line), kind, item_name)
        getattr(self, "item_" + kind)(it)

    def need_str(self, it: YItem, key: str, kind: str, name: str | None) -> str:
        if key not in it.data:
            self.fail("LOAD_ERR_YAML_VALIDATE", f"Item has no mapping for key '{key}'", it.line, kind, name)
        v = it.data[key]
        if not isinstance(v, str) or (key in ("rule", "macro", "list") and not v):
            self.fail("LOAD_ERR_YAML_VALIDATE", f"Value for key '{key}' must be a non-empty string",
                      it.key_lines.get(key, it.line), kind, name)
        return v

    def item_required_engine_version(self, it: YItem) -> None:
        v = it.data["required_engine_version"]
        line = it.line
        ver = None
        if isinstance(v, str):
            ver = (0, int(v.strip()), 0) if v.strip().isdigit() else _semver(v)
        if ver is None:
            self.fail("LOAD_ERR_YAML_VALIDATE", f"Unable to parse engine version '{v}' as a semver string", line,
                      "required_engine_version")
        if ver[0] != ENGINE_VERSION[0] or ver > ENGINE_VERSION:
            self.fail("LOAD_ERR_VALIDATE", f"Rules require engine version {_fmt_ver(ver)}, but engine version is "
                      f"{_fmt_ver(ENGINE_VERSION)}", line, "required_engine_version")
        if self.c.engine_version is None or ver > self.c.engine_version:
            self.c.engine_version = ver

    def item_required_plugin_versions(self, it: YItem) -> None:
        reqs = it.data["required_plugin_versions"]
        if not isinstance(reqs, list):
            self.fail("LOAD_ERR_YAML_VALIDATE", "Value of required_plugin_versions must be a sequence", it.line,
                      "required_plugin_versions")
        for req in reqs:
            if not isinstance(req, dict) or not isinstance(req.get("name"), str) \
                    or not isinstance(req.get("version"), str):
                self.fail("LOAD_ERR_YAML_VALIDATE", "Each required plugin needs a 'name' and a 'version'", it.line,
                          "required_plugin_versions")
            group = [(req["name"], req["version"])]
            for alt in req.get("alternatives") or []:
                if not isinstance(alt, dict) or not isinstance(alt.get("name"), str) \
                        or not isinstance(alt.get("version"), str):
                    self.fail("LOAD_ERR_YAML_VALIDATE", "Each plugin alternative needs a 'name' and a 'version'",
                              it.line, "required_plugin_versions", req["name"])
                group.append((alt["name"], alt["version"]))
            names = [g[0] for g in group]
            if len(set(names)) != len(names):
                self.fail("LOAD_ERR_VALIDATE", f"Plugin '{req['name']}' lists the same alternative twice", it.line,
                          "required_plugin_versions", req["name"])
            parsed = []
            for n, v in group:
                sv = _semver(v)
                if sv is None:
                    self.fail("LOAD_ERR_VALIDATE", f"Plugin version string '{v}' is not valid semver", it.line,
                              "required_plugin_versions", n)
                parsed.append((n, sv))
            self.c.plugin_reqs.append((parsed, self.loc(it.line, "required_plugin_versions", req["name"])))

    def overrides(self, it: YItem, kind: str, name: str, appendable, replaceable) -> dict[str, str]:
        ov = it.data.get("override")
        if ov is None:
            return {}
        line = it.key_lines.get("override", it.line)
        if not isinstance(ov, dict):
            self.fail("LOAD_ERR_YAML_VALIDATE", "Value of 'override' must be a mapping", line, kind, name)
        if as_bool(it.data.get("append")):
            self.fail("LOAD_ERR_VALIDATE", "Keys 'override' and 'append: true' cannot be used together. Add an "
                      "'append' entry (e.g. 'condition: append') under 'override' instead.", line, kind, name)
        out = {}
        for key, mode in ov.items():
            if mode not in ("append", "replace"):
                self.fail("LOAD_ERR_VALIDATE", f"Invalid override operation for key '{key}': '{mode}'. Allowed "
                          "values are: append, replace", line, kind, name)
            if mode == "append" and key not in appendable:
                self.fail("LOAD_ERR_VALIDATE", f"Key '{key}' cannot be appended to, use 'replace' instead", line,
                          kind, name)
            if mode == "replace" and key not in replaceable:
                self.fail("LOAD_ERR_VALIDATE", f"Key '{key}' cannot be replaced", line, kind, name)
            if key not in it.data:
                self.fail("LOAD_ERR_VALIDATE", f"An {mode} override for '{key}' was specified but '{key}' is not "
                          "defined", line, kind, name)
            out[key] = mode
        for key in it.data:
            if key in (set(appendable) | set(replaceable)) and key not in out:
                self.fail("LOAD_ERR_VALIDATE", f"Unexpected key '{key}': no corresponding entry under 'override' "
                          "is defined.", it.key_lines.get(key, it.line), kind, name)
        return out

    def item_list(self, it: YItem) -> None:
        name = self.need_str(it, "list", "list", None)
        if "items" not in it.data:
            self.fail("LOAD_ERR_YAML_VALIDATE", "Item has no mapping for key 'items'", it.line, "list", name)
        items = it.data["items"]
        if items is None:
            items = []
        if not isinstance(items, list) or any(isinstance(i, list | dict) for i in items):
            self.fail("LOAD_ERR_YAML_VALIDATE", "Value of 'items' must be a sequence of strings",
                      it.key_lines.get("items", it.line), "list", name)
        items = ["" if i is None else str(i) for i in items]
        if not _LIST_NAME.match(name):
            self.warn("LOAD_INVALID_LIST_NAME", "List has an invalid name. List names should match a regular "
                      "expression: [^()\"'[:space:]=,]+", it.line, "list", name)
        ov = self.overrides(it, "list", name, ("items",), ("items",))
        append = as_bool(it.data.get("append")) or ov.get("items") == "append"
        if as_bool(it.data.get("append")):
            self.warn("LOAD_DEPRECATED_ITEM", "The 'append' key is deprecated. Add an 'append' entry (e.g. "
                      "'items: append') under 'override' instead.", it.key_lines.get("append"), "list", name)
        prev = self.c.lists.get(name)
        loc = self.loc(it.line, "list", name)
        if append:
            if prev is None:
                self.fail("LOAD_ERR_VALIDATE", "List uses 'append' or 'override.items: append' but no list by that "
                          "name already exists", it.line, "list", name)
            prev.items = prev.items + items
        elif ov.get("items") == "replace":
            if prev is None:
                self.fail("LOAD_ERR_VALIDATE", "An 'override.items: replace' to a list was requested but no list "
                          "by that name already exists", it.line, "list", name)
            prev.items = items
        elif prev is not None:
            prev.items, prev.loc = items, loc
        else:
            self.c.lists[name] = ListDef(name, items, self.c.next(), loc)

    def item_macro(self, it: YItem) -> None:
        name = self.need_str(it, "macro", "macro", None)
        cond = self.need_str(it, "condition", "macro", name)
        if not _MACRO_NAME.match(name):
            self.warn("LOAD_INVALID_MACRO_NAME", "Macro has an invalid name. Macro names should match a regular "
                      "expression: [a-zA-Z]+[a-zA-Z0-9_]*", it.line, "macro", name)
        ov = self.overrides(it, "macro", name, ("condition",), ("condition",))
        append = as_bool(it.data.get("append")) or ov.get("condition") == "append"
        if as_bool(it.data.get("append")):
            self.warn("LOAD_DEPRECATED_ITEM", "The 'append' key is deprecated. Add an 'append' entry (e.g. "
                      "'condition: append') under 'override' instead.", it.key_lines.get("append"), "macro", name)
        prev = self.c.macros.get(name)
        loc = self.loc(it.line, "macro", name)
        cline = it.key_lines.get("condition")
        if append:
            if prev is None:
                self.fail("LOAD_ERR_VALIDATE", "Macro uses 'append' or 'override.condition: append' but no macro by "
                          "that name already exists", it.line, "macro", name)
            prev.condition = prev.condition + " " + cond
            prev.visibility = self.c.next()
        elif ov.get("condition") == "replace":
            if prev is None:
                self.fail("LOAD_ERR_VALIDATE", "An 'override.condition: replace' to a macro was requested but no "
                          "macro by that name already exists", it.line, "macro", name)
            prev.condition, prev.loc, prev.cond_line = cond, loc, cline
        elif prev is not None:
            prev.condition, prev.loc, prev.cond_line = cond, loc, cline
        else:
            idx = self.c.next()
            self.c.macros[name] = MacroDef(name, cond, idx, idx, loc, cline)

    # -- rules -------------------------------------------------------------------------------------
    def exceptions(self, it: YItem, name: str) -> list[ExceptionDef]:
        raw = it.data.get("exceptions")
        line = it.key_lines.get("exceptions", it.line)
        if raw is None:
            return []
        if not isinstance(raw, list):
            self.fail("LOAD_ERR_YAML_VALIDATE", "Value of 'exceptions' must be a sequence", line, "rule", name)
        out: list[ExceptionDef] = []
        seen: set[str] = set()
        for ex in raw:
            if not isinstance(ex, dict) or not isinstance(ex.get("name"), str):
                self.fail("LOAD_ERR_YAML_VALIDATE", "Item has no mapping for key 'name'", line, "exception", None)
            ename = ex["name"]
            if ename in seen:
                self.warn("LOAD_EXCEPTION_NAME_NOT_UNIQUE", f"Multiple definitions of exception '{ename}' in the "
                          "same rule", line, "exception", ename)
            seen.add(ename)
            for k in ex:
                if k not in ("name", "fields", "comps", "values"):
                    self.warn("LOAD_UNKNOWN_KEY", f"Unknown key '{k}'. The key will be ignored.", line, "exception",
                              ename)
            values = ex.get("values")
            if values is None:
                values = []
            if not isinstance(values, list):
                self.fail("LOAD_ERR_YAML_VALIDATE", "Value of 'values' must be a sequence", line, "exception", ename)
            out.append(ExceptionDef(ename, ex.get("fields"), ex.get("comps"), values, line))
        return out

    def validate_exception(self, ex: ExceptionDef, rule: str) -> ExceptionDef:
        line = ex.line
        fields, comps = ex.fields, ex.comps
        if fields is None:
            self.fail("LOAD_ERR_YAML_VALIDATE", "Item has no mapping for key 'fields'", line, "exception", ex.name)
        if isinstance(fields, list):
            if comps is None:
                comps = ["="] * len(fields)
            if not isinstance(comps, list):
                self.fail("LOAD_ERR_VALIDATE", "Rule exception fields and comps must both be lists or both be "
                          "scalars", line, "exception", ex.name)
            if len(fields) != len(comps):
                self.fail("LOAD_ERR_VALIDATE", "Fields and comps lists must have equal length", line, "exception",
                          ex.name)
            for c in comps:
                self.valid_comp(c, line, ex.name)
            for f in fields:
                self.valid_field(f, line, ex.name)
            for tup in ex.values:
                if not isinstance(tup, list) or len(tup) != len(fields):
                    self.fail("LOAD_ERR_VALIDATE", f"Exception item '{ex.name}': fields and values lists must have "
                              "equal length", line, "exception", ex.name)
        else:
            if comps is None:
                comps = "in"
            if not isinstance(comps, str):
                self.fail("LOAD_ERR_VALIDATE", "Rule exception fields and comps must both be lists or both be "
                          "scalars", line, "exception", ex.name)
            base = comps.split()
            if not (comps in ("in", "pmatch", "intersects") or (len(base) == 2 and base[1] in MODIFIERS)):
                self.fail("LOAD_ERR_VALIDATE", "When fields is a single value, comps must be one of (in, pmatch, "
                          "intersects) or an operator with a oneof/anyof/allof modifier", line, "exception", ex.name)
            self.valid_comp(comps, line, ex.name)
            self.valid_field(str(fields), line, ex.name)
            for v in ex.values:
                if isinstance(v, list | dict):
                    self.fail("LOAD_ERR_VALIDATE", f"Exception item '{ex.name}': values must be scalars when fields "
                              "is a single value", line, "exception", ex.name)
        return ExceptionDef(ex.name, fields, comps, ex.values, line)

    def valid_comp(self, comp: Any, line, ename) -> None:
        parts = str(comp).split()
        ok = (len(parts) == 1 and parts[0] in ALL_OPS) or (
            len(parts) == 2 and parts[1] in MODIFIERS and parts[0] in ALL_OPS)
        if not ok:
            self.fail("LOAD_ERR_VALIDATE", f"'{comp}' is not a supported comparison operator", line, "exception",
                      ename)

    def valid_field(self, name: Any, line, ename) -> None:
        m = re.match(r"^([^\[]+)(?:\[(.*)\])?$", str(name))
        try:
            if not m:
                raise CompileError(f"nonexistent field {name}", unknown=True)
            F.lookup(m.group(1), m.group(2))
        except CompileError:
            self.fail("LOAD_ERR_VALIDATE", f"'{name}' is not a supported filter field", line, "exception", ename)

    def item_rule(self, it: YItem) -> None:
        d = it.data
        name = self.need_str(it, "rule", "rule", None)
        source = d.get("source") or SYSCALL_SOURCE
        if source != SYSCALL_SOURCE:
            self.warn("LOAD_UNKNOWN_SOURCE", f"Unknown source {source}, skipping", it.line, "rule", name)
            return
        prev = self.c.rules.get(name)
        ov = self.overrides(it, "rule", name, RULE_APPENDABLE, RULE_REPLACEABLE)
        legacy_append = as_bool(d.get("append"))
        if ov:
            if prev is None:
                mode = "append" if "append" in ov.values() else "replace"
                key = next(k for k, m in ov.items() if m == mode)
                if mode == "append":
                    msg = f"Rule uses 'append' or 'override.{key}: append' but no rule by that name already exists"
                else:
                    msg = (f"An 'override.{key}: replace' to a rule was requested but no rule by that name already "
                           "exists")
                self.fail("LOAD_ERR_VALIDATE", msg, it.line, "rule", name)
            exceptions = [self.validate_exception_for_append(x, prev) if ov.get("exceptions") == "append"
                          else self.validate_exception(x, name) for x in self.exceptions(it, name)]
            for key, mode in ov.items():
                if mode == "append":
                    self.append_key(prev, key, d[key], exceptions, it)
            for key, mode in ov.items():
                if mode == "replace":
                    self.replace_key(prev, key, d[key], exceptions, it)
            return
        if legacy_append:
            self.warn("LOAD_DEPRECATED_ITEM", "The 'append' key is deprecated. Add an 'append' entry (e.g. "
                      "'condition: append') under 'override' instead.", it.key_lines.get("append"), "rule", name)
            if prev is None:
                self.fail("LOAD_ERR_VALIDATE", "Rule uses 'append' or 'override.<key>: append' but no rule by that "
                          "name already exists", it.line, "rule", name)
            if "condition" not in d and "exceptions" not in d:
                self.fail("LOAD_ERR_VALIDATE", "Appended rule must have exceptions or condition property", it.line,
                          "rule", name)
            exceptions = [self.validate_exception_for_append(x, prev) for x in self.exceptions(it, name)]
            if "condition" in d:
                self.append_key(prev, "condition", d["condition"], exceptions, it)
            if exceptions:
                self.append_key(prev, "exceptions", None, exceptions, it)
            return
        full = any(k in d for k in ("condition", "output", "desc", "priority"))
        if not full and "enabled" in d:
            self.warn("LOAD_DEPRECATED_ITEM", "The standalone 'enabled' key usage is deprecated. The correct approach "
                      "requires also a 'replace' entry under the 'override' key (i.e. 'enabled: replace').",
                      it.key_lines.get("enabled"), "rule", name)
            if prev is None:
                self.fail("LOAD_ERR_VALIDATE", "Rule has 'enabled' key but no rule by that name already exists",
                          it.line, "rule", name)
            prev.enabled = self.bool_key(it, "enabled", name)
            return
        for key in ("condition", "output", "desc", "priority"):
            if key not in d:
                self.fail("LOAD_ERR_YAML_VALIDATE", f"Item has no mapping for key '{key}'", it.line, "rule", name)
        cond = self.need_str(it, "condition", "rule", name)
        output = d["output"]
        desc = d["desc"]
        if not isinstance(output, str) or not isinstance(desc, str):
            self.fail("LOAD_ERR_YAML_VALIDATE", "Values of 'output' and 'desc' must be strings", it.line, "rule",
                      name)
        prio = parse_priority(d["priority"])
        if prio is None:
            self.fail("LOAD_ERR_VALIDATE", "Invalid priority", it.key_lines.get("priority", it.line), "rule", name)
        tags = self.tags(it, name)
        exceptions = [self.validate_exception(x, name) for x in self.exceptions(it, name)]
        loc = self.loc(it.line, "rule", name)
        rd = RuleDef(
            name=name, condition=cond, output=output.strip(), desc=desc, priority=prio, source=source,
            enabled=self.bool_key(it, "enabled", name, True), tags=tags, exceptions=exceptions,
            warn_evttypes=self.bool_key(it, "warn_evttypes", name, True),
            skip_if_unknown_filter=self.bool_key(it, "skip-if-unknown-filter", name, False),
            capture=self.bool_key(it, "capture", name, False), capture_duration=self.int_key(it, "capture_duration",
                                                                                              name, 0),
            index=prev.index if prev is not None else self.c.next(), loc=loc,
            cond_line=it.key_lines.get("condition"), output_line=it.key_lines.get("output"))
        if prev is not None and prev.source != source:
            self.fail("LOAD_ERR_VALIDATE", "Rule has been re-defined with a different source", it.line, "rule", name)
        self.c.rules[name] = rd

    def validate_exception_for_append(self, ex: ExceptionDef, prev: RuleDef) -> ExceptionDef:
        existing = {x.name for x in prev.exceptions}
        if ex.name in existing:
            return ex
        return self.validate_exception(ex, prev.name)

    def tags(self, it: YItem, name: str) -> list[str]:
        t = it.data.get("tags")
        if t is None:
            return []
        if not isinstance(t, list) or any(isinstance(x, list | dict) for x in t):
            self.fail("LOAD_ERR_YAML_VALIDATE", "Value of 'tags' must be a sequence of strings",
                      it.key_lines.get("tags", it.line), "rule", name)
        out: list[str] = []
        for x in t:
            if x is not None and str(x) not in out:
                out.append(str(x))
        return out

    def bool_key(self, it: YItem, key: str, name: str, default: bool = False) -> bool:
        if key not in it.data:
            return default
        b = as_bool(it.data[key])
        if b is None:
            self.fail("LOAD_ERR_YAML_VALIDATE", f"Value of '{key}' must be a boolean", it.key_lines.get(key, it.line),
                      "rule", name)
        return b

    def int_key(self, it: YItem, key: str, name: str, default: int = 0) -> int:
        if key not in it.data:
            return default
        try:
            return int(str(it.data[key]))
        except ValueError:
            self.fail("LOAD_ERR_YAML_VALIDATE", f"Value of '{key}' must be an integer",
                      it.key_lines.get(key, it.line), "rule", name)
        return default

    def append_key(self, prev: RuleDef, key: str, value: Any, exceptions: list[ExceptionDef], it: YItem) -> None:
        name = prev.name
        if key in ("condition", "output", "desc"):
            if not isinstance(value, str):
                self.fail("LOAD_ERR_YAML_VALIDATE", f"Value of '{key}' must be a string", it.line, "rule", name)
            if key == "condition":
                prev.condition = prev.condition + " " + value
                prev.cond_line = it.key_lines.get("condition", prev.cond_line)
            elif key == "output":
                prev.output = (prev.output + " " + value).strip()
            else:
                prev.desc = prev.desc + " " + value
        elif key == "tags":
            for t in self.tags(it, name):
                if t not in prev.tags:
                    prev.tags.append(t)
        elif key == "exceptions":
            by_name = {x.name: x for x in prev.exceptions}
            for x in exceptions:
                old = by_name.get(x.name)
                if old is None:
                    if x.fields is None:
                        self.fail("LOAD_ERR_VALIDATE", f"Exception '{x.name}' must have fields", x.line, "exception",
                                  x.name)
                    prev.exceptions.append(x)
                    by_name[x.name] = x
                    continue
                raw = next((e for e in (it.data.get("exceptions") or []) if isinstance(e, dict)
                            and e.get("name") == x.name), {})
                if "fields" in raw or "comps" in raw:
                    self.fail("LOAD_ERR_VALIDATE", "Can not append exception fields to existing exception, only "
                              "values", x.line, "exception", x.name)
                if isinstance(old.fields, list):
                    for tup in x.values:
                        if not isinstance(tup, list) or len(tup) != len(old.fields):
                            self.fail("LOAD_ERR_VALIDATE", f"Exception item '{x.name}': fields and values lists "
                                      "must have equal length", x.line, "exception", x.name)
                old.values = list(old.values) + list(x.values)

    def replace_key(self, prev: RuleDef, key: str, value: Any, exceptions: list[ExceptionDef], it: YItem) -> None:
        name = prev.name
        if key in ("condition", "output", "desc"):
            if not isinstance(value, str):
                self.fail("LOAD_ERR_YAML_VALIDATE", f"Value of '{key}' must be a string", it.line, "rule", name)
            if key == "condition":
                prev.condition, prev.cond_line = value, it.key_lines.get("condition")
            elif key == "output":
                prev.output, prev.output_line = value.strip(), it.key_lines.get("output")
            else:
                prev.desc = value
        elif key == "priority":
            p = parse_priority(value)
            if p is None:
                self.fail("LOAD_ERR_VALIDATE", "Invalid priority", it.key_lines.get("priority"), "rule", name)
            prev.priority = p
        elif key == "tags":
            prev.tags = self.tags(it, name)
        elif key == "exceptions":
            prev.exceptions = exceptions
        elif key in ("enabled", "warn_evttypes", "skip-if-unknown-filter", "capture"):
            setattr(prev, key.replace("-", "_"), self.bool_key(it, key, name))
        elif key == "capture_duration":
            prev.capture_duration = self.int_key(it, key, name)


# -- compiling the collector -----------------------------------------------------------------------
class _MacroState:
    def __init__(self, d: MacroDef):
        self.d = d
        self.text: str | None = None
        self.ast: Node | None = None
        self.resolved: Node | None = None
        self.error = False
        self.used = False
        self.refs: set[str] = set()


def _expand(node: Node, lookup_macro, stack: list[str]) -> Node:
    if isinstance(node, MacroRef):
        return lookup_macro(node.name, stack)
    if isinstance(node, And):
        return And([_expand(c, lookup_macro, stack) for c in node.children], node.pos)
    if isinstance(node, Or):
        return Or([_expand(c, lookup_macro, stack) for c in node.children], node.pos)
    if isinstance(node, Not):
        return Not(_expand(node.child, lookup_macro, stack), node.pos)
    return node


class _MacroError(Exception):
    def __init__(self, msg: str, cascade: bool = False):
        self.msg = msg
        self.cascade = cascade  # caused by an earlier, already reported error
        super().__init__(msg)


def compile_collector(coll: Collector, result: LoadResult, *, final: bool, options: dict) -> Ruleset | None:
    n_err = len(result.errors)
    warnings_start = len(result.warnings)
    lists = sorted(coll.lists.values(), key=lambda x: x.index)
    list_used: dict[str, bool] = {ld.name: False for ld in lists}
    by_name = {ld.name: ld for ld in lists}
    expanded: dict[str, list[str]] = {}
    for ld in lists:
        items: list[str] = []
        for item in ld.items:
            ref = by_name.get(item)
            if ref is not None and ref.index < ld.index:
                items.extend(ref.items)
                list_used[ref.name] = True
            else:
                items.append(item)
        expanded[ld.name] = items

    def subst(text: str) -> str:
        for ld in lists:
            if ld.name in text:
                text, used = substitute_list(text, ld.name, expanded[ld.name])
                if used:
                    list_used[ld.name] = True
        return text

    # macros: parse, then resolve with visibility
    states = {name: _MacroState(d) for name, d in coll.macros.items()}
    for st in sorted(states.values(), key=lambda s: s.d.index):
        st.text = subst(st.d.condition)
        try:
            st.ast = parse(st.text)
        except ConditionSyntaxError as exc:
            st.error = True
            result.error("LOAD_ERR_COMPILE_CONDITION", f"{exc.msg} (at position {exc.pos} of the macro condition)",
                         Location(st.d.loc.file, st.d.cond_line or st.d.loc.line, None, "macro", st.d.name),
                         snippet=st.text)

    def resolve_macro(st: _MacroState, stack: list[str]) -> Node:
        if st.resolved is not None:
            return st.resolved
        if st.d.name in stack:
            raise _MacroError(f"reference loop in macro '{st.d.name}'")
        stack = [*stack, st.d.name]

        def lookup_in_macro(name: str, stk: list[str]) -> Node:
            ref = states.get(name)
            if ref is not None and ref.error:
                raise _MacroError(f"macro '{name}' has errors", cascade=True)
            if ref is None:
                raise _MacroError(f"Undefined macro '{name}' used in filter.")
            if ref is st or name in stk:
                raise _MacroError(f"reference loop in macro '{name}'")
            if ref.d.visibility >= st.d.visibility:
                raise _MacroError(f"Undefined macro '{name}' used in filter.")
            st.refs.add(name)
            return resolve_macro(ref, stk)

        st.resolved = _expand(st.ast, lookup_in_macro, stack)
        return st.resolved

    for st in sorted(states.values(), key=lambda s: s.d.index):
        if st.error or st.ast is None:
            continue
        try:
            resolve_macro(st, [])
        except _MacroError as exc:
            st.error = True
            if not exc.cascade:
                result.error("LOAD_ERR_VALIDATE", exc.msg,
                             Location(st.d.loc.file, st.d.cond_line or st.d.loc.line, None, "macro", st.d.name))
    for st in states.values():
        if st.resolved is not None and not st.error:
            try:
                CodeGen().expr(st.resolved)
            except CompileError as exc:
                st.error = True
                result.error("LOAD_ERR_COMPILE_CONDITION", str(exc),
                             Location(st.d.loc.file, st.d.cond_line or st.d.loc.line, None, "macro", st.d.name))

    def mark_used(name: str) -> None:
        st = states.get(name)
        if st is None or st.used:
            return
        st.used = True
        for r in st.refs:
            mark_used(r)

    # rules
    compiled: list[Rule] = []
    for rd in sorted(coll.rules.values(), key=lambda r: r.index):
        rule = _compile_rule(rd, subst, states, mark_used, result, final=final, options=options)
        if rule is not None:
            compiled.append(rule)

    for st in states.values():
        if not st.used:
            result.warn("LOAD_UNUSED_MACRO", "Macro not referred to by any other rule/macro",
                        Location(st.d.loc.file, st.d.loc.line, None, "macro", st.d.name))
    for ld in lists:
        if not list_used[ld.name]:
            result.warn("LOAD_UNUSED_LIST", "List not referred to by any other rule/macro",
                        Location(ld.loc.file, ld.loc.line, None, "list", ld.name))
    if not final:
        # only the final pass's warnings are kept, so warnings are not repeated per file
        del result.warnings[warnings_start:]
    if len(result.errors) > n_err or not final:
        return None
    macros = [MacroInfo(st.d.name, st.d.condition, st.resolved.to_string() if st.resolved else "", st.d.loc.file,
                        st.d.loc.line, st.used) for st in sorted(states.values(), key=lambda s: s.d.index)]
    linfo = [ListInfo(ld.name, expanded[ld.name], ld.loc.file, ld.loc.line, list_used[ld.name]) for ld in lists]
    ev = coll.engine_version
    return Ruleset(compiled, macros, linfo, warnings=result.warnings, files=result.files,
                   min_priority=options.get("min_priority", 7), hostname=options.get("hostname"),
                   iso8601=options.get("iso8601", False),
                   required_engine_version=_fmt_ver(ev) if ev else None)


def _compile_rule(rd: RuleDef, subst, states, mark_used, result: LoadResult, *, final: bool,
                  options: dict) -> Rule | None:
    loc = Location(rd.loc.file, rd.cond_line or rd.loc.line, None, "rule", rd.name)
    exc_conds = []
    for ex in rd.exceptions:
        c = exception_condition(ex.fields, ex.comps if ex.comps is not None else
                                (["="] * len(ex.fields) if isinstance(ex.fields, list) else "in"), ex.values)
        if c is not None:
            exc_conds.append(c)
    text = subst(apply_exceptions(rd.condition, exc_conds))
    used_macros: list[str] = []

    def lookup_rule_macro(name: str, stack: list[str]) -> Node:
        st = states.get(name)
        if st is not None and st.error:
            raise _MacroError(f"macro '{name}' has errors", cascade=True)
        if st is None or st.resolved is None:
            raise _MacroError(f"Undefined macro '{name}' used in filter.")
        used_macros.append(name)
        return st.resolved

    def unknown_or_error(code: str, exc: Exception, at: Location) -> None:
        if rd.skip_if_unknown_filter and isinstance(exc, CompileError) and exc.unknown:
            result.warn("LOAD_UNKNOWN_FILTER", str(exc), at)
        else:
            result.error(code, str(exc) if not isinstance(exc, ConditionSyntaxError) else
                         f"{exc.msg} (at position {exc.pos} of the rule condition)", at,
                         snippet=text if isinstance(exc, ConditionSyntaxError) else None)

    try:
        ast = parse(text)
    except ConditionSyntaxError as exc:
        unknown_or_error("LOAD_ERR_COMPILE_CONDITION", exc, loc)
        return None
    try:
        ast = _expand(ast, lookup_rule_macro, [])
    except _MacroError as exc:
        if not exc.cascade:
            result.error("LOAD_ERR_VALIDATE", exc.msg, loc)
        return None
    try:
        if final:
            cc = compile_condition(ast, rd.name)
            fn, code, deprecated = cc.fn, cc.source, cc.deprecated
        else:
            gen = CodeGen()
            gen.expr(ast)
            fn, code, deprecated = None, "", gen.deprecated
    except CompileError as exc:
        unknown_or_error("LOAD_ERR_COMPILE_CONDITION", exc, loc)
        return None
    out_text = rd.output
    if options.get("suggested_output", True):
        out_text = (out_text + " " + SUGGESTED_OUTPUT).strip()
    out_loc = Location(rd.loc.file, rd.output_line or rd.loc.line, None, "rule output", rd.name)
    try:
        fmt = OutputFormat(out_text)
    except CompileError as exc:
        unknown_or_error("LOAD_ERR_COMPILE_OUTPUT", exc, out_loc)
        return None
    for name in used_macros:
        mark_used(name)
    for w in fmt.warnings:
        result.warn("LOAD_DEPRECATED_ITEM", w, out_loc)
    for f in sorted(set(deprecated)):
        result.warn("LOAD_DEPRECATED_ITEM", f"The field {f} is deprecated: since Falco 0.42 only exit events "
                    "are evaluated", loc)
    types = evttypes(ast)
    if rd.warn_evttypes and types and len(types) > NO_EVTTYPE_LIMIT:
        result.warn("LOAD_NO_EVTTYPE", "Rule matches too many evt.type values. This has a significant "
                    "performance penalty.", loc)
    return Rule(name=rd.name, desc=rd.desc, condition=rd.condition, compiled_condition=ast.to_string(),
                output=rd.output, priority=rd.priority, source=rd.source, enabled=rd.enabled, tags=list(rd.tags),
                index=rd.index, file=rd.loc.file, line=rd.loc.line, evttypes=types, fn=fn, formatter=fmt,
                exceptions=[x.name for x in rd.exceptions], warn_evttypes=rd.warn_evttypes, capture=rd.capture,
                capture_duration=rd.capture_duration, code=code, ast=ast if final else None)


def _check_plugins(coll: Collector, result: LoadResult) -> None:
    for group, loc in coll.plugin_reqs:
        ok = False
        for name, ver in group:
            have = PROVIDED_PLUGINS.get(name)
            if have is not None and have[0] == ver[0] and have >= ver:
                ok = True
                break
        if not ok:
            alts = " or ".join(f"{n} >= {_fmt_ver(v)}" for n, v in group)
            result.warn("LOAD_WARNING_EXTENSION", f"Plugin requirement not satisfied: {alts}. Tracehound provides "
                        "only the fields of: " + ", ".join(f"{n} {_fmt_ver(v)}" for n, v in PROVIDED_PLUGINS.items()),
                        loc)


# -- public entry points ---------------------------------------------------------------------------
Source = str | os.PathLike | tuple[str, str]


def expand_paths(paths: Iterable[str | os.PathLike]) -> list[str]:
    """Files in order; a directory contributes its regular *.yaml/*.yml files, sorted."""
    out: list[str] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for child in sorted(p.iterdir(), key=lambda c: c.name):
                if child.is_file() and child.suffix in (".yaml", ".yml"):
                    out.append(str(child))
        else:
            out.append(str(p))
    return out


def load_result(sources: Iterable[Source] | Source, *, min_priority: str | int = "debug",
                hostname: str | None = None, iso8601: bool = False, suggested_output: bool = True) -> LoadResult:
    """Load rules files (paths, directories or (name, text) pairs) and never raise for user errors."""
    if isinstance(sources, str | os.PathLike) or (isinstance(sources, tuple) and len(sources) == 2
                                                  and all(isinstance(s, str) for s in sources)
                                                  and "\n" in sources[1]):
        sources = [sources]
    result = LoadResult()
    if isinstance(min_priority, str):
        mp = parse_priority(min_priority)
        if mp is None:
            raise ValueError(f"invalid priority {min_priority!r}")
    else:
        mp = int(min_priority)
    options = {"min_priority": mp, "hostname": hostname, "iso8601": iso8601, "suggested_output": suggested_output}
    entries: list[tuple[str, str | None]] = []
    for s in sources:
        if isinstance(s, tuple):
            entries.append((s[0], s[1]))
        else:
            entries.extend((f, None) for f in expand_paths([s]))
    coll = Collector()
    if not entries:
        result.error("LOAD_ERR_FILE_READ", "no rules files given", Location("<none>"))
        return result
    for i, (name, text) in enumerate(entries):
        result.files.append(name)
        if text is None:
            try:
                text = Path(name).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                result.error("LOAD_ERR_FILE_READ", f"Could not read file: {exc}", Location(name))
                return result
        final = i == len(entries) - 1
        try:
            if not FileReader(coll, result, name).read(text):
                return result
            rs = compile_collector(coll, result, final=final, options=options)
        except RecursionError:
            result.error("LOAD_ERR_COMPILE_CONDITION", "condition nested too deeply", Location(name))
            return result
        except Exception as exc:  # a bug of ours must still give the user a file name, not a traceback
            result.error("LOAD_ERR_VALIDATE", f"internal error while loading this file: {exc!r}", Location(name))
            return result
        if result.errors:
            return result
        if final:
            _check_plugins(coll, result)
            rs.warnings = list(result.warnings)
            result.ruleset = rs
    return result


def load(sources: Iterable[Source] | Source, *, min_priority: str | int = "debug", hostname: str | None = None,
         iso8601: bool = False, suggested_output: bool = True) -> Ruleset:
    """Load and compile rules; raise RuleLoadError (with every message) if anything failed."""
    res = load_result(sources, min_priority=min_priority, hostname=hostname, iso8601=iso8601,
                      suggested_output=suggested_output)
    if res.errors or res.ruleset is None:
        raise RuleLoadError(res)
    return res.ruleset


def loads(text: str, name: str = "<string>", **kwargs) -> Ruleset:
    """Load rules from a string (tests, embedded rules)."""
    return load([(name, text)], **kwargs)


def bundled_rules_path() -> Path:
    """The default ruleset: tracehound/_bundled_rules in a wheel, the repository's rules/ otherwise."""
    from importlib import resources

    try:
        res = resources.files("tracehound").joinpath("_bundled_rules")
        if res.is_dir():
            return Path(str(res))
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        pass
    return Path(__file__).resolve().parents[3] / "rules"


_ = UNIVERSE  # re-exported for callers that compare evt.type sets
