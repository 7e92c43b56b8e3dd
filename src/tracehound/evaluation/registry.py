"""A throw-away package registry on 127.0.0.1 for the attack simulations.

Simulated malicious packages must install the way real ones do — fetched by the real package
manager from a registry, through the sandbox's registry proxy — without ever being published
anywhere. This module builds each simulation package from its source directory into the artefact
its ecosystem expects and serves them all from one loopback HTTP server:

* npm: packuments at ``/npm/<name>`` (scoped names URL-encoded) and tarballs at
  ``/npm/<name>/-/<file>.tgz``; a project points at it with ``registry=`` in its ``.npmrc``;
* PyPI: a PEP 503 simple index at ``/pypi/simple/`` and files at ``/pypi/files/``; sdists are
  plain ``tar.gz`` archives of the source directory (nothing is executed to build them), wheels are
  zipped with a generated ``RECORD``;
* RubyGems: ``gem build`` of the (static) gemspec, then ``gem generate_index`` over ``/gems/``.

Nothing in a package is executed on the host: npm tarballs and sdists are archived by Python, and
``gem build`` only evaluates the gemspec, which simulations keep free of payloads.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote

# fixed timestamp inside archives, so a package's bytes (and hashes) do not change between runs
_EPOCH = 1_600_000_000


class RegistryError(RuntimeError):
    """A simulation package that cannot be built (bad manifest, missing tool)."""


@dataclass
class Built:
    ecosystem: str
    name: str
    version: str
    file: str  # artefact file name
    url: str  # where the registry serves it


def _norm_pypi(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _files(src: Path) -> list[Path]:
    out = []
    for p in sorted(src.rglob("*")):
        rel = p.relative_to(src)
        if any(part in ("__pycache__", ".git", "node_modules") for part in rel.parts):
            continue
        if p.is_file():
            out.append(p)
    return out


def _tar_gz(entries: list[tuple[str, bytes, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mode in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            info.mtime = _EPOCH
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _mode(p: Path) -> int:
    return 0o755 if os.access(p, os.X_OK) else 0o644


class LocalRegistry:
    """Builds simulation packages into `root` and serves them on 127.0.0.1 (see module docstring)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.npm_dir = self.root / "npm"
        self.pypi_dir = self.root / "pypi" / "files"
        self.gem_dir = self.root / "gems"
        for d in (self.npm_dir, self.pypi_dir, self.gem_dir / "gems"):
            d.mkdir(parents=True, exist_ok=True)
        self._packuments: dict[str, dict] = {}
        self._pypi: dict[str, list[str]] = {}
        self._gems_dirty = False
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None
        self.built: list[Built] = []

    # -- urls ------------------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """host:port, the form `ScanOptions.registries` takes."""
        self._need_port()
        return f"127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}"

    def urls(self) -> dict[str, str]:
        """Placeholders a simulation's project files may use, and what they stand for."""
        return {
            "@REGISTRY_HOST@": self.host,
            "@NPM_REGISTRY@": f"{self.base_url}/npm/",
            "@PYPI_INDEX@": f"{self.base_url}/pypi/simple/",
            "@PYPI_FILES@": f"{self.base_url}/pypi/files",
            "@GEM_SOURCE@": f"{self.base_url}/gems/",
        }

    def _need_port(self) -> None:
        if self.port is None:
            raise RegistryError("the registry is not started")

    # -- building ----------------------------------------------------------------------------------------

    def add(self, ecosystem: str, src: Path, kind: str | None = None) -> Built:
        src = Path(src)
        if not src.is_dir():
            raise RegistryError(f"{src}: package source directory not found")
        if ecosystem == "npm":
            b = self._add_npm(src)
        elif ecosystem == "pypi":
            b = self._add_wheel(src) if kind == "wheel" or (src / "WHEEL.json").is_file() else self._add_sdist(src)
        elif ecosystem == "gem":
            b = self._add_gem(src)
        else:
            raise RegistryError(f"unknown ecosystem {ecosystem!r}")
        self.built.append(b)
        return b

    def _add_npm(self, src: Path) -> Built:
        try:
            meta = json.loads((src / "package.json").read_text(encoding="utf-8"))
            name, version = meta["name"], meta["version"]
        except (OSError, ValueError, KeyError) as exc:
            raise RegistryError(f"{src}/package.json: {exc}") from exc
        base = name.split("/")[-1]
        fname = f"{base}-{version}.tgz"
        data = _tar_gz([(f"package/{p.relative_to(src).as_posix()}", p.read_bytes(), _mode(p)) for p in _files(src)])
        pdir = self.npm_dir / quote(name, safe="@") / "-"
        pdir.mkdir(parents=True, exist_ok=True)
        (pdir / fname).write_bytes(data)
        url_path = f"/npm/{quote(name, safe='@/')}/-/{fname}"
        doc = self._packuments.setdefault(name, {"name": name, "dist-tags": {}, "versions": {}})
        entry = dict(meta)
        entry["_id"] = f"{name}@{version}"
        entry["dist"] = {
            "tarball": url_path,  # made absolute when served
            "shasum": hashlib.sha1(data).hexdigest(),
            "integrity": "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode(),
        }
        if any(s in (meta.get("scripts") or {}) for s in ("preinstall", "install", "postinstall")):
            entry["hasInstallScript"] = True
        doc["versions"][version] = entry
        doc["dist-tags"]["latest"] = version
        return Built("npm", name, version, fname, url_path)

    def _pypi_meta(self, src: Path) -> tuple[str, str]:
        info = src / "PKG-INFO"
        if not info.is_file():
            raise RegistryError(f"{src}: a PyPI simulation package needs a PKG-INFO (Name, Version)")
        fields = dict(re.findall(r"^(Name|Version):\s*(\S+)\s*$", info.read_text(encoding="utf-8"), re.M))
        if "Name" not in fields or "Version" not in fields:
            raise RegistryError(f"{info}: Name and Version are required")
        return fields["Name"], fields["Version"]

    def _add_sdist(self, src: Path) -> Built:
        name, version = self._pypi_meta(src)
        stem = f"{_norm_pypi(name).replace('-', '_')}-{version}"
        fname = f"{stem}.tar.gz"
        data = _tar_gz([(f"{stem}/{p.relative_to(src).as_posix()}", p.read_bytes(), _mode(p)) for p in _files(src)])
        (self.pypi_dir / fname).write_bytes(data)
        self._pypi.setdefault(_norm_pypi(name), []).append(fname)
        return Built("pypi", name, version, fname, f"/pypi/files/{fname}")

    def _add_wheel(self, src: Path) -> Built:
        """A pure-Python wheel from `src`: PKG-INFO becomes METADATA; every other file is installed
        at its relative path (so a top-level `x.pth` lands in site-packages)."""
        name, version = self._pypi_meta(src)
        dist = f"{_norm_pypi(name).replace('-', '_')}-{version}"
        fname = f"{dist}-py3-none-any.whl"
        files: list[tuple[str, bytes]] = []
        for p in _files(src):
            rel = p.relative_to(src).as_posix()
            if rel in ("PKG-INFO", "WHEEL.json"):
                continue
            files.append((rel, p.read_bytes()))
        files.append((f"{dist}.dist-info/METADATA", (src / "PKG-INFO").read_bytes()))
        files.append((f"{dist}.dist-info/WHEEL",
                      b"Wheel-Version: 1.0\nGenerator: tracehound-simulations\nRoot-Is-Purelib: true\nTag: py3-none-any\n"))
        record = io.StringIO()
        for rel, data in files:
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.write(f"{rel},sha256={digest},{len(data)}\n")
        record.write(f"{dist}.dist-info/RECORD,,\n")
        files.append((f"{dist}.dist-info/RECORD", record.getvalue().encode()))
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for rel, data in files:
                zi = zipfile.ZipInfo(rel, date_time=(2020, 9, 13, 12, 26, 40))
                zi.external_attr = 0o644 << 16
                z.writestr(zi, data)
        (self.pypi_dir / fname).write_bytes(buf.getvalue())
        self._pypi.setdefault(_norm_pypi(name), []).append(fname)
        return Built("pypi", name, version, fname, f"/pypi/files/{fname}")

    def _add_gem(self, src: Path) -> Built:
        gem = shutil.which("gem")
        if gem is None:
            raise RegistryError("`gem` is not installed: RubyGems simulations cannot be built")
        specs = sorted(src.glob("*.gemspec"))
        if len(specs) != 1:
            raise RegistryError(f"{src}: expected exactly one .gemspec")
        with tempfile.TemporaryDirectory(prefix="th-gem-") as tmp:
            work = Path(tmp) / "src"
            shutil.copytree(src, work)
            env = {**os.environ, "SOURCE_DATE_EPOCH": str(_EPOCH)}
            p = subprocess.run([gem, "build", specs[0].name], cwd=work, capture_output=True, text=True, env=env,
                               timeout=120)
            if p.returncode != 0:
                raise RegistryError(f"gem build {specs[0].name} failed: {p.stderr.strip() or p.stdout.strip()}")
            [built] = list(work.glob("*.gem"))
            shutil.copy(built, self.gem_dir / "gems" / built.name)
        m = re.match(r"^(.+)-(\d[^-]*)\.gem$", built.name)
        name, version = (m.group(1), m.group(2)) if m else (built.stem, "")
        self._gems_dirty = True
        return Built("gem", name, version, built.name, f"/gems/gems/{built.name}")

    def _index_gems(self) -> None:
        if not self._gems_dirty:
            return
        p = subprocess.run(["gem", "generate_index", "-d", str(self.gem_dir)], capture_output=True, text=True,
                           timeout=300)
        if p.returncode != 0:
            raise RegistryError(f"gem generate_index failed: {p.stderr.strip()}")
        self._gems_dirty = False

    # -- serving -----------------------------------------------------------------------------------------

    def start(self) -> LocalRegistry:
        self._index_gems()
        registry = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_HEAD(self):
                self._serve(head=True)

            def do_GET(self):
                self._serve(head=False)

            def _serve(self, head: bool) -> None:
                status, ctype, body = registry._route(unquote(self.path.split("?", 1)[0]))
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="th-sim-registry", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LocalRegistry:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _route(self, path: str) -> tuple[int, str, bytes]:
        not_found = (404, "text/plain", b"not found\n")
        if path.startswith("/npm/"):
            rest = path[len("/npm/"):]
            if "/-/" in rest:
                name, _, fname = rest.partition("/-/")
                f = self.npm_dir / quote(name, safe="@") / "-" / fname
                return (200, "application/octet-stream", f.read_bytes()) if f.is_file() else not_found
            doc = self._packuments.get(rest.rstrip("/"))
            if doc is None:
                return not_found
            doc = json.loads(json.dumps(doc))
            for v in doc["versions"].values():
                v["dist"]["tarball"] = self.base_url + v["dist"]["tarball"]
            return 200, "application/json", json.dumps(doc).encode()
        if path.startswith("/pypi/simple/"):
            proj = path[len("/pypi/simple/"):].strip("/")
            if not proj:
                links = "".join(f'<a href="{html.escape(n)}/">{html.escape(n)}</a>\n' for n in sorted(self._pypi))
                return 200, "text/html", f"<!DOCTYPE html><html><body>\n{links}</body></html>\n".encode()
            files = self._pypi.get(_norm_pypi(proj))
            if not files:
                return not_found
            links = ""
            for fname in files:
                digest = hashlib.sha256((self.pypi_dir / fname).read_bytes()).hexdigest()
                links += f'<a href="{self.base_url}/pypi/files/{fname}#sha256={digest}">{html.escape(fname)}</a>\n'
            return 200, "text/html", f"<!DOCTYPE html><html><body>\n{links}</body></html>\n".encode()
        if path.startswith("/pypi/files/"):
            f = self.pypi_dir / path[len("/pypi/files/"):]
            return (200, "application/octet-stream", f.read_bytes()) if _inside(f, self.pypi_dir) else not_found
        if path.startswith("/gems/"):
            f = self.gem_dir / path[len("/gems/"):]
            return (200, "application/octet-stream", f.read_bytes()) if _inside(f, self.gem_dir) else not_found
        return not_found


def _inside(f: Path, root: Path) -> bool:
    try:
        return f.resolve().is_relative_to(root.resolve()) and f.is_file()
    except OSError:
        return False
