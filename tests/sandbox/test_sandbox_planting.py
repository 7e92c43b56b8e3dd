"""Honeytoken formats and the persona: realistic, unique per Sandbox, verified with real tools."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import zlib

import pytest

from tracehound.sandbox.honeytokens import checksummed_token, plant, pypi_token, ssh_rsa_keypair
from tracehound.sandbox.persona import Persona

B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _planted(style="gitlab"):
    p = Persona.random(style)
    return p, plant(p.user, p.hostname, p.home, p.server_host, style, p.full_name, p.email)


def test_checksummed_tokens_carry_a_valid_crc32():
    # GitHub's scheme: 30 random base62 chars, then CRC32 of them in base62, 6 chars, zero-padded
    for prefix in ("ghp_", "npm_"):
        tok = checksummed_token(prefix)
        body, check = tok[len(prefix):-6], tok[-6:]
        assert len(body) == 30 and all(c in B62 for c in body)
        n = 0
        for c in check:
            n = n * 62 + B62.index(c)
        assert n == zlib.crc32(body.encode())


def test_pypi_token_is_a_macaroon_for_pypi_org():
    tok = pypi_token()
    assert tok.startswith("pypi-AgEIcHlwaS5vcmc")  # base64url of 0x02 0x01 0x08 "pypi.org"
    raw = base64.urlsafe_b64decode(tok[5:] + "=" * (-len(tok[5:]) % 4))
    assert raw[:11] == b"\x02\x01\x08pypi.org"
    assert b'"permissions":"user"' in raw


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen not installed")
def test_ssh_key_is_accepted_by_ssh_keygen(tmp_path):
    priv, pub = ssh_rsa_keypair("runner@box")
    key = tmp_path / "id_rsa"
    key.write_text(priv)
    key.chmod(0o600)
    derived = subprocess.run(["ssh-keygen", "-y", "-f", str(key)], capture_output=True, text=True, check=True)
    assert derived.stdout.split()[:2] == pub.split()[:2]
    info = subprocess.run(["ssh-keygen", "-l", "-f", str(key)], capture_output=True, text=True, check=True)
    assert info.stdout.startswith("3072 SHA256:") and "(RSA)" in info.stdout


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen not installed")
def test_known_hosts_entries_are_found_by_ssh_keygen(tmp_path):
    _, home = _planted()
    kh = next(f for f in home.files if f.path == ".ssh/known_hosts")
    (tmp_path / "known_hosts").write_text(kh.content)
    out = subprocess.run(["ssh-keygen", "-F", "github.com", "-f", str(tmp_path / "known_hosts")],
                         capture_output=True, text=True)
    assert "found" in out.stdout


def test_every_secret_is_registered_where_it_was_planted():
    p, home = _planted()
    files = {f.path: f.content for f in home.files}
    for tok in home.registry:
        for loc in tok.locations:
            if loc.startswith("env:"):
                assert home.env.get(loc[4:]) == tok.value or loc in ("env:CI_REGISTRY_PASSWORD",
                                                                      "env:CI_REPOSITORY_URL")
            elif tok.kind != "docker_registry_password":  # that one is inside base64 (checked below)
                rel = loc[len(p.home) + 1:]
                assert tok.value in files[rel], (tok.kind, loc)
    kinds = {t.kind for t in home.registry}
    assert {"npm_token", "pypi_token", "rubygems_api_key", "aws_access_key_id", "aws_secret_access_key",
            "ssh_private_key", "kube_token", "github_token", "gitlab_token", "docker_registry_password",
            "ci_job_token"} <= kinds
    env_names = {loc[4:] for t in home.registry for loc in t.locations if loc.startswith("env:")}
    assert {"NPM_TOKEN", "GITHUB_TOKEN", "CI_JOB_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= env_names
    # formats a secret scanner would accept
    assert re.fullmatch(r"AKIA[A-Z2-7]{16}", home.env["AWS_ACCESS_KEY_ID"])
    assert re.fullmatch(r"[A-Za-z0-9+/]{40}", home.env["AWS_SECRET_ACCESS_KEY"])
    assert re.fullmatch(r"npm_[A-Za-z0-9]{36}", home.env["NPM_TOKEN"])
    assert re.search(r"^//registry\.npmjs\.org/:_authToken=npm_[A-Za-z0-9]{36}$", files[".npmrc"], re.M)
    assert re.search(r"^:rubygems_api_key: rubygems_[0-9a-f]{48}$", files[".gem/credentials"], re.M)
    assert files[".ssh/id_rsa"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    docker = files[".docker/config.json"]
    auth = re.search(r'"auth": "([^"]+)"', docker).group(1)
    user, _, password = base64.b64decode(auth).decode().partition(":")
    assert user == p.user and password == home.registry.by_kind("docker_registry_password")[0].value


def test_values_are_unique_and_fresh_per_plant():
    _, a = _planted()
    _, b = _planted()
    va = {t.value for t in a.registry}
    vb = {t.value for t in b.registry}
    assert len(va) == len(a.registry)  # one value, one place
    assert not va & vb


def test_personas_differ_and_are_consistent():
    a, b = Persona.random("gitlab"), Persona.random("gitlab")
    assert (a.hostname, a.machine_id, a.net.ipv6, a.ci_env["CI_JOB_ID"]) != (
        b.hostname, b.machine_id, b.net.ipv6, b.ci_env["CI_JOB_ID"])
    for p in (a, b):
        env = p.ci_env
        assert re.fullmatch(r"runner-[a-z0-9]{8}-project-\d+-concurrent-\d", p.hostname)
        assert env["CI"] == "true" and env["GITLAB_CI"] == "true"
        assert env["CI_PROJECT_DIR"] == p.project_mount == f"/builds/{env['CI_PROJECT_PATH']}"
        assert env["CI_PROJECT_URL"] == f"{env['CI_SERVER_URL']}/{env['CI_PROJECT_PATH']}"
        assert env["CI_COMMIT_SHORT_SHA"] == env["CI_COMMIT_SHA"][:8]
        assert env["CI_JOB_URL"].endswith(f"/-/jobs/{env['CI_JOB_ID']}")
        assert p.net.mac == "02:42:" + ":".join(f"{int(x):02x}" for x in p.net.ipv4.split("."))


def test_github_persona():
    p = Persona.random("github")
    assert p.user == "runner" and p.ci_env["GITHUB_ACTIONS"] == "true"
    assert p.ci_env["GITHUB_WORKSPACE"] == p.project_mount
