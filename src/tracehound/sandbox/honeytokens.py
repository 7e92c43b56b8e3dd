"""Fresh, realistic-looking secrets planted in every sandbox, and the registry that recognises them.

Each value is generated per Sandbox from the system CSPRNG and planted in exactly one place (file
or environment variable), so finding it in egress proves both that a secret left and which secret
it was. Formats follow the real ones closely enough that secret-hunting code accepts them (npm and
GitHub tokens carry a valid CRC32 checksum, the PyPI token is a well-formed macaroon, the SSH key
parses as an openssh-key-v1 RSA key), but none of them grants access to anything.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import struct
import textwrap
import time
import uuid
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tracehound.sandbox import tokenscan
from tracehound.sandbox.records import HoneytokenHit

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_rng = secrets.SystemRandom()


def _rand(alphabet: str, n: int) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


def _b62(n: int, width: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = _B62[r] + out
    return out.rjust(width, "0")


def checksummed_token(prefix: str) -> str:
    """GitHub/npm style: prefix + 30 random base62 chars + base62(CRC32(random part)) on 6 chars."""
    body = _rand(_B62, 30)
    return f"{prefix}{body}{_b62(zlib.crc32(body.encode()), 6)}"


def npm_token() -> str:
    return checksummed_token("npm_")


def github_token(prefix: str = "ghp_") -> str:
    return checksummed_token(prefix)


def gitlab_token(prefix: str = "glpat-") -> str:
    return prefix + _rand(_B62 + "-_", 20)


def rubygems_key() -> str:
    return "rubygems_" + secrets.token_hex(24)


def aws_key_pair() -> tuple[str, str]:
    key_id = "AKIA" + _rand("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
    secret = _rand(_B62 + "+/", 40)
    return key_id, secret


def pypi_token() -> str:
    """A PyPI API token: 'pypi-' + a base64url macaroon (location, identifier, caveat, signature)."""

    def packet(tag: int, data: bytes) -> bytes:
        return bytes([tag]) + _varint(len(data)) + data

    caveat = json.dumps({"version": 1, "permissions": "user"}, separators=(",", ":")).encode()
    blob = (
        b"\x02"
        + packet(1, b"pypi.org")
        + packet(2, str(uuid.uuid4()).encode())
        + b"\x00"
        + packet(2, caveat)
        + b"\x00\x00"
        + packet(6, secrets.token_bytes(32))
    )
    return "pypi-" + base64.urlsafe_b64encode(blob).decode().rstrip("=")


def _varint(n: int) -> bytes:
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def jwt_token(subject: str) -> str:
    def seg(obj: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")

    now = int(time.time())
    header = {"alg": "RS256", "kid": _rand(_B62 + "-_", 43)}
    payload = {
        "aud": ["https://kubernetes.default.svc.cluster.local"],
        "exp": now + 31536000,
        "iat": now - _rng.randint(3600, 86400 * 30),
        "iss": "https://kubernetes.default.svc.cluster.local",
        "kubernetes.io": {"namespace": "ci", "serviceaccount": {"name": subject, "uid": str(uuid.uuid4())}},
        "sub": f"system:serviceaccount:ci:{subject}",
    }
    sig = base64.urlsafe_b64encode(secrets.token_bytes(256)).decode().rstrip("=")
    return f"{seg(header)}.{seg(payload)}.{sig}"


# -- SSH ---------------------------------------------------------------------------------------


def _sshstr(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def _mpint(n: int) -> bytes:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    if raw and raw[0] & 0x80:
        raw = b"\x00" + raw
    return _sshstr(raw)


def _rand_odd(bits: int) -> int:
    return secrets.randbits(bits) | (1 << (bits - 1)) | 1


def ssh_rsa_keypair(comment: str, bits: int = 3072) -> tuple[str, str]:
    """(private key file, public key line) in OpenSSH format with random key material.

    The structure is exact (openssh-key-v1, cipher none, matching check ints, block padding); the
    numbers are random rather than a real RSA key, so generating one is instantaneous and the key
    is useless to anyone who steals it.
    """
    e = 65537
    n = _rand_odd(bits)
    p, q = _rand_odd(bits // 2), _rand_odd(bits // 2)
    d = secrets.randbits(bits - 1) | (1 << (bits - 2))
    iqmp = secrets.randbits(bits // 2 - 1)
    pub = _sshstr(b"ssh-rsa") + _mpint(e) + _mpint(n)
    check = secrets.randbits(32)
    priv = struct.pack(">II", check, check) + _sshstr(b"ssh-rsa") + _mpint(n) + _mpint(e) + _mpint(d)
    priv += _mpint(iqmp) + _mpint(p) + _mpint(q) + _sshstr(comment.encode())
    pad = 1
    while len(priv) % 8:
        priv += bytes([pad])
        pad += 1
    blob = (
        b"openssh-key-v1\x00" + _sshstr(b"none") + _sshstr(b"none") + _sshstr(b"") + struct.pack(">I", 1)
        + _sshstr(pub) + _sshstr(priv)
    )
    body = "\n".join(textwrap.wrap(base64.b64encode(blob).decode(), 70))
    private = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n-----END OPENSSH PRIVATE KEY-----\n"
    public = f"ssh-rsa {base64.b64encode(pub).decode()} {comment}\n"
    return private, public


def known_hosts(hosts: Iterable[str]) -> str:
    """Hashed known_hosts lines (HashKnownHosts yes) that `ssh-keygen -F host` really finds."""
    lines = []
    for host in hosts:
        salt = secrets.token_bytes(20)
        digest = hmac.new(salt, host.encode(), hashlib.sha1).digest()
        key = _sshstr(b"ssh-ed25519") + _sshstr(secrets.token_bytes(32))
        lines.append(
            f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()} "
            f"ssh-ed25519 {base64.b64encode(key).decode()}"
        )
    return "\n".join(lines) + "\n"


# -- registry ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Honeytoken:
    """One planted value and the place(s) it was planted (paths inside the sandbox, or env:NAME)."""

    id: str
    kind: str
    value: str
    locations: tuple[str, ...]

    @property
    def planted(self) -> str:
        return ", ".join(self.locations)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "value": self.value, "locations": list(self.locations)}


@dataclass
class HoneytokenRegistry:
    """Every value planted in one Sandbox; `scan()` turns recorded egress into exact hits."""

    tokens: list[Honeytoken] = field(default_factory=list)

    def add(self, kind: str, value: str, *locations: str) -> Honeytoken:
        if any(t.value == value for t in self.tokens):
            raise ValueError("honeytoken values must be unique")
        tok = Honeytoken(f"ht-{len(self.tokens) + 1:02d}-{kind}", kind, value, tuple(locations))
        self.tokens.append(tok)
        return tok

    def __iter__(self):
        return iter(self.tokens)

    def __len__(self) -> int:
        return len(self.tokens)

    def by_kind(self, kind: str) -> list[Honeytoken]:
        return [t for t in self.tokens if t.kind == kind]

    def by_location(self, location: str) -> list[Honeytoken]:
        return [t for t in self.tokens if location in t.locations]

    def get(self, token_id: str) -> Honeytoken:
        for t in self.tokens:
            if t.id == token_id:
                return t
        raise KeyError(token_id)

    def needles(self) -> list[tokenscan.Needle]:
        return [tokenscan.Needle(t.id, t.value.encode()) for t in self.tokens]

    def scan(self, data: bytes, *, channel: str, destination: str, record_index: int, ts: int | None = None,
             dns_name: bool = False, extra_layers: Iterable[tuple[str, bytes]] = ()) -> list[HoneytokenHit]:
        hits = []
        for m in tokenscan.find(data, self.needles(), dns_name=dns_name, extra_layers=extra_layers):
            tok = self.get(m.token_id)
            hits.append(HoneytokenHit(
                ts=ts if ts is not None else time.time_ns(), token_id=tok.id, kind=tok.kind,
                planted=tok.planted, channel=channel, destination=destination, encoding=m.encoding,
                excerpt=m.excerpt, record_index=record_index,
            ))
        return hits

    def to_dict(self) -> list[dict[str, Any]]:
        return [t.to_dict() for t in self.tokens]


# -- planting ----------------------------------------------------------------------------------


@dataclass
class HomeFile:
    path: str  # relative to the home directory
    content: str
    mode: int = 0o644


@dataclass
class PlantedHome:
    files: list[HomeFile]
    dirs: dict[str, int]  # relative dir -> mode
    env: dict[str, str]
    registry: HoneytokenRegistry


def plant(user: str, hostname: str, home: str, ci_server_host: str, env_style: str,
          full_name: str, email: str) -> PlantedHome:
    """Dotfiles and credentials for one persona; every secret is registered with its location."""
    reg = HoneytokenRegistry()
    files: list[HomeFile] = []
    dirs = {".ssh": 0o700, ".aws": 0o755, ".gem": 0o755, ".kube": 0o755, ".docker": 0o755,
            ".config": 0o755, ".cache": 0o755, ".local": 0o755, ".local/bin": 0o755}

    def home_path(rel: str) -> str:
        return f"{home}/{rel}"

    # npm
    tok = npm_token()
    reg.add("npm_token", tok, home_path(".npmrc"))
    files.append(HomeFile(".npmrc", f"//registry.npmjs.org/:_authToken={tok}\n", 0o600))

    # PyPI
    tok = pypi_token()
    reg.add("pypi_token", tok, home_path(".pypirc"))
    files.append(HomeFile(".pypirc", textwrap.dedent(f"""\
        [distutils]
        index-servers =
            pypi

        [pypi]
        username = __token__
        password = {tok}
        """), 0o600))

    # RubyGems
    tok = rubygems_key()
    reg.add("rubygems_api_key", tok, home_path(".gem/credentials"))
    files.append(HomeFile(".gem/credentials", f"---\n:rubygems_api_key: {tok}\n", 0o600))

    # AWS (file)
    key_id, secret = aws_key_pair()
    reg.add("aws_access_key_id", key_id, home_path(".aws/credentials"))
    reg.add("aws_secret_access_key", secret, home_path(".aws/credentials"))
    files.append(HomeFile(".aws/credentials",
                          f"[default]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n", 0o600))
    files.append(HomeFile(".aws/config", f"[default]\nregion = {_rng.choice(['us-east-1', 'eu-west-1', 'eu-central-1', 'us-west-2'])}\noutput = json\n"))

    # SSH
    private, public = ssh_rsa_keypair(f"{user}@{hostname}")
    lines = private.strip().splitlines()[1:-1]
    # two full lines from the middle and the end of the key: pure random key material, never shared
    reg.add("ssh_private_key", lines[len(lines) // 2], home_path(".ssh/id_rsa"))
    reg.add("ssh_private_key", lines[-3], home_path(".ssh/id_rsa"))
    files.append(HomeFile(".ssh/id_rsa", private, 0o600))
    files.append(HomeFile(".ssh/id_rsa.pub", public, 0o644))
    files.append(HomeFile(".ssh/known_hosts", known_hosts(["github.com", "gitlab.com", ci_server_host]), 0o644))

    # Kubernetes
    tok = jwt_token(_rng.choice(["deployer", "ci-deploy", "gitlab-ci", "release-bot"]))
    reg.add("kube_token", tok, home_path(".kube/config"))
    cluster = _rng.choice(["prod", "production", "staging", "main", "eu-1", "us-east"])
    ca = base64.b64encode(b"-----BEGIN CERTIFICATE-----\n"
                          + base64.encodebytes(secrets.token_bytes(720)) + b"-----END CERTIFICATE-----\n").decode()
    files.append(HomeFile(".kube/config", textwrap.dedent(f"""\
        apiVersion: v1
        kind: Config
        clusters:
        - cluster:
            certificate-authority-data: {ca}
            server: https://k8s-{cluster}.{ci_server_host.split('.', 1)[-1]}:6443
          name: {cluster}
        contexts:
        - context:
            cluster: {cluster}
            namespace: ci
            user: deployer
          name: {cluster}
        current-context: {cluster}
        users:
        - name: deployer
          user:
            token: {tok}
        """), 0o600))

    # git credentials (store helper)
    gh = github_token("ghp_")
    gl = gitlab_token("glpat-")
    reg.add("github_token", gh, home_path(".git-credentials"))
    reg.add("gitlab_token", gl, home_path(".git-credentials"))
    files.append(HomeFile(".git-credentials",
                          f"https://{user}:{gh}@github.com\nhttps://{user}:{gl}@{ci_server_host}\n", 0o600))

    # Docker registry login
    pw = gitlab_token("glpat-")
    reg.add("docker_registry_password", pw, home_path(".docker/config.json"))
    if ci_server_host == "github.com":
        registry = "ghcr.io"
    elif ci_server_host == "gitlab.com":
        registry = "registry.gitlab.com"
    elif ci_server_host.startswith("gitlab."):
        registry = "registry." + ci_server_host[len("gitlab."):]
    else:
        registry = "registry." + ci_server_host
    auth = base64.b64encode(f"{user}:{pw}".encode()).decode()
    files.append(HomeFile(".docker/config.json",
                          json.dumps({"auths": {registry: {"auth": auth}}}, indent="\t") + "\n", 0o600))

    # dotfiles that make the home look lived in
    files.append(HomeFile(".bashrc", _BASHRC))
    files.append(HomeFile(".profile", _PROFILE))
    files.append(HomeFile(".bash_logout", "# ~/.bash_logout: executed by bash(1) when login shell exits.\n"))
    files.append(HomeFile(".gitconfig", textwrap.dedent(f"""\
        [user]
        \tname = {full_name}
        \temail = {email}
        [credential]
        \thelper = store
        [init]
        \tdefaultBranch = main
        [pull]
        \trebase = false
        """)))
    files.append(HomeFile(".bash_history", "\n".join(_rng.sample(_HISTORY, k=min(len(_HISTORY), 9))) + "\n", 0o600))

    # environment secrets (each a distinct value)
    env: dict[str, str] = {}
    env["NPM_TOKEN"] = npm_token()
    reg.add("npm_token", env["NPM_TOKEN"], "env:NPM_TOKEN")
    env["GITHUB_TOKEN"] = github_token("ghs_" if env_style == "github" else "ghp_")
    reg.add("github_token", env["GITHUB_TOKEN"], "env:GITHUB_TOKEN")
    key_id, secret = aws_key_pair()
    env["AWS_ACCESS_KEY_ID"] = key_id
    env["AWS_SECRET_ACCESS_KEY"] = secret
    reg.add("aws_access_key_id", key_id, "env:AWS_ACCESS_KEY_ID")
    reg.add("aws_secret_access_key", secret, "env:AWS_SECRET_ACCESS_KEY")
    job = gitlab_token("glcbt-")
    env["CI_JOB_TOKEN"] = job
    reg.add("ci_job_token", job, "env:CI_JOB_TOKEN", "env:CI_REGISTRY_PASSWORD", "env:CI_REPOSITORY_URL")
    return PlantedHome(files, dirs, env, reg)


_BASHRC = """\
# ~/.bashrc: executed by bash(1) for non-login shells.

# If not running interactively, don't do anything
case $- in
    *i*) ;;
      *) return;;
esac

HISTCONTROL=ignoreboth
shopt -s histappend
HISTSIZE=1000
HISTFILESIZE=2000
shopt -s checkwinsize

PS1='${debian_chroot:+($debian_chroot)}\\u@\\h:\\w\\$ '

if [ -x /usr/bin/dircolors ]; then
    test -r ~/.dircolors && eval "$(dircolors -b ~/.dircolors)" || eval "$(dircolors -b)"
    alias ls='ls --color=auto'
    alias grep='grep --color=auto'
fi

alias ll='ls -alF'
alias la='ls -A'
alias l='ls -CF'

if [ -f ~/.bash_aliases ]; then
    . ~/.bash_aliases
fi

export PATH="$HOME/.local/bin:$PATH"
"""

_PROFILE = """\
# ~/.profile: executed by the command interpreter for login shells.

if [ -n "$BASH_VERSION" ]; then
    if [ -f "$HOME/.bashrc" ]; then
	. "$HOME/.bashrc"
    fi
fi

if [ -d "$HOME/bin" ] ; then
    PATH="$HOME/bin:$PATH"
fi

if [ -d "$HOME/.local/bin" ] ; then
    PATH="$HOME/.local/bin:$PATH"
fi
"""

_HISTORY = [
    "git status", "git pull --rebase", "ls -la", "cd builds", "docker ps", "kubectl get pods -n ci",
    "aws s3 ls", "npm ci", "npm run build", "pip install -r requirements.txt", "bundle install",
    "git log --oneline | head", "cat ~/.npmrc", "make test", "vim .gitlab-ci.yml", "df -h", "top",
]
