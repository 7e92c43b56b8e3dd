"""Which syscalls to record and what their arguments are called.

`SPECS` lists, for every syscall capture knows how to decode, its x86_64 arguments in order with a
name and a kind. The strace parser names positional arguments with it, the bpftrace generator
decides what to stash at entry and print at exit with it, and the state table reads the decoded
values back under the same names. A syscall outside `SPECS` can still be recorded: it then carries
only its result (and its fd when the first argument is one).

Kinds: fd, dirfd, int, uint, path (resolved against cwd/dirfd), str, buf (payload, snap-length
limited), sockaddr (input), sockaddr_out (filled by the kernel), msghdr, pair (int[2] output),
argv, envp, clone_args, open_how, skip (not decoded).
"""

from __future__ import annotations

SPECS: dict[str, tuple[tuple[str, str], ...]] = {
    # files
    "open": (("path", "path"), ("flags", "uint"), ("mode", "uint")),
    "openat": (("dirfd", "dirfd"), ("path", "path"), ("flags", "uint"), ("mode", "uint")),
    "openat2": (("dirfd", "dirfd"), ("path", "path"), ("how", "open_how"), ("size", "skip")),
    "creat": (("path", "path"), ("mode", "uint")),
    "close": (("fd", "fd"),),
    "chdir": (("path", "path"),),
    "fchdir": (("fd", "fd"),),
    "chroot": (("path", "path"),),
    "dup": (("oldfd", "fd"),),
    "dup2": (("oldfd", "fd"), ("newfd", "int")),
    "dup3": (("oldfd", "fd"), ("newfd", "int"), ("flags", "uint")),
    "fcntl": (("fd", "fd"), ("cmd", "int"), ("arg", "uint")),
    "pipe": (("fds", "pair"),),
    "pipe2": (("fds", "pair"), ("flags", "uint")),
    "memfd_create": (("name", "str"), ("flags", "uint")),
    "symlink": (("target", "str"), ("linkpath", "path")),
    "symlinkat": (("target", "str"), ("linkdirfd", "dirfd"), ("linkpath", "path")),
    "link": (("oldpath", "path"), ("newpath", "path")),
    "linkat": (("olddir", "dirfd"), ("oldpath", "path"), ("newdir", "dirfd"), ("newpath", "path"),
               ("flags", "uint")),
    "unlink": (("path", "path"),),
    "unlinkat": (("dirfd", "dirfd"), ("name", "path"), ("flags", "uint")),
    "rename": (("oldpath", "path"), ("newpath", "path")),
    "renameat": (("olddirfd", "dirfd"), ("oldpath", "path"), ("newdirfd", "dirfd"), ("newpath", "path")),
    "renameat2": (("olddirfd", "dirfd"), ("oldpath", "path"), ("newdirfd", "dirfd"), ("newpath", "path"),
                  ("flags", "uint")),
    "mkdir": (("path", "path"), ("mode", "uint")),
    "mkdirat": (("dirfd", "dirfd"), ("path", "path"), ("mode", "uint")),
    "rmdir": (("path", "path"),),
    "chmod": (("filename", "path"), ("mode", "uint")),
    "fchmod": (("fd", "fd"), ("mode", "uint")),
    "fchmodat": (("dirfd", "dirfd"), ("filename", "path"), ("mode", "uint")),
    "chown": (("path", "path"), ("uid", "int"), ("gid", "int")),
    "lchown": (("path", "path"), ("uid", "int"), ("gid", "int")),
    "fchown": (("fd", "fd"), ("uid", "int"), ("gid", "int")),
    "fchownat": (("dirfd", "dirfd"), ("pathname", "path"), ("uid", "int"), ("gid", "int"), ("flags", "uint")),
    "truncate": (("path", "path"), ("length", "int")),
    "ftruncate": (("fd", "fd"), ("length", "int")),
    "access": (("name", "path"), ("mode", "uint")),
    "faccessat": (("dirfd", "dirfd"), ("name", "path"), ("mode", "uint")),
    "readlink": (("path", "path"), ("buf", "skip"), ("size", "skip")),
    "readlinkat": (("dirfd", "dirfd"), ("path", "path"), ("buf", "skip"), ("size", "skip")),
    "mount": (("dev", "str"), ("dir", "path"), ("type", "str"), ("flags", "uint"), ("data", "skip")),
    "umount2": (("name", "path"), ("flags", "uint")),
    "init_module": (("img", "skip"), ("length", "uint"), ("uargs", "str")),
    "finit_module": (("fd", "fd"), ("uargs", "str"), ("flags", "uint")),
    "delete_module": (("name", "str"), ("flags", "uint")),
    # I/O (recorded only when asked for)
    "read": (("fd", "fd"), ("data", "skip"), ("size", "uint")),
    "write": (("fd", "fd"), ("data", "buf"), ("size", "uint")),
    "pread64": (("fd", "fd"), ("data", "skip"), ("size", "uint"), ("pos", "int")),
    "pwrite64": (("fd", "fd"), ("data", "buf"), ("size", "uint"), ("pos", "int")),
    "readv": (("fd", "fd"), ("iov", "skip"), ("iovcnt", "uint")),
    "writev": (("fd", "fd"), ("iov", "skip"), ("iovcnt", "uint")),
    # processes
    "execve": (("filename", "path"), ("argv", "argv"), ("envp", "envp")),
    "execveat": (("dirfd", "dirfd"), ("filename", "path"), ("argv", "argv"), ("envp", "envp"), ("flags", "uint")),
    "clone": (("flags", "uint"), ("stack", "skip"), ("parent_tid", "skip"), ("child_tid", "skip"), ("tls", "skip")),
    "clone3": (("cl_args", "clone_args"), ("size", "skip")),
    "fork": (),
    "vfork": (),
    "setuid": (("uid", "int"),),
    "setgid": (("gid", "int"),),
    "setreuid": (("ruid", "int"), ("euid", "int")),
    "setregid": (("rgid", "int"), ("egid", "int")),
    "setresuid": (("ruid", "int"), ("euid", "int"), ("suid", "int")),
    "setresgid": (("rgid", "int"), ("egid", "int"), ("sgid", "int")),
    "setsid": (),
    "setpgid": (("pid", "int"), ("pgid", "int")),
    "ptrace": (("request", "int"), ("pid", "int"), ("addr", "uint"), ("data", "uint")),
    "kill": (("pid", "int"), ("sig", "int")),
    "tgkill": (("tgid", "int"), ("tid", "int"), ("sig", "int")),
    "unshare": (("flags", "uint"),),
    "setns": (("fd", "fd"), ("nstype", "uint")),
    "prctl": (("option", "int"), ("arg2", "uint"), ("arg3", "uint"), ("arg4", "uint"), ("arg5", "uint")),
    "bpf": (("cmd", "int"), ("attr", "skip"), ("size", "uint")),
    "userfaultfd": (("flags", "uint"),),
    "seccomp": (("op", "uint"), ("flags", "uint"), ("args", "skip")),
    "pidfd_open": (("pid", "int"), ("flags", "uint")),
    "pidfd_getfd": (("pidfd", "fd"), ("targetfd", "int"), ("flags", "uint")),
    "io_uring_setup": (("entries", "uint"), ("params", "skip")),
    # network
    "socket": (("domain", "int"), ("type", "uint"), ("proto", "int")),
    "socketpair": (("domain", "int"), ("type", "uint"), ("proto", "int"), ("fds", "pair")),
    "connect": (("fd", "fd"), ("addr", "sockaddr"), ("addrlen", "skip")),
    "bind": (("fd", "fd"), ("addr", "sockaddr"), ("addrlen", "skip")),
    "listen": (("fd", "fd"), ("backlog", "int")),
    "accept": (("fd", "fd"), ("addr", "sockaddr_out"), ("addrlen", "skip")),
    "accept4": (("fd", "fd"), ("addr", "sockaddr_out"), ("addrlen", "skip"), ("flags", "uint")),
    "sendto": (("fd", "fd"), ("data", "buf"), ("size", "uint"), ("flags", "uint"), ("addr", "sockaddr"),
               ("addrlen", "skip")),
    "recvfrom": (("fd", "fd"), ("data", "skip"), ("size", "uint"), ("flags", "uint"), ("addr", "sockaddr_out"),
                 ("addrlen", "skip")),
    "sendmsg": (("fd", "fd"), ("msg", "msghdr"), ("flags", "uint")),
    "recvmsg": (("fd", "fd"), ("msg", "skip"), ("flags", "uint")),
    "shutdown": (("fd", "fd"), ("how", "int")),
}

# Syscalls the state table needs whatever the rules ask for: the process tree (clone family, execve
# family; exits come from strace's "+++" lines and the sched_process_exit tracepoint), cwd, fd
# tables (every call that creates, copies or closes an fd), credentials and sessions.
STATE_SYSCALLS: frozenset[str] = frozenset({
    "clone", "clone3", "fork", "vfork", "execve", "execveat", "chdir", "fchdir",
    "open", "openat", "openat2", "creat", "close",
    "socket", "connect", "bind", "listen", "accept", "accept4",
    "dup", "dup2", "dup3", "fcntl", "pipe", "pipe2", "socketpair", "memfd_create",
    "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setsid",
})

# libsinsp event names that are not syscalls but that capture can produce
SINSP_EVENTS: frozenset[str] = frozenset({"procexit"})

# Syscalls that never return (no exit event; strace prints "= ?")
NO_RETURN: frozenset[str] = frozenset({"exit", "exit_group"})


def syscalls_to_trace(evttypes: set[str] | frozenset[str] | None) -> frozenset[str]:
    """The caller's event types (syscall names) plus the state-keeping set.

    `None` means "everything capture knows how to decode" (useful for debugging, costly).
    """
    if evttypes is None:
        return frozenset(SPECS) | STATE_SYSCALLS
    wanted = {e for e in evttypes if e not in SINSP_EVENTS and e not in NO_RETURN}
    return frozenset(wanted) | STATE_SYSCALLS
