"""Package Hunter's routes against a real server: the falco-test example ends with the expected
alert in Package Hunter's shape; credentials are enforced as Package Hunter's CLI sends them; bad
uploads get clear 4xx answers."""

from __future__ import annotations

import io
import tarfile
import uuid

import pytest
from server_helpers import EXAMPLE, PASSWORDS, needs_root, tar_gz, tar_gz_members, wait_ph

pytestmark = [pytest.mark.slow]


@needs_root
def test_falco_test_project_finishes_with_package_hunter_alert(main_server):
    srv, _ = main_server
    with srv.client("alice") as c:
        r = c.post("/monitor/project/npm", content=tar_gz(EXAMPLE),
                   headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"status", "id"} and body["status"] == "ok"
        assert uuid.UUID(body["id"]).version == 4 and body["id"] == body["id"].lower()
        first = c.get("/", params={"id": body["id"]}).json()
        assert first["status"] in ("pending", "finished") and first["id"] == body["id"]
        done = wait_ph(c, body["id"])
    assert done["status"] == "finished", done
    assert done["id"] == body["id"]
    conn = [a for a in done["result"] if a["rule"] == "Unexpected outbound connection destination"]
    assert conn, done["result"]
    a = conn[-1]
    # Package Hunter's (Falco gRPC) shape: string seconds, int nanos, upper-case enums, string fields
    assert set(a) == {"output", "time", "source", "hostname", "priority", "rule", "output_fields"}
    assert isinstance(a["time"]["seconds"], str) and a["time"]["seconds"].isdigit()
    assert isinstance(a["time"]["nanos"], int) and 0 <= a["time"]["nanos"] < 10**9
    assert a["priority"] == "NOTICE" and a["source"] == "SYSCALL"
    assert all(isinstance(v, str) for v in a["output_fields"].values())
    # the fixture's preinstall hook: wget -qO- http://gitlab.com/snippets/1890615/raw
    assert a["output_fields"]["proc.cmdline"] == "wget -qO- http://gitlab.com/snippets/1890615/raw"
    assert "Disallowed outbound connection destination (command=wget -qO- http://gitlab.com" in a["output"]
    assert any(x["output_fields"]["fd.name"].endswith(":80") for x in conn)  # http:// goes to port 80
    assert any(x["rule"] == "Download tool run" and x["priority"] == "WARNING" for x in done["result"])


@needs_root
def test_inconclusive_scan_is_failed_with_reasons_not_an_empty_finished(main_server):
    srv, _ = main_server
    archive = tar_gz_members({"README.md": b"no manifest here\n"})
    with srv.client("alice") as c:
        r = c.post("/monitor/project/npm", content=archive, headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 200, r.text
        done = wait_ph(c, r.json()["id"])
    assert done["status"] == "failed"
    assert "no supported manifest" in done["reason"]
    assert done["reason"].startswith("scan inconclusive: ")
    assert done["verdict"] == "inconclusive" and done["result"] == []


def test_package_hunter_routes_need_credentials(main_server):
    srv, _ = main_server
    archive = tar_gz(EXAMPLE)
    with srv.client() as anon:
        r = anon.post("/monitor/project/npm", content=archive, headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 401
        assert r.json() == {"status": "error", "reason": "authentication required"}
        assert "Basic" in r.headers["www-authenticate"]
        assert anon.get("/", params={"id": str(uuid.uuid4())}).status_code == 401
        bad = anon.get("/", params={"id": str(uuid.uuid4())}, auth=("alice", "wrong-password"))
        assert bad.status_code == 401 and bad.json()["reason"] == "invalid credentials"
        nobody = anon.get("/", params={"id": str(uuid.uuid4())}, auth=("mallory", PASSWORDS["alice"]))
        assert nobody.status_code == 401


def test_unknown_and_missing_job_ids(main_server):
    srv, _ = main_server
    with srv.client("alice") as c:
        r = c.get("/", params={"id": str(uuid.uuid4())})
        assert r.status_code == 404 and r.json()["status"] == "error" and r.json()["reason"]
        r = c.get("/", params={"id": "../../etc/passwd"})
        assert r.status_code == 404 and r.json()["status"] == "error"
        r = c.get("/")
        assert r.status_code == 400 and r.json() == {"status": "error", "reason": "missing query parameter id"}


def _traversal_tarball() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in (("package.json", b'{"name":"x","version":"1.0.0"}'), ("../../evil.sh", b"echo pwned\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _symlink_escape_tarball() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("link")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tf.addfile(info)
    return buf.getvalue()


@pytest.mark.parametrize(("body", "status", "words"), [
    (b"", 400, "empty upload"),
    (b"this is not a tarball at all" * 20, 400, "not a gzip-compressed tar"),
    (b"\x1f\x8b\x08\x00garbage-after-gzip-magic" * 5, 400, "unsafe or malformed archive"),
    (_traversal_tarball(), 400, "path traversal"),
    (_symlink_escape_tarball(), 400, "absolute path"),
    (tar_gz_members({}), 400, "no files"),
    (b"\x1f\x8b" + b"\x00" * (1024 * 1024 + 10), 413, "too large"),
], ids=["empty", "not-gzip", "corrupt-gzip", "path-traversal", "symlink-escape", "empty-archive", "too-large"])
def test_bad_uploads_get_clear_4xx(main_server, body, status, words):
    srv, _ = main_server
    with srv.client("alice") as c:
        before = c.get("/api/v1/scans").json()["total"]
        r = c.post("/monitor/project/npm", content=body, headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == status, r.text
        assert r.json()["status"] == "error" and words in r.json()["reason"]
        assert c.get("/api/v1/scans").json()["total"] == before  # nothing was queued


def test_too_large_upload_without_content_length_is_cut_off(main_server):
    srv, _ = main_server

    def chunks():
        for _ in range(40):
            yield b"\x1f\x8b" + b"\x00" * (64 * 1024)

    with srv.client("alice") as c:
        r = c.post("/monitor/project/npm", content=chunks(), headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 413 and "too large" in r.json()["reason"]


def test_unknown_manager_and_wrong_content_type(main_server):
    srv, _ = main_server
    with srv.client("alice") as c:
        r = c.post("/monitor/project/cargo", content=tar_gz(EXAMPLE),
                   headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 422 and r.json()["status"] == "error" and "manager" in r.json()["reason"]
        r = c.post("/monitor/project/npm", content=b"{}", headers={"Content-Type": "application/json"})
        assert r.status_code == 415 and r.json()["status"] == "error"
