"""Configuration of one Sandbox (one simulated CI job) and the errors the package raises."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

NETWORK_MODES = ("sinkhole", "registry", "none")
CI_STYLES = ("gitlab", "github", "plain")

DEFAULT_REGISTRIES = (
    "registry.npmjs.org",
    "registry.yarnpkg.com",
    "pypi.org",
    "files.pythonhosted.org",
    "rubygems.org",
    "index.rubygems.org",
)


class SandboxError(RuntimeError):
    """The sandbox could not be set up or used; the message says what to fix."""


@dataclass(frozen=True)
class Bind:
    """A host path made visible inside the sandbox."""

    source: Path
    dest: str
    writable: bool = False

    @classmethod
    def parse(cls, spec: Bind | str | Path | tuple, writable: bool) -> Bind:
        if isinstance(spec, Bind):
            return spec
        if isinstance(spec, tuple):
            src, dest = spec
        else:
            text = str(spec)
            src, _, dest = text.partition(":") if ":" in text else (text, "", text)
            dest = dest or src
        dest = str(dest)
        if not dest.startswith("/") or "/../" in dest + "/" or dest.rstrip("/") in ("", "/proc", "/dev"):
            raise SandboxError(f"bind destination must be an absolute, normalised path: {dest!r}")
        return cls(Path(src), dest.rstrip("/") or "/", writable)


@dataclass
class SandboxConfig:
    """Everything a caller chooses about a Sandbox. Defaults suit one dependency install phase.

    network      default mode of each run(): sinkhole (fake DNS + recorders), registry (only
                 `registries` through the audited proxy, everything else sinkholed), none (loopback)
    project_dir  host directory mounted read-write at `project_mount` (random CI-like path if None)
    timeout      wall-clock seconds per run()
    memory_mb / pids / cpu   cgroup limits for the whole Sandbox (cpu in CPUs, e.g. 2.0)
    tmpfs_mb     size of /tmp and of the home directory (each); /dev/shm, /run, /var get less
    project_mb   how much the project directory (and rw binds) may grow during one run()
    registries   host[:port] patterns (fnmatch-style '*' allowed) the registry proxy lets through
    env_extra    extra environment for every run (None as a value removes a variable)
    ci_style     gitlab, github or plain: which CI the environment imitates
    ro_binds / rw_binds   extra host paths: Bind, (src, dest), "src:dest" or "src"
    etc_extra    extra /etc entries to expose read-only (the default set is deliberately small)
    upstream_env where the proxy reads HTTPS_PROXY/HTTP_PROXY/NO_PROXY for its own upstream
                 connections (default: this process's environment)
    """

    network: str = "sinkhole"
    project_dir: Path | str | None = None
    project_mount: str | None = None
    timeout: float = 600.0
    memory_mb: int = 2048
    pids: int = 512
    cpu: float = 2.0
    tmpfs_mb: int = 1024
    project_mb: int | None = 4096
    registries: Sequence[str] = DEFAULT_REGISTRIES
    env_extra: Mapping[str, str | None] = field(default_factory=dict)
    ci_style: str = "gitlab"
    ro_binds: Sequence[Bind | str | tuple] = ()
    rw_binds: Sequence[Bind | str | tuple] = ()
    etc_extra: Sequence[str] = ()
    upstream_env: Mapping[str, str] | None = None
    stdout_limit: int = 1024 * 1024  # bytes kept of each of stdout and stderr (head and tail)
    capture_limit: int = 64 * 1024  # bytes kept of each recorded connection / datagram / request
    state_dir: Path | str = "/run/tracehound"  # host directory for per-Sandbox staging (mounts, files)
    cgroup_name: str = "tracehound"  # parent cgroup under each hierarchy

    def validate(self) -> None:
        if self.network not in NETWORK_MODES:
            raise SandboxError(f"network must be one of {', '.join(NETWORK_MODES)}, not {self.network!r}")
        if self.ci_style not in CI_STYLES:
            raise SandboxError(f"ci_style must be one of {', '.join(CI_STYLES)}, not {self.ci_style!r}")
        if self.timeout <= 0:
            raise SandboxError("timeout must be positive")
        if self.memory_mb < 64:
            raise SandboxError("memory_mb must be at least 64")
        if self.pids < 8:
            raise SandboxError("pids must be at least 8")
        if self.cpu <= 0:
            raise SandboxError("cpu must be positive")
        if self.tmpfs_mb < 1:
            raise SandboxError("tmpfs_mb must be at least 1")
        if self.project_dir is not None:
            p = Path(self.project_dir)
            if not p.is_dir():
                raise SandboxError(f"project_dir is not a directory: {p}")
        if self.project_mount is not None and (not self.project_mount.startswith("/") or self.project_mount == "/"):
            raise SandboxError(f"project_mount must be an absolute path: {self.project_mount!r}")
        for b in self.binds():
            if not b.source.exists():
                raise SandboxError(f"bind source does not exist: {b.source}")
        for name in self.etc_extra:
            if "/" in name.strip("/") and ".." in name.split("/"):
                raise SandboxError(f"bad /etc entry: {name!r}")
        for r in self.registries:
            if not r or any(c in r for c in " /@"):
                raise SandboxError(f"registry must be host[:port], not {r!r}")

    def binds(self) -> list[Bind]:
        return [Bind.parse(b, False) for b in self.ro_binds] + [Bind.parse(b, True) for b in self.rw_binds]

    def upstream_environment(self) -> Mapping[str, str]:
        return self.upstream_env if self.upstream_env is not None else os.environ
