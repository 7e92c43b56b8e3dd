"""Attribution on hand-built process chains, and single-package project synthesis."""

from __future__ import annotations

import itertools
import json

import pytest

from tracehound.ecosystems.bundler import BundlerEcosystem
from tracehound.ecosystems.interface import DRIVER_ENV, Dependency, DependencyIndex, ProjectError
from tracehound.ecosystems.npm import NpmEcosystem
from tracehound.ecosystems.pip import PipEcosystem
from tracehound.ecosystems.pnpm import PnpmEcosystem
from tracehound.ecosystems.yarn import YarnEcosystem
from tracehound.events import Process
from tracehound.intake.target import PackageSpec


def chain(*procs: Process) -> Process:
    """Link processes child-last: chain(root, child, grandchild) returns grandchild."""
    for parent, child in itertools.pairwise(procs):
        child.parent = parent
    return procs[-1]


def ref(result):
    assert result is not None
    r, how = result
    return (r.name, r.version, r.ecosystem), how


PY_INDEX = DependencyIndex([Dependency("docopt", "0.6.2", "pypi", direct=True),
                            Dependency("Zope.Interface", "6.0", "pypi")])


def test_pip_build_dir_cwd_and_ancestor():
    sh = Process(10, "sh", cwd="/tmp")
    setup = Process(11, "python3", args=["-c", "exec(...)", "egg_info"],
                    cwd="/tmp/pip-install-k2j3h4/docopt_0123456789abcdef0123456789abcdef")
    gcc = Process(12, "gcc", cwd="/tmp/pip-build-env-xyz")
    leaf = chain(sh, setup, gcc)
    assert ref(PipEcosystem().attribute(setup, PY_INDEX)) == (("docopt", "0.6.2", "pypi"), "pip build dir cwd")
    assert ref(PipEcosystem().attribute(leaf, PY_INDEX)) == (("docopt", "0.6.2", "pypi"), "pip build dir cwd (ancestor)")
    assert PipEcosystem().attribute(sh, PY_INDEX) is None


def test_pip_names_are_normalised_and_argv_is_a_clue():
    p = Process(20, "python3", args=["/tmp/pip-install-abc/zope-interface_ffffffffffffffffffffffffffffffff/setup.py",
                                     "bdist_wheel"], cwd="/tmp/tmpdir")
    assert ref(PipEcosystem().attribute(p, PY_INDEX)) == (("Zope.Interface", "6.0", "pypi"), "pip build dir argv")
    unknown = Process(21, "python3", cwd="/tmp/pip-req-build-abc/x")
    assert PipEcosystem().attribute(unknown, PY_INDEX) is None


def test_driver_tag_wins_over_cwd():
    parent = Process(30, "python", env={DRIVER_ENV: "pypi:six@1.16.0"},
                     cwd="/tmp/pip-install-x/docopt_0123456789abcdef0123456789abcdef")
    child = chain(parent, Process(31, "curl", cwd="/"))
    assert ref(PipEcosystem().attribute(child, PY_INDEX)) == (("six", "1.16.0", "pypi"), "driver (ancestor)")
    assert ref(PipEcosystem().attribute(parent, PY_INDEX)) == (("six", "1.16.0", "pypi"), "driver")


GEM_INDEX = DependencyIndex([Dependency("greet-ext", "1.0.0", "gem", direct=True),
                             Dependency("nokogiri", "1.16.7", "gem")])


def test_bundler_extension_build_cwd():
    ruby = Process(40, "ruby", args=["extconf.rb"],
                   cwd="/builds/acme/shop/.tracehound/bundle/ruby/3.1.0/gems/greet-ext-1.0.0/ext/greet")
    make = chain(ruby, Process(41, "make", cwd=ruby.cwd), Process(42, "cc1", cwd="/tmp"))
    assert ref(BundlerEcosystem().attribute(ruby, GEM_INDEX)) == (("greet-ext", "1.0.0", "gem"), "gem directory cwd")
    assert ref(BundlerEcosystem().attribute(make, GEM_INDEX)) == (("greet-ext", "1.0.0", "gem"),
                                                                 "gem directory cwd (ancestor)")
    plat = Process(43, "make", cwd="/b/.tracehound/bundle/ruby/3.1.0/gems/nokogiri-1.16.7-x86_64-linux/ext/nokogiri")
    assert ref(BundlerEcosystem().attribute(plat, GEM_INDEX)) == (("nokogiri", "1.16.7", "gem"), "gem directory cwd")
    # a project that happens to live under a directory called "gems" is no package
    assert BundlerEcosystem().attribute(Process(44, "bundle", cwd="/srv/gems/shop"), GEM_INDEX) is None


NPM_INDEX = DependencyIndex([Dependency("esbuild", "0.21.5", "npm", direct=True),
                             Dependency("@scope/util", "1.2.0", "npm")])


@pytest.mark.parametrize("eco", [YarnEcosystem(), PnpmEcosystem()])
def test_node_family_reuses_node_clues(eco):
    env_proc = Process(50, "node", env={"npm_package_name": "esbuild", "npm_package_version": "0.21.5"})
    assert ref(eco.attribute(env_proc, NPM_INDEX)) == (("esbuild", "0.21.5", "npm"), "npm lifecycle env")
    store = Process(51, "sh", cwd="/builds/acme/shop/node_modules/.pnpm/@scope+util@1.2.0/node_modules/@scope/util")
    assert ref(eco.attribute(store, NPM_INDEX)) == (("@scope/util", "1.2.0", "npm"), "pnpm store cwd")
    unplugged = Process(52, "sh", cwd="/b/.yarn/unplugged/esbuild-npm-0.21.5-abc/node_modules/esbuild")
    assert ref(eco.attribute(unplugged, NPM_INDEX)) == (("esbuild", "0.21.5", "npm"), "node_modules cwd")


# ---------------------------------------------------------------------------------------- synthesis


def test_synthesize_pypi_spec_and_files(tmp_path):
    eco = PipEcosystem()
    p = eco.synthesize(PackageSpec("pypi", "requests", "2.32.3"), tmp_path / "a")
    assert p.manager == "pip" and p.manifest.read_text() == "requests==2.32.3\n"
    [dep] = eco.dependencies(p)
    assert (dep.name, dep.version, dep.direct, dep.line) == ("requests", "2.32.3", True, 1)
    wheel = tmp_path / "six-1.16.0-py2.py3-none-any.whl"
    wheel.write_bytes(b"PK")
    p = eco.synthesize(wheel, tmp_path / "b")
    assert (tmp_path / "b" / wheel.name).read_bytes() == b"PK"
    [dep] = eco.dependencies(p)
    assert (dep.name, dep.version) == ("six", "1.16.0")
    with pytest.raises(ProjectError, match="not a wheel or sdist"):
        eco.synthesize(tmp_path / "README.md", tmp_path / "c")


def test_synthesize_npm_spec_and_tarball(tmp_path):
    eco = NpmEcosystem()
    p = eco.synthesize(PackageSpec("npm", "left-pad", "1.3.0"), tmp_path / "a")
    assert json.loads(p.manifest.read_text())["dependencies"] == {"left-pad": "1.3.0"}
    [dep] = eco.dependencies(p)
    assert (dep.name, dep.version, dep.direct) == ("left-pad", "1.3.0", True)
    tgz = tmp_path / "is-number-7.0.0.tgz"
    tgz.write_bytes(b"\x1f\x8b")
    p = eco.synthesize(tgz, tmp_path / "b")
    deps = json.loads(p.manifest.read_text())["dependencies"]
    assert deps == {"is-number": "file:./is-number-7.0.0.tgz"}
    assert (tmp_path / "b" / tgz.name).is_file()


def test_synthesize_gem_spec_and_file(tmp_path):
    eco = BundlerEcosystem()
    p = eco.synthesize(PackageSpec("gem", "rake", "13.2.1"), tmp_path / "a")
    assert p.manifest.read_text() == 'source "https://rubygems.org"\n\ngem "rake", "= 13.2.1"\n'
    [dep] = eco.dependencies(p)
    assert (dep.name, dep.version, dep.line, dep.direct) == ("rake", "13.2.1", 3, True)
    gem = tmp_path / "th-hello-0.1.0.gem"
    gem.write_bytes(b"gem")
    p = eco.synthesize(gem, tmp_path / "b")
    assert (tmp_path / "b" / "vendor" / "cache" / gem.name).read_bytes() == b"gem"
    assert 'gem "th-hello", "= 0.1.0"' in p.manifest.read_text()
