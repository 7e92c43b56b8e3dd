"""Running yarn and pnpm through corepack (node >= 16 ships it; neither is installed system-wide).

corepack downloads the package manager in the fetch phase into COREPACK_HOME inside the project
copy, so the offline phases find it there. We pin default versions by hash, which is also what
lets us skip corepack's npm-signature check (some registry mirrors strip signatures); a version
the project names in `packageManager` without a hash keeps the signature check.
"""

from __future__ import annotations

from pathlib import Path

DEFAULTS = {
    "yarn1": "yarn@1.22.22+sha512.a6b2f7906b721bba3d67d4aff083df04dad64c399707841b7acf00f6b133b7ac24255f2652fa22ae3534329dc6180534e98d17432037ff6fd140556e2bb3137e",
    "yarn4": "yarn@4.9.1+sha512.4d6ab01b3f899acf40a54647f7fbabd7bb6ab70b8b2196e8a0cba3fb5e2fef2c9f659445c8959cc677353eeb643b9e4cca3b9e7448ad960dd84d5e111e07ce8c",
    "pnpm8": "pnpm@8.15.9+sha512.499434c9d8fdd1a2794ebf4552b3b25c0a633abcee5bb15e7b5de90f32f47b513aca98cd5cfd001c31f0db454bc3804edccd578501e4ca293a6816166bbd9f81",
    "pnpm9": "pnpm@9.15.9+sha512.68046141893c66fad01c079231128e9afb89ef87e2691d69e4d40eee228988295fd4682181bae55b58418c3a253bde65a505ec7c5f9403ece5cc3cd37dcf2531",
}
NPM_REGISTRY_URL = "https://registry.npmjs.org"
SYSTEM_CA = Path("/etc/ssl/certs/ca-certificates.crt")


def manager_spec(manifest: dict, manager: str, default: str) -> str:
    """The project's `packageManager` when it names this manager, else our pinned default."""
    pm = manifest.get("packageManager")
    if isinstance(pm, str) and pm.startswith(f"{manager}@"):
        return pm
    return default


def corepack_env(work: str, spec: str, *, online: bool, npm_registry: str | None = None) -> dict[str, str]:
    env = {
        "COREPACK_HOME": f"{work}/corepack",
        "COREPACK_ENABLE_DOWNLOAD_PROMPT": "0",
        "COREPACK_ENABLE_AUTO_PIN": "0",  # never rewrite the project's package.json
        "COREPACK_ENABLE_STRICT": "0",  # our pinned manager even if packageManager names another
        # yarn berry from the npm registry (@yarnpkg/cli-dist) rather than repo.yarnpkg.com
        "COREPACK_NPM_REGISTRY": (npm_registry or NPM_REGISTRY_URL).rstrip("/"),
    }
    if "+sha" in spec:
        env["COREPACK_INTEGRITY_KEYS"] = "0"
    if not online:
        env["COREPACK_ENABLE_NETWORK"] = "0"
    if SYSTEM_CA.is_file():
        # node trusts only its bundled CAs; the host's trust store is what its administrator configured
        env["NODE_EXTRA_CA_CERTS"] = str(SYSTEM_CA)
    return env


def with_proxy_config(argv: list[str]) -> list[str]:
    """Run argv with yarn's own proxy settings copied from HTTP(S)_PROXY (yarn ignores those variables)."""
    script = ('[ -n "${HTTPS_PROXY:-}" ] && export YARN_HTTPS_PROXY="$HTTPS_PROXY" npm_config_https_proxy="$HTTPS_PROXY"; '
              '[ -n "${HTTP_PROXY:-}" ] && export YARN_HTTP_PROXY="$HTTP_PROXY" npm_config_proxy="$HTTP_PROXY"; '
              'exec "$@"')
    return ["/bin/sh", "-c", script, "sh", *argv]
