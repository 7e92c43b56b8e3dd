"""Small helpers shared by the report formats.

They exist so that every format agrees on the things a reader compares across formats: what a
Falco priority means, which file and line a package is declared at, how a rule name becomes an id,
and how a finding gets its stable fingerprint.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import re
from typing import Any

from tracehound.scan.result import Alert, Evidence, PackageId, PackageResult, ScanResult

# Falco's priorities, most severe first (falco_common::priority_type).
PRIORITIES: tuple[str, ...] = (
    "Emergency",
    "Alert",
    "Critical",
    "Error",
    "Warning",
    "Notice",
    "Informational",
    "Debug",
)
_PRIORITY_BY_LOWER = {p.lower(): p for p in PRIORITIES}
_PRIORITY_BY_LOWER["info"] = "Informational"  # Falco accepts "info" in rule files


def canonical_priority(priority: str) -> str:
    """Falco's spelling of a priority ("WARNING" -> "Warning"); unknown names are kept as given."""
    return _PRIORITY_BY_LOWER.get(priority.strip().lower(), priority)


def priority_rank(priority: str) -> int:
    """0 for Emergency .. 7 for Debug; unknown priorities sort after Debug."""
    canon = canonical_priority(priority)
    return PRIORITIES.index(canon) if canon in PRIORITIES else len(PRIORITIES)


def most_severe(priorities: list[str]) -> str:
    return min(priorities, key=priority_rank)


# ---------------------------------------------------------------------------------------- time

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9})\d*)?"
    r"(Z|z|[+-]\d{2}:?\d{2})?$"
)


def parse_time(text: str) -> tuple[int, int]:
    """ISO-8601 timestamp -> (seconds since the epoch, nanoseconds).

    `datetime` stops at microseconds and Falco's times carry nanoseconds, which Package Hunter's
    `time.nanos` and Falco's `evt.time` keep; so the parsing is done by hand. A timestamp without
    an offset is taken as UTC, which is what `ScanResult` promises.
    """
    m = _ISO.match(text.strip())
    if m is None:
        raise ValueError(f"not an ISO-8601 timestamp: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    nanos = int((m.group(7) or "0").ljust(9, "0"))
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    offset = m.group(8)
    if offset and offset not in ("Z", "z"):
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        seconds -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return seconds, nanos


def time_ns(text: str) -> int:
    seconds, nanos = parse_time(text)
    return seconds * 1_000_000_000 + nanos


def _utc_fields(seconds: int) -> tuple[int, int, int, int, int, int]:
    days, rem = divmod(seconds, 86400)
    hour, rem = divmod(rem, 3600)
    minute, second = divmod(rem, 60)
    # civil-from-days (proleptic Gregorian), so that any int works without datetime's range limits
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (y + (m <= 2), m, d, hour, minute, second)


def falco_time(text: str) -> str:
    """The `time` of a Falco JSON alert: UTC, nine fractional digits, `Z`."""
    seconds, nanos = parse_time(text)
    y, mo, d, h, mi, s = _utc_fields(seconds)
    return f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}.{nanos:09d}Z"


def seconds_utc(text: str) -> str:
    """`yyyy-mm-ddThh:mm:ss` in UTC, the only form GitLab's report schema accepts."""
    seconds, _ = parse_time(text)
    y, mo, d, h, mi, s = _utc_fields(seconds)
    return f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}"


# ------------------------------------------------------------------------------------- packages

# ProjectResult.ecosystem (the package manager) -> PackageId.ecosystem (the registry)
REGISTRY_OF_MANAGER: dict[str, str] = {
    "npm": "npm",
    "yarn": "npm",
    "pnpm": "npm",
    "pip": "pypi",
    "poetry": "pypi",
    "uv": "pypi",
    "pipenv": "pypi",
    "bundler": "gem",
}


def package_label(pkg: PackageId | None) -> str:
    """`npm:name@version`, or `unattributed`."""
    if pkg is None:
        return "unattributed"
    version = f"@{pkg.version}" if pkg.version else ""
    return f"{pkg.ecosystem}:{pkg.name}{version}"


def package_key(pkg: PackageId | None) -> tuple[str, str, str]:
    if pkg is None:
        return ("", "", "")
    return (pkg.ecosystem, pkg.name, pkg.version or "")


def find_package(result: ScanResult, pkg: PackageId | None) -> PackageResult | None:
    if pkg is None:
        return None
    key = package_key(pkg)
    for pr in result.packages:
        if package_key(pr.package) == key:
            return pr
    return None


def dependency_file(result: ScanResult, pkg: PackageId | None) -> tuple[str | None, int | None]:
    """Where a reader should look for this dependency: (file, line or None).

    The package's own declaration when the ecosystem adapter found it; otherwise the lockfile (or
    manifest) of the first project of the same registry; for an unattributed alert, the first
    project's. (None, None) when the result names no file at all.
    """
    pr = find_package(result, pkg)
    if pr is not None and pr.manifest:
        return pr.manifest, pr.manifest_line
    candidates = result.projects
    if pkg is not None:
        same = [p for p in result.projects if REGISTRY_OF_MANAGER.get(p.ecosystem, p.ecosystem) == pkg.ecosystem]
        candidates = same or candidates
    for project in candidates:
        if project.lockfile or project.manifest:
            return project.lockfile or project.manifest, None
    return None, None


# ------------------------------------------------------------------------------- ids and hashes


def slug(name: str) -> str:
    """A rule name as an id: lower case ASCII letters and digits joined by single dashes."""
    s = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return s or "rule"


def rule_ids(names: list[str]) -> dict[str, str]:
    """Rule name -> stable id, unique within the given names.

    Names whose slugs collide (e.g. "Foo bar" and "foo-bar") all get a short hash of the exact
    name appended, so an id never depends on which of the two rules happened to fire first.
    """
    by_slug: dict[str, set[str]] = {}
    for n in names:
        by_slug.setdefault(slug(n), set()).add(n)
    ids = {}
    for s, group in by_slug.items():
        for n in group:
            ids[n] = s if len(group) == 1 else f"{s}-{digest(n)[:8]}"
    return ids


def digest(*parts: str | None) -> str:
    """sha256 over the parts; `None` and "" are distinct so that a missing value cannot collide."""
    h = hashlib.sha256()
    for p in parts:
        h.update(b"\x00" if p is None else b"\x01" + p.encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.hexdigest()


def evidence_identity(evidence: Evidence) -> tuple[str | None, ...]:
    """The parts of the evidence that identify *what* happened, not *when*.

    Times, pids and payload bytes change from run to run; the command, file, destination and
    honeytoken kind do not, so fingerprints built from them follow a finding across scans.
    """
    return (evidence.command, evidence.file, evidence.destination, evidence.honeytoken)


def finding_fingerprint(alert: Alert) -> str:
    """Stable hash of rule + package + evidence identity (see `evidence_identity`)."""
    eco, name, version = package_key(alert.package)
    return digest("tracehound-finding-v1", alert.rule, eco, name, version, *evidence_identity(alert.evidence))


def evidence_dict(evidence: Evidence) -> dict[str, Any]:
    """Evidence without its empty fields, for formats that show it as a property bag."""
    return {k: v for k, v in evidence.model_dump(mode="json").items() if v not in (None, "", [])}


# --------------------------------------------------------------------------------------- output

_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def scrub(text: str) -> str:
    """Replace lone surrogates (which cannot be encoded as UTF-8) with U+FFFD, as Falco does."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def dumps(obj: Any, *, indent: int | None = 2, sort_keys: bool = False) -> str:
    separators = (",", ":") if indent is None else (",", ": ")
    return scrub(json.dumps(obj, indent=indent, sort_keys=sort_keys, ensure_ascii=False, separators=separators))


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + "…"
