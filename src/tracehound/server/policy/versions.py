"""Version ranges for suppressions, one syntax for every ecosystem.

A suppression may be limited to some versions of a package ("we accepted what 1.4.x does, not
what 2.0 will do"). Ecosystems spell ranges differently, so the range is written in a small
common syntax that covers npm's and PyPI's everyday forms, and compared with a tolerant version
order (numeric release parts, then pre-release < release < post-release). No third-party
dependency: the server must not need one to decide what is suppressed.

Syntax: alternatives separated by `||`; each alternative is comparators separated by `,` or
spaces, all of which must hold. Comparators: `1.2.3` or `=1.2.3` or `==1.2.3` (exact; `*` or `x`
as a trailing wildcard, e.g. `1.2.*`), `!=V`, `>=V`, `<=V`, `>V`, `<V`, `^V` (npm caret), `~V` (npm
tilde), `~=V` (PEP 440 compatible release). An empty range or `*` matches every version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

_VERSION = re.compile(r"^[vV]?(\d+(?:\.\d+)*)(.*)$")
_OPS = ("===", "==", "!=", ">=", "<=", "~=", ">", "<", "=", "^", "~")


class RangeError(ValueError):
    """A version range that cannot be parsed; the message says which part."""


@total_ordering
@dataclass(frozen=True)
class Version:
    release: tuple[int, ...]
    rank: int  # 0 pre-release, 1 release, 2 post-release
    tag: tuple[tuple[int, int | str], ...]

    def _key(self, width: int) -> tuple:
        return (self.release + (0,) * (width - len(self.release)), self.rank, self.tag)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        w = max(len(self.release), len(other.release))
        return self._key(w) < other._key(w)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        w = max(len(self.release), len(other.release))
        return self._key(w) == other._key(w)

    def __hash__(self) -> int:
        rel = list(self.release)
        while rel and rel[-1] == 0:
            rel.pop()
        return hash((tuple(rel), self.rank, self.tag))


def parse_version(text: str) -> Version:
    """A version from npm, PyPI or RubyGems spelling; build metadata (`+...`) is ignored."""
    m = _VERSION.match(text.strip())
    if not m:
        raise RangeError(f"not a version: {text!r}")
    release = tuple(int(x) for x in m.group(1).split("."))
    rest = m.group(2).split("+", 1)[0].strip("-._")
    if not rest:
        return Version(release, 1, ())
    parts = [p for p in re.split(r"[.\-_]|(?<=\d)(?=[A-Za-z])|(?<=[A-Za-z])(?=\d)", rest) if p]
    rank = 2 if parts[0].lower() in ("post", "p", "r", "rev") else 0
    tag = tuple((0, int(p)) if p.isdigit() else (1, p.lower()) for p in parts)
    return Version(release, rank, tag)


@dataclass(frozen=True)
class _Cmp:
    op: str
    version: Version | None  # None with a wildcard prefix
    prefix: tuple[int, ...] = ()

    def holds(self, v: Version) -> bool:
        if self.version is None:  # == / != with a wildcard: compare the release prefix
            same = v.release[: len(self.prefix)] + (0,) * max(0, len(self.prefix) - len(v.release)) == self.prefix
            return same if self.op == "==" else not same
        w = self.version
        return {"==": v == w, "!=": v != w, ">=": v >= w, "<=": v <= w, ">": v > w, "<": v < w}[self.op]


def _bump(release: tuple[int, ...], index: int) -> Version:
    """The smallest release above every version sharing release[:index+1]."""
    head = list(release[: index + 1]) + [0] * max(0, index + 1 - len(release))
    head[index] += 1
    return Version(tuple(head), 0, ((0, 0),))  # the lowest pre-release of the next version


def _comparators(token: str) -> list[_Cmp]:
    op = next((o for o in _OPS if token.startswith(o)), "")
    text = token[len(op):].strip()
    if not text:
        raise RangeError(f"comparator {token!r} has no version")
    if op in ("", "=", "==", "===", "!=") and re.search(r"(^|\.)[*xX]$", text):
        prefix = tuple(int(x) for x in text.rstrip("*xX").rstrip(".").split(".") if x) if text not in "*xX" \
            else ()
        if not all(isinstance(x, int) for x in prefix):
            raise RangeError(f"bad wildcard {token!r}")
        return [_Cmp("!=" if op == "!=" else "==", None, prefix)]
    v = parse_version(text)
    if op in ("", "=", "==", "==="):
        return [_Cmp("==", v)]
    if op == "^":
        first = next((i for i, x in enumerate(v.release) if x != 0), len(v.release) - 1)
        return [_Cmp(">=", v), _Cmp("<", _bump(v.release, first))]
    if op == "~":
        return [_Cmp(">=", v), _Cmp("<", _bump(v.release, 0 if len(v.release) == 1 else 1))]
    if op == "~=":
        if len(v.release) < 2:
            raise RangeError(f"{token!r}: ~= needs at least two release parts (e.g. ~=1.4)")
        return [_Cmp(">=", v), _Cmp("==", None, v.release[:-1])]
    return [_Cmp(op, v)]


@dataclass(frozen=True)
class VersionRange:
    text: str
    alternatives: tuple[tuple[_Cmp, ...], ...]

    def contains(self, version: str | None) -> bool:
        """False for an unknown or unparsable version unless the range matches everything: a
        suppression meant for some versions must not silence alerts it cannot place."""
        if not self.alternatives:
            return True
        if not version:
            return False
        try:
            v = parse_version(version)
        except RangeError:
            return False
        return any(all(c.holds(v) for c in alt) for alt in self.alternatives)


def parse_range(text: str | None) -> VersionRange:
    """Parse a range (see the module docstring); RangeError says what is wrong."""
    src = (text or "").strip()
    if src in ("", "*"):
        return VersionRange(src, ())
    if len(src) > 255:
        raise RangeError("version range too long (255 characters at most)")
    alts = []
    for alt in src.split("||"):
        # "> 1.0" and ">1.0" alike: glue operators to the version that follows them
        tokens = re.findall(r"(?:===|==|!=|>=|<=|~=|>|<|=|\^|~)?\s*[^\s,|<>=!^~]+", alt)
        leftover = re.sub(r"(?:===|==|!=|>=|<=|~=|>|<|=|\^|~)?\s*[^\s,|<>=!^~]+", "", alt).replace(",", "").strip()
        if leftover or not tokens:
            raise RangeError(f"cannot parse version range {src!r}")
        cmps: list[_Cmp] = []
        for t in tokens:
            cmps.extend(_comparators(re.sub(r"\s+", "", t)))
        alts.append(tuple(cmps))
    return VersionRange(src, tuple(alts))
