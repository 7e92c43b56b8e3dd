"""Which environment variables a process snapshot keeps.

Package managers announce who is running through the environment (npm_package_name,
npm_lifecycle_event, BUNDLE_GEMFILE, ...), so attribution needs those; the rest of a typical
environment is large, uninteresting and, inside a sandbox, partly secret-shaped honeytokens that
reports should not repeat. The bpftrace backend compiles the same filter into its probe (as
first-bytes prefixes) so both backends keep the same variables.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREFIXES: tuple[str, ...] = (
    "npm_", "PIP_", "BUNDLE_", "GEM_", "CI", "PYTHON", "NODE_", "LD_", "GITHUB_", "GITLAB_", "RUBY",
    "TRACEHOUND_",
)
DEFAULT_NAMES: tuple[str, ...] = ("HOME", "PWD", "OLDPWD", "PATH", "USER", "SHELL", "TMPDIR", "LANG")


@dataclass(frozen=True, slots=True)
class EnvFilter:
    prefixes: tuple[str, ...] = DEFAULT_PREFIXES
    names: tuple[str, ...] = DEFAULT_NAMES

    def keep(self, key: str) -> bool:
        return key in self.names or key.startswith(self.prefixes)

    def apply(self, envp: list[str] | None) -> dict[str, str]:
        out: dict[str, str] = {}
        if not envp:
            return out
        names = self.names
        prefixes = self.prefixes
        for item in envp:
            key, sep, value = item.partition("=")
            if sep and (key in names or key.startswith(prefixes)):
                out[key] = value
        return out

    def byte_patterns(self) -> list[bytes]:
        """Leading bytes of a "KEY=VALUE" string that may pass (at most 8 bytes each).

        Exact names include their "=" so that HOME does not admit HOMEBREW_...; anything longer
        than 8 bytes is cut and the final decision is made by `apply` in userspace.
        """
        pats = [p.encode() for p in self.prefixes] + [(n + "=").encode() for n in self.names]
        return sorted({p[:8] for p in pats if p})
