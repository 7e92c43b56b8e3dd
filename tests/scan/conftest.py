"""Makes the project builders next to the scan tests importable, and serves the test gems."""

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from projects import gem_server as _gem_server


@pytest.fixture(scope="session")
def gem_server(tmp_path_factory):
    if shutil.which("gem") is None:
        pytest.skip("needs ruby's gem command")
    with _gem_server(tmp_path_factory.mktemp("gemsrc")) as port:
        yield port


@pytest.fixture(scope="session")
def node_lock_cache(tmp_path_factory):
    """corepack's downloads (yarn, pnpm) and the managers' caches, shared by the lockfile writers."""
    if shutil.which("corepack") is None:
        pytest.skip("needs node's corepack")
    return tmp_path_factory.mktemp("node-lock-cache")
