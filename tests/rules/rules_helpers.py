"""Helpers for the rules-engine tests: hand-built events and one-rule evaluation through both code paths."""

from __future__ import annotations

import yaml

from tracehound.events import Event, Fd, PackageRef, Process
from tracehound.rules import loads
from tracehound.rules.compiler import compile_condition
from tracehound.rules.parser import parse

TS = 1470327477881781397  # 2016-08-04T16:17:57.881781397Z (the Falco outputs fixture's timestamp)


def tree() -> Process:
    """sshd -> bash -> npm -> node (the event's process)."""
    sshd = Process(pid=100, comm="sshd", exe="/usr/sbin/sshd", exepath="/usr/sbin/sshd", args=["-D"], uid=0,
                   user="root", start_ts=TS - 10**12)
    bash = Process(pid=200, comm="bash", exe="-bash", exepath="/usr/bin/bash", parent=sshd, uid=1000, user="dev",
                   start_ts=TS - 10**11)
    npm = Process(pid=300, comm="npm", exe="npm", exepath="/usr/bin/node", args=["install"], parent=bash,
                  uid=1000, user="dev", start_ts=TS - 10**10)
    return Process(pid=400, comm="node", exe="node", exepath="/usr/bin/node", args=["install.js", "--foo"],
                   cwd="/work/pkg", parent=npm, uid=1000, gid=1000, user="dev", group="dev", tty=0,
                   start_ts=TS - 3_000_000_000, env={"HOME": "/home/dev", "npm_package_name": "evil"})


def event(etype: str = "openat", *, proc: Process | None = None, fd: Fd | None = None, res: int | None = 3,
          args: dict | None = None, **kw) -> Event:
    if etype in ("open", "openat", "openat2"):
        fd = fd or Fd(3, "file", "/etc/passwd")
        args = {"flags": "O_RDONLY|O_CLOEXEC", **(args or {})}
    return Event(num=kw.pop("num", 7), ts=kw.pop("ts", TS), type=etype, proc=proc or tree(), res=res,
                 args=args or {}, fd=fd, **kw)


def connect_event(cip="10.0.0.5", cport=40000, sip="93.184.216.34", sport=443, **kw) -> Event:
    fd = Fd(5, "ipv6" if ":" in sip else "ipv4", f"{cip}:{cport}->{sip}:{sport}", l4proto="tcp", cip=cip,
            cport=cport, sip=sip, sport=sport, is_server=False, connected=True)
    return event("connect", fd=fd, res=0, **kw)


def rule_yaml(condition: str, output: str = "hit", priority: str = "WARNING", **extra) -> str:
    item = {"rule": "r", "desc": "d", "condition": condition, "output": output, "priority": priority, **extra}
    return yaml.safe_dump([item], sort_keys=False)


def evaluate(condition: str, e: Event) -> bool:
    """The condition's verdict, checked to be the same from the rule function and the dispatch path."""
    direct = bool(compile_condition(parse(condition)).fn(e))
    rs = loads(rule_yaml(condition), suggested_output=False)
    via = bool(rs.match(e))
    assert direct == via, f"rule function says {direct}, dispatch says {via} for {condition!r}"
    return direct


__all__ = ["TS", "PackageRef", "connect_event", "evaluate", "event", "rule_yaml", "tree"]
