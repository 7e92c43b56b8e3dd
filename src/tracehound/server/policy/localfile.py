"""Suppressions from a file, for local scans (`tracehound scan --suppressions FILE`).

The same matching as the server's suppressions (decide.py), without a server: a team can keep
its accepted behaviours next to the project and get the same marked, non-counting alerts from a
local scan. The file is YAML (or JSON)::

    suppressions:
      - ecosystem: npm              # npm, pypi or gem
        package: malicious-dep
        rule: Download tool run     # exact rule name
        reason: our build downloads a test fixture
        versions: "==1.0.0"         # optional range (policy/versions.py); default: every version
        expires: 2027-01-31         # optional date or ISO-8601 time (UTC)
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from tracehound.server.policy.decide import Policy, SuppressionRule, apply, normalize_ecosystem
from tracehound.server.policy.versions import RangeError, parse_range

_KEYS = {"ecosystem", "package", "rule", "reason", "versions", "expires"}


class SuppressionFileError(ValueError):
    """The file cannot be used; the message names the file and the entry."""


def _expiry(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    else:
        try:
            dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise SuppressionFileError(f"{where}: expires: not a date or ISO-8601 time: {value!r}") from None
    return dt.astimezone(UTC).replace(tzinfo=None) if dt.tzinfo else dt


def load(path: str | Path) -> list[SuppressionRule]:
    """Read and check a suppressions file; SuppressionFileError says what is wrong and where."""
    import yaml

    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SuppressionFileError(f"{p}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise SuppressionFileError(f"{p}: not valid YAML: {exc}") from None
    entries = doc.get("suppressions") if isinstance(doc, dict) else doc
    if not isinstance(entries, list):
        raise SuppressionFileError(f"{p}: expected a list under 'suppressions'")
    out = []
    for i, e in enumerate(entries, start=1):
        where = f"{p}: suppression {i}"
        if not isinstance(e, dict):
            raise SuppressionFileError(f"{where}: expected a mapping")
        unknown = set(e) - _KEYS
        if unknown:
            raise SuppressionFileError(f"{where}: unknown keys: {', '.join(sorted(map(str, unknown)))}")
        for key in ("ecosystem", "package", "rule", "reason"):
            if not isinstance(e.get(key), str) or not e[key].strip():
                raise SuppressionFileError(f"{where}: '{key}' is required (text)")
        versions = e.get("versions")
        versions = None if versions in (None, "", "*") else str(versions)
        try:
            parse_range(versions)
        except RangeError as exc:
            raise SuppressionFileError(f"{where}: versions: {exc}") from None
        out.append(SuppressionRule(id=i, ecosystem=normalize_ecosystem(e["ecosystem"]), package=e["package"].strip(),
                                   rule=e["rule"].strip(), reason=e["reason"].strip(), version_spec=versions,
                                   expires_at=_expiry(e.get("expires"), where), created_by=None))
    return out


def apply_file(result, rules: list[SuppressionRule], *, now: datetime | None = None) -> int:
    """Mark the result's alerts the file's active suppressions match and recompute its verdicts;
    returns how many alerts were suppressed. A local scan has no policy, so no decision is made."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    outcome = apply(result, rules, Policy(), now)
    result.decision = None
    result.policy = {"suppressed": outcome.suppressed}
    return outcome.suppressed
