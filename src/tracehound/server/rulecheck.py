"""Checks an uploaded rules file before a scan is queued: `python -m tracehound.server.rulecheck FILE...`.

An uploaded rules file is untrusted YAML (alias bombs, deeply nested conditions), so it is loaded
in a child process with memory and CPU limits rather than in the API process. The child prints
{"errors": [...], "warnings": [...], "rules": n} as JSON.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys

MEMORY_LIMIT = 1024**3
CPU_SECONDS = 20
WALL_SECONDS = 30.0


class RuleCheckError(Exception):
    """The rules could not be checked at all (killed by a limit, or crashed)."""


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))


def check(paths: list[str]) -> dict:
    """Load `paths` (in order) in a limited child; returns its report."""
    try:
        p = subprocess.run([sys.executable, "-m", "tracehound.server.rulecheck", *paths], capture_output=True,
                           timeout=WALL_SECONDS, preexec_fn=_limit, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise RuleCheckError(f"checking the rules took longer than {WALL_SECONDS:.0f}s") from None
    if p.returncode != 0:
        raise RuleCheckError("the rules could not be loaded within the server's limits "
                             f"(exit status {p.returncode})")
    return json.loads(p.stdout)


def main(argv: list[str]) -> int:
    from tracehound.rules import load_result

    res = load_result(argv)
    out = {"errors": [str(m) for m in res.errors], "warnings": [str(m) for m in res.warnings][:50],
           "rules": len(res.ruleset.enabled_rules()) if res.ruleset is not None and not res.errors else 0}
    sys.stdout.write(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
