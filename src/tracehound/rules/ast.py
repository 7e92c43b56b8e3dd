"""The condition AST.

The parser produces these nodes without knowing which fields exist; the compiler resolves field
names against the registry. `to_string()` prints a node the way libsinsp's string visitor does
(`(a and b)`, `not x`, `f op v`, lists as `(a, b)`), which is what Falco reports as a rule's
compiled condition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TRANSFORMERS = ("tolower", "toupper", "b64", "basename", "len", "join", "concat", "getopt")


@dataclass(slots=True)
class FieldRef:
    name: str  # as written, e.g. "proc.aname" or "evt.arg.flags"
    arg: str | None = None  # the [arg], if any
    pos: int = 0

    def to_string(self) -> str:
        return self.name if self.arg is None else f"{self.name}[{self.arg}]"


@dataclass(slots=True)
class Transform:
    """`tolower(proc.name)`, `join(",", fd.types)`, `getopt("a:b", proc.args)[a]`."""

    name: str
    args: list  # FieldRef | Transform | Literal | ListLiteral
    index: str | None = None
    pos: int = 0

    def to_string(self) -> str:
        inner = ", ".join(a.to_string() for a in self.args)
        s = f"{self.name}({inner})"
        return s if self.index is None else f"{s}[{self.index}]"


@dataclass(slots=True)
class ValRef:
    """`val(field)`: the right-hand side is another field of the same event."""

    field: FieldRef
    pos: int = 0

    def to_string(self) -> str:
        return f"val({self.field.to_string()})"


@dataclass(slots=True)
class Literal:
    value: str
    quoted: bool = False
    pos: int = 0

    def to_string(self) -> str:
        return quote_value(self.value)


@dataclass(slots=True)
class ListLiteral:
    values: list[str]
    pos: int = 0

    def to_string(self) -> str:
        return "(" + ", ".join(quote_value(v) for v in self.values) + ")"


@dataclass(slots=True)
class Check:
    """`lhs op rhs`; rhs is None for `exists`. `mod` is oneof/anyof/allof (Falco 0.44)."""

    lhs: FieldRef | Transform
    op: str
    rhs: Literal | ListLiteral | ValRef | Transform | None = None
    mod: str | None = None
    pos: int = 0

    def to_string(self) -> str:
        if self.op == "exists":
            return f"{self.lhs.to_string()} exists"
        op = self.op if self.mod is None else f"{self.op} {self.mod}"
        return f"{self.lhs.to_string()} {op} {self.rhs.to_string()}"


@dataclass(slots=True)
class MacroRef:
    name: str
    pos: int = 0

    def to_string(self) -> str:
        return self.name


@dataclass(slots=True)
class Not:
    child: Node
    pos: int = 0

    def to_string(self) -> str:
        return "not " + self.child.to_string()


@dataclass(slots=True)
class And:
    children: list[Node] = field(default_factory=list)
    pos: int = 0

    def to_string(self) -> str:
        return "(" + " and ".join(c.to_string() for c in self.children) + ")"


@dataclass(slots=True)
class Or:
    children: list[Node] = field(default_factory=list)
    pos: int = 0

    def to_string(self) -> str:
        return "(" + " or ".join(c.to_string() for c in self.children) + ")"


Node = And | Or | Not | Check | MacroRef

_BARE_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/*.:-+_!?[]{}<>@#$%^&|~;`\\")


def quote_value(v: str) -> str:
    """Print a string value, quoting only when the bare form would not read back the same."""
    if v and all(c in _BARE_SAFE for c in v) and "\\" not in v:
        return v
    out = ['"']
    for c in v:
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif c == "\b":
            out.append("\\b")
        elif c == "\f":
            out.append("\\f")
        elif ord(c) < 0x20:
            out.append(f"\\x{ord(c):02x}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def walk(node: Node):
    """Every node of a condition tree, depth first."""
    yield node
    if isinstance(node, And | Or):
        for c in node.children:
            yield from walk(c)
    elif isinstance(node, Not):
        yield from walk(node.child)


def field_refs(node) -> list[FieldRef]:
    """All field references under a condition node or operand, in order."""
    out: list[FieldRef] = []

    def operand(o) -> None:
        if isinstance(o, FieldRef):
            out.append(o)
        elif isinstance(o, Transform):
            for a in o.args:
                operand(a)
        elif isinstance(o, ValRef):
            out.append(o.field)

    for n in walk(node):
        if isinstance(n, Check):
            operand(n.lhs)
            operand(n.rhs)
    return out
