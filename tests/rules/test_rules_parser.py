"""Grammar of falco.md §2.1: accepted and rejected conditions, precedence, quoting, printing."""

from __future__ import annotations

import pytest

from tracehound.rules.ast import And, Check, ListLiteral, Literal, MacroRef, Not, Or, Transform, ValRef
from tracehound.rules.errors import ConditionSyntaxError
from tracehound.rules.parser import parse

ACCEPTED = [
    "a.b = 1",
    "a.b=1",
    "a.b == x",
    "a.b != x",
    "a.b exists",
    "not a.b exists",
    "a.b in ()",
    "a.b in (1, 2)",
    "a.b in(1,2)",
    "a.b intersects (x)",
    "a.b pmatch (/a, /b/*)",
    "(a.b = 1)",
    "a",
    "not a",
    "not(a)",
    "a and b or c",
    "a.b[1] = x",
    "a.b['x y'] = z",
    'a.b = "quoted \\" x"',
    "a.b contains oneof (x, y)",
    "a.b startswith anyof (x)",
    "a.b = allof (x, y)",
    "tolower(a.b) = x",
    "toupper(tolower(a.b)) = x",
    "a.b = val(c.d)",
    "a.b = val(c.d[2])",
    "len(a.b) > 3",
    "getopt(\"ab:\", a.b)[b] = x",
    "a.b in list_name",
    "a.b icontains x",
    "notb",
    "and_macro",
    "or_macro",
    "a.b >= 0x1F",
    "a.b < -1",
    "a.b <= 1.5e+3",
    "a.b glob *.log",
    "a.b = /etc/",
    "a.b = 0.0.0.0",
    "a.b contains -e",
    "a.b.c.d = x",
    "a and (b or c)",
    "a or(b)",
    "a and\n b\tor\r\nc",
]


@pytest.mark.parametrize("text", ACCEPTED)
def test_accepts(text):
    parse(text)


@pytest.mark.parametrize("text", [t for t in ACCEPTED if " " in t])
def test_accepts_other_blanks(text):
    # libsinsp's corpus re-runs accepted inputs with newlines and tabs instead of spaces
    parse(text.replace(" ", "\n"))
    parse(text.replace(" ", "\t"))


REJECTED = [
    ("a andb", "unexpected token after 'a', expecting 'or', 'and'"),
    ("aand b", "unexpected token after 'aand', expecting 'or', 'and'"),
    ("a and b and", "unexpected token after 'b', expecting 'or', 'and'"),
    ("a.b =", "expected a string value"),
    ("a.b = (x)", "expected a string value"),
    ("a.b in x, y", "unexpected token after 'x', expecting 'or', 'and'"),
    ('a.b = "\\q"', "unsupported string escape sequence"),
    ("a.b = '\\\"'", "unsupported string escape sequence"),
    ('a.b = "open', "unterminated quoted string"),
    ("(a", "expected a ')' token"),
    ("", "empty condition"),
    ("   ", "empty condition"),
    ("a.b containsx y", "expected a valid operator after 'a.b'"),
    ("a.b < x", "expected a number value"),
    ("a.b in (x y)", "expected a ',' or ')' token in list"),
    ("and", "unexpected keyword 'and'"),
    ("a.b[x = 1", "expected a ']' token"),
    ("a.b = val(x)", "expected a field inside val()"),
    ("a.b contains oneof x", "expected a list after 'oneof'"),
    ("a.b bcontains", "expected a valid operator"),
]


@pytest.mark.parametrize("text,message", REJECTED)
def test_rejects_with_message(text, message):
    with pytest.raises(ConditionSyntaxError) as exc:
        parse(text)
    assert message in str(exc.value)


def test_precedence_not_and_or():
    # not > and > or
    assert parse("a.a=1 or b.b=2 and c").to_string() == "(a.a = 1 or (b.b = 2 and c))"
    assert parse("not a and b").to_string() == "(not a and b)"
    assert parse("not (a or b)").to_string() == "not (a or b)"
    assert parse("a and b and c").to_string() == "(a and b and c)"
    assert parse("(a and b) and c").to_string() == "((a and b) and c)"


def test_each_not_toggles():
    assert parse("not not a").to_string() == "a"
    assert parse("not not not a").to_string() == "not a"


def test_ast_shapes():
    n = parse("proc.aname[2] startswith \"x y\"")
    assert isinstance(n, Check)
    assert (n.lhs.name, n.lhs.arg, n.op, n.rhs.value) == ("proc.aname", "2", "startswith", "x y")
    n = parse("x.y in (a, 'b c')")
    assert isinstance(n.rhs, ListLiteral) and n.rhs.values == ["a", "b c"]
    n = parse("x.y in some_list")  # an unresolved list name is a one-element list
    assert n.rhs.values == ["some_list"]
    n = parse("x.y = val(z.w)")
    assert isinstance(n.rhs, ValRef) and n.rhs.field.name == "z.w"
    n = parse("tolower(x.y) = a")
    assert isinstance(n.lhs, Transform) and n.lhs.name == "tolower"
    n = parse("x.y contains anyof (a, b)")
    assert n.mod == "anyof" and n.rhs.values == ["a", "b"]
    assert isinstance(parse("my_macro"), MacroRef)
    assert isinstance(parse("a or b"), Or) and isinstance(parse("a and b"), And)
    assert isinstance(parse("not a"), Not)
    n = parse("x.y = 0x10")
    assert isinstance(n.rhs, Literal) and n.rhs.value == "0x10"


def test_keyword_prefixes_are_identifiers():
    assert parse("notb").to_string() == "notb"
    assert parse("and_macro and or_macro").to_string() == "(and_macro and or_macro)"


@pytest.mark.parametrize("text,value", [
    ('x.y = "a\\tb"', "a\tb"),
    ('x.y = "a\\nb"', "a\nb"),
    ("x.y = 'it\\'s'", "it's"),
    ('x.y = "say \\"hi\\""', 'say "hi"'),
    ('x.y = "\\x41\\x42"', "AB"),
    ('x.y = "back\\\\slash"', "back\\slash"),
    ('x.y = "a\\/b"', "a/b"),
    ('x.y = "\\ "', "\\"),  # libsinsp legacy quirk
    ("x.y = ''", ""),
    ('x.y = "it\'s"', "it's"),
])
def test_quoted_string_escapes(text, value):
    assert parse(text).rhs.value == value


def test_printer_quotes_only_when_needed():
    assert parse('x.y = "abc"').to_string() == "x.y = abc"
    assert parse('x.y = "a b"').to_string() == 'x.y = "a b"'
    assert parse("x.y = 'a=b'").to_string() == 'x.y = "a=b"'
    assert parse("x.y in (a, 'b c', \"d\")").to_string() == 'x.y in (a, "b c", d)'
    assert parse('x.y = "q\\"q"').to_string() == 'x.y = "q\\"q"'


def test_depth_limit():
    deep = "(" * 1200 + "a" + ")" * 1200
    with pytest.raises(ConditionSyntaxError) as exc:
        parse(deep)
    assert "max depth" in str(exc.value)
    parse("(" * 200 + "a" + ")" * 200)


def test_error_position_points_at_problem():
    with pytest.raises(ConditionSyntaxError) as exc:
        parse("a.b = x and (c.d = y")
    assert exc.value.pos == len("a.b = x and (c.d = y")
