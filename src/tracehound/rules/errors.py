"""Load results: the errors and warnings a rules load produces, with Falco's codes.

Every message carries where it came from (file, line, item type and name) because a user who
mistyped a macro in a 3,000-line rules file needs the line, not a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Falco's load-result codes (falco_load_result.cpp); we keep the names so tooling that greps for
# them keeps working.
ERROR_CODES: dict[str, str] = {
    "LOAD_ERR_FILE_READ": "Could not read file",
    "LOAD_ERR_YAML_PARSE": "Invalid yaml",
    "LOAD_ERR_YAML_VALIDATE": "Error validating internal structure of YAML file",
    "LOAD_ERR_COMPILE_CONDITION": "Error compiling condition",
    "LOAD_ERR_COMPILE_OUTPUT": "Error compiling output",
    "LOAD_ERR_VALIDATE": "Error validating rule/macro/list/exception objects",
    "LOAD_ERR_EXTENSION": "Error related to extension compatibility",
}

WARNING_CODES: dict[str, str] = {
    "LOAD_UNKNOWN_SOURCE": "Unknown event source",
    "LOAD_UNSAFE_NA_CHECK": "Unsafe <NA> comparison in condition",
    "LOAD_NO_EVTTYPE": "Condition has no event-type restriction",
    "LOAD_UNKNOWN_FILTER": "Unknown field or event-type in condition or output",
    "LOAD_UNUSED_MACRO": "Unused macro",
    "LOAD_UNUSED_LIST": "Unused list",
    "LOAD_UNKNOWN_ITEM": "Unknown rules file item",
    "LOAD_DEPRECATED_ITEM": "Used deprecated item",
    "LOAD_WARNING_EXTENSION": "Warning related to extension compatibility",
    "LOAD_APPEND_NO_VALUES": "Overriding/appending with no values",
    "LOAD_EXCEPTION_NAME_NOT_UNIQUE": "Multiple exceptions defined with the same name",
    "LOAD_INVALID_MACRO_NAME": "Invalid macro name",
    "LOAD_INVALID_LIST_NAME": "Invalid list name",
    "LOAD_COMPILE_CONDITION": "Condition has issues",
    "LOAD_UNKNOWN_KEY": "Unknown key in item",
}


@dataclass(slots=True)
class Location:
    """Where a message points: a file position plus the item it belongs to."""

    file: str
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based
    item_type: str | None = None  # rule, macro, list, exception, rule condition, ...
    item_name: str | None = None

    def __str__(self) -> str:
        pos = self.file
        if self.line is not None:
            pos += f":{self.line}"
            if self.column is not None:
                pos += f":{self.column}"
        if self.item_type:
            pos += f" ({self.item_type}"
            pos += f" '{self.item_name}')" if self.item_name else ")"
        return pos


@dataclass(slots=True)
class LoadMessage:
    """One error or warning of a load, shaped like Falco's `falco -V` JSON entries."""

    code: str
    message: str
    location: Location
    is_error: bool
    snippet: str | None = None

    @property
    def codedesc(self) -> str:
        return (ERROR_CODES if self.is_error else WARNING_CODES).get(self.code, "")

    def __str__(self) -> str:
        kind = "error" if self.is_error else "warning"
        return f"{self.location}: {kind} {self.code}: {self.message}"

    def to_dict(self) -> dict:
        loc = self.location
        return {
            "code": self.code,
            "codedesc": self.codedesc,
            "message": self.message,
            "file": loc.file,
            "line": loc.line,
            "column": loc.column,
            "item_type": loc.item_type,
            "item_name": loc.item_name,
        }


@dataclass
class LoadResult:
    """Everything a load produced. `ruleset` is None when there were errors."""

    errors: list[LoadMessage] = field(default_factory=list)
    warnings: list[LoadMessage] = field(default_factory=list)
    ruleset: object | None = None  # tracehound.rules.ruleset.Ruleset
    files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, code: str, message: str, location: Location, snippet: str | None = None) -> None:
        self.errors.append(LoadMessage(code, message, location, True, snippet))

    def warn(self, code: str, message: str, location: Location, snippet: str | None = None) -> None:
        self.warnings.append(LoadMessage(code, message, location, False, snippet))


class RulesError(Exception):
    """Base class of the package's user-facing errors."""


class RuleLoadError(RulesError):
    """A rules load failed; `result` holds every error and warning."""

    def __init__(self, result: LoadResult):
        self.result = result
        lines = [str(m) for m in result.errors]
        super().__init__("\n".join(lines) if lines else "rules load failed")


class ConditionSyntaxError(RulesError):
    """A condition (or output format) does not parse. `pos` is the 0-based offset in the text."""

    def __init__(self, message: str, pos: int = 0):
        self.pos = pos
        self.msg = message
        super().__init__(message)


class CompileError(RulesError):
    """A condition parses but cannot be compiled (unknown field, bad operator for a type, ...)."""

    def __init__(self, message: str, *, unknown: bool = False):
        # `unknown` marks the errors that skip-if-unknown-filter turns into warnings
        self.unknown = unknown
        super().__init__(message)
