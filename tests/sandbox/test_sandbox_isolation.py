"""What the code under test sees: a plausible CI job, its own secrets, nothing of the host, no way out.

All tests run real bubblewrap in real namespaces (root needed).
"""

from __future__ import annotations

import json
import os
import re
import textwrap
from pathlib import Path

import pytest

from tracehound.sandbox import Sandbox, SandboxConfig

pytestmark = pytest.mark.root

PROBE = textwrap.dedent(r"""
    import json, os, socket, subprocess
    home = os.path.expanduser("~")
    files = {}
    for rel in (".npmrc", ".pypirc", ".gem/credentials", ".aws/credentials", ".ssh/id_rsa", ".ssh/known_hosts",
                ".kube/config", ".git-credentials", ".docker/config.json", ".bashrc", ".profile", ".gitconfig"):
        try:
            files[rel] = open(os.path.join(home, rel)).read()
        except OSError as e:
            files[rel] = None
    print(json.dumps({
        "hostname": socket.gethostname(),
        "user": subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip(),
        "uid": os.getuid(),
        "home": home,
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "files": files,
        "root_entries": sorted(os.listdir("/")),
        "home_entries": sorted(os.listdir("/home")),
        "pid1": open("/proc/1/cmdline", "rb").read().split(b"\0")[0].decode(),
        "mountinfo": open("/proc/self/mountinfo").read(),
        "cgroup": open("/proc/self/cgroup").read(),
    }))
""")


def _probe(sb: Sandbox) -> dict:
    res = sb.run(["python3", "-c", PROBE])
    assert res.ok, (res.exit_code, res.error, res.stderr)
    return json.loads(res.stdout)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two Sandboxes' views of themselves (with a project directory and a host env secret set)."""
    project = tmp_path_factory.mktemp("project")
    (project / "package.json").write_text('{"name": "demo"}\n')
    os.environ["TRACEHOUND_TEST_HOST_SECRET"] = "host-secret-value-8b1f"
    try:
        views = []
        for _ in range(2):
            with Sandbox(SandboxConfig(project_dir=project, timeout=60)) as sb:
                views.append((_probe(sb), sb.describe(), {t.value: t for t in sb.honeytokens}))
        return views
    finally:
        del os.environ["TRACEHOUND_TEST_HOST_SECRET"]


def test_looks_like_a_gitlab_job(two_runs):
    for view, desc, _ in two_runs:
        env = view["env"]
        assert view["hostname"] == desc["hostname"] == env["HOSTNAME"]
        assert re.fullmatch(r"runner-[a-z0-9]{8}-project-\d+-concurrent-\d", view["hostname"])
        assert view["user"] == desc["user"] == env["USER"] and view["user"] != "root"
        assert view["uid"] == desc["uid"] and 1000 <= view["uid"] < 2000
        assert view["home"] == f"/home/{view['user']}" == env["HOME"]
        assert view["cwd"] == env["CI_PROJECT_DIR"] == desc["project_mount"]
        assert env["CI"] == "true" and env["GITLAB_CI"] == "true"
        for var in ("CI_JOB_ID", "CI_PROJECT_PATH", "CI_PIPELINE_ID", "CI_SERVER_URL", "CI_COMMIT_SHA",
                    "CI_JOB_TOKEN", "NPM_TOKEN", "GITHUB_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert env.get(var), var
        assert view["home_entries"] == [view["user"]]
        assert view["pid1"] == "/bin/sh"  # like a container's entrypoint shell, not bwrap
        assert all(line.endswith(":/") for line in view["cgroup"].split())  # cgroup namespace
        for f in (".bashrc", ".profile", ".gitconfig"):
            assert view["files"][f]


def test_two_runs_differ(two_runs):
    (a, da, _), (b, db, _) = two_runs
    for key in ("hostname", "home", "cwd"):
        if key != "home" or a["user"] != b["user"]:
            assert a[key] != b[key], key
    for var in ("CI_JOB_ID", "CI_PIPELINE_ID", "CI_COMMIT_SHA", "CI_JOB_TOKEN", "NPM_TOKEN", "AWS_SECRET_ACCESS_KEY"):
        assert a["env"][var] != b["env"][var], var
    assert da["addresses"]["ipv6"] != db["addresses"]["ipv6"]
    assert not set(t["value"] for t in da["honeytokens"]) & set(t["value"] for t in db["honeytokens"])


def test_honeytoken_files_hold_the_registered_values(two_runs):
    for view, _desc, by_value in two_runs:
        files = {f"{view['home']}/{rel}": content for rel, content in view["files"].items()}
        planted_in_files = 0
        for value, tok in by_value.items():
            for loc in tok.locations:
                if loc.startswith("env:"):
                    if loc == "env:CI_REPOSITORY_URL":
                        assert value in view["env"]["CI_REPOSITORY_URL"]
                    else:
                        assert view["env"][loc[4:]] == value, loc
                elif tok.kind != "docker_registry_password":
                    assert value in files[loc], (tok.kind, loc)
                    planted_in_files += 1
        assert planted_in_files >= 10
        assert "-----BEGIN OPENSSH PRIVATE KEY-----" in files[f"{view['home']}/.ssh/id_rsa"]
        assert "github.com" not in files[f"{view['home']}/.ssh/known_hosts"]  # hashed entries


def test_host_is_invisible(two_runs):
    for view, _, _ in two_runs:
        assert "TRACEHOUND_TEST_HOST_SECRET" not in view["env"]
        assert "host-secret-value-8b1f" not in json.dumps(view["env"])
        assert not any(k.startswith(("PYTEST", "VIRTUAL_ENV", "PYENV")) for k in view["env"])
        assert ".dockerenv" not in view["root_entries"] and "work" not in view["root_entries"]
        assert "tracehound" not in view["mountinfo"] and "tracehound" not in json.dumps(view["env"])


HOST_FILES = textwrap.dedent(r"""
    import json, os
    out = {}
    for p in ("/root", "/home", "/work", "/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/ssh", "/etc/npmrc",
              "/etc/pip.conf", "/run/tracehound", "/run/netns", "/sys/fs/cgroup", "/var/lib", "/opt", "/mnt",
              "/root/.ssh/id_rsa", "/proc/1/root/root", "/.dockerenv", "/container_info.json"):
        try:
            out[p] = sorted(os.listdir(p)) if os.path.isdir(p) else open(p).read()
        except OSError as e:
            out[p] = "ERR:" + e.__class__.__name__
    print(json.dumps(out))
""")


def test_host_files_are_not_readable():
    with Sandbox(SandboxConfig(timeout=60)) as sb:
        res = sb.run(["python3", "-c", HOST_FILES])
        home = sb.home
    assert res.ok, res.stderr
    seen = json.loads(res.stdout)
    assert seen["/root"] in ([], "ERR:PermissionError")
    assert seen["/home"] == [home.rsplit("/", 1)[1]]
    for p in ("/work", "/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/ssh", "/etc/npmrc", "/etc/pip.conf",
              "/run/tracehound", "/run/netns", "/sys/fs/cgroup", "/root/.ssh/id_rsa", "/.dockerenv",
              "/container_info.json"):
        assert str(seen[p]).startswith("ERR:"), (p, seen[p])
    assert seen["/var/lib"] == [] and seen["/opt"] == [] and seen["/mnt"] == []
    if Path("/root").exists() and os.listdir("/root"):
        assert seen["/proc/1/root/root"] in ([], "ERR:PermissionError")


ESCAPES = textwrap.dedent(r"""
    import ctypes, errno, json, os, socket
    libc = ctypes.CDLL(None, use_errno=True)
    r = {}
    def attempt(name, fn):
        try:
            fn()
            r[name] = "ALLOWED"
        except OSError as e:
            r[name] = errno.errorcode.get(e.errno, str(e.errno))
    def call(ret):
        if ret != 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
    attempt("af_packet", lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0))
    attempt("raw_icmp", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
    attempt("raw_ipv6", lambda: socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6))
    attempt("raw_tcp", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP))
    attempt("ping_socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP))
    attempt("unshare_user", lambda: call(libc.unshare(0x10000000)))
    attempt("unshare_net", lambda: call(libc.unshare(0x40000000)))
    attempt("unshare_mount", lambda: call(libc.unshare(0x00020000)))
    def setns_self():
        fd = os.open("/proc/1/ns/mnt", os.O_RDONLY)
        call(libc.setns(fd, 0))
    attempt("setns", setns_self)
    attempt("mount", lambda: call(libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)))
    attempt("chroot", lambda: os.chroot("/tmp"))
    attempt("write_usr", lambda: open("/usr/bin/tracehound-escape", "w"))
    attempt("write_etc", lambda: open("/etc/passwd", "a"))
    attempt("write_root", lambda: open("/escape", "w"))
    attempt("mkdir_root", lambda: os.mkdir("/escape-dir"))
    attempt("sysctl", lambda: open("/proc/sys/net/ipv4/ip_forward", "w").write("1"))
    attempt("sysrq", lambda: open("/proc/sysrq-trigger", "w").write("h"))
    attempt("setuid_root", lambda: os.setuid(0))
    import subprocess
    ip = subprocess.run(["ip", "route", "add", "10.99.0.0/16", "dev", "eth0"], capture_output=True, text=True)
    r["ip_route"] = (ip.returncode, ip.stderr.strip())
    ip = subprocess.run(["ip", "link", "set", "eth0", "down"], capture_output=True, text=True)
    r["ip_link"] = (ip.returncode, ip.stderr.strip())
    caps = [l.split()[1] for l in open("/proc/self/status") if l.startswith(("CapEff", "CapPrm", "CapBnd"))]
    r["caps"] = caps
    r["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    print(json.dumps(r))
""")


def test_escape_attempts_fail():
    with Sandbox(SandboxConfig(timeout=60)) as sb:
        res = sb.run(["python3", "-c", ESCAPES])
    assert res.ok, res.stderr
    r = json.loads(res.stdout)
    for name in ("af_packet", "raw_icmp", "raw_ipv6", "raw_tcp"):
        assert r[name] == "EPERM", (name, r[name])  # no CAP_NET_RAW in the sandbox
    assert r["ping_socket"] in ("EACCES", "EPERM")
    assert r["unshare_user"] in ("ENOSPC", "EPERM", "EUSERS")  # --disable-userns
    for name in ("unshare_net", "unshare_mount", "setns", "mount", "chroot"):
        assert r[name] == "EPERM", (name, r[name])
    assert r["setuid_root"] in ("EPERM", "EINVAL")  # host root is not even mapped
    for name in ("write_usr", "write_etc", "write_root", "mkdir_root", "sysctl"):
        assert r[name] in ("EROFS", "EACCES", "EPERM"), (name, r[name])
    assert r["sysrq"] in ("EROFS", "EACCES", "EPERM", "ENOENT")  # absent on kernels without sysrq
    for name in ("ip_route", "ip_link"):
        assert r[name][0] != 0 and "Operation not permitted" in r[name][1], r[name]
    assert r["caps"] == ["0000000000000000"] * 3
    assert max(r["pids"]) < 100  # its own pid namespace: none of the host's processes
