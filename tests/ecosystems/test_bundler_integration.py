"""The bundler plans run for real against gems built here and served from 127.0.0.1 (rubygems.org is
not reachable from the test machines): fetch through the recording proxy, then install (a C
extension compiles) and require with no network at all."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from harness import assert_ok, needs_unshare, run_plans, sandbox_layout

from tracehound.ecosystems.bundler import BundlerEcosystem

pytestmark = [
    pytest.mark.slow, pytest.mark.root, needs_unshare,
    pytest.mark.skipif(shutil.which("gem") is None or shutil.which("bundle") is None, reason="needs ruby and bundler"),
]
ECO = BundlerEcosystem()

HELLO_SPEC = """\
Gem::Specification.new do |s|
  s.name = "th-hello"; s.version = "0.1.0"; s.summary = "test gem"; s.authors = ["tracehound"]
  s.license = "MIT"; s.files = ["lib/th/hello.rb"]
end
"""
GREET_SPEC = """\
Gem::Specification.new do |s|
  s.name = "greet"; s.version = "1.0.0"; s.summary = "test gem with a C extension"; s.authors = ["tracehound"]
  s.license = "MIT"; s.files = ["lib/greet.rb", "ext/greet/extconf.rb", "ext/greet/greet.c"]
  s.extensions = ["ext/greet/extconf.rb"]
  s.add_dependency "th-hello", "= 0.1.0"
end
"""
EXTCONF = """\
require "mkmf"
require "socket"
net = begin
  TCPSocket.new("127.0.0.1", ENV.fetch("GEM_SERVER_PORT").to_i).close
  "online"
rescue SystemCallError
  "offline"
end
File.open(ENV.fetch("GREET_BUILD_LOG"), "a") { |f| f.puts("#{net} #{Dir.pwd}") }
create_makefile("greet/greet_ext")
"""
GREET_C = """\
#include <ruby.h>
static VALUE hi(VALUE self) { return rb_str_new_cstr("hi"); }
void Init_greet_ext(void) { rb_define_global_function("greet_hi", hi, 0); }
"""


@pytest.fixture(scope="module")
def gem_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("gems")
    srv = root / "srv"
    (srv / "gems").mkdir(parents=True)
    sources = {
        "hello/hello.gemspec": HELLO_SPEC,
        "hello/lib/th/hello.rb": 'module TH; HELLO = true; end\n$stdout.puts "th-hello loaded as #{ENV["TRACEHOUND_PACKAGE"]}"\n',
        "greet/greet.gemspec": GREET_SPEC,
        "greet/lib/greet.rb": 'require "greet/greet_ext"\n$stdout.puts "greet says #{greet_hi}"\n',
        "greet/ext/greet/extconf.rb": EXTCONF,
        "greet/ext/greet/greet.c": GREET_C,
    }
    for rel, text in sources.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    for d, spec in (("hello", "hello.gemspec"), ("greet", "greet.gemspec")):
        subprocess.run(["gem", "build", spec], cwd=root / d, check=True, capture_output=True)
    for g in root.glob("*/*.gem"):
        shutil.copy(g, srv / "gems" / g.name)
    subprocess.run(["gem", "generate_index", "-d", str(srv)], check=True, capture_output=True)
    handler = functools.partial(_QuietHandler, directory=str(srv))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], srv
    server.shutdown()
    server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def write_project(project: Path, port: int, bundled_with: str = "2.5.11") -> None:
    (project / "Gemfile").write_text(
        f'source "http://127.0.0.1:{port}"\n\ngem "greet", "1.0.0"\ngem "th-hello", require: "th/hello"\n')
    (project / "Gemfile.lock").write_text(f"""\
GEM
  remote: http://127.0.0.1:{port}/
  specs:
    greet (1.0.0)
      th-hello (= 0.1.0)
    th-hello (0.1.0)

PLATFORMS
  ruby
  x86_64-linux

DEPENDENCIES
  greet (= 1.0.0)
  th-hello

BUNDLED WITH
   {bundled_with}
""")


def test_fetch_install_import_from_a_loopback_gem_server(gem_server, tmp_path):
    port, _srv = gem_server
    project, tools, ctx = sandbox_layout(tmp_path)
    write_project(project, port)
    [p] = ECO.detect(project)
    deps = ECO.dependencies(p)
    assert [(d.name, d.version, d.direct, d.line) for d in deps] == [("greet", "1.0.0", True, 4),
                                                                     ("th-hello", "0.1.0", True, 6)]
    plans = ECO.plan(p, deps, ctx)
    assert plans[0].registries == [f"127.0.0.1:{port}"]
    log = tmp_path / "build.log"
    env = {"GREET_BUILD_LOG": str(log), "GEM_SERVER_PORT": str(port)}
    [fetch] = runs = run_plans(plans[:1], tools, extra_env=env)
    assert_ok(runs, 1)
    # the gems came through the proxy; BUNDLED WITH 2.5.11 did not make bundler fetch itself
    assert fetch.hosts == [f"127.0.0.1:{port}"]
    assert sorted(f.name for f in (project / "vendor" / "cache").iterdir()) == ["greet-1.0.0.gem", "th-hello-0.1.0.gem"]
    assert not log.exists()  # nothing was built while fetching
    runs = run_plans(plans[1:], tools, extra_env=env)
    assert_ok(runs, 2)
    install, imp = runs
    assert "Installing greet 1.0.0 with native extensions" in install.stdout
    [build] = log.read_text().splitlines()
    net, cwd = build.split(" ", 1)
    assert net == "offline"
    assert cwd.startswith(f"{project}/.tracehound/bundle/ruby/") and cwd.endswith("/gems/greet-1.0.0/ext/greet")
    lines = [json.loads(x) for x in imp.stdout.splitlines() if x.startswith("{")]
    status = {x["package"]: x for x in lines if "package" in x}
    assert status["greet"]["status"] == "ok" and "greet says hi" in status["greet"]["out"]
    assert status["th-hello"]["status"] == "ok"
    assert "th-hello loaded as gem:th-hello@0.1.0" in status["th-hello"]["out"]  # required as th/hello


def test_frozen_lockfile_is_honoured(gem_server, tmp_path):
    port, _srv = gem_server
    project, tools, ctx = sandbox_layout(tmp_path)
    write_project(project, port)
    with (project / "Gemfile").open("a") as fh:
        fh.write('gem "not-in-the-lock"\n')
    [p] = ECO.detect(project)
    runs = run_plans(ECO.plan(p, ECO.dependencies(p), ctx), tools)
    assert len(runs) == 1 and runs[0].returncode != 0
    assert "frozen" in (runs[0].stdout + runs[0].stderr).lower()
