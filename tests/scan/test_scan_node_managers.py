"""End-to-end scans of yarn classic, yarn berry and pnpm projects (test_scan_e2e.py has npm, pip and
bundler): the npm test's shop - is-number from the real npm registry, plus optionally a local
`file:vendor/evil-helper` that steals ~/.npmrc in its postinstall or ~/.aws/credentials when it is
required - locked on the host by the manager version the adapter pins, in a mode that runs no
package code (the malicious code only ever runs inside the scan's sandbox), then scanned with the
real sandbox and capture backend.

Which scans (ten; each took 3-12 s on a 2-core host, the module well under a minute and a half):
* clean, install and import for every manager: each variant takes its own path through the adapter
  (install: `npm rebuild` / `yarn rebuild` / `pnpm rebuild`; import: node_modules, Plug'n'Play
  (berry's default linker), pnpm's virtual store) and through attribution (lifecycle environment,
  unplugged and .pnpm paths). The clean scan is the only one that proves that the manager's own
  work under capture (corepack download, fetch, link, rebuild) raises nothing; the malicious scans
  check it too (every alert must be evil-helper's), but only the clean one reaches the `clean` verdict.
* one more for yarn classic with evil-helper as a vendored tarball (`file:vendor/evil-helper-2.0.1.tgz`):
  yarn 1 records it with `resolved "file:..."`, which the adapter once took for the project's own
  code, so the package was never imported. Import-time only: the tarball changes what the lockfile
  says, not how scripts run.
"""

from __future__ import annotations

import json

import pytest
from checks import assert_caught, assert_clean, explain, run_scan

from projects import node_manager_project

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.network]

MANAGERS = ("pnpm", "yarn-classic", "yarn-berry")
SCANS = [(m, v, False) for m in MANAGERS for v in (None, "install", "import")] + [("yarn-classic", "import", True)]


def _imported(result) -> dict[str, str]:
    """The import driver's status per package, from the import phase's output."""
    [phase] = [p for p in result.phases if p.name == "import"]
    out = {}
    for line in phase.stdout_tail.splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            out[rec["package"]] = rec["status"]
    return out


@pytest.mark.parametrize(("manager", "variant", "tarball"), SCANS,
                         ids=[f"{m}-{v or 'clean'}{'-tarball' if t else ''}" for m, v, t in SCANS])
def test_node_manager_project(tmp_path, node_lock_cache, manager, variant, tarball):
    project = node_manager_project(tmp_path / "shop", manager, variant, node_lock_cache, tarball=tarball)
    lockname = "pnpm-lock.yaml" if manager == "pnpm" else "yarn.lock"
    lock = (project / lockname).read_text()
    result = run_scan(project)
    [proj] = result.projects
    assert (proj.ecosystem, proj.lockfile) == ("pnpm" if manager == "pnpm" else "yarn", lockname), explain(result)
    assert [p.name for p in result.phases] == ["fetch", "install", "import"], explain(result)
    assert all(p.ok for p in result.phases), explain(result)
    assert (project / lockname).read_text() == lock  # the scan works on a copy
    names = {p.package.name for p in result.packages}
    loaded = _imported(result)
    assert loaded.get("is-number") == "ok", explain(result)
    if variant is None:
        assert_clean(result)
        assert names == {"is-number"}
        return
    assert names == {"is-number", "evil-helper"}
    assert_caught(result, "evil-helper", variant)
    assert loaded.get("evil-helper") == "ok", explain(result)
    # neither the package manager nor is-number raised anything
    assert result.unattributed_alerts == 0, explain(result)
    assert {a.package.name for a in result.alerts} == {"evil-helper"}, explain(result)
