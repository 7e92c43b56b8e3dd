"""Recursive-descent parser for Falco's condition language (falco.md §2.1).

It knows the grammar and nothing else: field names are checked only for their shape, macro
references are bare identifiers, and the compiler gives them meaning later.
"""

from __future__ import annotations

import re
import sys

from .ast import (
    TRANSFORMERS,
    And,
    Check,
    FieldRef,
    ListLiteral,
    Literal,
    MacroRef,
    Node,
    Not,
    Or,
    Transform,
    ValRef,
)
from .errors import ConditionSyntaxError

MAX_DEPTH = 1000

_BLANKS = " \t\b\r\n\f\v"
_IDENT = re.compile(r"[a-zA-Z]+[a-zA-Z0-9_]*")
_FIELD = re.compile(r"[a-zA-Z]+[a-zA-Z0-9_]*(?:\.[a-zA-Z]+[a-zA-Z0-9_]*)+")
_FIELD_ARG_BARE = re.compile(r"[^\]\[\"'\s]+")
_BARE_STR = re.compile(r"[^()\"'\s=,]+")
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|[+-]?[0-9]+\.?[0-9]*(?:[eE][+-][0-9]+)?")

NUM_OPS = ("<=", "<", ">=", ">")
# symbol operators first (longest first), then word operators (longest first among shared prefixes)
SYM_STR_OPS = ("==", "=", "!=")
WORD_STR_OPS = ("bstartswith", "startswith", "bcontains", "icontains", "contains", "endswith", "iglob", "glob",
                "regex")
LIST_OPS = ("intersects", "in", "pmatch")
MODIFIERS = ("oneof", "anyof", "allof")
ALL_OPS = frozenset(NUM_OPS + SYM_STR_OPS + WORD_STR_OPS + LIST_OPS + ("exists",))

_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "\\": "\\", "/": "/"}


class Parser:
    def __init__(self, text: str, max_depth: int = MAX_DEPTH):
        self.s = text
        self.i = 0
        self.depth = 0
        self.max_depth = max_depth

    # -- helpers ----------------------------------------------------------------------------
    def error(self, msg: str, pos: int | None = None) -> ConditionSyntaxError:
        return ConditionSyntaxError(msg, self.i if pos is None else pos)

    def skip_blanks(self) -> int:
        start = self.i
        s = self.s
        n = len(s)
        while self.i < n and s[self.i] in _BLANKS:
            self.i += 1
        return self.i - start

    def peek(self, lit: str) -> bool:
        return self.s.startswith(lit, self.i)

    def at_blank(self, j: int) -> bool:
        return j < len(self.s) and self.s[j] in _BLANKS

    def last_token(self) -> str:
        # the last non-blank token before the cursor, for error messages
        j = self.i
        while j > 0 and self.s[j - 1] in _BLANKS:
            j -= 1
        k = j
        while k > 0 and self.s[k - 1] not in _BLANKS:
            k -= 1
        return self.s[k:j]

    def keyword(self, word: str, follow_paren: bool) -> bool:
        """Consume `word` if it is followed by a blank (or '(' when allowed)."""
        if not self.s.startswith(word, self.i):
            return False
        j = self.i + len(word)
        if self.at_blank(j) or (follow_paren and j < len(self.s) and self.s[j] == "("):
            self.i = j
            return True
        return False

    # -- grammar ----------------------------------------------------------------------------
    def parse(self) -> Node:
        self.skip_blanks()
        if self.i >= len(self.s):
            raise self.error("empty condition")
        node = self.parse_or()
        self.skip_blanks()
        if self.i < len(self.s):
            raise self.error(f"unexpected token after '{self.last_token()}', expecting 'or', 'and'")
        return node

    def enter(self) -> None:
        self.depth += 1
        if self.depth > self.max_depth:
            raise self.error(f"exceeded max depth limit of {self.max_depth}")

    def parse_or(self) -> Node:
        self.enter()
        start = self.i
        children = [self.parse_and()]
        while True:
            save = self.i
            self.skip_blanks()
            if self.keyword("or", True):
                children.append(self.parse_after_binop())
            else:
                self.i = save
                break
        self.depth -= 1
        return children[0] if len(children) == 1 else Or(children, start)

    def parse_and(self) -> Node:
        self.enter()
        start = self.i
        children = [self.parse_not()]
        while True:
            save = self.i
            self.skip_blanks()
            if self.keyword("and", True):
                children.append(self.parse_after_binop(and_level=True))
            else:
                self.i = save
                break
        self.depth -= 1
        return children[0] if len(children) == 1 else And(children, start)

    def parse_after_binop(self, and_level: bool = False) -> Node:
        # "or"/"and" is followed by blanks and an operand, or directly by "(" Expr ")"
        if self.peek("("):
            start = self.i
            self.i += 1
            node = self.parse_or()
            self.skip_blanks()
            if not self.peek(")"):
                raise self.error("expected a ')' token")
            self.i += 1
            del start
            return node
        self.skip_blanks()
        return self.parse_not() if and_level else self.parse_and()

    def parse_not(self) -> Node:
        self.enter()
        start = self.i
        negations = 0
        while True:
            self.skip_blanks()
            if self.keyword("not", False):
                negations += 1
                continue
            if self.peek("not("):
                negations += 1
                self.i += 3
                break
            break
        node = self.parse_check()
        self.depth -= 1
        # each "not" toggles: "not not a" is "a"
        return Not(node, start) if negations % 2 else node

    def parse_check(self) -> Node:
        self.skip_blanks()
        start = self.i
        if self.i >= len(self.s):
            raise self.error("unexpected end of input, expecting a condition")
        if self.peek("("):
            self.i += 1
            node = self.parse_or()
            self.skip_blanks()
            if not self.peek(")"):
                raise self.error("expected a ')' token")
            self.i += 1
            return node
        tr = self.try_transformer()
        if tr is not None:
            return self.parse_condition(tr, start)
        m = _FIELD.match(self.s, self.i)
        if m:
            self.i = m.end()
            fld = FieldRef(m.group(0), self.parse_field_arg(), start)
            return self.parse_condition(fld, start)
        m = _IDENT.match(self.s, self.i)
        if m:
            name = m.group(0)
            if name in ("and", "or", "not"):
                raise self.error(f"unexpected keyword '{name}', expecting a condition")
            self.i = m.end()
            return MacroRef(name, start)
        raise self.error("expected a field, a macro name or '(' but found " + repr(self.s[self.i:self.i + 20]))

    def parse_field_arg(self) -> str | None:
        if not self.peek("["):
            return None
        self.i += 1
        if self.peek('"') or self.peek("'"):
            arg = self.parse_quoted()
        else:
            m = _FIELD_ARG_BARE.match(self.s, self.i)
            if not m:
                raise self.error("expected a field argument")
            arg = m.group(0)
            self.i = m.end()
        if not self.peek("]"):
            raise self.error("expected a ']' token")
        self.i += 1
        return arg

    def try_transformer(self) -> Transform | None:
        for name in TRANSFORMERS:
            if self.s.startswith(name + "(", self.i):
                start = self.i
                self.i += len(name) + 1
                args = []
                self.skip_blanks()
                if not self.peek(")"):
                    while True:
                        self.skip_blanks()
                        args.append(self.parse_targ())
                        self.skip_blanks()
                        if self.peek(","):
                            self.i += 1
                            continue
                        break
                self.skip_blanks()
                if not self.peek(")"):
                    raise self.error("expected a ')' token")
                self.i += 1
                index = self.parse_field_arg()
                return Transform(name, args, index, start)
        return None

    def parse_targ(self):
        start = self.i
        tr = self.try_transformer()
        if tr is not None:
            return tr
        if self.peek('"') or self.peek("'"):
            return Literal(self.parse_quoted(), True, start)
        if self.peek("("):
            self.i += 1
            vals = self.parse_list_items()
            return ListLiteral(vals, start)
        m = _FIELD.match(self.s, self.i)
        if m:
            self.i = m.end()
            return FieldRef(m.group(0), self.parse_field_arg(), start)
        m = _NUMBER.match(self.s, self.i)
        if m:
            self.i = m.end()
            return Literal(m.group(0), False, start)
        raise self.error("expected a field, a transformer, a string or a number as transformer argument")

    def parse_condition(self, lhs, start: int) -> Check:
        self.skip_blanks()
        pos = self.i
        s = self.s
        if self.keyword_op("exists"):
            return Check(lhs, "exists", None, None, start)
        for op in NUM_OPS:
            if s.startswith(op, self.i):
                self.i += len(op)
                self.skip_blanks()
                return Check(lhs, op, self.parse_num_or_transformer(), None, start)
        for op in SYM_STR_OPS:
            if s.startswith(op, self.i):
                self.i += len(op)
                return self.parse_str_rhs(lhs, op, start)
        for op in WORD_STR_OPS:
            if s.startswith(op, self.i) and self.at_blank(self.i + len(op)):
                self.i += len(op)
                return self.parse_str_rhs(lhs, op, start)
        for op in LIST_OPS:
            if s.startswith(op, self.i):
                j = self.i + len(op)
                if self.at_blank(j) or (j < len(s) and s[j] == "("):
                    self.i = j
                    self.skip_blanks()
                    return Check(lhs, op, self.parse_list_rhs(), None, start)
        raise self.error(f"expected a valid operator after '{self.last_token()}'", pos)

    def keyword_op(self, word: str) -> bool:
        if not self.s.startswith(word, self.i):
            return False
        j = self.i + len(word)
        if j == len(self.s) or self.s[j] in _BLANKS or self.s[j] == ")":
            self.i = j
            return True
        return False

    def parse_str_rhs(self, lhs, op: str, start: int) -> Check:
        self.skip_blanks()
        for mod in MODIFIERS:
            if self.s.startswith(mod, self.i):
                j = self.i + len(mod)
                if self.at_blank(j) or (j < len(self.s) and self.s[j] == "("):
                    self.i = j
                    self.skip_blanks()
                    if not self.peek("("):
                        raise self.error(f"expected a list after '{mod}'")
                    return Check(lhs, op, self.parse_list_rhs(), mod, start)
        tv = self.try_transformer_or_val()
        if tv is not None:
            return Check(lhs, op, tv, None, start)
        return Check(lhs, op, self.parse_str_value(), None, start)

    def try_transformer_or_val(self):
        start = self.i
        if self.s.startswith("val(", self.i):
            self.i += 4
            self.skip_blanks()
            m = _FIELD.match(self.s, self.i)
            if not m:
                raise self.error("expected a field inside val()")
            self.i = m.end()
            fld = FieldRef(m.group(0), self.parse_field_arg(), self.i)
            self.skip_blanks()
            if not self.peek(")"):
                raise self.error("expected a ')' token")
            self.i += 1
            return ValRef(fld, start)
        return self.try_transformer()

    def parse_num_or_transformer(self):
        tv = self.try_transformer_or_val()
        if tv is not None:
            return tv
        start = self.i
        m = _NUMBER.match(self.s, self.i)
        if not m:
            raise self.error("expected a number value")
        self.i = m.end()
        return Literal(m.group(0), False, start)

    def parse_str_value(self) -> Literal:
        start = self.i
        if self.peek('"') or self.peek("'"):
            return Literal(self.parse_quoted(), True, start)
        m = _BARE_STR.match(self.s, self.i)
        if not m:
            raise self.error("expected a string value")
        self.i = m.end()
        return Literal(m.group(0), False, start)

    def parse_list_rhs(self):
        start = self.i
        if self.peek("("):
            self.i += 1
            return ListLiteral(self.parse_list_items(), start)
        tv = self.try_transformer_or_val()
        if tv is not None:
            return tv
        m = _IDENT.match(self.s, self.i)
        if m:
            # an identifier where a list belongs: an undefined list name, a one-element list
            self.i = m.end()
            return ListLiteral([m.group(0)], start)
        raise self.error("expected a list, a transformer or a list name")

    def parse_list_items(self) -> list[str]:
        # after "(": [StrValue {"," StrValue}] ")"
        vals: list[str] = []
        self.skip_blanks()
        if self.peek(")"):
            self.i += 1
            return vals
        while True:
            self.skip_blanks()
            vals.append(self.parse_str_value().value)
            self.skip_blanks()
            if self.peek(","):
                self.i += 1
                continue
            if self.peek(")"):
                self.i += 1
                return vals
            raise self.error("expected a ',' or ')' token in list")

    def parse_quoted(self) -> str:
        q = self.s[self.i]
        start = self.i
        self.i += 1
        out: list[str] = []
        s = self.s
        n = len(s)
        while self.i < n:
            c = s[self.i]
            if c == q:
                self.i += 1
                return "".join(out)
            if c == "\\":
                if self.i + 1 >= n:
                    break
                e = s[self.i + 1]
                if e in _ESCAPES:
                    out.append(_ESCAPES[e])
                    self.i += 2
                elif e == q:
                    out.append(q)
                    self.i += 2
                elif e == "x":
                    hexd = s[self.i + 2:self.i + 4]
                    if len(hexd) != 2 or any(h not in "0123456789abcdefABCDEF" for h in hexd):
                        raise self.error("unsupported string escape sequence", self.i)
                    out.append(chr(int(hexd, 16)))
                    self.i += 4
                elif e == " ":
                    # libsinsp legacy quirk: "\ " reads as a single backslash
                    out.append("\\")
                    self.i += 2
                else:
                    raise self.error("unsupported string escape sequence", self.i)
                continue
            out.append(c)
            self.i += 1
        raise self.error("unterminated quoted string", start)


def parse(text: str, max_depth: int = MAX_DEPTH) -> Node:
    """Parse a condition string (lists already substituted) into an AST."""
    # each depth unit costs about 1.5 Python frames; make sure the limit is ours, not Python's
    need = max_depth * 2 + 1000
    if sys.getrecursionlimit() < need:
        sys.setrecursionlimit(need)
    return Parser(text, max_depth).parse()
