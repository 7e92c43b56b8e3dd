"""Textual list substitution and exception rewriting, as Falco does them on condition strings.

Lists are not AST nodes in Falco: before a condition is parsed, every occurrence of a list name
that stands alone (bounded by the string's ends or by one of ` \\t\\n\\r(),=`) is replaced by the
list's items joined with ", ". We do the same so that quirks users rely on keep working
(`proc.name in (shell_binaries, python)`, `proc.name= one_item_list`).
"""

from __future__ import annotations

_BLANKS = " \t\n\r"
_DELIMS = _BLANKS + "(),="
LIST_OPS_FOR_EXCEPTIONS = ("in", "intersects", "pmatch")


def quote_item(item: str) -> str:
    """Items with a space get double quotes unless they are already quoted."""
    if (" " in item) and not (len(item) >= 2 and item[0] == item[-1] and item[0] in "\"'"):
        return '"' + item + '"'
    return item


def substitute_list(cond: str, name: str, items: list[str]) -> tuple[str, bool]:
    """Replace standalone occurrences of `name` in `cond` by the items; returns (text, used)."""
    used = False
    sub = ", ".join(quote_item(i) for i in items)
    start = cond.find(name)
    while start != -1:
        end = start + len(name)
        if (start == 0 or cond[start - 1] in _DELIMS) and (end >= len(cond) or cond[end] in _DELIMS):
            used = True
            # swallow the blanks around the name
            while start > 0 and cond[start - 1] in _BLANKS:
                start -= 1
            while end < len(cond) and cond[end] in _BLANKS:
                end += 1
            if not sub:
                # an empty list also takes one neighbouring comma with it
                if start > 0 and cond[start - 1] == ",":
                    start -= 1
                elif end < len(cond) and cond[end] == ",":
                    end += 1
            head = cond[:start] + " " if start > 0 else ""
            cond = head + sub + " " + cond[end:]
            start = len(head) + len(sub) + 1
            start = cond.find(name, start)
        else:
            start = cond.find(name, start + 1)
    return cond, used


def paren_item(item: str) -> str:
    return item if item.startswith("(") else "(" + item + ")"


def _value_text(value, comp: str) -> str:
    if isinstance(value, list):
        return "(" + ", ".join(quote_item(str(v)) for v in value) + ")"
    text = str(value)
    base = comp.split()[0] if comp else comp
    if base in LIST_OPS_FOR_EXCEPTIONS or comp.endswith(("oneof", "anyof", "allof")):
        return paren_item(text)
    return quote_item(text)


def exception_condition(fields, comps, values) -> str | None:
    """One exception as a condition string, or None when it has no values (it adds nothing)."""
    if not values:
        return None
    if isinstance(fields, list):
        alts = []
        for tup in values:
            parts = [f"{f} {c} {_value_text(v, c)}" for f, c, v in zip(fields, comps, tup, strict=True)]
            alts.append("(" + " and ".join(parts) + ")")
        return "(" + " or ".join(alts) + ")"
    comp = comps if isinstance(comps, str) else "in"
    items = ", ".join(quote_item(str(v)) for v in values)
    return f"({fields} {comp} ({items}))"


def apply_exceptions(condition: str, exception_conds: list[str]) -> str:
    """`(<cond>) and not <exc1> and not <exc2> ...`."""
    if not exception_conds:
        return condition
    return "(" + condition + ")" + "".join(f" and not {c}" for c in exception_conds)
