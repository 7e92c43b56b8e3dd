"""Who the sandbox pretends to be: a random, ordinary CI job.

Malware that checks for analysis sandboxes looks for fixed values (a known hostname, user name,
path or address). Every Sandbox therefore draws its hostname, user, ids, project path, CI ids,
machine-id and network addresses at random, in the shapes real CI jobs have.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field

_rng = secrets.SystemRandom()

_GROUPS = ["acme", "platform", "web", "infra", "data", "mobile", "payments", "shop", "core", "backend",
           "frontend", "tools", "internal", "growth", "search", "identity", "devex", "checkout", "analytics"]
_PROJECTS = ["api", "web-app", "service", "portal", "dashboard", "billing", "gateway", "worker", "frontend",
             "backend", "cli", "sdk", "utils", "admin", "storefront", "notifications", "auth-service",
             "reporting", "scheduler", "importer", "catalog", "website", "mobile-bff", "etl"]
_USERS = ["runner", "build", "builder", "ci", "app", "deploy", "worker", "dev", "gitlab-runner", "jenkins"]
_FIRST = ["Alex", "Sam", "Jordan", "Taylor", "Morgan", "Robin", "Kim", "Maria", "Jonas", "Lena", "Priya",
          "Chen", "Ahmed", "Sofia", "Lukas", "Emma", "Noah", "Mia", "Omar", "Elena"]
_LAST = ["Smith", "Müller", "Garcia", "Kowalski", "Nguyen", "Schmidt", "Rossi", "Jensen", "Novak", "Silva",
         "Kumar", "Weber", "Brown", "Fischer", "Lopez", "Berg", "Ivanova", "Meyer"]
_COMPANIES = ["acme-corp", "northwind", "contoso", "initech", "globex", "umbrella-it", "hooli", "vandelay",
              "wayne-ent", "stark-labs", "tyrell", "cyberdyne-sys"]
_BRANCHES = ["main", "main", "main", "master", "develop", "release/2.4", "feature/login-flow", "fix/ci-cache"]
_JOB_NAMES = ["build", "install", "test", "lint", "unit-tests", "dependencies", "build:app", "test:unit"]
_STAGES = {"build": "build", "install": "build", "test": "test", "lint": "test", "unit-tests": "test",
           "dependencies": "build", "build:app": "build", "test:unit": "test"}


def _alnum(n: int, alphabet: str = "abcdefghijklmnopqrstuvwxyz0123456789") -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


@dataclass
class NetIdentity:
    """The addresses the sandbox's eth0 has (docker-like: 172.17.0.x, 02:42:ac:11:... MAC)."""

    ipv4: str
    ipv4_prefix: int
    gateway4: str
    ipv6: str
    ipv6_prefix: int
    gateway6: str
    mac: str
    resolver: str  # what resolv.conf says (any address works: every port-53 packet reaches the fake DNS)

    @classmethod
    def random(cls) -> NetIdentity:
        second = _rng.choice([17, 17, 17, 18, 19, 20, 21])
        host = _rng.randint(2, 40)
        ipv4 = f"172.{second}.0.{host}"
        mac = "02:42:" + ":".join(f"{b:02x}" for b in (172, second, 0, host))
        ula = ipaddress.IPv6Network((int(ipaddress.IPv6Address("fd00::")) | (secrets.randbits(56) << 64), 64))
        ipv6 = str(ula.network_address + host)
        gw6 = str(ula.network_address + 1)
        resolver = _rng.choice([f"10.{_rng.randint(0, 255)}.0.2", "169.254.169.253", f"172.{second}.0.1",
                                f"10.{_rng.randint(0, 255)}.{_rng.randint(0, 255)}.10"])
        return cls(ipv4, 16, f"172.{second}.0.1", ipv6, 64, gw6, mac, resolver)


@dataclass
class Persona:
    """One CI job's identity, fixed for the lifetime of a Sandbox (all its runs)."""

    style: str  # gitlab, github, plain
    hostname: str
    user: str
    uid: int
    gid: int
    full_name: str
    email: str
    home: str
    project_group: str
    project_name: str
    project_mount: str  # where the project directory appears inside
    machine_id: str
    server_host: str  # gitlab.com, github.com or a self-hosted name
    net: NetIdentity
    ci_env: dict[str, str] = field(default_factory=dict)  # without secrets; those come from honeytokens

    @classmethod
    def random(cls, style: str = "gitlab", project_mount: str | None = None) -> Persona:
        group = _rng.choice(_GROUPS)
        name = _rng.choice(_PROJECTS)
        if _rng.random() < 0.3:
            name = f"{name}-{_rng.choice(['v2', 'ng', 'core', 'svc', 'legacy', 'next'])}"
        first, last = _rng.choice(_FIRST), _rng.choice(_LAST)
        company = _rng.choice(_COMPANIES)
        uid = _rng.randint(1000, 1999)
        if style == "github":
            user, uid = "runner", _rng.choice([1001, 1001, 1000])
            home = f"/home/{user}"
            mount = project_mount or f"/home/runner/work/{name}/{name}"
            hostname = f"fv-az{_rng.randint(100, 999)}-{_rng.randint(100, 999)}"
            server_host = "github.com"
        elif style == "gitlab":
            user = _rng.choice(_USERS)
            home = f"/home/{user}"
            mount = project_mount or f"/builds/{group}/{name}"
            server_host = _rng.choice(["gitlab.com", "gitlab.com", f"gitlab.{company}.com", f"git.{company}.io",
                                       f"gitlab.{company}.net"])
            hostname = f"runner-{_alnum(8)}-project-{_rng.randint(1000, 999999)}-concurrent-{_rng.randint(0, 3)}"
        else:
            user = _rng.choice(_USERS)
            home = f"/home/{user}"
            mount = project_mount or f"/srv/{group}/{name}"
            server_host = f"git.{company}.io"
            hostname = f"{_rng.choice(['build', 'ci', 'worker', 'agent'])}-{_alnum(5)}"
        email_domain = "users.noreply.github.com" if style == "github" else f"{company}.com"
        p = cls(
            style=style, hostname=hostname, user=user, uid=uid, gid=uid,
            full_name=f"{first} {last}",
            email=f"{first.lower()}.{last.lower().replace('ü', 'ue')}@{email_domain}",
            home=home, project_group=group, project_name=name, project_mount=mount,
            machine_id=secrets.token_hex(16), server_host=server_host, net=NetIdentity.random(),
        )
        p.ci_env = p._ci_env()
        return p

    def _ci_env(self) -> dict[str, str]:
        if self.style == "gitlab":
            return self._gitlab_env()
        if self.style == "github":
            return self._github_env()
        return {"CI": "true"}

    def _gitlab_env(self) -> dict[str, str]:
        server = f"https://{self.server_host}"
        path = f"{self.project_group}/{self.project_name}"
        project_id = str(_rng.randint(1000, 60_000_000))
        job_id = str(_rng.randint(1_000_000_000, 12_000_000_000))
        pipeline_id = str(_rng.randint(100_000_000, 2_000_000_000))
        sha = secrets.token_hex(20)
        branch = _rng.choice(_BRANCHES)
        slug = "".join(c if c.isalnum() else "-" for c in branch.lower())[:63]
        job = _rng.choice(_JOB_NAMES)
        runner_id = str(_rng.randint(1, 40_000_000))
        short_token = _alnum(8)
        registry = registry_host(self.server_host)
        return {
            "CI": "true",
            "GITLAB_CI": "true",
            "CI_SERVER": "yes",
            "CI_SERVER_URL": server,
            "CI_SERVER_HOST": self.server_host,
            "CI_SERVER_PORT": "443",
            "CI_SERVER_PROTOCOL": "https",
            "CI_SERVER_NAME": "GitLab",
            "CI_SERVER_VERSION": f"17.{_rng.randint(0, 11)}.{_rng.randint(0, 5)}",
            "CI_API_V4_URL": f"{server}/api/v4",
            "CI_PROJECT_ID": project_id,
            "CI_PROJECT_NAME": self.project_name,
            "CI_PROJECT_TITLE": self.project_name.replace("-", " ").title(),
            "CI_PROJECT_NAMESPACE": self.project_group,
            "CI_PROJECT_ROOT_NAMESPACE": self.project_group,
            "CI_PROJECT_PATH": path,
            "CI_PROJECT_PATH_SLUG": path.replace("/", "-"),
            "CI_PROJECT_URL": f"{server}/{path}",
            "CI_PROJECT_DIR": self.project_mount,
            "CI_PROJECT_VISIBILITY": "private",
            "CI_BUILDS_DIR": "/builds",
            "CI_JOB_ID": job_id,
            "CI_JOB_NAME": job,
            "CI_JOB_STAGE": _STAGES[job],
            "CI_JOB_URL": f"{server}/{path}/-/jobs/{job_id}",
            "CI_JOB_STARTED_AT": _iso_now(),
            "CI_JOB_STATUS": "running",
            "CI_PIPELINE_ID": pipeline_id,
            "CI_PIPELINE_IID": str(_rng.randint(1, 9000)),
            "CI_PIPELINE_SOURCE": _rng.choice(["push", "push", "merge_request_event", "schedule"]),
            "CI_PIPELINE_URL": f"{server}/{path}/-/pipelines/{pipeline_id}",
            "CI_COMMIT_SHA": sha,
            "CI_COMMIT_SHORT_SHA": sha[:8],
            "CI_COMMIT_REF_NAME": branch,
            "CI_COMMIT_REF_SLUG": slug,
            "CI_COMMIT_BRANCH": branch,
            "CI_DEFAULT_BRANCH": "main",
            "CI_COMMIT_AUTHOR": f"{self.full_name} <{self.email}>",
            "CI_RUNNER_ID": runner_id,
            "CI_RUNNER_SHORT_TOKEN": short_token,
            "CI_RUNNER_DESCRIPTION": _rng.choice(["shared-runner", "docker-runner-01", "ci-autoscaler",
                                                  f"{self.project_group}-runner"]),
            "CI_RUNNER_TAGS": '["docker", "linux"]',
            "CI_RUNNER_VERSION": f"17.{_rng.randint(0, 11)}.{_rng.randint(0, 3)}",
            "CI_RUNNER_EXECUTABLE_ARCH": "linux/amd64",
            "CI_CONCURRENT_ID": str(_rng.randint(0, 20)),
            "CI_CONCURRENT_PROJECT_ID": str(_rng.randint(0, 3)),
            "CI_NODE_TOTAL": "1",
            "CI_REGISTRY": registry,
            "CI_REGISTRY_IMAGE": f"{registry}/{path}",
            "CI_REGISTRY_USER": "gitlab-ci-token",
            "CI_DEPENDENCY_PROXY_SERVER": f"{self.server_host}:443",
            "GITLAB_USER_LOGIN": self.email.split("@")[0].replace(".", ""),
            "GITLAB_USER_EMAIL": self.email,
            "GITLAB_USER_NAME": self.full_name,
            "GITLAB_USER_ID": str(_rng.randint(10_000, 20_000_000)),
            "FF_USE_FASTZIP": "true",
        }

    def _github_env(self) -> dict[str, str]:
        repo = f"{self.project_group}/{self.project_name}"
        run_id = str(_rng.randint(5_000_000_000, 15_000_000_000))
        sha = secrets.token_hex(20)
        return {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_API_URL": "https://api.github.com",
            "GITHUB_GRAPHQL_URL": "https://api.github.com/graphql",
            "GITHUB_REPOSITORY": repo,
            "GITHUB_REPOSITORY_OWNER": self.project_group,
            "GITHUB_REPOSITORY_ID": str(_rng.randint(100_000_000, 900_000_000)),
            "GITHUB_WORKSPACE": self.project_mount,
            "GITHUB_SHA": sha,
            "GITHUB_REF": "refs/heads/main",
            "GITHUB_REF_NAME": "main",
            "GITHUB_REF_TYPE": "branch",
            "GITHUB_RUN_ID": run_id,
            "GITHUB_RUN_NUMBER": str(_rng.randint(1, 5000)),
            "GITHUB_RUN_ATTEMPT": "1",
            "GITHUB_JOB": _rng.choice(["build", "test", "install"]),
            "GITHUB_WORKFLOW": _rng.choice(["CI", "Build", "Test"]),
            "GITHUB_EVENT_NAME": _rng.choice(["push", "pull_request"]),
            "GITHUB_ACTOR": self.email.split("@")[0].replace(".", "-"),
            "RUNNER_OS": "Linux",
            "RUNNER_ARCH": "X64",
            "RUNNER_NAME": f"GitHub Actions {_rng.randint(2, 300)}",
            "RUNNER_ENVIRONMENT": "github-hosted",
            "RUNNER_TEMP": "/home/runner/work/_temp",
            "RUNNER_TOOL_CACHE": "/opt/hostedtoolcache",
            "RUNNER_WORKSPACE": f"/home/runner/work/{self.project_name}",
            "ImageOS": "ubuntu22",
        }


def registry_host(server_host: str) -> str:
    """GitLab's container registry name for a GitLab server (registry.gitlab.com, registry.acme.com)."""
    if server_host == "gitlab.com":
        return "registry.gitlab.com"
    if server_host.startswith("gitlab."):
        return "registry." + server_host[len("gitlab."):]
    return "registry." + server_host


def _iso_now() -> str:
    import datetime

    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
