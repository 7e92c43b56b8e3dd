"""A compiled ruleset: rules in evaluation order, an evt.type dispatch index, and `match()`."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from tracehound.events import Event

from .alert import PACKAGEHUNTER_FIELDS, Alert, priority_name
from .compiler import UNIVERSE
from .fields import fmt_iso8601, fmt_time, lookup
from .output import OutputFormat, to_text


@dataclass
class Rule:
    name: str
    desc: str
    condition: str  # as written (after appends/overrides)
    compiled_condition: str  # the expanded condition, printed like libsinsp
    output: str
    priority: int
    source: str
    enabled: bool
    tags: list[str]
    index: int
    file: str
    line: int | None
    evttypes: frozenset[str]
    fn: Callable[[Event], bool] = field(repr=False)
    formatter: OutputFormat = field(repr=False)
    exceptions: list[str] = field(default_factory=list)
    warn_evttypes: bool = True
    capture: bool = False
    capture_duration: int = 0
    code: str = field(default="", repr=False)
    ast: object = field(default=None, repr=False)  # expanded condition (for the dispatch functions)

    @property
    def priority_name(self) -> str:
        return priority_name(self.priority)

    @property
    def restricted(self) -> bool:
        return self.evttypes != UNIVERSE


@dataclass
class MacroInfo:
    name: str
    condition: str
    compiled_condition: str
    file: str
    line: int | None
    used: bool


@dataclass
class ListInfo:
    name: str
    items: list[str]
    file: str
    line: int | None
    used: bool


class Ruleset:
    """What `load()` returns. Match events with `match()`; ask `evttypes()` what to capture."""

    def __init__(self, rules: list[Rule], macros: list[MacroInfo], lists: list[ListInfo], *, warnings=(),
                 files: Iterable[str] = (), min_priority: int = 7, hostname: str | None = None,
                 iso8601: bool = False, required_engine_version: str | None = None):
        self.rules = rules
        self.macros = macros
        self.lists = lists
        self.warnings = list(warnings)
        self.files = list(files)
        self.min_priority = min_priority
        self.hostname = hostname or os.environ.get("FALCO_HOSTNAME") or socket.gethostname()
        self.iso8601 = iso8601
        self.required_engine_version = required_engine_version
        self.eval_errors = 0
        self._ph = [lookup(k) for k in PACKAGEHUNTER_FIELDS if k != "evt.time"]
        self._build_index()

    # -- selection ------------------------------------------------------------------------------
    def _active(self, r: Rule) -> bool:
        return r.enabled and r.priority <= self.min_priority

    def enabled_rules(self) -> list[Rule]:
        return [r for r in self.rules if self._active(r)]

    def rule(self, name: str) -> Rule | None:
        for r in self.rules:
            if r.name == name:
                return r
        return None

    def set_enabled(self, name: str, enabled: bool) -> None:
        r = self.rule(name)
        if r is None:
            raise KeyError(name)
        r.enabled = enabled
        self._build_index()

    def _build_index(self) -> None:
        """One generated function per event type over the rules that can match it.

        Inside a function `evt.type` checks are constant-folded and sub-conditions shared by
        several rules (macros such as open_read) are evaluated at most once per event.
        """
        from .compiler import compile_dispatch

        active = self.enabled_rules()
        self._active_rules = active
        unrestricted = [(i, r) for i, r in enumerate(active) if not r.restricted]
        types: set[str] = set()
        for r in active:
            if r.restricted:
                types |= r.evttypes
        cache: dict[tuple[int, ...], object] = {}
        by_type: dict[str, object] = {}
        for t in sorted(types):
            members = tuple(i for i, r in enumerate(active) if not r.restricted or t in r.evttypes)
            by_type[t] = self._dispatch_for(members, t, active, cache, compile_dispatch)
        self._by_type = by_type
        self._any_members = tuple(i for i, _ in unrestricted)
        self._any = self._dispatch_for(self._any_members, None, active, cache, compile_dispatch)

    @staticmethod
    def _dispatch_for(members, t, active, cache, compile_dispatch):
        if not members:
            return None
        if any(active[i].ast is None for i in members):
            fns = tuple((i, active[i].fn) for i in members)

            def slow(e, fns=fns):
                hits = [i for i, fn in fns if fn(e)]
                return hits or None

            return slow
        fn = compile_dispatch([(i, active[i].ast) for i in members], t)
        return fn

    def evttypes(self) -> list[str]:
        """Event types the enabled rules can match (what capture must record)."""
        out: set[str] = set()
        for r in self.enabled_rules():
            out |= r.evttypes
        return sorted(out)

    # -- matching -------------------------------------------------------------------------------
    def match(self, e: Event) -> list[Alert]:
        """Every enabled rule that matches the event, in rule order (rule_matching: all)."""
        fn = self._by_type.get(e.type, self._any)
        if fn is None:
            return []
        try:
            hits = fn(e)
        except Exception:  # a malformed event must not take the engine down: retry rule by rule
            hits = self._match_slow(e)
        if not hits:
            return []
        active = self._active_rules
        return [self.make_alert(active[i], e) for i in hits]

    def _match_slow(self, e: Event) -> list[int]:
        hits = []
        for i, r in enumerate(self._active_rules):
            if r.restricted and e.type not in r.evttypes:
                continue
            try:
                if r.fn(e):
                    hits.append(i)
            except Exception:
                self.eval_errors += 1
        return hits

    def make_alert(self, r: Rule, e: Event) -> Alert:
        message, fields = r.formatter.render(e)
        if self.iso8601:
            prefix_key, prefix = "evt.time.iso8601", fmt_iso8601(e.ts)
        else:
            prefix_key, prefix = "evt.time", fmt_time(e.ts)
        fields[prefix_key] = e.ts
        ph = {}
        for x in self._ph:
            if x.key not in fields:
                try:
                    ph[x.key] = to_text(x, x.fn(e))
                except Exception:
                    ph[x.key] = "<NA>"
        return Alert(
            rule=r.name,
            priority=r.priority,
            source=r.source,
            tags=list(r.tags),
            time_ns=e.ts,
            hostname=self.hostname,
            output=f"{prefix}: {r.priority_name} {message}",
            message=message,
            output_fields=fields,
            package=e.pkg,
            phase=e.phase,
            event=e,
            packagehunter_fields=ph,
        )

    def summary(self) -> dict:
        return {
            "rules_loaded": len(self.rules),
            "rules_disabled": sum(1 for r in self.rules if not self._active(r)),
            "macros": len(self.macros),
            "lists": len(self.lists),
            "evttypes": self.evttypes(),
        }
