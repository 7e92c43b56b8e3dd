"""A trusted, cached virtual environment that Python scans copy instead of creating their own.

`python3 -m venv` spends about 3.5 s in ensurepip installing pip into every new environment, and
a scan made one per project in its fetch phase, monitored (some 13,000 recorded syscalls for no
package's code). The environment is identical every time, so Tracehound makes it once per
interpreter, outside any sandbox and before any package code ran, and each scan gets a private
copy (never links: package code writes into its venv, and must not reach the template or another
scan's copy).

What ties a venv to its path is rewritten in the copy: `pyvenv.cfg`, the activate scripts and the
shebangs of bin/pip*. The .pyc files still name the template in co_filename, but the import
system replaces that with the real location when it loads them.

The cache lives in $TRACEHOUND_CACHE_DIR (default /var/cache/tracehound)/venv-templates/<key>,
where the key covers the interpreter's version and the pip/setuptools wheels ensurepip bundles.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CACHE_ENV = "TRACEHOUND_CACHE_DIR"
DEFAULT_CACHE = "/var/cache/tracehound"
_IDENTITY = "import sys, ensurepip; print(sys.version); print(sys.prefix); print(ensurepip.version())"


class TemplateError(Exception):
    """The template could not be made or copied; the scan then lets pip's own venv step run."""


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE) / "venv-templates"


def template_key(python: str) -> str:
    """What the venv depends on: interpreter build and path, and the wheels ensurepip installs."""
    try:
        out = subprocess.run([python, "-I", "-c", _IDENTITY], capture_output=True, text=True, timeout=60,
                             check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise TemplateError(f"{python}: {exc}") from exc
    real = os.path.realpath(python)
    return hashlib.sha256(f"{real}\n{out}".encode()).hexdigest()[:16]


def template(python: str) -> Path:
    """The cached venv for `python`, made now if it is missing (safe against concurrent makers)."""
    root = cache_root()
    final = root / template_key(python) / "venv"
    if (final / "bin" / "python").exists() and (final / ".complete").exists():
        return final
    try:
        final.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        tmp = Path(tempfile.mkdtemp(prefix=".making-", dir=final.parent))
    except OSError as exc:
        raise TemplateError(f"cannot make a venv template in {final.parent}: {exc}") from exc
    try:
        venv = tmp / "venv"
        r = subprocess.run([python, "-I", "-m", "venv", str(venv)], capture_output=True, text=True, timeout=300,
                           check=False, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        if r.returncode != 0:
            raise TemplateError(f"{python} -m venv failed: {(r.stderr or r.stdout).strip()[-500:]}")
        _rewrite_paths(venv, str(venv), str(final))  # the template names its own final place
        (venv / ".complete").write_text("")
        try:
            venv.rename(final)
        except OSError:
            if not (final / ".complete").exists():  # not another maker's finished copy: a real failure
                raise
    except OSError as exc:
        raise TemplateError(f"cannot make a venv template in {final.parent}: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def seed(python: str, dest: Path, dest_in_sandbox: str) -> bool:
    """Copy the template to `dest` (seen as `dest_in_sandbox` by the scan); False if `dest` exists."""
    if dest.exists() or dest.is_symlink():
        return False
    src = template(python)
    part = dest.with_name(dest.name + ".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(part, ignore_errors=True)
        shutil.copytree(src, part, symlinks=True)
        (part / ".complete").unlink(missing_ok=True)
        _rewrite_paths(part, str(src), dest_in_sandbox)
        part.rename(dest)
    except OSError as exc:
        shutil.rmtree(part, ignore_errors=True)
        raise TemplateError(f"cannot copy the venv template to {dest}: {exc}") from exc
    return True


def _rewrite_paths(venv: Path, old: str, new: str) -> None:
    """Point pyvenv.cfg, the activate scripts and the bin/ shebangs at `new` instead of `old`."""
    candidates = [venv / "pyvenv.cfg", *(p for p in (venv / "bin").iterdir() if p.is_file() and not p.is_symlink())]
    old_b, new_b = old.encode(), new.encode()
    for path in candidates:
        data = path.read_bytes()
        if old_b in data:
            path.write_bytes(data.replace(old_b, new_b))
