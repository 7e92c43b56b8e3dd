"""The bubblewrap command line of one run: namespaces, the filesystem view, the environment.

What the sandbox sees:
* a read-only root with read-only /usr (and the /bin, /lib*, /sbin links or binds the host has);
* a *selected* /etc: only files tools need, plus per-Sandbox passwd, group, hosts, hostname,
  resolv.conf and machine-id; never shadow, ssh host keys, sudoers, the host's npmrc/pip.conf ...;
* fresh /proc (its own pid namespace), minimal /dev, size-limited tmpfs on /tmp, home, /dev/shm,
  /run and /var; the project directory and extra binds from the staging directory;
* nothing of /root, /home, /work, /srv, /opt, /mnt, /sys (empty directories where a container
  would have them) and no host environment variable (`--clearenv`).
Arguments go to bwrap through a memfd (`--args`), so neither the host's process list nor the
sandbox (bwrap is not pid 1: `--as-pid-1` puts our small init shell there) shows them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from tracehound.sandbox.persona import Persona
from tracehound.sandbox.staging import Staging

ETC_DEFAULT = (
    "alternatives", "bash.bashrc", "bash_completion.d", "ca-certificates", "ca-certificates.conf",
    "debian_version", "gai.conf", "host.conf", "inputrc", "issue", "ld.so.cache", "ld.so.conf",
    "ld.so.conf.d", "locale.alias", "locale.gen", "localtime", "login.defs", "magic", "magic.mime",
    "mime.types", "networks", "nsswitch.conf", "os-release", "perl", "profile", "profile.d", "protocols",
    "python3", "python3.11", "python3.12", "python3.13", "rpc", "services", "shells", "skel",
    "ssl/certs", "ssl/openssl.cnf", "terminfo", "timezone", "wgetrc", "xattr.conf", "ethertypes",
    "iproute2",
)
GENERATED_ETC = ("passwd", "group", "hostname", "hosts", "resolv.conf", "machine-id")
SYSTEM_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# pid 1 inside: runs the command, reports its exit status on fd 3, then waits on fd 4 until the
# host has listed (and killed) whatever the command left behind
INIT_SCRIPT = '"$@" 3>&- 4>&-; echo $? >&3; exec 3>&-; read x <&4'
FD_RC, FD_HOLD, FD_ARGS, FD_STATUS = 3, 4, 5, 6


def etc_entries(extra: Sequence[str] = ()) -> list[tuple[str, str]]:
    """(kind, path) for /etc entries: ('link', target) or ('bind', path); skips what is absent."""
    out = []
    seen = set()
    for name in (*ETC_DEFAULT, *extra):
        name = name.strip("/")
        if not name or name in seen or name in GENERATED_ETC or name.startswith(".."):
            continue
        seen.add(name)
        path = f"/etc/{name}"
        if os.path.islink(path):
            out.append(("link", name))
        elif os.path.exists(path):
            out.append(("bind", name))
    return out


def build_args(*, persona: Persona, staging: Staging, env: Mapping[str, str], cwd: str, tmpfs_mb: int,
               etc_extra: Sequence[str] = ()) -> list[str]:
    """bwrap options (everything before the command), as written to the --args memfd."""
    p = persona
    a: list[str] = [
        "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup",
        "--disable-userns", "--assert-userns-disabled",
        "--uid", str(p.uid), "--gid", str(p.gid), "--hostname", p.hostname,
        "--die-with-parent", "--new-session", "--as-pid-1",
        "--clearenv",
    ]
    for k, v in env.items():
        a += ["--setenv", k, v]
    # system directories
    a += ["--ro-bind", "/usr", "/usr"]
    for name in SYSTEM_LINKS:
        path = f"/{name}"
        if os.path.islink(path):
            a += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            a += ["--ro-bind", path, path]
    a += ["--proc", "/proc", "--dev", "/dev"]
    small = max(1, min(tmpfs_mb, 64))
    a += ["--perms", "1777", "--size", str(small * 1024 * 1024), "--tmpfs", "/dev/shm"]
    # /etc: selected host entries + generated files
    a += ["--perms", "0755", "--size", str(8 * 1024 * 1024), "--tmpfs", "/etc"]
    for kind, name in etc_entries(etc_extra):
        dest = f"/etc/{name}"
        if kind == "link":
            a += ["--symlink", os.readlink(dest), dest]
        else:
            a += ["--ro-bind", dest, dest]
    for name in GENERATED_ETC:
        a += ["--ro-bind", str(staging.etc / name), f"/etc/{name}"]
    a += ["--symlink", "../proc/self/mounts", "/etc/mtab"]
    a += ["--remount-ro", "/etc"]
    # writable scratch areas
    a += ["--perms", "0755", "--size", str(small * 1024 * 1024), "--tmpfs", "/run"]
    a += ["--perms", "1777", "--dir", "/run/lock"]
    a += ["--perms", "0755", "--size", str(small * 1024 * 1024), "--tmpfs", "/var"]
    for d in ("/var/cache", "/var/lib", "/var/log", "/var/mail", "/var/opt", "/var/spool", "/var/backups"):
        a += ["--perms", "0755", "--dir", d]
    a += ["--perms", "1777", "--dir", "/var/tmp"]
    a += ["--symlink", "../run", "/var/run", "--symlink", "../run/lock", "/var/lock"]
    a += ["--bind", str(staging.tmp), "/tmp"]
    a += ["--perms", "0755", "--dir", "/home", "--bind", str(staging.home), p.home]
    # the directories an ordinary container has, empty
    for d in ("/root", "/mnt", "/media", "/srv", "/opt", "/boot", "/sys"):
        a += ["--perms", "0700" if d == "/root" else "0755", "--dir", d]
    a += ["--ro-bind-try", "/sys/devices/system/cpu", "/sys/devices/system/cpu"]
    # project and extra binds (their parents made 0755 like any directory a CI image has)
    made: set[str] = {"/", "/home", "/tmp", "/var", "/run", "/etc", "/usr"}

    def parents(dest: str) -> list[str]:
        out = []
        for parent in reversed(Path(dest).parents):
            s = str(parent)
            if s not in made and not s.startswith(("/proc", "/dev", "/usr", "/etc")):
                made.add(s)
                out += ["--perms", "0755", "--dir", s]
        return out

    if staging.project is not None:
        a += parents(p.project_mount)
        a += ["--bind", str(staging.project.staged), p.project_mount]
    for sb in staging.binds:
        a += parents(sb.bind.dest)
        a += ["--bind" if sb.bind.writable else "--ro-bind", str(sb.staged), sb.bind.dest]
    a += ["--chdir", cwd]
    a += ["--remount-ro", "/"]
    return a


def command(bwrap: str, argv: Sequence[str]) -> list[str]:
    """The bwrap invocation (options come from the --args memfd) running `argv` under the init."""
    return [bwrap, "--args", str(FD_ARGS), "--json-status-fd", str(FD_STATUS), "--",
            "/bin/sh", "-c", INIT_SCRIPT, "sh", *argv]


def args_memfd(args: Sequence[str]) -> int:
    fd = os.memfd_create("bwrap-args", os.MFD_CLOEXEC)
    data = b"".join(s.encode() + b"\0" for s in args)
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def find_bwrap() -> str:
    for d in ("/usr/bin", "/usr/local/bin", "/bin"):
        p = Path(d) / "bwrap"
        if p.exists():
            return str(p)
    return "bwrap"
