"""Linux x86_64 constants and the way Falco renders them.

Both backends hand the state table raw numbers (strace runs with `-X raw`, bpftrace prints integers),
so the names rules compare against ("O_WRONLY", "AF_PACKET", "PTRACE_ATTACH", "ENOENT") are produced
in exactly one place. The name tables and their order follow libsinsp's flag tables, because Falco
prints flag sets in table order (e.g. "O_TRUNC|O_CREAT|O_WRONLY") and rule authors copy that text.
"""

from __future__ import annotations

import errno as _errno

AT_FDCWD = -100

# --- open(2) flags (x86_64, octal as in the UAPI headers) -----------------------------------------
O_ACCMODE = 0o3
O_WRONLY = 0o1
O_RDWR = 0o2
O_CREAT = 0o100
O_EXCL = 0o200
O_NOCTTY = 0o400
O_TRUNC = 0o1000
O_APPEND = 0o2000
O_NONBLOCK = 0o4000
O_DSYNC = 0o10000
O_DIRECT = 0o40000
O_LARGEFILE = 0o100000
O_DIRECTORY = 0o200000
O_NOFOLLOW = 0o400000
O_NOATIME = 0o1000000
O_CLOEXEC = 0o2000000
O_SYNC_BIT = 0o4000000  # __O_SYNC
O_PATH = 0o10000000
O_TMPFILE_BIT = 0o20000000  # __O_TMPFILE

# libsinsp's PPM_O_* encoding (what evt.rawarg.flags holds) ...
PPM_O_RDONLY = 1 << 0
PPM_O_WRONLY = 1 << 1
PPM_O_RDWR = PPM_O_RDONLY | PPM_O_WRONLY
PPM_O_CREAT = 1 << 2
PPM_O_APPEND = 1 << 3
PPM_O_DSYNC = 1 << 4
PPM_O_EXCL = 1 << 5
PPM_O_NONBLOCK = 1 << 6
PPM_O_SYNC = 1 << 7
PPM_O_TRUNC = 1 << 8
PPM_O_DIRECT = 1 << 9
PPM_O_DIRECTORY = 1 << 10
PPM_O_LARGEFILE = 1 << 11
PPM_O_CLOEXEC = 1 << 12
PPM_O_TMPFILE = 1 << 13

# ... and the order Falco prints them in.
_PPM_OPEN_NAMES: tuple[tuple[str, int], ...] = (
    ("O_LARGEFILE", PPM_O_LARGEFILE),
    ("O_DIRECTORY", PPM_O_DIRECTORY),
    ("O_DIRECT", PPM_O_DIRECT),
    ("O_TRUNC", PPM_O_TRUNC),
    ("O_SYNC", PPM_O_SYNC),
    ("O_NONBLOCK", PPM_O_NONBLOCK),
    ("O_EXCL", PPM_O_EXCL),
    ("O_DSYNC", PPM_O_DSYNC),
    ("O_APPEND", PPM_O_APPEND),
    ("O_CREAT", PPM_O_CREAT),
    ("O_RDWR", PPM_O_RDWR),
    ("O_WRONLY", PPM_O_WRONLY),
    ("O_RDONLY", PPM_O_RDONLY),
    ("O_CLOEXEC", PPM_O_CLOEXEC),
    ("O_TMPFILE", PPM_O_TMPFILE),
)


class FlagStr(str):
    """A Falco-rendered flag/enum value that also remembers the raw number (evt.rawarg.*).

    It compares and hashes like the string, so rules written against Falco's text keep working.
    """

    __slots__ = ("raw",)

    def __new__(cls, text: str, raw: int) -> FlagStr:
        obj = super().__new__(cls, text)
        obj.raw = raw
        return obj

    def __reduce__(self):  # keep pickling/copying working despite the extra slot
        return (FlagStr, (str(self), self.raw))


def open_flags_to_ppm(flags: int) -> int:
    acc = flags & O_ACCMODE
    ppm = PPM_O_RDONLY if acc == 0 else PPM_O_WRONLY if acc == O_WRONLY else PPM_O_RDWR if acc == O_RDWR else 0
    if flags & O_CREAT:
        ppm |= PPM_O_CREAT
    if flags & O_APPEND:
        ppm |= PPM_O_APPEND
    if flags & O_DSYNC:
        ppm |= PPM_O_DSYNC
    if flags & O_EXCL:
        ppm |= PPM_O_EXCL
    if flags & O_NONBLOCK:
        ppm |= PPM_O_NONBLOCK
    if flags & O_SYNC_BIT:
        ppm |= PPM_O_SYNC
    if flags & O_TRUNC:
        ppm |= PPM_O_TRUNC
    if flags & O_DIRECT:
        ppm |= PPM_O_DIRECT
    if flags & O_DIRECTORY:
        ppm |= PPM_O_DIRECTORY
    if flags & O_LARGEFILE:
        ppm |= PPM_O_LARGEFILE
    if flags & O_CLOEXEC:
        ppm |= PPM_O_CLOEXEC
    if flags & O_TMPFILE_BIT:
        ppm |= PPM_O_TMPFILE
    return ppm


_open_flags_cache: dict[int, FlagStr] = {}


def open_flags(flags: int) -> FlagStr:
    """Kernel open flags -> Falco's rendering, e.g. 0o1101 -> "O_TRUNC|O_CREAT|O_WRONLY"."""
    hit = _open_flags_cache.get(flags)
    if hit is not None:
        return hit
    ppm = open_flags_to_ppm(flags)
    names = []
    rest = ppm
    for name, bit in _PPM_OPEN_NAMES:
        if rest & bit == bit and rest:
            names.append(name)
            rest &= ~bit
    out = FlagStr("|".join(names), ppm)
    if len(_open_flags_cache) < 4096:
        _open_flags_cache[flags] = out
    return out


# --- sockets ------------------------------------------------------------------------------------
AF_UNSPEC, AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, AF_PACKET = 0, 1, 2, 10, 16, 17

# Falco prints the first name in its table whose value matches (AF_LOCAL before AF_UNIX, AF_ROUTE
# before AF_NETLINK); this list is that table's order with Linux values.
_AF_TABLE: tuple[tuple[str, int], ...] = (
    ("AF_NFC", 39), ("AF_ALG", 38), ("AF_CAIF", 37), ("AF_IEEE802154", 36), ("AF_PHONET", 35),
    ("AF_ISDN", 34), ("AF_RXRPC", 33), ("AF_IUCV", 32), ("AF_BLUETOOTH", 31), ("AF_TIPC", 30),
    ("AF_CAN", 29), ("AF_LLC", 26), ("AF_WANPIPE", 25), ("AF_PPPOX", 24), ("AF_IRDA", 23),
    ("AF_SNA", 22), ("AF_RDS", 21), ("AF_ATMSVC", 20), ("AF_ECONET", 19), ("AF_ASH", 18),
    ("AF_PACKET", 17), ("AF_ROUTE", 16), ("AF_NETLINK", 16), ("AF_KEY", 15), ("AF_SECURITY", 14),
    ("AF_NETBEUI", 13), ("AF_DECnet", 12), ("AF_ROSE", 11), ("AF_INET6", 10), ("AF_X25", 9),
    ("AF_ATMPVC", 8), ("AF_BRIDGE", 7), ("AF_NETROM", 6), ("AF_APPLETALK", 5), ("AF_IPX", 4),
    ("AF_AX25", 3), ("AF_INET", 2), ("AF_LOCAL", 1), ("AF_UNIX", 1), ("AF_UNSPEC", 0),
)
AF_NAMES: dict[int, str] = {}
for _n, _v in _AF_TABLE:
    AF_NAMES.setdefault(_v, _n)
AF_VALUES: dict[str, int] = {n: v for n, v in _AF_TABLE}
AF_VALUES.update({"AF_VSOCK": 40, "AF_XDP": 44, "AF_KCM": 41, "AF_MPLS": 28, "AF_IB": 27})


def socket_family(domain: int) -> FlagStr:
    return FlagStr(AF_NAMES.get(domain, str(domain)), domain)


SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOCK_SEQPACKET = 1, 2, 3, 5
SOCK_TYPE_MASK = 0xF
SOCK_NONBLOCK = 0o4000
SOCK_CLOEXEC = 0o2000000
SOCK_TYPE_VALUES = {
    "SOCK_STREAM": 1, "SOCK_DGRAM": 2, "SOCK_RAW": 3, "SOCK_RDM": 4, "SOCK_SEQPACKET": 5,
    "SOCK_DCCP": 6, "SOCK_PACKET": 10, "SOCK_NONBLOCK": SOCK_NONBLOCK, "SOCK_CLOEXEC": SOCK_CLOEXEC,
}
IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6 = 1, 6, 17, 58
IPPROTO_VALUES = {"IPPROTO_IP": 0, "IPPROTO_ICMP": 1, "IPPROTO_TCP": 6, "IPPROTO_UDP": 17,
                  "IPPROTO_IPV6": 41, "IPPROTO_ICMPV6": 58, "IPPROTO_RAW": 255}

# fd.type for a socket() domain (libsinsp: anything else is "unknown"; AF_PACKET is kept apart so
# that rules and reports can tell a packet socket when they see one)
SOCKET_FD_TYPES = {AF_INET: "ipv4", AF_INET6: "ipv6", AF_UNIX: "unix", AF_NETLINK: "netlink"}

# --- clone --------------------------------------------------------------------------------------
CSIGNAL = 0xFF
CLONE_VM = 0x100
CLONE_FS = 0x200
CLONE_FILES = 0x400
CLONE_SIGHAND = 0x800
CLONE_PIDFD = 0x1000
CLONE_PTRACE = 0x2000
CLONE_VFORK = 0x4000
CLONE_PARENT = 0x8000
CLONE_THREAD = 0x10000
CLONE_NEWNS = 0x20000
CLONE_SYSVSEM = 0x40000
CLONE_SETTLS = 0x80000
CLONE_PARENT_SETTID = 0x100000
CLONE_CHILD_CLEARTID = 0x200000
CLONE_UNTRACED = 0x800000
CLONE_CHILD_SETTID = 0x1000000
CLONE_NEWCGROUP = 0x2000000
CLONE_NEWUTS = 0x4000000
CLONE_NEWIPC = 0x8000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_IO = 0x80000000
SIGCHLD = 17

# Falco's clone_flags table order
_CLONE_TABLE: tuple[tuple[str, int], ...] = (
    ("CLONE_FILES", CLONE_FILES), ("CLONE_FS", CLONE_FS), ("CLONE_IO", CLONE_IO),
    ("CLONE_NEWIPC", CLONE_NEWIPC), ("CLONE_NEWNET", CLONE_NEWNET), ("CLONE_NEWNS", CLONE_NEWNS),
    ("CLONE_NEWPID", CLONE_NEWPID), ("CLONE_NEWUTS", CLONE_NEWUTS), ("CLONE_PARENT", CLONE_PARENT),
    ("CLONE_PARENT_SETTID", CLONE_PARENT_SETTID), ("CLONE_PTRACE", CLONE_PTRACE),
    ("CLONE_SIGHAND", CLONE_SIGHAND), ("CLONE_SYSVSEM", CLONE_SYSVSEM), ("CLONE_THREAD", CLONE_THREAD),
    ("CLONE_UNTRACED", CLONE_UNTRACED), ("CLONE_VM", CLONE_VM), ("CLONE_NEWUSER", CLONE_NEWUSER),
    ("CLONE_CHILD_CLEARTID", CLONE_CHILD_CLEARTID), ("CLONE_CHILD_SETTID", CLONE_CHILD_SETTID),
    ("CLONE_SETTLS", CLONE_SETTLS), ("CLONE_VFORK", CLONE_VFORK), ("CLONE_NEWCGROUP", CLONE_NEWCGROUP),
)
CLONE_VALUES: dict[str, int] = {n: v for n, v in _CLONE_TABLE}
CLONE_VALUES["CLONE_PIDFD"] = CLONE_PIDFD
CLONE_VALUES["CLONE_DETACHED"] = 0x400000


def clone_flags(flags: int) -> FlagStr:
    names = [n for n, v in _CLONE_TABLE if flags & v]
    return FlagStr("|".join(names) if names else "0", flags)


# --- ptrace -------------------------------------------------------------------------------------
PTRACE_REQUESTS: dict[int, str] = {
    0: "PTRACE_TRACEME", 1: "PTRACE_PEEKTEXT", 2: "PTRACE_PEEKDATA", 3: "PTRACE_PEEKUSR",
    4: "PTRACE_POKETEXT", 5: "PTRACE_POKEDATA", 6: "PTRACE_POKEUSR", 7: "PTRACE_CONT", 8: "PTRACE_KILL",
    9: "PTRACE_SINGLESTEP", 12: "PTRACE_GETREGS", 13: "PTRACE_SETREGS", 14: "PTRACE_GETFPREGS",
    15: "PTRACE_SETFPREGS", 16: "PTRACE_ATTACH", 17: "PTRACE_DETACH", 18: "PTRACE_GETFPXREGS",
    19: "PTRACE_SETFPXREGS", 24: "PTRACE_SYSCALL", 25: "PTRACE_GET_THREAD_AREA",
    26: "PTRACE_SET_THREAD_AREA", 30: "PTRACE_ARCH_PRCTL", 31: "PTRACE_SYSEMU",
    32: "PTRACE_SYSEMU_SINGLESTEP", 33: "PTRACE_SINGLEBLOCK", 0x4200: "PTRACE_SETOPTIONS",
    0x4201: "PTRACE_GETEVENTMSG", 0x4202: "PTRACE_GETSIGINFO", 0x4203: "PTRACE_SETSIGINFO",
    0x4204: "PTRACE_GETREGSET", 0x4205: "PTRACE_SETREGSET", 0x4206: "PTRACE_SEIZE",
    0x4207: "PTRACE_INTERRUPT", 0x4208: "PTRACE_LISTEN", 0x4209: "PTRACE_PEEKSIGINFO",
    0x420A: "PTRACE_GETSIGMASK", 0x420B: "PTRACE_SETSIGMASK",
}
PTRACE_VALUES = {v: k for k, v in PTRACE_REQUESTS.items()}
PTRACE_VALUES["PTRACE_PEEKUSER"] = 3
PTRACE_VALUES["PTRACE_POKEUSER"] = 6


def ptrace_request(req: int) -> FlagStr:
    return FlagStr(PTRACE_REQUESTS.get(req, "PTRACE_UNKNOWN"), req)


# --- fcntl --------------------------------------------------------------------------------------
F_DUPFD, F_GETFD, F_SETFD = 0, 1, 2
F_DUPFD_CLOEXEC = 1030
FD_CLOEXEC = 1
FCNTL_CMDS: dict[int, str] = {
    0: "F_DUPFD", 1: "F_GETFD", 2: "F_SETFD", 3: "F_GETFL", 4: "F_SETFL", 5: "F_GETLK", 6: "F_SETLK",
    7: "F_SETLKW", 8: "F_SETOWN", 9: "F_GETOWN", 10: "F_SETSIG", 11: "F_GETSIG", 15: "F_SETOWN_EX",
    16: "F_GETOWN_EX", 36: "F_OFD_GETLK", 37: "F_OFD_SETLK", 38: "F_OFD_SETLKW", 1024: "F_SETLEASE",
    1025: "F_GETLEASE", 1026: "F_NOTIFY", 1030: "F_DUPFD_CLOEXEC", 1031: "F_SETPIPE_SZ",
    1032: "F_GETPIPE_SZ",
}
FCNTL_VALUES = {v: k for k, v in FCNTL_CMDS.items()}


def fcntl_cmd(cmd: int) -> FlagStr:
    return FlagStr(FCNTL_CMDS.get(cmd, "UNKNOWN"), cmd)


# --- misc ---------------------------------------------------------------------------------------
MFD_CLOEXEC = 1
AT_EMPTY_PATH = 0x1000
AT_REMOVEDIR = 0x200


def errno_name(res: int | None) -> str:
    """evt.res: "SUCCESS" for non-negative results, the errno name otherwise."""
    if res is None:
        return "<NA>"
    if res >= 0:
        return "SUCCESS"
    return _errno.errorcode.get(-res, str(res))


SIGNALS: dict[str, int] = {
    "SIGHUP": 1, "SIGINT": 2, "SIGQUIT": 3, "SIGILL": 4, "SIGTRAP": 5, "SIGABRT": 6, "SIGBUS": 7,
    "SIGFPE": 8, "SIGKILL": 9, "SIGUSR1": 10, "SIGSEGV": 11, "SIGUSR2": 12, "SIGPIPE": 13,
    "SIGALRM": 14, "SIGTERM": 15, "SIGSTKFLT": 16, "SIGCHLD": 17, "SIGCONT": 18, "SIGSTOP": 19,
    "SIGTSTP": 20, "SIGTTIN": 21, "SIGTTOU": 22, "SIGURG": 23, "SIGXCPU": 24, "SIGXFSZ": 25,
    "SIGVTALRM": 26, "SIGPROF": 27, "SIGWINCH": 28, "SIGIO": 29, "SIGPWR": 30, "SIGSYS": 31,
}

# Symbolic names strace prints when not run with -X raw; the parser accepts them so that traces
# recorded with other settings (and hand-written test lines) still decode.
SYMBOLS: dict[str, int] = {
    "AT_FDCWD": AT_FDCWD, "NULL": 0,
    "O_RDONLY": 0, "O_WRONLY": O_WRONLY, "O_RDWR": O_RDWR, "O_CREAT": O_CREAT, "O_EXCL": O_EXCL,
    "O_NOCTTY": O_NOCTTY, "O_TRUNC": O_TRUNC, "O_APPEND": O_APPEND, "O_NONBLOCK": O_NONBLOCK,
    "O_DSYNC": O_DSYNC, "O_DIRECT": O_DIRECT, "O_LARGEFILE": O_LARGEFILE, "O_DIRECTORY": O_DIRECTORY,
    "O_NOFOLLOW": O_NOFOLLOW, "O_NOATIME": O_NOATIME, "O_CLOEXEC": O_CLOEXEC,
    "O_SYNC": O_SYNC_BIT | O_DSYNC, "O_PATH": O_PATH, "O_TMPFILE": O_TMPFILE_BIT | O_DIRECTORY,
    "FD_CLOEXEC": FD_CLOEXEC, "MFD_CLOEXEC": MFD_CLOEXEC, "MFD_ALLOW_SEALING": 2,
    "AT_EMPTY_PATH": AT_EMPTY_PATH, "AT_REMOVEDIR": AT_REMOVEDIR, "AT_SYMLINK_FOLLOW": 0x400,
    "AT_SYMLINK_NOFOLLOW": 0x100, "ETH_P_ALL": 0x3, "ETH_P_IP": 0x800,
    **AF_VALUES, **SOCK_TYPE_VALUES, **IPPROTO_VALUES, **CLONE_VALUES, **PTRACE_VALUES,
    **FCNTL_VALUES, **SIGNALS,
}
