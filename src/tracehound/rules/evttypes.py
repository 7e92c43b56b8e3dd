"""Valid `evt.type` names: Linux syscall names plus libsinsp's own event names.

A rule that names an event type not in this table does not compile ("unknown event type"), as in
Falco. The syscall names were taken from the Linux UAPI headers (x86_64 and asm-generic, plus the
32-bit-only calls libsinsp also knows).
"""

from __future__ import annotations

_SYSCALLS = """
    _llseek _newselect _sysctl accept accept4 access acct add_key adjtimex afs_syscall alarm arch_prctl
    bind bpf brk capget capset chdir chmod chown chown32 chroot clock_adjtime clock_adjtime64
    clock_getres clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep
    clock_nanosleep_time64 clock_settime clock_settime64 clone clone3 close close_range connect
    copy_file_range creat create_module delete_module dup dup2 dup3 epoll_create epoll_create1 epoll_ctl
    epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat
    exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_init fanotify_mark
    fchdir fchmod fchmodat fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr finit_module
    flistxattr flock fork fremovexattr fsconfig fsetxattr fsmount fsopen fspick fstat fstat64 fstatat
    fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_time64 futex_waitv futimesat
    get_kernel_syms get_mempolicy get_robust_list get_thread_area getcpu getcwd getdents getdents64
    getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getitimer getpeername getpgid getpgrp
    getpid getpmsg getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit
    getrusage getsid getsockname getsockopt gettid gettimeofday getuid getuid32 getxattr init_module
    inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel io_destroy io_getevents
    io_pgetevents io_pgetevents_time64 io_setup io_submit io_uring_enter io_uring_register
    io_uring_setup ioctl ioperm iopl ioprio_get ioprio_set ipc kcmp kexec_file_load kexec_load keyctl
    kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link
    linkat listen listxattr llistxattr lookup_dcookie lremovexattr lseek lsetxattr lstat lstat64 madvise
    mbind membarrier memfd_create memfd_secret migrate_pages mincore mkdir mkdirat mknod mknodat mlock
    mlock2 mlockall mmap mmap2 modify_ldt mount mount_setattr move_mount move_pages mprotect
    mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend
    mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock munlockall munmap
    name_to_handle_at nanosleep newfstatat nfsservctl nice oldfstat oldolduname olduname open
    open_by_handle_at open_tree openat openat2 pause perf_event_open personality pidfd_getfd pidfd_open
    pidfd_send_signal pipe pipe2 pivot_root pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64
    prctl pread64 preadv preadv2 prlimit64 process_madvise process_mrelease process_vm_readv
    process_vm_writev pselect6 pselect6_time64 ptrace putpmsg pwrite64 pwritev pwritev2 query_module
    quotactl quotactl_fd read readahead readdir readlink readlinkat readv reboot recv recvfrom recvmmsg
    recvmmsg_time64 recvmsg remap_file_pages removexattr rename renameat renameat2 request_key
    restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn
    rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_get_priority_max
    sched_get_priority_min sched_getaffinity sched_getattr sched_getparam sched_getscheduler
    sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam
    sched_setscheduler sched_yield seccomp security select semctl semget semop semtimedop
    semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto set_mempolicy
    set_mempolicy_home_node set_robust_list set_thread_area set_tid_address setdomainname setfsgid
    setfsuid setgid setgid32 setgroups sethostname setitimer setns setpgid setpriority setregid
    setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit setsid
    setsockopt settimeofday setuid setuid32 setxattr sgetmask shmat shmctl shmdt shmget shutdown
    sigaction sigaltstack signal signalfd signalfd4 sigpending sigprocmask sigreturn sigsuspend socket
    socketcall socketpair splice ssetmask stat stat64 statfs statfs64 statx swapoff swapon symlink
    symlinkat sync sync_file_range sync_file_range2 syncfs sysfs sysinfo syslog tee tgkill time
    timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime
    timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64
    times tkill truncate truncate64 tuxcall ugetrlimit umask umount umount2 uname unlink unlinkat
    unshare uselib userfaultfd ustat utime utimensat utimensat_time64 utimes vfork vhangup vm86 vm86old
    vmsplice vserver wait4 waitid waitpid write writev
"""

# libsinsp events that are not syscalls (scheduler, plugin and metadata events)
_SINSP_EVENTS = """
    switch procexit signaldeliver page_fault container cpu_hotplug infra notification drop sysdigevent
    tracer mesos k8s procinfo scapevent asyncevent pluginevent meta syscall user_added user_deleted
    group_added group_deleted
"""

SYSCALL_NAMES: frozenset[str] = frozenset(_SYSCALLS.split())
EVENT_NAMES: frozenset[str] = SYSCALL_NAMES | frozenset(_SINSP_EVENTS.split())

# Falco's "ignored" high-volume I/O syscalls (not captured unless asked for)
IO_SYSCALLS: frozenset[str] = frozenset(
    ["read", "readv", "pread64", "preadv", "preadv2", "write", "writev", "pwrite64", "pwritev", "pwritev2", "sendfile", "recv", "send"]
)

# evt.category per event type (libsinsp's coarse categories)
_CATEGORIES = {
    "file": "open openat openat2 creat close read write readv writev pread64 pwrite64 lseek stat fstat lstat "
    "newfstatat statx access faccessat faccessat2 unlink unlinkat rename renameat renameat2 mkdir mkdirat rmdir "
    "link linkat symlink symlinkat chmod fchmod fchmodat chown fchown lchown fchownat truncate ftruncate "
    "readlink readlinkat getdents getdents64 dup dup2 dup3 fcntl flock fsync fdatasync mount umount umount2 "
    "sendfile splice open_by_handle_at memfd_create inotify_init inotify_init1",
    "net": "socket connect accept accept4 bind listen sendto sendmsg sendmmsg recvfrom recvmsg recvmmsg "
    "shutdown getsockopt setsockopt socketpair getsockname getpeername",
    "process": "execve execveat clone clone3 fork vfork exit exit_group kill tkill tgkill ptrace prctl "
    "setuid setgid setresuid setresgid setreuid setregid setsid setpgid capset chroot chdir fchdir unshare "
    "setns pidfd_open pidfd_getfd procexit",
    "memory": "mmap mmap2 munmap mprotect brk mremap madvise mlock munlock userfaultfd",
    "ipc": "pipe pipe2 eventfd eventfd2 signalfd signalfd4 futex semop semget msgsnd msgrcv shmget shmat",
    "system": "init_module finit_module delete_module bpf reboot sysctl seccomp syslog",
}
CATEGORY: dict[str, str] = {name: cat for cat, names in _CATEGORIES.items() for name in names.split()}
