"""`Sandbox`: one simulated CI job. Create it, `run()` commands in it (a scan's phases), read what
the network side recorded, and let the context manager tear everything down.

One Sandbox has one persona (hostname, user, ids, paths, CI variables), one home with fresh
honeytokens, one project mount, one set of cgroups, one pair of network namespaces and one set of
recorders. Each `run()` may pick its own network mode (fetch with `registry`, install with
`sinkhole`, ...); home, /tmp and the project persist between runs, like steps of one CI job.
Runs are sequential.

Process tree of a run (host view):

    caller (python) ─ [tracer from wrap=] ─ shim ⟶exec bwrap (outer) ─ sh (pid 1 inside) ─ command ...
                      host cgroups          └──────── Sandbox cgroups, netns ────────────────────┘

The shim joins the cgroups and the network namespace and drops to the Sandbox's unprivileged
host uid before exec-ing bwrap, so a tracer in front stays outside while seeing everything.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import dataclasses
import json
import os
import secrets
import select
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from tracehound.sandbox import _linux
from tracehound.sandbox import bwrap as bw
from tracehound.sandbox.cgroups import SandboxCgroups
from tracehound.sandbox.config import NETWORK_MODES, SandboxConfig, SandboxError
from tracehound.sandbox.dns import AddressBook, FakeResolver
from tracehound.sandbox.honeytokens import HoneytokenRegistry, plant
from tracehound.sandbox.netns import PROXY_PORT, NetNamespaces, RecorderPorts
from tracehound.sandbox.payloads import decompress
from tracehound.sandbox.persona import Persona
from tracehound.sandbox.proxy import HostPattern, RegistryProxy
from tracehound.sandbox.recorder import Recorder
from tracehound.sandbox.records import (
    DnsQuery,
    HoneytokenHit,
    LogStore,
    NetworkLog,
    ProxyRequest,
    TcpCapture,
    UdpCapture,
)
from tracehound.sandbox.staging import Staging, dir_usage, is_full

SHIM = str(Path(__file__).with_name("_shim.py"))
HOST_ID_BASE = 2_100_000_000  # unprivileged host uids/gids for sandboxes: far above any real user
HOST_ID_SPAN = 10_000_000
LIMIT_POLL = 0.1
SETTLE = 0.25  # seconds between the command's exit and the survivor snapshot

_ADJ = ["brisk", "calm", "eager", "fuzzy", "gentle", "jolly", "keen", "lucid", "mellow", "nimble", "quiet",
        "rapid", "sturdy", "tidy", "vivid", "witty", "zesty", "bold", "crisp", "dapper"]
_NOUN = ["beagle", "otter", "falcon", "badger", "heron", "lynx", "marten", "osprey", "puffin", "raven",
         "stoat", "tern", "vole", "wren", "ibis", "kestrel", "newt", "orca", "pika", "gecko"]


@dataclass
class ProcessInfo:
    """A process found in the Sandbox when a run ended (host pid, pid inside, what it was)."""

    pid: int
    vpid: int | None
    ppid: int | None
    comm: str
    cmdline: list[str]
    state: str | None = None
    session: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunResult:
    """What one `Sandbox.run()` did. `ok` is true only for a clean exit 0 within all limits."""

    argv: list[str]
    network: str
    exit_code: int | None  # the command's status as its shell saw it (128+N: killed by signal N)
    timed_out: bool = False
    limit_hit: str | None = None  # memory, pids, disk (the run was ended because of it)
    stdout: bytes = b""
    stderr: bytes = b""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    survivors: list[ProcessInfo] = field(default_factory=list)  # alive after the command exited
    killed: list[ProcessInfo] = field(default_factory=list)  # still running when a timeout/limit hit
    duration: float = 0.0
    cpu_seconds: float = 0.0
    memory_peak: int = 0
    error: str | None = None  # the sandbox itself failed (not the command)
    init_pid: int | None = None  # host pid of the sandbox's pid 1 (its pid namespace's init)
    started_ns: int = 0
    ended_ns: int = 0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.limit_hit and not self.error

    @property
    def reason(self) -> str | None:
        """Why the run did not complete normally, in words (None if it did)."""
        if self.error:
            return self.error
        if self.timed_out:
            return "timeout"
        if self.limit_hit:
            return f"{self.limit_hit} limit"
        return None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stdout"] = self.stdout.decode("utf-8", errors="replace")
        d["stderr"] = self.stderr.decode("utf-8", errors="replace")
        return d


class _Capture:
    """Keep the head and the tail of a stream (bounded), count the rest."""

    def __init__(self, limit: int):
        self.half = max(1, limit // 2)
        self.head = bytearray()
        self.tail: collections.deque[bytes] = collections.deque()
        self.tail_len = 0
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail.append(data)
            self.tail_len += len(data)
            while self.tail_len - len(self.tail[0]) >= self.half:
                self.tail_len -= len(self.tail.popleft())

    def result(self) -> tuple[bytes, bool]:
        tail = b"".join(self.tail)
        truncated = self.total > len(self.head) + len(tail) or len(tail) > self.half
        if len(tail) > self.half:
            tail = tail[-self.half:]
        if truncated:
            return bytes(self.head) + b"\n[... truncated by tracehound ...]\n" + tail, True
        return bytes(self.head) + tail, False


def _pump(stream: IO[bytes], cap: _Capture) -> None:
    with contextlib.suppress(OSError, ValueError):
        while True:
            chunk = stream.read1(65536)  # type: ignore[attr-defined]
            if not chunk:
                break
            cap.feed(chunk)


# -- live Sandboxes: cleanup on interpreter exit and on SIGTERM/SIGHUP ------------------------------

_live: weakref.WeakSet[Sandbox] = weakref.WeakSet()
_live_lock = threading.Lock()
_signals_installed: dict[int, Any] = {}


def _close_all_live() -> None:
    for sb in list(_live):
        with contextlib.suppress(Exception):
            sb.close()


atexit.register(_close_all_live)


def _on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _install_signal_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if sig in _signals_installed:
            continue
        if signal.getsignal(sig) is signal.SIG_DFL:
            _signals_installed[sig] = signal.signal(sig, _on_signal)


def _restore_signal_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, old in list(_signals_installed.items()):
        if signal.getsignal(sig) is _on_signal:
            signal.signal(sig, old)
        del _signals_installed[sig]


class Sandbox:
    """A disposable, isolated, monitored CI-job look-alike. Use as a context manager."""

    def __init__(self, config: SandboxConfig | None = None, **overrides: Any):
        cfg = config or SandboxConfig()
        for k in overrides:
            if not hasattr(cfg, k):
                raise TypeError(f"unknown SandboxConfig field: {k}")
        self.config = dataclasses.replace(cfg, **overrides) if overrides else cfg
        self.id = secrets.token_hex(6)
        rng = secrets.SystemRandom()
        self.name = f"tracehound-{rng.choice(_ADJ)}-{rng.choice(_NOUN)}-{self.id[:4]}"
        self.host_uid = self.host_gid = HOST_ID_BASE + secrets.randbelow(HOST_ID_SPAN)
        self.persona: Persona | None = None
        self.honeytokens = HoneytokenRegistry()
        self.warnings: list[str] = []
        self.cleanup_problems: list[str] = []
        self._env: dict[str, str] = {}
        self._staging: Staging | None = None
        self._cgroups: SandboxCgroups | None = None
        self._net: NetNamespaces | None = None
        self._recorder: Recorder | None = None
        self._proxy: RegistryProxy | None = None
        self._ports: RecorderPorts | None = None
        self._store = LogStore()
        self._book = AddressBook()
        self._run_lock = threading.Lock()
        self._owner_file: Path | None = None
        self._global_owner_file: Path | None = None
        self._started = False
        self._closed = False
        self._blocked_final: int | None = None
        self._walk_cost = 0.0

    # -- lifecycle ----------------------------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def start(self) -> None:
        if self._started:
            raise SandboxError("Sandbox already started")
        if os.geteuid() != 0:
            raise SandboxError("tracehound sandboxes need root (namespaces, cgroups, nftables, mounts)")
        cfg = self.config
        cfg.validate()
        self._started = True
        with _live_lock:
            _live.add(self)
            _install_signal_handlers()
        try:
            self._setup()
        except BaseException:
            self.close()
            raise

    def _setup(self) -> None:
        from tracehound.sandbox.cleanup import OWNERS_DIR, cleanup_stale

        cfg = self.config
        state_dir = Path(cfg.state_dir)
        with contextlib.suppress(Exception):
            cleanup_stale(state_dir, cfg.cgroup_name)
        state_dir.mkdir(parents=True, exist_ok=True)
        owner = json.dumps({
            "pid": os.getpid(), "start_time": _linux.proc_start_time(os.getpid()),
            "cgroup_name": cfg.cgroup_name, "created_ns": time.time_ns(),
        })
        OWNERS_DIR.mkdir(parents=True, exist_ok=True)
        self._global_owner_file = OWNERS_DIR / f"{self.id}.owner"
        self._global_owner_file.write_text(owner)
        self._owner_file = state_dir / f"{self.id}.owner"
        self._owner_file.write_text(owner)
        mount = cfg.project_mount
        self.persona = p = Persona.random(cfg.ci_style, mount)
        planted = plant(p.user, p.hostname, p.home, p.server_host, cfg.ci_style, p.full_name, p.email)
        self.honeytokens = planted.registry
        self._env = self._base_env(planted.env)

        self._staging = Staging.create(state_dir, self.id, self.host_uid, self.host_gid, cfg.tmpfs_mb)
        self._staging.write_etc(p)
        self._staging.write_home(planted)
        if cfg.project_dir is not None:
            self._staging.stage_project(Path(cfg.project_dir))
        self._staging.stage_binds(cfg.binds())
        self.warnings.extend(self._staging.warnings)

        self._cgroups = SandboxCgroups.create(self.id, cfg.memory_mb, cfg.pids, cfg.cpu, cfg.cgroup_name)

        self._net = NetNamespaces(self.id, p.net)
        self._net.create()
        static = {"localhost": ("127.0.0.1", "::1"), p.hostname.lower(): (p.net.ipv4, p.net.ipv6)}
        self._store.on_record = self._scan_record
        self._recorder = Recorder(self._net.gw_path, self._store, self._book, FakeResolver(self._book, static),
                                  cfg.capture_limit)
        self._ports = self._recorder.start()
        if cfg.network == "registry":
            self._ensure_proxy()
        self._net.configure(cfg.network, self._ports)

    def close(self) -> list[str]:
        """Kill everything, remove cgroups, namespaces, mounts and files. Safe to call twice."""
        if self._closed or not self._started:
            self._closed = True
            return self.cleanup_problems
        self._closed = True
        problems: list[str] = []
        if self._cgroups is not None:
            with contextlib.suppress(Exception):
                self._cgroups.kill_all()
        if self._net is not None and self._net.created:
            with contextlib.suppress(Exception):
                self._blocked_final = self._net.blocked_packets()
        for stopper in (self._proxy, self._recorder):
            if stopper is not None:
                try:
                    stopper.stop()
                except Exception as e:
                    problems.append(f"stopping {type(stopper).__name__}: {e}")
        if self._net is not None:
            problems += self._net.destroy()
        if self._cgroups is not None:
            problems += self._cgroups.destroy()
        if self._staging is not None:
            problems += self._staging.destroy()
        if not problems:
            for owner_file in (self._owner_file, self._global_owner_file):
                if owner_file is not None:
                    with contextlib.suppress(OSError):
                        owner_file.unlink()
        with _live_lock:
            _live.discard(self)
            if not _live:
                _restore_signal_handlers()
        self.cleanup_problems = problems
        return problems

    # -- facts for capture and callers ----------------------------------------------------------------

    def _need(self) -> Persona:
        if self.persona is None or self._closed:
            raise SandboxError("the Sandbox is not running (use it as a context manager)")
        return self.persona

    @property
    def hostname(self) -> str:
        return self._need().hostname

    @property
    def user(self) -> str:
        return self._need().user

    @property
    def uid(self) -> int:
        return self._need().uid

    @property
    def home(self) -> str:
        return self._need().home

    @property
    def project_mount(self) -> str | None:
        p = self._need()
        return p.project_mount if self.config.project_dir is not None else None

    @property
    def cgroup_v2_path(self) -> str:
        assert self._cgroups is not None and self._cgroups.v2 is not None
        return str(self._cgroups.v2)

    @property
    def cgroup_id(self) -> int:
        """Inode number of the v2 cgroup directory = what bpf_get_current_cgroup_id() returns."""
        assert self._cgroups is not None
        return self._cgroups.cgroup_id

    @property
    def cgroup_paths(self) -> dict[str, str]:
        assert self._cgroups is not None
        out = {k: str(v) for k, v in self._cgroups.v1.items()}
        out["unified"] = self.cgroup_v2_path
        return out

    @property
    def netns_path(self) -> str:
        """The sandbox's network namespace (bind mount under /run/netns)."""
        assert self._net is not None
        return self._net.path

    @property
    def uid_map(self) -> dict[int, int]:
        """sandbox uid -> host uid (the only mapped id)."""
        return {self._need().uid: self.host_uid}

    @property
    def home_path(self) -> Path:
        """The home directory as the host sees it (for evidence: what did the run change?)."""
        assert self._staging is not None
        return self._staging.home

    @property
    def tmp_path(self) -> Path:
        assert self._staging is not None
        return self._staging.tmp

    def env(self) -> dict[str, str]:
        """The environment every run starts from (persona, CI variables, honeytokens, config)."""
        return dict(self._env)

    def resolve_ip(self, ip: str) -> str | None:
        """The name the fake DNS answered with this address (for fd.sip.name), or None."""
        return self._book.name_for(ip)

    def dns_names(self) -> dict[str, str]:
        """ip -> name for every sinkhole address handed out so far."""
        return self._book.snapshot()

    def network_log(self) -> NetworkLog:
        log = self._store.snapshot()
        if self._blocked_final is not None:
            log.blocked_packets = self._blocked_final
        elif self._net is not None and self._net.created:
            log.blocked_packets = self._net.blocked_packets()
        return log

    def describe(self) -> dict[str, Any]:
        """Everything about this Sandbox that a report may show (no secrets beyond the tokens)."""
        p = self._need()
        return {
            "id": self.id, "name": self.name, "hostname": p.hostname, "user": p.user, "uid": p.uid,
            "home": p.home, "project_mount": self.project_mount, "ci_style": p.style,
            "cgroup_id": self.cgroup_id, "cgroup_v2_path": self.cgroup_v2_path,
            "addresses": {"ipv4": p.net.ipv4, "ipv6": p.net.ipv6, "gateway4": p.net.gateway4,
                          "gateway6": p.net.gateway6, "resolver": p.net.resolver},
            "honeytokens": self.honeytokens.to_dict(), "warnings": list(self.warnings),
        }

    # -- environment ------------------------------------------------------------------------------------

    def _base_env(self, secrets_env: Mapping[str, str]) -> dict[str, str]:
        p = self.persona
        assert p is not None
        env = {
            "PATH": bw.DEFAULT_PATH, "HOME": p.home, "USER": p.user, "LOGNAME": p.user, "SHELL": "/bin/bash",
            "HOSTNAME": p.hostname, "LANG": "C.UTF-8",
        }
        env.update(p.ci_env)
        env.update(secrets_env)
        if p.style == "gitlab":
            job = secrets_env["CI_JOB_TOKEN"]
            env["CI_REGISTRY_PASSWORD"] = job
            path = p.ci_env["CI_PROJECT_PATH"]
            env["CI_REPOSITORY_URL"] = f"https://gitlab-ci-token:{job}@{p.server_host}/{path}.git"
        for k, v in self.config.env_extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def _proxy_env(self, registries: Sequence[str]) -> dict[str, str]:
        p = self._need()
        url = f"http://{p.net.gateway4}:{PROXY_PORT}"
        patterns = [HostPattern.parse(r) for r in registries]
        local = [h for h in ("localhost", "127.0.0.1", "::1")
                 if not any(pat.host == h or pat.host == h.strip("[]") for pat in patterns)]
        env = {k: url for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "npm_config_proxy",
                                "npm_config_https_proxy", "YARN_HTTP_PROXY", "YARN_HTTPS_PROXY")}
        if local:
            env["NO_PROXY"] = env["no_proxy"] = ",".join(local)
        return env

    # -- running ---------------------------------------------------------------------------------------

    def _ensure_proxy(self) -> None:
        if self._proxy is None:
            assert self._net is not None and self._ports is not None
            self._proxy = RegistryProxy(self._net.gw_path, self._store, self.config.registries,
                                        self.config.upstream_environment(), self.config.capture_limit)
            self._ports.proxy = self._proxy.start()

    def run(self, argv: Sequence[str], *, cwd: str | None = None, env: Mapping[str, str | None] | None = None,
            stdin: bytes | str | int | IO[Any] | None = None, wrap: Callable[[list[str]], list[str]] | None = None,
            timeout: float | None = None, network: str | None = None,
            registries: Sequence[str] | None = None) -> RunResult:
        """Run `argv` inside the sandbox and wait for it (or for the timeout / a limit).

        wrap: receives the full host command line (shim + bwrap + command) and returns the one to
              execute, e.g. ``lambda a: ["strace", "-f", "-o", out, "--", *a]``. The wrapper runs in
              the caller's cgroups and namespaces; everything it starts joins the Sandbox's.
        network / registries: override the Sandbox's defaults for this run.
        """
        p = self._need()
        if not argv:
            raise SandboxError("run() needs a command")
        if not self._run_lock.acquire(blocking=False):
            raise SandboxError("runs of one Sandbox are sequential; another run is in progress")
        try:
            return self._run(list(argv), p, cwd, env, stdin, wrap, timeout, network, registries)
        finally:
            self._run_lock.release()

    def _run(self, argv: list[str], p: Persona, cwd: str | None, env_over: Mapping[str, str | None] | None,
             stdin: Any, wrap: Callable[[list[str]], list[str]] | None, timeout: float | None,
             network: str | None, registries: Sequence[str] | None) -> RunResult:
        cfg = self.config
        mode = network or cfg.network
        if mode not in NETWORK_MODES:
            raise SandboxError(f"network must be one of {', '.join(NETWORK_MODES)}, not {mode!r}")
        assert self._net is not None and self._ports is not None and self._cgroups is not None
        assert self._staging is not None
        env = dict(self._env)
        if mode == "registry":
            self._ensure_proxy()
            assert self._proxy is not None
            regs = list(registries if registries is not None else cfg.registries)
            self._proxy.set_registries(regs)
            env.update(self._proxy_env(regs))
        for k, v in (env_over or {}).items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        self._net.configure(mode, self._ports)
        workdir = cwd or (p.project_mount if cfg.project_dir is not None else p.home)
        args = bw.build_args(persona=p, staging=self._staging, env=env, cwd=workdir, tmpfs_mb=cfg.tmpfs_mb,
                             etc_extra=cfg.etc_extra)
        limit_s = timeout if timeout is not None else cfg.timeout

        args_fd = bw.args_memfd(args)
        rc_r, rc_w = os.pipe()
        hold_r, hold_w = os.pipe()
        st_r, st_w = os.pipe()
        spec = {"cgroups": self._cgroups.procs_files(), "netns": self._net.path, "uid": self.host_uid,
                "gid": self.host_gid,
                "fds": {bw.FD_RC: rc_w, bw.FD_HOLD: hold_r, bw.FD_ARGS: args_fd, bw.FD_STATUS: st_w}}
        inner = [sys.executable, "-I", "-S", SHIM, json.dumps(spec), "--", *bw.command(bw.find_bwrap(), argv)]
        full = list(wrap(list(inner))) if wrap else inner

        base = self._cgroups.counters()
        self._cgroups.reset_peak()
        full_before = self._staging.full_areas()
        if full_before:
            self.warnings.append(f"run {argv[0]!r} started with full areas: {', '.join(sorted(full_before))}")
        project_base = None
        if cfg.project_mb is not None and self._staging.project is not None:
            project_base = dir_usage(self._staging.project.staged)

        stdin_arg: Any = subprocess.DEVNULL
        stdin_data: bytes | None = None
        if isinstance(stdin, bytes | str):
            stdin_arg, stdin_data = subprocess.PIPE, stdin.encode() if isinstance(stdin, str) else stdin
        elif stdin is not None:
            stdin_arg = stdin

        res = RunResult(argv=argv, network=mode, exit_code=None, started_ns=time.time_ns())
        m0 = time.monotonic()
        try:
            proc = subprocess.Popen(full, stdin=stdin_arg, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    pass_fds=(rc_w, hold_r, args_fd, st_w), close_fds=True,
                                    env={"PATH": bw.DEFAULT_PATH, "LANG": "C.UTF-8"}, start_new_session=True)
        except OSError as e:
            for fd in (rc_r, rc_w, hold_r, hold_w, st_r, st_w, args_fd):
                os.close(fd)
            raise SandboxError(f"cannot start the sandbox: {e}") from e
        for fd in (rc_w, hold_r, args_fd, st_w):
            os.close(fd)
        out_cap, err_cap = _Capture(cfg.stdout_limit), _Capture(cfg.stdout_limit)
        pumps = [threading.Thread(target=_pump, args=(proc.stdout, out_cap), daemon=True),
                 threading.Thread(target=_pump, args=(proc.stderr, err_cap), daemon=True)]
        status: dict[str, Any] = {}
        pumps.append(threading.Thread(target=_read_status, args=(st_r, status), daemon=True))
        if stdin_data is not None:
            pumps.append(threading.Thread(target=_feed, args=(proc.stdin, stdin_data), daemon=True))
        for t in pumps:
            t.start()

        command_done = False
        try:
            deadline = m0 + limit_s
            next_disk = 0.0
            while True:
                ready, _, _ = select.select([rc_r], [], [], LIMIT_POLL)
                if ready:
                    data = _read_all_now(rc_r)
                    if data.strip():
                        with contextlib.suppress(ValueError):
                            res.exit_code = int(data.strip().splitlines()[0])
                        command_done = True
                    break
                if proc.poll() is not None:
                    break
                now = time.monotonic()
                if now >= deadline:
                    res.timed_out = True
                    break
                res.limit_hit = self._limit_hit(base, status, project_base, full_before, now >= next_disk)
                if now >= next_disk:
                    # a big project tree costs a walk: keep that under ~10% of one CPU
                    next_disk = time.monotonic() + max(1.0, 10 * self._walk_cost)
                if res.limit_hit:
                    break
            if command_done and self._processes(status.get("child-pid")):
                time.sleep(SETTLE)  # let detached children get to what they exec; they stay traced
            # whatever is still there now either outlived the command or is being stopped
            with contextlib.suppress(OSError):
                self._cgroups.freeze()
            procs = self._processes(status.get("child-pid"))
            if command_done:
                res.survivors = procs
            else:
                res.killed = procs
            if not res.limit_hit:
                res.limit_hit = self._limit_hit(base, status, project_base, full_before, True)
        finally:
            # Kill the namespace's init first: the kernel then kills and reaps everything inside,
            # and bwrap reaps the init. Killing all at once could orphan the init to host pid 1.
            pid1 = status.get("child-pid")
            if isinstance(pid1, int) and pid1 in self._cgroups.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid1, signal.SIGKILL)
            self._cgroups.thaw()
            os.close(hold_w)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            if not self._cgroups.kill_all():
                self.warnings.append("some sandbox processes did not die")
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()  # a wrapper (tracer) that does not exit after its tracees are gone
                proc.wait()
            for t in pumps:
                t.join(timeout=5)
            os.close(rc_r)
            os.close(st_r)
        res.duration = time.monotonic() - m0
        res.ended_ns = time.time_ns()
        pid1 = status.get("child-pid")
        res.init_pid = pid1 if isinstance(pid1, int) else None
        # the run's sockets are closed now: let the recorders finish writing what they received
        for rec in (self._recorder, self._proxy):
            if rec is not None and not rec.wait_idle():
                self.warnings.append(f"{type(rec).__name__} still busy when the run ended")
        after = self._cgroups.counters()
        res.cpu_seconds = max(0, after.cpu_ns - base.cpu_ns) / 1e9
        res.memory_peak = after.memory_peak
        res.stdout, res.stdout_truncated = out_cap.result()
        res.stderr, res.stderr_truncated = err_cap.result()
        if res.exit_code is None and not res.timed_out and not res.limit_hit:
            tail = res.stderr.decode("utf-8", errors="replace").strip().splitlines()[-3:]
            res.error = "the sandbox ended before the command did" + (f": {' / '.join(tail)}" if tail else "")
        return res

    def _limit_hit(self, base: Any, status: Mapping[str, Any], project_base: int | None, full_before: set[str],
                   check_disk: bool) -> str | None:
        assert self._cgroups is not None and self._staging is not None
        now = self._cgroups.counters()
        if now.oom_kills > base.oom_kills:
            return "memory"
        if now.pids_max_events > base.pids_max_events:
            return "pids"
        if check_disk:
            if self._staging.full_areas() - full_before:
                return "disk"
            pid1 = status.get("child-pid")
            if pid1:
                for d in ("dev/shm", "run", "var"):
                    if is_full(Path(f"/proc/{pid1}/root/{d}")):
                        return "disk"
            if project_base is not None and self._staging.project is not None and self.config.project_mb is not None:
                t0 = time.monotonic()
                grown = dir_usage(self._staging.project.staged, budget_s=2.0) - project_base
                self._walk_cost = time.monotonic() - t0
                if grown > self.config.project_mb * 1024 * 1024:
                    return "disk"
        return None

    def _processes(self, pid1: int | None) -> list[ProcessInfo]:
        """Live processes inside the sandbox other than its init (and bwrap's outer process)."""
        assert self._cgroups is not None
        out = []
        for pid in sorted(self._cgroups.pids()):
            info = _proc_info(pid)
            if info is None or info.state == "Z":
                continue
            if info.vpid is None or pid == pid1 or info.vpid == 1:
                continue  # bwrap's outer process (host pid namespace only) or our init
            out.append(info)
        return out

    # -- honeytokens -------------------------------------------------------------------------------------

    def _scan_record(self, channel: str, index: int, rec: Any) -> list[HoneytokenHit]:
        reg = self.honeytokens
        if not len(reg):
            return []
        hits: list[HoneytokenHit] = []
        if isinstance(rec, DnsQuery):
            if rec.name:
                hits += reg.scan(rec.name.encode(), channel="dns", destination=rec.name, record_index=index,
                                 ts=rec.ts, dns_name=True)
        elif isinstance(rec, TcpCapture):
            layers: list[tuple[str, bytes]] = []
            if rec.http is not None and rec.http.body:
                layers.append(("chunked", rec.http.body))
                unz = decompress(rec.http.body, rec.http.header("content-encoding"))
                if unz:
                    layers.append(("gzip", unz))
            hits += reg.scan(rec.data, channel="tcp", destination=rec.destination, record_index=index, ts=rec.ts,
                             extra_layers=layers)
            if rec.tls is not None and rec.tls.sni:
                hits += reg.scan(rec.tls.sni.encode(), channel="tcp", destination=rec.destination,
                                 record_index=index, ts=rec.ts, dns_name=True)
        elif isinstance(rec, UdpCapture):
            hits += reg.scan(rec.data, channel="udp", destination=rec.destination, record_index=index, ts=rec.ts)
        elif isinstance(rec, ProxyRequest):
            hits += reg.scan(rec.request, channel="proxy", destination=rec.destination, record_index=index,
                             ts=rec.ts)
            if rec.host:
                hits += reg.scan(rec.host.encode(), channel="proxy", destination=rec.destination,
                                 record_index=index, ts=rec.ts, dns_name=True)
        # one hit per (token, encoding, record)
        seen = set()
        unique = []
        for h in hits:
            key = (h.token_id, h.encoding)
            if key not in seen:
                seen.add(key)
                unique.append(h)
        return unique


def _read_all_now(fd: int) -> bytes:
    data = b""
    with contextlib.suppress(BlockingIOError, OSError):
        data = os.read(fd, 4096)
    return data


def _feed(stream: IO[bytes], data: bytes) -> None:
    with contextlib.suppress(OSError, ValueError):
        stream.write(data)
    with contextlib.suppress(OSError, ValueError):
        stream.close()


def _read_status(fd: int, out: dict[str, Any]) -> None:
    """bwrap's --json-status-fd: JSON documents (child-pid first, exit-code at the end)."""
    buf = b""
    dec = json.JSONDecoder()
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            return
        if not chunk:
            return
        buf += chunk
        text = buf.decode("utf-8", errors="replace")
        pos = 0
        while True:
            text_rest = text[pos:].lstrip()
            if not text_rest:
                break
            try:
                obj, used = dec.raw_decode(text_rest)
            except ValueError:
                break
            if isinstance(obj, dict):
                out.update(obj)
            pos = len(text) - len(text_rest) + used
        buf = text[pos:].encode()


def _proc_info(pid: int) -> ProcessInfo | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = [a.decode("utf-8", errors="replace") for a in f.read().split(b"\0") if a]
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    nspid = status.get("NSpid", "").split()
    vpid = int(nspid[-1]) if len(nspid) > 1 else None
    return ProcessInfo(pid=pid, vpid=vpid, ppid=int(status.get("PPid", "0") or 0) or None,
                       comm=status.get("Name", "").strip(), cmdline=cmdline, state=stat[0],
                       session=int(stat[3]) if len(stat) > 3 else None)
