"""The host-side staging directory of one Sandbox: everything bwrap mounts that is not a system dir.

    <state_dir>/<id>/           tmpfs (small), private propagation, mode 0711
        etc/                    generated passwd, group, hosts, hostname, resolv.conf, machine-id
        home/                   tmpfs (size-limited), owned by the Sandbox's host uid: dotfiles + honeytokens
        tmp/                    tmpfs (size-limited), mode 1777
        project/                the project directory, bind-mounted through an idmap
        binds/<n>/              extra binds, idmapped, read-only ones mounted read-only

bwrap runs as an unprivileged host uid, so it could not reach a project under /root or a pytest
tmp dir: it reaches everything through this directory instead. The idmap makes files owned by the
project's owner appear (and get created) as the sandbox's own uid, without chown-ing the caller's
tree and without the sandbox ever running as host root. Unmounting the staging tmpfs detaches
everything below it at once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from tracehound.sandbox import _linux
from tracehound.sandbox.config import Bind, SandboxError
from tracehound.sandbox.honeytokens import PlantedHome
from tracehound.sandbox.persona import Persona


@dataclass
class StagedBind:
    bind: Bind
    staged: Path  # where bwrap finds it
    idmapped: bool


@dataclass
class Staging:
    root: Path
    host_uid: int
    host_gid: int
    mounted: bool = False
    binds: list[StagedBind] = field(default_factory=list)
    project: StagedBind | None = None
    warnings: list[str] = field(default_factory=list)
    _userns: dict[tuple[int, int], int] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @classmethod
    def create(cls, state_dir: Path, sandbox_id: str, host_uid: int, host_gid: int, tmpfs_mb: int) -> Staging:
        state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(state_dir, 0o711)
        for parent in state_dir.resolve().parents:
            # bwrap runs as an unprivileged uid and must be able to walk down to the staging dir
            if not os.stat(parent).st_mode & 0o001:
                raise SandboxError(f"state_dir {state_dir} is not reachable by unprivileged users: "
                                   f"{parent} lacks o+x (use a directory like /run/tracehound)")
        root = state_dir / sandbox_id
        root.mkdir(mode=0o711)
        st = cls(root, host_uid, host_gid)
        try:
            _linux.mount("tmpfs", str(root), "tmpfs", _linux.MS_NOSUID | _linux.MS_NODEV,
                         "size=8m,mode=0711")
            st.mounted = True
            _linux.mount("none", str(root), None, _linux.MS_PRIVATE | _linux.MS_REC)
            for d in ("etc", "home", "tmp", "project", "binds"):
                (root / d).mkdir()
            os.chmod(root / "etc", 0o755)
            inodes = max(4096, tmpfs_mb * 256)
            _linux.mount("tmpfs", str(st.home), "tmpfs", _linux.MS_NOSUID | _linux.MS_NODEV,
                         f"size={tmpfs_mb}m,nr_inodes={inodes},mode=0755,uid={host_uid},gid={host_gid}")
            _linux.mount("tmpfs", str(st.tmp), "tmpfs", _linux.MS_NOSUID | _linux.MS_NODEV,
                         f"size={tmpfs_mb}m,nr_inodes={inodes},mode=1777")
        except BaseException:
            st.destroy()
            raise
        return st

    # -- generated files ----------------------------------------------------------------------

    def write_etc(self, persona: Persona) -> None:
        p = persona
        files = {
            "passwd": _PASSWD + f"{p.user}:x:{p.uid}:{p.gid}:{p.full_name},,,:{p.home}:/bin/bash\n",
            "group": _GROUP + f"{p.user}:x:{p.gid}:\n",
            "hostname": p.hostname + "\n",
            "hosts": _HOSTS + f"{p.net.ipv4}\t{p.hostname}\n",
            "resolv.conf": f"nameserver {p.net.resolver}\n",
            "machine-id": p.machine_id + "\n",
        }
        for name, content in files.items():
            path = self.etc / name
            path.write_text(content)
            os.chmod(path, 0o644)

    def write_home(self, planted: PlantedHome) -> None:
        for rel, mode in sorted(planted.dirs.items()):
            d = self.home / rel
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, mode)
        for f in planted.files:
            path = self.home / f.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f.content)
            os.chmod(path, f.mode)
        for dirpath, dirnames, filenames in os.walk(self.home):
            for name in (*dirnames, *filenames):
                os.lchown(os.path.join(dirpath, name), self.host_uid, self.host_gid)

    # -- binds ----------------------------------------------------------------------------------

    def stage_project(self, source: Path) -> StagedBind:
        self.project = self._stage(Bind(source, "", True), self.root / "project")
        return self.project

    def stage_binds(self, binds: list[Bind]) -> None:
        for i, b in enumerate(binds):
            target = self.root / "binds" / str(i)
            if b.source.is_dir():
                target.mkdir()
            else:
                target.touch()
            self.binds.append(self._stage(b, target))

    def _stage(self, b: Bind, target: Path) -> StagedBind:
        src = str(b.source.resolve())
        st = os.stat(src)
        try:
            key = (st.st_uid, st.st_gid)
            fd = self._userns.get(key)
            if fd is None:
                fd = self._userns[key] = _linux.idmap_userns(st.st_uid, self.host_uid, st.st_gid, self.host_gid)
            _linux.idmapped_bind(src, str(target), fd, readonly=not b.writable)
            return StagedBind(b, target, True)
        except OSError as e:
            self.warnings.append(
                f"idmapped mount not possible for {src} ({e}); bound as is, the sandbox user "
                + ("may be unable to write there" if b.writable else "may be unable to read private files"))
            try:
                _linux.plain_bind(src, str(target), readonly=not b.writable)
            except OSError as e2:
                raise SandboxError(f"cannot stage bind {src}: {e2}") from e2
            return StagedBind(b, target, False)

    # -- accounting -----------------------------------------------------------------------------

    def full_areas(self) -> set[str]:
        """The persistent size-limited areas (home, /tmp) that are (almost) full now."""
        return {name for name, path in (("home", self.home), ("/tmp", self.tmp)) if is_full(path)}

    # -- teardown ---------------------------------------------------------------------------------

    def destroy(self) -> list[str]:
        problems = []
        for fd in self._userns.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._userns.clear()
        if self.mounted:
            try:
                _linux.umount(str(self.root), detach=True)
            except OSError as e:
                problems.append(f"umount {self.root}: {e}")
            self.mounted = False
        if self.root.exists():
            leftover = _linux.mounts_under(str(self.root))
            if leftover:
                problems.append(f"mounts remain under {self.root}: {leftover}")
            else:
                try:
                    shutil.rmtree(self.root)
                except OSError as e:
                    problems.append(f"rmtree {self.root}: {e}")
        return problems


def is_full(path: Path) -> bool:
    try:
        s = os.statvfs(path)
    except OSError:
        return False
    # tmpfs rounds to pages; a write that failed with ENOSPC leaves less than a page or two
    return (s.f_bavail * s.f_frsize < 2 * 4096) or (s.f_files > 0 and s.f_favail == 0)


def dir_usage(path: Path, budget_s: float = 5.0) -> int:
    """Bytes allocated under `path` (not following symlinks, not crossing mounts)."""
    import time

    total = 0
    deadline = time.monotonic() + budget_s
    try:
        dev = os.lstat(path).st_dev
    except OSError:
        return 0
    stack = [str(path)]
    while stack:
        if time.monotonic() > deadline:
            break
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                for e in it:
                    try:
                        st = e.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    total += st.st_blocks * 512
                    if e.is_dir(follow_symlinks=False) and st.st_dev == dev:
                        stack.append(e.path)
        except OSError:
            continue
    return total


_PASSWD = """\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
sys:x:3:3:sys:/dev:/usr/sbin/nologin
sync:x:4:65534:sync:/bin:/bin/sync
games:x:5:60:games:/usr/games:/usr/sbin/nologin
man:x:6:12:man:/var/cache/man:/usr/sbin/nologin
lp:x:7:7:lp:/var/spool/lpd:/usr/sbin/nologin
mail:x:8:8:mail:/var/mail:/usr/sbin/nologin
news:x:9:9:news:/var/spool/news:/usr/sbin/nologin
uucp:x:10:10:uucp:/var/spool/uucp:/usr/sbin/nologin
proxy:x:13:13:proxy:/bin:/usr/sbin/nologin
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
backup:x:34:34:backup:/var/backups:/usr/sbin/nologin
list:x:38:38:Mailing List Manager:/var/list:/usr/sbin/nologin
irc:x:39:39:ircd:/run/ircd:/usr/sbin/nologin
_apt:x:42:65534::/nonexistent:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
"""

_GROUP = """\
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
news:x:9:
uucp:x:10:
man:x:12:
proxy:x:13:
kmem:x:15:
dialout:x:20:
cdrom:x:24:
sudo:x:27:
audio:x:29:
www-data:x:33:
backup:x:34:
operator:x:37:
list:x:38:
irc:x:39:
src:x:40:
shadow:x:42:
utmp:x:43:
video:x:44:
plugdev:x:46:
staff:x:50:
games:x:60:
users:x:100:
nogroup:x:65534:
"""

_HOSTS = """\
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
"""
