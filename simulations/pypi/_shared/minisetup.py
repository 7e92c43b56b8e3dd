"""A tiny in-tree PEP 517 build backend for Tracehound's PyPI attack simulations.

It gives a simulation's ``setup.py`` the life it has under setuptools without needing setuptools
(so the simulations build offline, from the loopback registry alone): ``setup.py`` is executed when
pip prepares the package's metadata (fetch phase: ``pip download``) and again when pip builds the
wheel (install phase), with ``from setuptools import setup`` working and ``cmdclass`` commands
("egg_info" at metadata time, "build_py" / "install" at build time) run like setuptools would.
The wheel holds ``py_modules``, ``packages`` and top-level ``data_files`` (e.g. a ``.pth``).
"""

import base64
import hashlib
import os
import sys
import types
import zipfile

_captured = {}


class Command:
    """Just enough of setuptools.Command for `cmdclass` overrides."""

    def __init__(self, dist=None):
        self.distribution = dist

    def initialize_options(self):
        pass

    def finalize_options(self):
        pass

    def run(self):
        pass


def setup(**kw):
    _captured.clear()
    _captured.update(kw)


def _run_setup(stage):
    fake = types.ModuleType("setuptools")
    fake.setup, fake.Command, fake.find_packages = setup, Command, lambda *a, **k: []
    cmd = types.ModuleType("setuptools.command")
    fake.command = cmd
    for name in ("install", "develop", "egg_info", "build_py", "sdist"):
        m = types.ModuleType(f"setuptools.command.{name}")
        setattr(m, name, type(name, (Command,), {}))
        setattr(cmd, name, m)
        sys.modules[f"setuptools.command.{name}"] = m
    sys.modules["setuptools"], sys.modules["setuptools.command"] = fake, cmd
    sys.modules["distutils.core"] = fake
    code = compile(open("setup.py", encoding="utf-8").read(), "setup.py", "exec")
    exec(code, {"__name__": "__main__", "__file__": os.path.abspath("setup.py")})
    kw = dict(_captured)
    for name in {"metadata": ("egg_info",), "build": ("build_py", "install")}[stage]:
        klass = (kw.get("cmdclass") or {}).get(name)
        if klass is not None:
            c = klass(None)
            c.initialize_options()
            c.finalize_options()
            c.run()
    return kw


def _dist(kw):
    return f"{kw['name'].replace('-', '_')}-{kw['version']}"


def _metadata(kw):
    text = f"Metadata-Version: 2.1\nName: {kw['name']}\nVersion: {kw['version']}\n"
    text += f"Summary: {kw.get('description', '')}\n"
    for r in kw.get("install_requires") or []:
        text += f"Requires-Dist: {r}\n"
    return text


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    kw = _run_setup("metadata")
    info = os.path.join(metadata_directory, _dist(kw) + ".dist-info")
    os.makedirs(info, exist_ok=True)
    with open(os.path.join(info, "METADATA"), "w", encoding="utf-8") as fh:
        fh.write(_metadata(kw))
    return os.path.basename(info)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    kw = _run_setup("build")
    dist = _dist(kw)
    files = []
    for m in kw.get("py_modules") or []:
        files.append((f"{m}.py", open(f"{m}.py", "rb").read()))
    for pkg in kw.get("packages") or []:
        base = pkg.replace(".", "/")
        for f in sorted(os.listdir(base)):
            if f.endswith(".py"):
                files.append((f"{base}/{f}", open(os.path.join(base, f), "rb").read()))
    for item in kw.get("data_files") or []:
        for f in (item[1] if isinstance(item, tuple) else [item]):
            files.append((os.path.basename(f), open(f, "rb").read()))
    files.append((f"{dist}.dist-info/METADATA", _metadata(kw).encode()))
    files.append((f"{dist}.dist-info/WHEEL", b"Wheel-Version: 1.0\nGenerator: minisetup\nRoot-Is-Purelib: true\n"
                  b"Tag: py3-none-any\n"))
    top = sorted({n.split("/")[0].removesuffix(".py") for n, _ in files if not n.endswith(".pth")
                  and ".dist-info" not in n})
    files.append((f"{dist}.dist-info/top_level.txt", ("\n".join(top) + "\n").encode()))
    record = ""
    for name, data in files:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += f"{name},sha256={digest},{len(data)}\n"
    record += f"{dist}.dist-info/RECORD,,\n"
    files.append((f"{dist}.dist-info/RECORD", record.encode()))
    fname = f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, fname), "w") as z:
        for name, data in files:
            z.writestr(name, data)
    return fname
