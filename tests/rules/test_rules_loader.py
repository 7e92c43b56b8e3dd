"""Loader semantics (falco.md §1): lists, macros, exceptions, overrides, order, errors and warnings."""

from __future__ import annotations

import pytest
from rules_helpers import event

from tracehound.events import Process
from tracehound.rules import RuleLoadError, load, load_result, loads


def dedent(text: str) -> str:
    """Remove the first line's indentation from every line that has it (blocks are concatenated)."""
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip()), "")
    pad = first[: len(first) - len(first.lstrip())]
    return "\n".join(ln[len(pad):] if ln.startswith(pad) else ln for ln in lines) + "\n"


def L(text: str, **kw):
    return load_result([("rules.yaml", dedent(text))], suggested_output=False, **kw)


def ok(text: str, **kw):
    res = L(text, **kw)
    assert not res.errors, [str(m) for m in res.errors]
    return res.ruleset


def compiled(text: str, rule: str = "r") -> str:
    return ok(text).rule(rule).compiled_condition


def codes(msgs):
    return [m.code for m in msgs]


RULE = """
- rule: r
  desc: d
  condition: {cond}
  output: o
  priority: WARNING
"""


def rule(cond: str) -> str:
    return RULE.format(cond=cond)


# -- lists are textual -------------------------------------------------------------------------------
def test_list_substitution_inside_a_larger_list():
    text = "- list: shells\n  items: [bash, sh]\n" + rule("proc.name in (shells, python)")
    assert compiled(text) == "proc.name in (bash, sh, python)"


def test_one_item_list_after_equals():
    text = "- list: cat_binaries\n  items: [cat]\n" + rule("proc.name= cat_binaries")
    assert compiled(text) == "proc.name = cat"


def test_list_name_must_stand_alone():
    text = "- list: sh\n  items: [zsh]\n" + rule("evt.type = execve and proc.name in (bash, fish)")
    res = L(text)
    assert res.ruleset.rule("r").compiled_condition == "(evt.type = execve and proc.name in (bash, fish))"
    assert codes(res.warnings) == ["LOAD_UNUSED_LIST"]


def test_item_with_space_is_quoted():
    text = "- list: cmds\n  items: [\"sh -c id\", '\"already quoted\"']\n" + rule("proc.cmdline in (cmds)")
    assert compiled(text) == 'proc.cmdline in ("sh -c id", "already quoted")'


@pytest.mark.parametrize("cond,expected", [
    ("proc.name in (a, empty)", "proc.name in (a)"),
    ("proc.name in (empty, a)", "proc.name in (a)"),
    ("proc.name in (empty)", "proc.name in ()"),
])
def test_empty_list_takes_a_comma_with_it(cond, expected):
    assert compiled("- list: empty\n  items: []\n" + rule(cond)) == expected


def test_list_may_be_defined_after_its_use():
    assert compiled(rule("proc.name in (later)") + "- list: later\n  items: [x]\n") == "proc.name in (x)"


def test_lists_inside_lists_one_level():
    text = """
    - list: a
      items: [x, y]
    - list: b
      items: [a, z, c]
    - list: c
      items: [w]
    """ + rule("proc.name in (b)")
    # `a` is defined before `b` and expands; `c` is defined after `b` so stays a name... until
    # textual substitution of `c` runs on the condition too (lists are applied in order)
    assert compiled(text) == "proc.name in (x, y, z, w)"


def test_list_append_and_override():
    text = """
    - list: l
      items: [a]
    - list: l
      items: [b]
      override:
        items: append
    - list: m
      items: [c]
    - list: m
      items: [d]
      append: true
    """ + rule("proc.name in (l, m)")
    res = L(text)
    assert res.ruleset.rule("r").compiled_condition == "proc.name in (a, b, c, d)"
    assert "LOAD_DEPRECATED_ITEM" in codes(res.warnings)


def test_list_replace_and_redefine():
    text = """
    - list: l
      items: [a]
    - list: l
      items: [b]
      override:
        items: replace
    - list: m
      items: [c]
    - list: m
      items: [d]
    """ + rule("proc.name in (l, m)")
    assert compiled(text) == "proc.name in (b, d)"


def test_list_append_without_definition():
    res = L("- list: l\n  items: [a]\n  append: true\n")
    assert codes(res.errors) == ["LOAD_ERR_VALIDATE"]
    assert "no list by that name already exists" in res.errors[0].message
    assert res.errors[0].location.item_type == "list" and res.errors[0].location.line == 1


# -- macros are AST substitutions with visibility ----------------------------------------------------
def test_macro_substitution():
    text = "- macro: m\n  condition: evt.type = open and fd.num >= 0\n" + rule("m and proc.name = cat")
    assert compiled(text) == "((evt.type = open and fd.num >= 0) and proc.name = cat)"


def test_macro_may_use_earlier_macro_only():
    good = """
    - macro: a
      condition: proc.name = x
    - macro: b
      condition: a or proc.name = y
    """ + rule("b")
    assert compiled(good) == "(proc.name = x or proc.name = y)"
    bad = """
    - macro: b
      condition: a or proc.name = y
    - macro: a
      condition: proc.name = x
    """ + rule("b")
    res = L(bad)
    assert codes(res.errors) == ["LOAD_ERR_VALIDATE"]
    err = res.errors[0]
    assert err.message == "Undefined macro 'a' used in filter."
    assert (err.location.item_type, err.location.item_name, err.location.line) == ("macro", "b", 3)


def test_rules_see_all_macros():
    assert compiled(rule("late") + "- macro: late\n  condition: proc.name = x\n") == "proc.name = x"


def test_macro_append_moves_its_visibility():
    text = """
    - macro: a
      condition: proc.name = x
    - macro: b
      condition: proc.pname = y
    - macro: a
      condition: or b
      override:
        condition: append
    """ + rule("a")
    assert compiled(text) == "(proc.name = x or proc.pname = y)"


def test_macro_loop():
    res = L("- macro: a\n  condition: a and proc.name = x\n" + rule("a"))
    assert "reference loop in macro 'a'" in [m.message for m in res.errors]


def test_undefined_macro_in_rule():
    res = L(rule("nosuchmacro and proc.name = x"))
    assert codes(res.errors) == ["LOAD_ERR_VALIDATE"]
    assert res.errors[0].message == "Undefined macro 'nosuchmacro' used in filter."
    assert res.errors[0].location.item_name == "r" and res.errors[0].location.line == 4  # the condition line


def test_unused_and_invalid_names_warn():
    res = L("- macro: unused_m\n  condition: proc.name = x\n- list: unused_l\n  items: [a]\n"
            "- macro: bad-name\n  condition: proc.name = y\n" + rule("evt.type = execve"))
    assert set(codes(res.warnings)) == {"LOAD_UNUSED_MACRO", "LOAD_UNUSED_LIST", "LOAD_INVALID_MACRO_NAME"}
    by_name = {m.location.item_name: m for m in res.warnings if m.code != "LOAD_INVALID_MACRO_NAME"}
    assert by_name["unused_m"].location.line == 1 and by_name["unused_l"].location.line == 3


# -- exceptions ---------------------------------------------------------------------------------------
ORACLE = """
- rule: r
  desc: d
  condition: proc.cmdline contains curl or proc.cmdline contains wget
  output: o
  priority: INFO
  exceptions:
    - name: local
      fields: [proc.cmdline]
      comps: [contains]
      values:
        - [curl 127.0.0.1]
"""


def test_exception_oracle_from_falco_unit_tests():
    rs = ok(ORACLE)
    assert rs.rule("r").compiled_condition == (
        '((proc.cmdline contains curl or proc.cmdline contains wget) and not proc.cmdline contains "curl 127.0.0.1")')
    assert rs.match(event("execve", proc=Process(1, "curl", args=["127.0.0.1"]))) == []
    assert [a.rule for a in rs.match(event("execve", proc=Process(1, "curl", args=["example.com"])))] == ["r"]


def test_exception_list_form_with_list_values():
    text = """
    - rule: r
      desc: d
      condition: evt.type = openat
      output: o
      priority: INFO
      exceptions:
        - name: editors
          fields: [proc.name, fd.name]
          comps: [in, startswith]
          values:
            - [cat, /etc/]
            - [[vi, vim], /tmp]
    """
    rs = ok(text)
    assert rs.rule("r").compiled_condition == (
        "(evt.type = openat and not ((proc.name in (cat) and fd.name startswith /etc/) or "
        "(proc.name in (vi, vim) and fd.name startswith /tmp)))")
    assert rs.match(event("openat", proc=Process(1, "cat"))) == []  # /etc/passwd by cat: excepted
    assert len(rs.match(event("openat", proc=Process(1, "less")))) == 1


def test_exception_default_comps_and_scalar_form():
    text = """
    - list: trusted
      items: [sshd, sudo]
    - rule: r
      desc: d
      condition: evt.type = execve
      output: o
      priority: INFO
      exceptions:
        - name: by_name_and_dir
          fields: [proc.name, proc.cwd]
          values:
            - [make, /src]
        - name: scalar
          fields: proc.name
          values: [trusted, "my tool"]
        - name: paths
          fields: proc.exepath
          comps: pmatch
          values: [/opt/vendor]
        - name: empty
          fields: [proc.name]
          values: []
    """
    assert ok(text).rule("r").compiled_condition == (
        '(evt.type = execve and not (proc.name = make and proc.cwd = /src) and not proc.name in (sshd, sudo, '
        '"my tool") and not proc.exepath pmatch (/opt/vendor))')


@pytest.mark.parametrize("exc,message", [
    ("fields: [proc.name, fd.name]\n      comps: [=]\n      values: [[a, b]]", "equal length"),
    ("fields: [proc.name]\n      comps: [likes]\n      values: [[a]]", "'likes' is not a supported comparison"),
    ("fields: [proc.nosuch]\n      values: [[a]]", "'proc.nosuch' is not a supported filter field"),
    ("fields: [proc.name, fd.name]\n      values: [[a]]", "fields and values lists must have equal length"),
    ("fields: proc.name\n      comps: '='\n      values: [a]", "comps must be one of (in, pmatch, intersects)"),
])
def test_exception_validation(exc, message):
    text = f"""
- rule: r
  desc: d
  condition: evt.type = execve
  output: o
  priority: INFO
  exceptions:
    - name: e
      {exc}
"""
    res = load_result([("x.yaml", text)])
    assert codes(res.errors) == ["LOAD_ERR_VALIDATE"], [str(m) for m in res.errors]
    assert message in res.errors[0].message
    assert res.errors[0].location.item_type == "exception"


def test_duplicate_exception_name_warns():
    text = rule("evt.type = execve") + """  exceptions:
    - name: e
      fields: [proc.name]
      values: [[a]]
    - name: e
      fields: [proc.name]
      values: [[b]]
"""
    assert "LOAD_EXCEPTION_NAME_NOT_UNIQUE" in codes(L(text).warnings)


def test_exception_append_adds_values_and_new_exceptions():
    text = rule("evt.type = execve") + """  exceptions:
    - name: e
      fields: [proc.name]
      values: [[a]]
- rule: r
  exceptions:
    - name: e
      values: [[b]]
    - name: f
      fields: proc.pname
      values: [c]
  override:
    exceptions: append
"""
    assert compiled(text) == "(evt.type = execve and not (proc.name = a or proc.name = b) and not " \
                             "proc.pname in (c))"


def test_exception_append_cannot_change_fields():
    text = rule("evt.type = execve") + """  exceptions:
    - name: e
      fields: [proc.name]
      values: [[a]]
- rule: r
  exceptions:
    - name: e
      fields: [proc.pname]
      values: [[b]]
  override:
    exceptions: append
"""
    res = L(text)
    assert res.errors[0].message == "Can not append exception fields to existing exception, only values"


# -- overrides and append -------------------------------------------------------------------------------
def test_override_append_and_replace_in_one_item():
    text = """
    - rule: r
      desc: first
      condition: evt.type = execve
      output: o
      priority: INFO
      tags: [a, b]
    - rule: r
      condition: and proc.name = sh
      output: replaced output
      tags: [c, a]
      priority: critical
      override:
        condition: append
        output: replace
        tags: append
        priority: replace
    """
    r = ok(text).rule("r")
    assert r.compiled_condition == "(evt.type = execve and proc.name = sh)"
    assert (r.output, r.tags, r.priority_name) == ("replaced output", ["a", "b", "c"], "Critical")


def test_override_enabled_and_desc():
    text = rule("evt.type = execve") + """
- rule: r
  enabled: false
  desc: more
  override:
    enabled: replace
    desc: append
"""
    r = ok(text).rule("r")
    assert r.enabled is False and r.desc == "d more"


@pytest.mark.parametrize("item,message", [
    ("- rule: nosuch\n  condition: and x\n  override:\n    condition: append\n",
     "Rule uses 'append' or 'override.condition: append' but no rule by that name already exists"),
    ("- rule: nosuch\n  output: x\n  override:\n    output: replace\n",
     "An 'override.output: replace' to a rule was requested but no rule by that name already exists"),
    ("- rule: r\n  priority: INFO\n  override:\n    priority: append\n",
     "Key 'priority' cannot be appended to, use 'replace' instead"),
    ("- rule: r\n  override:\n    output: append\n",
     "An append override for 'output' was specified but 'output' is not defined"),
    ("- rule: r\n  condition: and x\n  output: o2\n  override:\n    condition: append\n",
     "Unexpected key 'output': no corresponding entry under 'override' is defined."),
    ("- rule: r\n  condition: and x\n  append: true\n  override:\n    condition: append\n",
     "Keys 'override' and 'append: true' cannot be used together"),
    ("- rule: r\n  output: o\n  override:\n    output: merge\n", "Invalid override operation"),
])
def test_override_errors(item, message):
    res = L(rule("evt.type = execve") + item)
    assert codes(res.errors) == ["LOAD_ERR_VALIDATE"], [str(m) for m in res.errors]
    assert message in res.errors[0].message


def test_deprecated_append_true():
    res = L(rule("evt.type = execve") + "- rule: r\n  condition: and proc.name = sh\n  append: true\n")
    assert res.ruleset.rule("r").compiled_condition == "(evt.type = execve and proc.name = sh)"
    assert "LOAD_DEPRECATED_ITEM" in codes(res.warnings)
    res = L("- rule: r\n  condition: and x\n  append: true\n")
    assert "no rule by that name already exists" in res.errors[0].message


def test_standalone_enabled_is_deprecated_but_works():
    res = L(rule("evt.type = execve") + "- rule: r\n  enabled: false\n")
    assert res.ruleset.rule("r").enabled is False
    assert "LOAD_DEPRECATED_ITEM" in codes(res.warnings)


def test_redefinition_keeps_original_position():
    text = """
    - rule: A
      desc: d
      condition: evt.type = execve
      output: first A
      priority: INFO
    - rule: B
      desc: d
      condition: evt.type = execve
      output: B
      priority: INFO
    - rule: A
      desc: d
      condition: evt.type = execve and proc.name = node
      output: second A
      priority: INFO
    """
    rs = ok(text)
    assert [r.name for r in rs.rules] == ["A", "B"]
    alerts = rs.match(event("execve", res=0))
    assert [(a.rule, a.message) for a in alerts] == [("A", "second A"), ("B", "B")]


def test_overrides_work_across_files():
    base = rule("evt.type = execve")
    local = "- rule: r\n  condition: and proc.name = never\n  override:\n    condition: append\n"
    rs = load([("base.yaml", base), ("local.yaml", local)], suggested_output=False)
    assert rs.rule("r").compiled_condition == "(evt.type = execve and proc.name = never)"


def test_first_failing_file_stops_the_load():
    res = load_result([("a.yaml", rule("evt.type = execve")), ("b.yaml", rule("proc.nme = x")),
                       ("c.yaml", "- rule: [broken")])
    assert [m.location.file for m in res.errors] == ["b.yaml"]
    assert res.ruleset is None and res.files == ["a.yaml", "b.yaml"]


def test_file_that_needs_a_later_file_fails():
    # each file is validated with what was loaded so far, like Falco's per-file recompilation
    res = load_result([("a.yaml", rule("m")), ("b.yaml", "- macro: m\n  condition: proc.name = x\n")])
    assert res.errors and res.errors[0].location.file == "a.yaml"


def test_directory_load_order(tmp_path):
    for name, out in (("b.yaml", "from b"), ("a.yml", "from a"), ("c.txt", "ignored")):
        (tmp_path / name).write_text(RULE.format(cond="evt.type = execve").replace("rule: r", f"rule: {name}")
                                     .replace("output: o", f"output: {out}"))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.yaml").write_text("- rule: [broken")
    res = load_result([tmp_path])
    assert not res.errors
    assert [r.name for r in res.ruleset.rules] == ["a.yml", "b.yaml"]
    assert res.files == [str(tmp_path / "a.yml"), str(tmp_path / "b.yaml")]


# -- priorities, sources, versions -------------------------------------------------------------------
@pytest.mark.parametrize("text,value", [
    ("EMERGENCY", 0), ("Alert", 1), ("critical", 2), ("ERROR", 3), ("warning", 4), ("Notice", 5),
    ("INFORMATIONAL", 6), ("info", 6), ("Info", 6), ("DEBUG", 7)])
def test_priorities(text, value):
    assert ok(RULE.format(cond="evt.type = execve").replace("WARNING", text)).rule("r").priority == value


def test_invalid_priority():
    res = L(RULE.format(cond="evt.type = execve").replace("WARNING", "URGENT"))
    assert codes(res.errors) == ["LOAD_ERR_VALIDATE"] and res.errors[0].message == "Invalid priority"
    assert res.errors[0].location.line == 6


def test_min_priority_compiles_but_disables():
    text = rule("evt.type = execve") + RULE.format(cond="evt.type = openat").replace("rule: r", "rule: n") \
        .replace("WARNING", "NOTICE")
    rs = ok(text, min_priority="warning")
    assert [r.name for r in rs.enabled_rules()] == ["r"]
    assert rs.summary()["rules_disabled"] == 1
    assert rs.evttypes() == ["execve"]
    assert rs.match(event("openat")) == []


def test_other_sources_are_skipped_with_a_warning():
    res = L(rule("evt.type = execve") + "- rule: k\n  desc: d\n  condition: ka.verb = get\n  output: o\n"
            "  priority: INFO\n  source: k8s_audit\n")
    assert [r.name for r in res.ruleset.rules] == ["r"]
    assert [(m.code, m.message) for m in res.warnings] == [("LOAD_UNKNOWN_SOURCE",
                                                            "Unknown source k8s_audit, skipping")]


@pytest.mark.parametrize("version,ok_", [("17", True), ("0.57.0", True), ("'0.63.0'", True), ("1000", False),
                                         ("1.0.0", False), ("abc", False)])
def test_required_engine_version(version, ok_):
    res = L(f"- required_engine_version: {version}\n" + rule("evt.type = execve"))
    assert (not res.errors) is ok_
    if version == "1000":
        assert res.errors[0].message == "Rules require engine version 0.1000.0, but engine version is 0.63.0"


def test_required_plugin_versions():
    res = L("- required_plugin_versions:\n  - name: container\n    version: 0.4.0\n" + rule("evt.type = execve"))
    assert not res.errors and not res.warnings
    res = L("- required_plugin_versions:\n  - name: k8saudit\n    version: 0.7.0\n    alternatives:\n"
            "      - name: k8saudit-eks\n        version: 0.4.0\n" + rule("evt.type = execve"))
    assert codes(res.warnings) == ["LOAD_WARNING_EXTENSION"]
    res = L("- required_plugin_versions:\n  - name: container\n    version: x.y\n")
    assert "not valid semver" in res.errors[0].message


def test_skip_if_unknown_filter():
    res = L(rule("proc.nosuch = x") + "  skip-if-unknown-filter: true\n" +
            RULE.format(cond="evt.type = execve").replace("rule: r", "rule: kept"))
    assert not res.errors and [r.name for r in res.ruleset.rules] == ["kept"]
    assert res.warnings[0].code == "LOAD_UNKNOWN_FILTER" and "nonexistent field" in res.warnings[0].message


def test_too_many_evttypes_warning():
    assert codes(L(rule("proc.name = x")).warnings) == ["LOAD_NO_EVTTYPE"]
    assert codes(L(rule("proc.name = x") + "  warn_evttypes: false\n").warnings) == []
    assert codes(L(rule("evt.num = 0")).warnings) == []
    assert codes(L(rule("evt.type != open")).warnings) == ["LOAD_NO_EVTTYPE"]


def test_deprecated_field_warning_and_exit_semantics():
    res = L(rule("evt.type = execve and evt.dir = <"))
    assert [m.code for m in res.warnings] == ["LOAD_DEPRECATED_ITEM"]
    assert len(res.ruleset.match(event("execve", res=0))) == 1
    assert L(rule("evt.type = execve and evt.dir = >")).ruleset.match(event("execve", res=0)) == []


# -- malformed files: clear errors with positions, never tracebacks -----------------------------------
@pytest.mark.parametrize("text,code,message,line", [
    ("- rule: x\n  desc: [unclosed\n", "LOAD_ERR_YAML_PARSE", "", 3),
    ("rule: x\n", "LOAD_ERR_YAML_VALIDATE", "Rules content is not yaml array of objects", 1),
    ("- just a string\n", "LOAD_ERR_YAML_VALIDATE", "Each element should be a yaml associative array", 1),
    ("- rule: x\n  desc: d\n  condition: evt.type = execve\n  priority: INFO\n", "LOAD_ERR_YAML_VALIDATE",
     "Item has no mapping for key 'output'", 1),
    ("- macro: m\n  condition: (a and\n" + RULE.format(cond="m"), "LOAD_ERR_COMPILE_CONDITION",
     "expected a ')' token", 2),
    ("- rule: x\n  desc: d\n  condition: evt.type = execve\n  output: '%proc.nosuch'\n  priority: INFO\n",
     "LOAD_ERR_COMPILE_OUTPUT", "unknown filter: proc.nosuch", 4),
    ("- rule: x\n  desc: d\n  condition: evt.type = execve\n  output: 'ends with %'\n  priority: INFO\n",
     "LOAD_ERR_COMPILE_OUTPUT", "formatting cannot end with a %", 4),
    ("- rule: x\n  desc: d\n  condition: evt.type = execve\n  output: '%fd.ip'\n  priority: INFO\n",
     "LOAD_ERR_COMPILE_OUTPUT", "can only be used in conditions", 4),
    ("- rule: x\n  desc: d\n  condition: evt.type = exceve\n  output: o\n  priority: INFO\n",
     "LOAD_ERR_COMPILE_CONDITION", "unknown event type exceve", 3),
])
def test_errors_carry_file_and_line(text, code, message, line):
    res = load_result([("broken.yaml", text)], suggested_output=False)
    assert res.ruleset is None
    err = res.errors[0]
    assert err.code == code and message in err.message
    assert err.location.file == "broken.yaml" and err.location.line == line
    assert str(err).startswith(f"broken.yaml:{line}")


def test_unknown_items_and_keys_warn():
    res = L("- something: 1\n" + rule("evt.type = execve") + "  colour: blue\n")
    assert [(m.code, m.location.line) for m in res.warnings] == [("LOAD_UNKNOWN_ITEM", 1), ("LOAD_UNKNOWN_KEY", 8)]
    assert res.warnings[1].message == "Unknown key 'colour'. The key will be ignored."


def test_missing_file_and_raise_api(tmp_path):
    res = load_result([tmp_path / "nope.yaml"])
    assert codes(res.errors) == ["LOAD_ERR_FILE_READ"]
    with pytest.raises(RuleLoadError) as exc:
        loads(rule("proc.nme = x"), name="mine.yaml")
    assert "mine.yaml:4 (rule 'r'): error LOAD_ERR_COMPILE_CONDITION: nonexistent field proc.nme" in str(exc.value)
    assert exc.value.result.errors[0].code == "LOAD_ERR_COMPILE_CONDITION"


def test_multiple_documents_and_null_items():
    text = "- list: l\n  items: [a]\n-\n---\n" + rule("proc.name in (l)") + "---\n"
    assert compiled(text) == "proc.name in (a)"


def test_yaml_scalars_stay_strings():
    # yaml-cpp keeps `yes`/`on` as text; PyYAML would make booleans of them
    assert compiled("- list: l\n  items: [yes, on, 1]\n" + rule("proc.name in (l)")) == "proc.name in (yes, on, 1)"
