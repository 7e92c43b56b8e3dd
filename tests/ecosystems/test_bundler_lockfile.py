"""bundler adapter: Gemfile.lock reading (line numbers counted by hand), groups, plans, errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tracehound.ecosystems.bundler import BundlerEcosystem, gemfile_groups
from tracehound.ecosystems.interface import PlanContext, ProjectError

ECO = BundlerEcosystem()
CTX = PlanContext(project_dir="/builds/acme/shop", tools_dir="/tracehound/tools")

GEMFILE = """\
source "http://127.0.0.1:8808"
gemspec

gem "rake", "13.2.1"
gem "nokogiri"
gem "rubocop", require: false, group: :development

group :development, :test do
  gem "rspec"
  if ENV["CI"]
    gem "simplecov"
  end
end
"""
LOCK = """\
GIT
  remote: https://git.example.test/acme/tiny.git
  revision: 0123456789abcdef0123456789abcdef01234567
  specs:
    tiny (0.2.0)

PATH
  remote: .
  specs:
    shop (1.0.0)
      mini_portile2 (~> 2.8)

GEM
  remote: http://127.0.0.1:8808/
  specs:
    mini_portile2 (2.8.7)
    nokogiri (1.16.7-x86_64-linux)
      racc (~> 1.4)
    nokogiri (1.16.7)
      mini_portile2 (~> 2.8.2)
      racc (~> 1.4)
    racc (1.8.1)
    rake (13.2.1)
    rspec (3.13.0)
    rubocop (1.66.1)
    simplecov (0.22.0)

PLATFORMS
  ruby
  x86_64-linux

DEPENDENCIES
  nokogiri
  rake (= 13.2.1)
  rspec
  rubocop
  shop!
  simplecov
  tiny!

BUNDLED WITH
   2.5.11
"""


def project(tmp_path: Path, gemfile: str = GEMFILE, lock: str | None = LOCK):
    (tmp_path / "Gemfile").write_text(gemfile)
    if lock is not None:
        (tmp_path / "Gemfile.lock").write_text(lock)
    [p] = ECO.detect(tmp_path)
    return p


def test_lockfile_specs_lines_direct_dev(tmp_path):
    p = project(tmp_path)
    deps = {d.name: d for d in ECO.dependencies(p)}
    assert set(deps) == {"tiny", "mini_portile2", "nokogiri", "racc", "rake", "rspec", "rubocop", "simplecov"}
    assert {n: d.line for n, d in deps.items()} == {
        "tiny": 5, "mini_portile2": 16, "nokogiri": 17, "racc": 22, "rake": 23, "rspec": 24, "rubocop": 25,
        "simplecov": 26}
    assert deps["nokogiri"].version == "1.16.7"  # platform suffix removed, listed once
    assert all(d.ecosystem == "gem" and d.manifest == "Gemfile.lock" for d in deps.values())
    # DEPENDENCIES, plus what the project's own gemspec (PATH .) needs
    assert {n for n, d in deps.items() if d.direct} == {"tiny", "mini_portile2", "nokogiri", "rake", "rspec",
                                                        "rubocop", "simplecov"}
    assert {n for n, d in deps.items() if d.dev} == {"rspec", "rubocop", "simplecov"}
    assert any("shop is local code" in n for n in p.notes)


def test_gemfile_groups():
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "Gemfile"
        f.write_text(GEMFILE)
        g = gemfile_groups(f)
    assert g == {"rake": {"default"}, "nokogiri": {"default"}, "rubocop": {"development"},
                 "rspec": {"development", "test"}, "simplecov": {"development", "test"}}


def test_plan(tmp_path):
    p = project(tmp_path)
    deps = ECO.dependencies(p)
    fetch, install, imp = ECO.plan(p, deps, CTX)
    assert fetch.argv == ["ruby", "/tracehound/tools/ruby_bundle.rb", "fetch", "locked"]
    assert install.argv == ["ruby", "/tracehound/tools/ruby_bundle.rb", "install", "locked"]
    assert fetch.registries == ["git.example.test", "127.0.0.1:8808"]
    assert (fetch.network, install.network, imp.network) == ("registry", "sinkhole", "sinkhole")
    assert fetch.env["BUNDLE_PATH"] == "/builds/acme/shop/.tracehound/bundle"
    assert fetch.env["BUNDLE_GEMFILE"] == "/builds/acme/shop/Gemfile"
    assert fetch.env["BUNDLE_APP_CONFIG"].startswith("/builds/acme/shop/.tracehound/")
    import json

    names = [x["name"] for x in json.loads(imp.files["ruby_import.json"])["packages"]]
    assert names == ["tiny", "mini_portile2", "nokogiri", "rake"]
    tags = [x["tag"] for x in json.loads(imp.files["ruby_import.json"])["packages"]]
    assert tags[3] == "gem:rake@13.2.1"


def test_platform_mismatch_is_a_project_error(tmp_path):
    p = project(tmp_path, lock=LOCK.replace("  ruby\n  x86_64-linux\n", "  arm64-darwin-23\n"))
    with pytest.raises(ProjectError, match=re.escape("PLATFORMS lists only arm64-darwin-23")):
        ECO.plan(p, ECO.dependencies(p), CTX)


@pytest.mark.parametrize(("lock", "message"), [
    ("GEM\n  remote: https://rubygems.org/\n  specs:\n    rake 13\n", "Gemfile.lock:4: cannot parse spec line 'rake 13'"),
    ("FOO\n  bar\n", "Gemfile.lock:1: unexpected section 'FOO'"),
    ("DEPENDENCIES\n  rake\n", "Gemfile.lock:2: dependency rake has no locked spec"),
    ("\n", "no GEM/GIT/PATH specs"),
    ("{\"lockfileVersion\": 3}\n", "unexpected section"),
])
def test_broken_lockfiles(tmp_path, lock, message):
    p = project(tmp_path, lock=lock)
    with pytest.raises(ProjectError, match=re.escape(message)):
        ECO.dependencies(p)


def test_gemfile_without_lock(tmp_path):
    p = project(tmp_path, gemfile='source "https://rubygems.org"\n\ngem "rake", "13.2.1"\ngem "rack"\n', lock=None)
    deps = ECO.dependencies(p)
    assert [(d.name, d.version, d.line, d.manifest) for d in deps] == [
        ("rake", "13.2.1", 3, "Gemfile"), ("rack", None, 4, "Gemfile")]
    assert p.notes and "no lockfile" in p.notes[0]
    fetch = ECO.plan(p, deps, CTX)[0]
    assert fetch.argv[-1] == "unlocked" and fetch.registries == ["rubygems.org"]


def test_detect(tmp_path):
    assert ECO.detect(tmp_path) == []
    (tmp_path / "gems.rb").write_text("")
    (tmp_path / "gems.locked").write_text("")
    [p] = ECO.detect(tmp_path)
    assert (p.manager, p.manifest.name, p.lockfile.name) == ("bundler", "gems.rb", "gems.locked")
