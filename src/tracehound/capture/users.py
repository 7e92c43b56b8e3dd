"""uid/gid -> name, as the traced processes see them.

A sandbox has its own /etc/passwd; when the caller passes its path we read names from it, otherwise
from the host's databases. Lookups are cached because every process snapshot asks.
"""

from __future__ import annotations

import grp
import pwd
from pathlib import Path


def _read_db(path: str | Path) -> dict[int, str]:
    out: dict[int, str] = {}
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 3 and parts[2].isdigit():
            out.setdefault(int(parts[2]), parts[0])
    return out


class UserDb:
    def __init__(self, passwd_path: str | Path | None = None, group_path: str | Path | None = None):
        self._users = _read_db(passwd_path) if passwd_path else None
        self._groups = _read_db(group_path) if group_path else None
        self._ucache: dict[int, str | None] = {}
        self._gcache: dict[int, str | None] = {}

    def user(self, uid: int | None) -> str | None:
        if uid is None:
            return None
        try:
            return self._ucache[uid]
        except KeyError:
            pass
        if self._users is not None:
            name = self._users.get(uid)
        else:
            try:
                name = pwd.getpwuid(uid).pw_name
            except (KeyError, OverflowError):
                name = None
        self._ucache[uid] = name
        return name

    def group(self, gid: int | None) -> str | None:
        if gid is None:
            return None
        try:
            return self._gcache[gid]
        except KeyError:
            pass
        if self._groups is not None:
            name = self._groups.get(gid)
        else:
            try:
                name = grp.getgrgid(gid).gr_name
            except (KeyError, OverflowError):
                name = None
        self._gcache[gid] = name
        return name
