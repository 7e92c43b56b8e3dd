"""Falco output format strings: `%field`, `%field[arg]`, `%Nfield`, `%transformer(...)`.

Field names are parsed greedily and then backtracked: the longest prefix that resolves to a field
wins, so `%proc.name)` and `%fd.name,` work. A missing value renders as `<NA>`; `%container.info`
is deprecated and renders as nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tracehound.events import Event

from . import fields as F
from .errors import CompileError, ConditionSyntaxError

NA = "<NA>"
_NAME_CHARS = re.compile(r"[A-Za-z0-9_.]+")

# fields the container plugin asks Falco to append (suggested_output), in registration order
SUGGESTED_OUTPUT = (
    "container_id=%container.id container_name=%container.name "
    "container_image_repository=%container.image.repository container_image_tag=%container.image.tag "
    "k8s_pod_name=%k8s.pod.name k8s_ns_name=%k8s.ns.name"
)


def to_text(x: F.Extractor, v) -> str:
    if v is None:
        return NA
    if x.render is not None:
        return x.render(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, bytes | bytearray):
        return "".join(chr(b) if 32 <= b < 127 else "." for b in v)
    if isinstance(v, list | tuple):
        return " ".join(str(i) for i in v) if x.multi else ",".join(str(i) for i in v)
    return str(v)


def to_json(x: F.Extractor, v):
    if v is None:
        return None
    if x.json is not None:
        return x.json(v)
    if isinstance(v, bytes | bytearray):
        return bytes(v).decode("utf-8", "replace")
    if isinstance(v, tuple):
        return " ".join(str(i) for i in v) if x.multi == "any" else list(v)
    return v


@dataclass(slots=True)
class _Token:
    extractor: F.Extractor
    width: int | None
    in_fields: bool  # transformed tokens are rendered but left out of output_fields


class OutputFormat:
    """A compiled format string."""

    def __init__(self, fmt: str):
        self.format = fmt
        self.parts: list[str | _Token] = []
        self.warnings: list[str] = []
        self._parse(fmt)

    def _parse(self, fmt: str) -> None:
        from .compiler import CodeGen
        from .parser import Parser

        lit: list[str] = []
        i = 0
        n = len(fmt)
        while i < n:
            c = fmt[i]
            if c != "%":
                lit.append(c)
                i += 1
                continue
            if i == n - 1:
                raise CompileError("invalid formatting syntax: formatting cannot end with a %")
            j = i + 1
            width = None
            m = re.match(r"[0-9]+", fmt[j:])
            if m:
                width = int(m.group(0))
                j += m.end()
            if fmt.startswith("container.info", j) and not _NAME_CHARS.match(fmt, j + 14):
                self.warnings.append("%container.info is deprecated and is replaced by an empty string")
                i = j + 14
                continue
            if lit:
                self.parts.append("".join(lit))
                lit = []
            # a transformer: %tolower(proc.name)
            parser = Parser(fmt)
            parser.i = j
            try:
                tr = parser.try_transformer()
            except ConditionSyntaxError as exc:
                raise CompileError(f"invalid formatting token at position {j}: {exc.msg}") from None
            if tr is not None:
                x = CodeGen().transform(tr)
                self.parts.append(_Token(x, width, False))
                # the raw inner fields are still reported in output_fields
                for a in tr.args:
                    self._inner_fields(a)
                i = parser.i
                continue
            x, i = self._field_at(fmt, j)
            if F.FILTER_ONLY in x.fdef.flags:
                raise CompileError(f"field '{x.key}' can only be used in conditions, not in outputs")
            self.parts.append(_Token(x, width, True))
        if lit:
            self.parts.append("".join(lit))

    def _inner_fields(self, node) -> None:
        from .ast import FieldRef, Transform

        if isinstance(node, FieldRef):
            x = F.lookup(node.name, node.arg)
            self.parts.append(_Token(x, 0, True))  # zero width: reported, not printed
        elif isinstance(node, Transform):
            for a in node.args:
                self._inner_fields(a)

    @staticmethod
    def _field_at(fmt: str, j: int) -> tuple[F.Extractor, int]:
        m = _NAME_CHARS.match(fmt, j)
        if not m:
            raise CompileError(f"invalid formatting token at position {j}: {fmt[j:j + 20]!r}", unknown=True)
        cand = m.group(0)
        for length in range(len(cand), 0, -1):
            name = cand[:length]
            if name.endswith(".") or "." not in name:
                continue
            end = j + length
            arg = None
            if end < len(fmt) and fmt[end] == "[" and length == len(cand):
                close = fmt.find("]", end)
                if close != -1:
                    arg = fmt[end + 1:close].strip("\"'")
                    try:
                        return F.lookup(name, arg), close + 1
                    except CompileError:
                        pass
            try:
                return F.lookup(name, None), end
            except CompileError as exc:
                if not exc.unknown:
                    raise
        raise CompileError(f"unknown filter: {cand}", unknown=True)

    @property
    def tokens(self) -> list[F.Extractor]:
        return [p.extractor for p in self.parts if isinstance(p, _Token) and p.in_fields]

    def render(self, e: Event) -> tuple[str, dict]:
        """(text, output_fields) for one event."""
        out: list[str] = []
        fields: dict = {}
        for p in self.parts:
            if isinstance(p, str):
                out.append(p)
                continue
            x = p.extractor
            try:
                v = x.fn(e)
            except Exception:  # an extractor must never take the engine down
                v = None
            if p.width != 0:
                s = to_text(x, v)
                if p.width:
                    s = s[:p.width].ljust(p.width)
                out.append(s)
            if p.in_fields:
                fields[x.key] = to_json(x, v)
        return "".join(out), fields

    def field_keys(self) -> list[str]:
        return [x.key for x in self.tokens]
