"""Run a command in the current (fresh, empty) network namespace with one way out: a proxy.

    unshare -n python3 netns_bridge.py PORT UNIX_SOCKET -- CMD...

Brings up loopback, listens on 127.0.0.1:PORT and relays every connection to UNIX_SOCKET, where the
test's recording proxy (in the host namespace) answers. The command's HTTP(S)_PROXY point at
127.0.0.1:PORT, so a fetch phase can reach the registries only through the proxy, as in the
sandbox; a client that ignores the proxy variables fails instead of quietly going direct.
"""

import socket
import subprocess
import sys
import threading


def relay(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(listener, path):
    while True:
        conn, _ = listener.accept()
        up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        up.connect(path)
        threading.Thread(target=relay, args=(conn, up), daemon=True).start()
        threading.Thread(target=relay, args=(up, conn), daemon=True).start()


def main():
    port, path, sep, *cmd = sys.argv[1:]
    assert sep == "--"
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    listener = socket.socket()
    listener.bind(("127.0.0.1", int(port)))
    listener.listen(64)
    threading.Thread(target=serve, args=(listener, path), daemon=True).start()
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
