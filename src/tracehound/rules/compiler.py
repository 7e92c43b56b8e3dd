"""AST -> one generated Python function per condition, plus the evt.type set analysis.

Each condition becomes the source of a single `def` whose body is one boolean expression:
short-circuit `and`/`or`, `is not None` guards for values that may be missing (a missing value
makes any comparison false, `!=` included), extractor functions, pre-built frozensets and
compiled regexes bound as globals. Nothing is parsed or looked up per event.
"""

from __future__ import annotations

import base64
import fnmatch
import functools
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from . import fields as F
from .ast import And, Check, FieldRef, ListLiteral, Literal, MacroRef, Node, Not, Or, Transform, ValRef
from .errors import CompileError
from .evttypes import EVENT_NAMES

UNIVERSE: frozenset[str] = EVENT_NAMES
EVTTYPE_FIELDS = ("evt.type", "syscall.type")

STRING_OPS = frozenset({"=", "==", "!=", "<", "<=", ">", ">=", "contains", "icontains", "startswith", "endswith",
                        "glob", "iglob", "regex", "in", "intersects", "pmatch", "exists"})
NUMERIC_OPS = frozenset({"=", "==", "!=", "<", "<=", ">", ">=", "in", "intersects", "exists"})
EQ_OPS = frozenset({"=", "==", "!=", "in", "intersects", "exists"})
BYTEBUF_OPS = frozenset({"=", "==", "!=", "contains", "bcontains", "startswith", "bstartswith", "endswith", "in",
                         "intersects", "exists"})
LIST_FIELD_OPS = frozenset({"in", "intersects", "exists"})
OPS_BY_TYPE = {F.STRING: STRING_OPS, F.BOOL: EQ_OPS, F.IPADDR: EQ_OPS, F.IPNET: EQ_OPS, F.BYTEBUF: BYTEBUF_OPS,
               F.LIST: LIST_FIELD_OPS, F.DYNAMIC: STRING_OPS | NUMERIC_OPS}
for _t in F.NUMERIC_TYPES:
    OPS_BY_TYPE[_t] = NUMERIC_OPS
LIST_VALUE_OPS = frozenset({"in", "intersects", "pmatch"})

# values that are never None, so the generated code can skip the guard
_NONNULL_INLINE = frozenset({"e.type", "e.proc.comm", "e.num", "'<'", "e.ts", "' '.join(e.proc.args)",
                             "e.proc.exe", "e.proc.exepath", "(e.container_id if e.container_id is not None else 'host')"})


# -- helpers bound into generated code ----------------------------------------------------------
@functools.lru_cache(maxsize=8192)
def ip_int(s: str) -> tuple[int, int] | None:
    try:
        a = ipaddress.ip_address(s)
    except ValueError:
        return None
    return a.version, int(a)


def canonical_ip(s: str) -> str:
    return str(ipaddress.ip_address(s))


def make_net_matcher(nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> Callable[[str], bool]:
    spec = [(n.version, int(n.network_address), int(n.netmask)) for n in nets]

    def match(v: str) -> bool:
        a = ip_int(v)
        if a is None:
            return False
        ver, x = a
        return any(ver == nv and (x & mask) == net for nv, net, mask in spec)

    return match


def _component_regex(glob: str) -> str:
    """One path component's glob as a regex that cannot leave the component (`*` stops at `/`)."""
    out, i, n = [], 0, len(glob)
    while i < n:
        c = glob[i]
        i += 1
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = i
            if j < n and glob[j] == "!":
                j += 1
            if j < n and glob[j] == "]":
                j += 1
            while j < n and glob[j] != "]":
                j += 1
            if j >= n:
                out.append("\\[")
            else:
                # fnmatch knows the corner cases of classes (empty or reversed ranges); it never
                # matches "/" inside a component
                cls = fnmatch.translate(glob[i - 1 : j + 1])
                i = j + 1
                out.append("(?!/)" + cls[len("(?s:") : -len(")\\Z")])
        else:
            out.append(re.escape(c))
    return "".join(out)


def make_pmatch(prefixes: list[str]) -> Callable[[str], bool]:
    """`pmatch`: the path equals or lies under one of the prefixes; components may be globs.

    Plain prefixes are a set looked up at each `/` of the value; the glob prefixes are compiled into
    one regex (one match call per value however many there are: `pmatch` over lists of home-dir
    globs runs on every open).
    """
    plain: list[str] = []
    globbed: list[str] = []
    for p in prefixes:
        if any(c in p for c in "*?["):
            comps = [c for c in p.split("/") if c]
            globbed.append("/+".join("(?=[^/])" + _component_regex(c) for c in comps))  # no empty component
        else:
            plain.append(p.rstrip("/") or "/")
    plain_set = frozenset(plain)
    glob_rx = re.compile("/*(?:" + "|".join(globbed) + ")(?:/.*)?", re.S).fullmatch if globbed else None

    def match(v: str) -> bool:
        if "/" in plain_set and v.startswith("/"):
            return True
        if v in plain_set:
            return True
        i = v.find("/", 1)
        while i != -1:
            if v[:i] in plain_set:
                return True
            i = v.find("/", i + 1)
        return glob_rx is not None and glob_rx(v) is not None

    return match


def glob_matcher(pattern: str, icase: bool) -> Callable[[str], bool]:
    rx = re.compile(fnmatch.translate(pattern), re.S | (re.I if icase else 0))
    m = rx.match
    return lambda v: m(v) is not None


def b64decode(v: str) -> str | None:
    try:
        return base64.b64decode(v, validate=False).decode("utf-8", "replace")
    except (ValueError, TypeError):
        return None


def basename(v: str) -> str:
    return v.rsplit("/", 1)[-1]


def getopt_parse(optstring: str, args: str | list[str]) -> dict[str, str]:
    """POSIX short options: returns {opt: value-or-""}; stops at the first non-option."""
    argv = args.split() if isinstance(args, str) else list(args)
    takes = {}
    i = 0
    while i < len(optstring):
        c = optstring[i]
        if c == ":":
            i += 1
            continue
        takes[c] = i + 1 < len(optstring) and optstring[i + 1] == ":"
        i += 1
    out: dict[str, str] = {}
    k = 0
    while k < len(argv):
        a = argv[k]
        if a == "--" or not a.startswith("-") or a == "-":
            break
        j = 1
        while j < len(a):
            c = a[j]
            if c not in takes:
                j += 1
                continue
            if takes[c]:
                if j + 1 < len(a):
                    out[c] = a[j + 1:]
                elif k + 1 < len(argv):
                    k += 1
                    out[c] = argv[k]
                else:
                    out[c] = ""
                break
            out[c] = ""
            j += 1
        k += 1
    return out


# -- compiled condition -------------------------------------------------------------------------
@dataclass
class CompiledCondition:
    fn: Callable
    source: str
    fields: list[str] = field(default_factory=list)
    deprecated: list[str] = field(default_factory=list)


def parse_number(s: str, field_name: str) -> int:
    t = s.strip()
    try:
        if t.lower().startswith(("0x", "-0x", "+0x")):
            return int(t, 16)
        return int(t)
    except ValueError:
        pass
    try:
        f = float(t)
    except ValueError:
        raise CompileError(f"'{s}' is not a valid number for '{field_name}'") from None
    if f != int(f):
        raise CompileError(f"'{s}' is not a valid integer for '{field_name}'")
    return int(f)


class CodeGen:
    def __init__(self) -> None:
        self.ns: dict = {"_ip_int": ip_int}
        self.n = 0
        self.fields: list[str] = []
        self.deprecated: list[str] = []

    def const(self, value, prefix: str = "c") -> str:
        self.n += 1
        name = f"_{prefix}{self.n}"
        self.ns[name] = value
        return name

    # -- operands -------------------------------------------------------------------------------
    def field(self, ref: FieldRef) -> F.Extractor:
        x = F.lookup(ref.name, ref.arg)
        self.fields.append(x.key)
        if F.DEPRECATED in x.fdef.flags:
            self.deprecated.append(x.key)
        return x

    def operand(self, node) -> F.Extractor:
        if isinstance(node, FieldRef):
            return self.field(node)
        if isinstance(node, Transform):
            return self.transform(node)
        raise CompileError("expected a field or a transformer")

    def transform(self, t: Transform) -> F.Extractor:
        name = t.name
        fdef = F.FieldDef(f"{name}()", F.STRING, f"transformer {name}")
        key = t.to_string()

        def inner_of(arg) -> F.Extractor:
            x = self.operand(arg)
            if (F.NO_TRANSFORMER in x.fdef.flags and x.multi == "any") or x.fdef.name == "evt.rawarg" \
                    or x.fdef.name == "evt.around":
                raise CompileError(f"field '{x.key}' does not support transformers")
            if x.multi == "either":
                raise CompileError(f"field '{x.key}' does not support transformers")
            return x

        if name in ("tolower", "toupper", "b64", "basename"):
            if len(t.args) != 1 or isinstance(t.args[0], Literal | ListLiteral):
                raise CompileError(f"transformer '{name}' takes exactly one field argument")
            x = inner_of(t.args[0])
            if x.type != F.STRING:
                raise CompileError(f"transformer '{name}' requires a string field, '{x.key}' is {x.type}")
            op = {"tolower": str.lower, "toupper": str.upper, "b64": b64decode, "basename": basename}[name]
            inner = x.fn
            return F.Extractor(key, F.STRING, lambda e: None if (v := inner(e)) is None else op(v), fdef)
        if name == "len":
            if len(t.args) != 1 or isinstance(t.args[0], Literal | ListLiteral):
                raise CompileError("transformer 'len' takes exactly one field argument")
            x = inner_of(t.args[0])
            if x.type not in (F.STRING, F.LIST, F.BYTEBUF):
                raise CompileError(f"transformer 'len' requires a string, list or buffer field, '{x.key}' is {x.type}")
            inner = x.fn
            return F.Extractor(key, F.UINT64, lambda e: None if (v := inner(e)) is None else len(v), fdef)
        if name == "join":
            if len(t.args) != 2 or not isinstance(t.args[0], Literal):
                raise CompileError('transformer \'join\' takes a separator string and a list field: join(",", f)')
            sep = t.args[0].value
            arg = t.args[1]
            x = self.operand(arg)
            inner = x.fn
            if x.type == F.LIST or x.multi == "any":
                return F.Extractor(key, F.STRING, lambda e: None if (v := inner(e)) is None else sep.join(
                    str(i) for i in v), fdef)
            raise CompileError(f"transformer 'join' requires a list field, '{x.key}' is not a list")
        if name == "concat":
            if len(t.args) < 2:
                raise CompileError("transformer 'concat' takes at least two arguments")
            parts: list[Callable] = []
            for a in t.args:
                if isinstance(a, Literal):
                    parts.append(lambda e, s=a.value: s)
                elif isinstance(a, ListLiteral):
                    raise CompileError("transformer 'concat' does not take lists")
                else:
                    x = inner_of(a)
                    if x.type not in (F.STRING,):
                        raise CompileError(f"transformer 'concat' requires string fields, '{x.key}' is {x.type}")
                    parts.append(x.fn)

            def concat(e, parts=tuple(parts)):
                out = []
                for p in parts:
                    v = p(e)
                    if v is None:
                        return None
                    out.append(v)
                return "".join(out)

            return F.Extractor(key, F.STRING, concat, fdef)
        if name == "getopt":
            if len(t.args) != 2 or not isinstance(t.args[0], Literal):
                raise CompileError('transformer \'getopt\' takes an option string and a field: getopt("ab:", proc.args)')
            optstring = t.args[0].value
            x = inner_of(t.args[1])
            inner = x.fn
            if t.index is not None:
                opt = t.index
                return F.Extractor(key, F.STRING, lambda e: None if (v := inner(e)) is None
                                   else getopt_parse(optstring, v).get(opt), fdef)
            return F.Extractor(key, F.LIST, lambda e: None if (v := inner(e)) is None else [
                k if not val else f"{k}={val}" for k, val in getopt_parse(optstring, v).items()], fdef)
        raise CompileError(f"unknown transformer '{name}'")

    def value_expr(self, x: F.Extractor) -> tuple[str, bool]:
        """(python expression for the value, whether it can be None)."""
        if x.inline is not None:
            return x.inline, x.inline not in _NONNULL_INLINE
        name = self.const(x.fn, "x")
        return f"{name}(e)", True

    # -- RHS conversion -------------------------------------------------------------------------
    def convert(self, x: F.Extractor, raw: str, op: str):
        t = x.type
        if op in ("bcontains", "bstartswith"):
            h = raw.replace(" ", "")
            if len(h) % 2 or any(c not in "0123456789abcdefABCDEF" for c in h):
                raise CompileError("bcontains and bstartswith operator support hex strings only")
            return bytes.fromhex(h)
        if t in F.NUMERIC_TYPES:
            n = parse_number(raw, x.key)
            if t == F.PORT and not 0 <= n <= 65535:
                raise CompileError(f"'{raw}' is not a valid port number")
            return n
        if t == F.BOOL:
            low = raw.lower()
            if low == "true":
                return True
            if low == "false":
                return False
            raise CompileError(f"'{raw}' is not a valid bool for '{x.key}' (use true or false)")
        if t == F.IPADDR:
            try:
                return canonical_ip(raw)
            except ValueError:
                raise CompileError(f"'{raw}' is not a valid IP address for '{x.key}'") from None
        if t == F.IPNET:
            try:
                return ipaddress.ip_network(raw, strict=False)
            except ValueError:
                raise CompileError(f"'{raw}' is not a valid IP network for '{x.key}'") from None
        if t == F.BYTEBUF:
            return raw.encode("utf-8", "surrogateescape")
        if t == F.DYNAMIC:
            try:
                return parse_number(raw, x.key)
            except CompileError:
                return raw
        if x.fdef.name in EVTTYPE_FIELDS and x.arg is None and op in ("=", "==", "!=", "in", "intersects") \
                and raw not in EVENT_NAMES:
            raise CompileError(f"unknown event type {raw}", unknown=True)
        return raw

    # -- checks ---------------------------------------------------------------------------------
    def cmp(self, x: F.Extractor, op: str, v: str, rhs) -> str:
        """Comparison of the value expression `v` with the converted constant `rhs`."""
        t = x.type
        if op in ("=", "=="):
            if t == F.IPNET:
                return f"{self.const(make_net_matcher([rhs]), 'n')}({v})"
            return f"{v} == {self.const(rhs)}"
        if op == "!=":
            if t == F.IPNET:
                return f"not {self.const(make_net_matcher([rhs]), 'n')}({v})"
            return f"{v} != {self.const(rhs)}"
        if op in ("<", "<=", ">", ">="):
            return f"{v} {op} {self.const(rhs)}"
        if op in ("contains", "bcontains"):
            if t == F.DYNAMIC:
                return f"{self.const(str(rhs))} in str({v})"
            return f"{self.const(rhs)} in {v}"
        if op == "icontains":
            return f"{self.const(rhs.lower())} in {v}.lower()"
        if op in ("startswith", "bstartswith"):
            return f"{v}.startswith({self.const(rhs)})"
        if op == "endswith":
            return f"{v}.endswith({self.const(rhs)})"
        if op in ("glob", "iglob"):
            return f"{self.const(glob_matcher(rhs, op == 'iglob'), 'g')}({v})"
        if op == "regex":
            try:
                rx = re.compile(rhs)
            except re.error as exc:
                raise CompileError(f"invalid regular expression '{rhs}': {exc}") from None
            return f"{self.const(rx.fullmatch, 'r')}({v}) is not None"
        raise CompileError(f"operator '{op}' not supported here")

    def check(self, c: Check) -> str:
        lhs = c.lhs
        x = self.operand(lhs)
        op = "=" if c.op == "==" else c.op
        allowed = OPS_BY_TYPE.get(x.type, STRING_OPS)
        if c.op not in allowed and not (c.op == "==" and "=" in allowed):
            raise CompileError(f"operator '{c.op}' is not supported for field '{x.key}' of type {x.type}")
        if x.multi == "either" and op not in ("=", "!=", "in", "intersects", "exists"):
            raise CompileError(f"field '{x.key}' only supports '=', '!=', 'in', 'intersects' and 'exists'")
        val, nullable = self.value_expr(x)
        if op == "exists":
            if x.multi:
                return f"bool({val})"
            return f"({val} is not None)" if nullable else "True"
        rhs = c.rhs
        if isinstance(rhs, ValRef | Transform):
            return self.check_field_rhs(x, op, val, rhs, c)
        if c.mod is not None:
            return self.check_modifier(x, op, val, rhs, c.mod)
        if op in LIST_VALUE_OPS:
            values = rhs.values if isinstance(rhs, ListLiteral) else [rhs.value]
            return self.check_list(x, op, val, nullable, values)
        if isinstance(rhs, ListLiteral):
            raise CompileError(f"operator '{c.op}' does not take a list")
        conv = self.convert(x, rhs.value, op)
        if x.multi == "any":
            if op == "=":
                return f"({self.const(conv)} in {val})"
            return f"any({self.cmp(x, op, '_a', conv)} for _a in {val})"
        if x.multi == "either":
            if op == "=":
                if x.type == F.IPNET:
                    return f"any({self.cmp(x, op, '_a', conv)} for _a in {val})"
                return f"({self.const(conv)} in {val})"
            # '!=': true only when every endpoint differs (libsinsp compare_ip/compare_net)
            return f"(bool(_t := {val}) and all({self.cmp(x, op, '_a', conv)} for _a in _t))"
        if not nullable:
            return f"({self.cmp(x, op, val, conv)})"
        return f"((_v := {val}) is not None and {self.cmp(x, op, '_v', conv)})"

    def check_list(self, x: F.Extractor, op: str, val: str, nullable: bool, values: list[str]) -> str:
        if op == "pmatch":
            if x.type != F.STRING or x.multi:
                raise CompileError(f"operator 'pmatch' requires a string field, '{x.key}' is {x.type}")
            m = self.const(make_pmatch(values), "p")
            return f"((_v := {val}) is not None and {m}(_v))" if nullable else f"{m}({val})"
        conv = [self.convert(x, v, op) for v in values]
        if x.type == F.IPNET:
            m = self.const(make_net_matcher(conv), "n")
            if x.multi:
                return f"any({m}(_a) for _a in {val})"
            return f"((_v := {val}) is not None and {m}(_v))"
        s = self.const(frozenset(conv), "s")
        if x.type == F.LIST:
            if op == "in":
                return f"((_v := {val}) is not None and {s}.issuperset(_v))"
            return f"((_v := {val}) is not None and not {s}.isdisjoint(_v))"
        if x.multi:
            return f"(not {s}.isdisjoint({val}))"
        if not nullable:
            return f"({val} in {s})"
        return f"((_v := {val}) is not None and _v in {s})"

    def check_modifier(self, x: F.Extractor, op: str, val: str, rhs, mod: str) -> str:
        if op not in ("=", "!=", "contains", "icontains", "startswith", "endswith", "glob", "iglob", "regex",
                      "bcontains", "bstartswith", "<", "<=", ">", ">="):
            raise CompileError(f"modifier '{mod}' cannot be used with operator '{op}'")
        if x.type in (F.IPADDR, F.IPNET) and op != "=":
            raise CompileError(f"modifier '{mod}' on IP fields only supports '='")
        if x.multi:
            raise CompileError(f"modifier '{mod}' cannot be used with field '{x.key}'")
        if not isinstance(rhs, ListLiteral):
            raise CompileError(f"modifier '{mod}' requires a list")
        parts = [self.cmp(x, op, "_v", self.convert(x, v, op)) for v in rhs.values]
        if mod == "anyof":
            body = " or ".join(f"({p})" for p in parts) or "False"
        elif mod == "allof":
            body = " and ".join(f"({p})" for p in parts) or "True"
        else:
            body = ("(" + " + ".join(f"({p})" for p in parts) + ") == 1") if parts else "False"
        return f"((_v := {val}) is not None and ({body}))"

    def check_field_rhs(self, x: F.Extractor, op: str, val: str, rhs, c: Check) -> str:
        if isinstance(rhs, ValRef):
            y = self.field(rhs.field)
            if F.NO_RHS in y.fdef.flags or y.multi:
                raise CompileError(f"field '{y.key}' cannot be used inside val()")
        else:
            y = self.transform(rhs)
        if op in ("pmatch", "regex") or x.type == F.IPNET:
            raise CompileError(f"operator '{c.op}' does not support a field on the right-hand side")
        if x.multi:
            raise CompileError(f"field '{x.key}' cannot be compared with another field")
        w = self.const(y.fn, "x")
        if op in ("in", "intersects"):
            cmp = "(_v in _w if isinstance(_w, (list, tuple, set, frozenset)) else _v == _w)"
        elif op == "icontains":
            cmp = "_w.lower() in _v.lower()"
        elif op in ("glob", "iglob"):
            cmp = ("_fnm(_v.lower(), _w.lower())" if op == "iglob" else "_fnm(_v, _w)")
            self.ns["_fnm"] = fnmatch.fnmatchcase
        else:
            cmp = {"=": "_v == _w", "!=": "_v != _w", "<": "_v < _w", "<=": "_v <= _w", ">": "_v > _w",
                   ">=": "_v >= _w", "contains": "_w in _v", "bcontains": "_w in _v",
                   "startswith": "_v.startswith(_w)", "bstartswith": "_v.startswith(_w)",
                   "endswith": "_v.endswith(_w)"}.get(op)
            if cmp is None:
                raise CompileError(f"operator '{c.op}' does not support a field on the right-hand side")
        return f"((_v := {val}) is not None and (_w := {w}(e)) is not None and {cmp})"

    # -- boolean structure ----------------------------------------------------------------------
    def expr(self, node: Node) -> str:
        if isinstance(node, And):
            return "(" + " and ".join(self.expr(c) for c in node.children) + ")"
        if isinstance(node, Or):
            return "(" + " or ".join(self.expr(c) for c in node.children) + ")"
        if isinstance(node, Not):
            return f"(not {self.expr(node.child)})"
        if isinstance(node, Check):
            return self.check(node)
        if isinstance(node, MacroRef):
            raise CompileError(f"Undefined macro '{node.name}' used in filter.")
        raise CompileError(f"unexpected node {type(node).__name__}")


def compile_condition(node: Node, name: str = "condition") -> CompiledCondition:
    """Generate, compile and return the function for a macro-free condition AST."""
    gen = CodeGen()
    body = gen.expr(node)
    src = f"def _cond(e):\n    return {body}\n"
    code = compile(src, f"<condition {name}>", "exec")
    ns = dict(gen.ns)
    exec(code, ns)
    return CompiledCondition(ns["_cond"], src, gen.fields, gen.deprecated)


def check_condition(node: Node) -> list[str]:
    """Type-check a condition without generating code; returns the fields it uses."""
    gen = CodeGen()
    gen.expr(node)
    return gen.fields


# -- evt.type analysis (falco.md §4.2) ------------------------------------------------------------
def _evtnum_truth(c: Check) -> bool | None:
    """evt.num invariants: evt.num is always >= 1, so `evt.num=0` is never true."""
    if c.op == "exists":
        return True
    if not isinstance(c.rhs, Literal):
        return None
    try:
        n = parse_number(c.rhs.value, "evt.num")
    except CompileError:
        return None
    op = c.op
    if op in ("=", "=="):
        return False if n < 1 else None
    if op == "!=":
        return True if n < 1 else None
    if op == "<":
        return False if n <= 1 else None
    if op == "<=":
        return False if n < 1 else None
    if op == ">":
        return True if n < 1 else None
    if op == ">=":
        return True if n <= 1 else None
    return None


def evttypes(node: Node, negated: bool = False) -> frozenset[str]:
    """The set of event types a (macro-free) condition can match."""
    if isinstance(node, And):
        sets = [evttypes(c, negated) for c in node.children]
        if negated:  # not (a and b) == not a or not b
            return frozenset().union(*sets)
        out = UNIVERSE
        for s in sets:
            out = out & s
        return out
    if isinstance(node, Or):
        sets = [evttypes(c, negated) for c in node.children]
        if negated:
            out = UNIVERSE
            for s in sets:
                out = out & s
            return out
        return frozenset().union(*sets)
    if isinstance(node, Not):
        return evttypes(node.child, not negated)
    if isinstance(node, Check):
        lhs = node.lhs
        if not isinstance(lhs, FieldRef) or lhs.arg is not None:
            return UNIVERSE
        if lhs.name in EVTTYPE_FIELDS:
            if node.mod is not None or not isinstance(node.rhs, Literal | ListLiteral):
                return UNIVERSE
            names = frozenset(node.rhs.values if isinstance(node.rhs, ListLiteral) else [node.rhs.value])
            names = names & UNIVERSE
            if node.op in ("=", "==", "in", "intersects"):
                return UNIVERSE - names if negated else names
            if node.op == "!=":
                return names if negated else UNIVERSE - names
            return UNIVERSE
        if lhs.name == "evt.num":
            truth = _evtnum_truth(node)
            if truth is None:
                return UNIVERSE
            if negated:
                truth = not truth
            return UNIVERSE if truth else frozenset()
        return UNIVERSE
    return UNIVERSE


# -- per-evt.type dispatch functions -------------------------------------------------------------
def fold_evttype(node: Node, t: str | None):
    """Simplify a condition knowing the event type is `t`: returns True, False or a smaller node."""
    if isinstance(node, And):
        kids = []
        for c in node.children:
            f = fold_evttype(c, t)
            if f is False:
                return False
            if f is not True:
                kids.append(f)
        if not kids:
            return True
        return kids[0] if len(kids) == 1 else And(kids, node.pos)
    if isinstance(node, Or):
        kids = []
        for c in node.children:
            f = fold_evttype(c, t)
            if f is True:
                return True
            if f is not False:
                kids.append(f)
        if not kids:
            return False
        return kids[0] if len(kids) == 1 else Or(kids, node.pos)
    if isinstance(node, Not):
        f = fold_evttype(node.child, t)
        if isinstance(f, bool):
            return not f
        return node if f is node.child else Not(f, node.pos)
    if (t is not None and isinstance(node, Check) and isinstance(node.lhs, FieldRef) and node.lhs.arg is None
            and node.lhs.name in EVTTYPE_FIELDS and node.mod is None and isinstance(node.rhs, Literal | ListLiteral)):
        names = node.rhs.values if isinstance(node.rhs, ListLiteral) else [node.rhs.value]
        if node.op in ("=", "==", "in", "intersects"):
            return t in names
        if node.op == "!=":
            return t not in names
    return node


_UNSET = object()  # a memoised field not extracted yet (None is a valid field value)


class _MemoGen(CodeGen):
    """CodeGen that evaluates sub-conditions shared by several rules at most once per event."""

    def __init__(self, shared: set[str], keys: dict[int, str]):
        super().__init__()
        self.shared = shared
        self.keys = keys
        self.memo_names: dict[str, str] = {}
        self.memo_inner: dict[str, str] = {}
        self.field_memo: dict[str, str] = {}  # field key -> local holding its value (or _U)
        self.field_fn: dict[str, str] = {}  # that local -> the extractor's constant name
        self.ns["_U"] = _UNSET

    def value_expr(self, x: F.Extractor) -> tuple[str, bool]:
        """A computed field is extracted at most once per event, however many rules test it.

        Only plain, single-valued fields: a transformer's extractor is built per use, and a
        multi-valued field's value is iterated in generator expressions, where `:=` is not allowed.
        """
        if x.inline is not None or x.multi or F.REGISTRY.get(x.fdef.name) is not x.fdef:
            return super().value_expr(x)
        name = self.field_memo.get(x.key)
        if name is None:
            name = f"_fv{len(self.field_memo)}"
            self.field_memo[x.key] = name
            self.field_fn[name] = self.const(x.fn, "x")
        return f"({name} if {name} is not _U else ({name} := {self.field_fn[name]}(e)))", True

    def expr(self, node: Node) -> str:
        key = self.keys.get(id(node))
        if key is not None and key in self.shared:
            name = self.memo_names.get(key)
            if name is None:
                inner = super().expr(node)
                name = f"_m{len(self.memo_names)}"
                self.memo_names[key] = name
                self.memo_inner[name] = inner
            return f"({name} if {name} is not None else ({name} := {self.memo_inner[name]}))"
        return super().expr(node)


def _node_keys(node: Node, keys: dict[int, str], counts: dict[str, int]) -> None:
    if isinstance(node, And | Or | Not | Check):
        k = node.to_string()
        keys[id(node)] = k
        counts[k] = counts.get(k, 0) + 1
    if isinstance(node, And | Or):
        for c in node.children:
            _node_keys(c, keys, counts)
    elif isinstance(node, Not):
        _node_keys(node.child, keys, counts)


def dispatch_source(entries: list[tuple[int, Node]], t: str | None) -> tuple[str, dict] | None:
    """Source of one function evaluating `entries` (rule position, condition) for events of type `t`.

    Returns None when no rule can match. The function returns None or the list of matching
    positions, in order.
    """
    folded: list[tuple[int, object]] = []
    for pos, node in entries:
        f = fold_evttype(node, t)
        if f is not False:
            folded.append((pos, f))
    if not folded:
        return None
    keys: dict[int, str] = {}
    counts: dict[str, int] = {}
    for _, f in folded:
        if not isinstance(f, bool):
            _node_keys(f, keys, counts)
    shared = {k for k, n in counts.items() if n > 1}
    gen = _MemoGen(shared, keys)
    body: list[str] = []
    for pos, f in folded:
        cond = "True" if f is True else gen.expr(f)
        body.append(f"    if {cond}:\n        if _r is None:\n            _r = [{pos}]\n"
                    f"        else:\n            _r.append({pos})")
    head = "def _dispatch(e):\n"
    text = "\n".join(body)
    # hoist the event's process and fd into locals: inline field accessors read them many times
    if "e.fd" in text:
        text = re.sub(r"\be\.fd\b", "_fd", text)
        head += "    _fd = e.fd\n"
    if "e.proc" in text:
        text = re.sub(r"\be\.proc\b", "_p", text)
        head += "    _p = e.proc\n"
    body = [text]
    if gen.memo_names:
        head += "    " + " = ".join(gen.memo_names.values()) + " = None\n"
    if gen.field_memo:
        head += "    " + " = ".join(gen.field_memo.values()) + " = _U\n"
    src = head + "    _r = None\n" + "\n".join(body) + "\n    return _r\n"
    return src, gen.ns


_DISPATCH_CACHE: dict[str, Callable] = {}


def compile_dispatch(entries: list[tuple[int, Node]], t: str | None) -> Callable | None:
    out = dispatch_source(entries, t)
    if out is None:
        return None
    src, ns = out
    # the constants' names are positional, so equal sources with equal constants are the same function
    code = compile(src, f"<dispatch {t or '*'}>", "exec")
    scope = dict(ns)
    exec(code, scope)
    return scope["_dispatch"]
