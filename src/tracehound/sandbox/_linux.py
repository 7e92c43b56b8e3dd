"""Thin ctypes wrappers for the Linux calls Python 3.11 does not expose (setns, mounts, idmaps)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import subprocess
import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 0x2

# x86_64 and aarch64 share these numbers (new mount API syscalls are allocated generically)
SYS_open_tree = 428
SYS_move_mount = 429
SYS_mount_setattr = 442
OPEN_TREE_CLONE = 1
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_IDMAP = 0x00100000


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def mount(source: str, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    _check(_libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None,
                       ctypes.c_ulong(flags), data.encode() if data else None), f"mount {target}")


def umount(target: str, detach: bool = True) -> None:
    _check(_libc.umount2(target.encode(), MNT_DETACH if detach else 0), f"umount {target}")


def mounts_under(prefix: str) -> list[str]:
    prefix = prefix.rstrip("/")
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == prefix or mp.startswith(prefix + "/"):
                out.append(mp)
    return out


def run_in_netns(netns_path: str, fn: Callable[[], T]) -> T:
    """Call `fn` in a short-lived thread that has joined the network namespace.

    Sockets keep the namespace they were created in, so the recorders create their listening
    sockets this way and then serve them from ordinary (host-namespace) threads.
    """
    result: dict[str, object] = {}

    def body() -> None:
        try:
            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                setns(fd, CLONE_NEWNET)
            finally:
                os.close(fd)
            result["value"] = fn()
        except BaseException as e:  # re-raised in the caller
            result["error"] = e

    t = threading.Thread(target=body, name="tracehound-netns", daemon=True)
    t.start()
    t.join()
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result["value"]  # type: ignore[return-value]


def enter_netns_for_thread(netns_path: str) -> None:
    """Move the *calling thread* into a network namespace for good (used by threads that keep
    creating sockets there, like the DNS/UDP responder)."""
    fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(fd, CLONE_NEWNET)
    finally:
        os.close(fd)


def idmap_userns(uid_from: int, uid_to: int, gid_from: int, gid_to: int) -> int:
    """An fd of a fresh user namespace mapping uid_from->uid_to and gid_from->gid_to.

    Used to create idmapped mounts: files owned by `uid_from` on disk appear as `uid_to`.
    A helper process (`unshare --user`) creates the namespace; we write its maps as root.
    """
    proc = subprocess.Popen(["unshare", "--user", "--", "sleep", "30"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True)
    try:
        mine = os.readlink("/proc/self/ns/user")
        deadline = time.monotonic() + 5
        while True:
            try:
                theirs = os.readlink(f"/proc/{proc.pid}/ns/user")
            except OSError:
                theirs = mine
            if theirs != mine:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise OSError("could not create a user namespace for an idmapped mount")
            time.sleep(0.002)
        with open(f"/proc/{proc.pid}/uid_map", "w") as f:
            f.write(f"{uid_from} {uid_to} 1\n")
        with open(f"/proc/{proc.pid}/gid_map", "w") as f:
            f.write(f"{gid_from} {gid_to} 1\n")
        return os.open(f"/proc/{proc.pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        proc.kill()
        proc.wait()


def idmapped_bind(source: str, target: str, userns_fd: int, readonly: bool) -> None:
    """Bind `source` on `target` through an idmap (and nosuid,nodev; read-only if asked)."""
    fd = _check(_libc.syscall(SYS_open_tree, AT_FDCWD, source.encode(),
                              OPEN_TREE_CLONE | os.O_CLOEXEC), f"open_tree {source}")
    try:
        attr = _MountAttr(MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV
                          | (MOUNT_ATTR_RDONLY if readonly else 0), 0, 0, userns_fd)
        _check(_libc.syscall(SYS_mount_setattr, fd, b"", AT_EMPTY_PATH, ctypes.byref(attr),
                             ctypes.c_size_t(ctypes.sizeof(attr))), f"mount_setattr(idmap) {source}")
        _check(_libc.syscall(SYS_move_mount, fd, b"", AT_FDCWD, target.encode(), MOVE_MOUNT_F_EMPTY_PATH),
               f"move_mount {target}")
    finally:
        os.close(fd)


def plain_bind(source: str, target: str, readonly: bool) -> None:
    mount(source, target, None, MS_BIND)
    flags = MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | (MS_RDONLY if readonly else 0)
    mount("none", target, None, flags)


def pid_alive(pid: int, start_time: int | None = None) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return start_time is None or int(fields[19]) == start_time


def proc_start_time(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])
