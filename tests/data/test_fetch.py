"""Downloads: a local HTTP server (127.0.0.1, a thread) serves small zips built by the tests."""

from __future__ import annotations

import hashlib
import io
import itertools
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from recsys.data import load_dataset
from recsys.data.fetch import ARCHIVES, ChecksumError, FetchError, UnsafeArchiveError, fetch_dataset

ML100K_FILES = {
    "u.data": "1\t1\t5\t100\n1\t2\t3\t200\n2\t1\t4\t300\n",
    "u.item": "1|One (1995)|01-Jan-1995||x" + "|0" * 18 + "|1\n2|Two (1996)|01-Jan-1996||x" + "|0" * 19 + "\n",
    "u.user": "1|24|M|technician|85711\n2|53|F|other|94043\n",
}


def make_zip(members: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in members.items():
            zf.writestr(zipfile.ZipInfo(name), text)
    return buf.getvalue()


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        srv = self.server
        srv.requests.append((self.path, self.headers.get("Range")))
        body = srv.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and srv.ranges:
            start = int(rng.removeprefix("bytes=").rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:]
        if srv.cut_after is not None:  # break off mid-download, once
            payload, srv.cut_after = payload[: srv.cut_after], None
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.files, srv.requests, srv.ranges, srv.cut_after = {}, [], True, None
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


@pytest.fixture
def dirs(tmp_path):
    return tmp_path / "data", tmp_path / "partial"


def fetch(server, name, dirs, **kw):
    dest, partial = dirs
    return fetch_dataset(name, dest, partial_dir=partial, timeout=10, **kw)


def nothing_in(dest: Path) -> bool:
    return not dest.exists() or not any(dest.iterdir())


def test_pinned_checksums_look_like_sha256():
    for name, spec in ARCHIVES.items():
        assert spec.sha256 is not None and len(spec.sha256) == 64, name
        int(spec.sha256, 16)
        assert spec.url.startswith("https://files.grouplens.org/"), name


def test_fetch_with_top_folder_then_load(server, dirs):
    body = make_zip({f"ml-100k/{k}": v for k, v in ML100K_FILES.items()} | {"ml-100k/README": "hi"})
    server.files["/ml-100k.zip"] = body
    seen = []
    path = fetch(
        server,
        "ml-100k",
        dirs,
        url=server.url + "/ml-100k.zip",
        sha256=sha(body),
        progress=lambda d, t: seen.append((d, t)),
    )
    dest, partial = dirs
    assert path == dest / "ml-100k"
    assert sorted(p.name for p in path.iterdir()) == ["README", "archive.sha256", "u.data", "u.item", "u.user"]
    assert (path / "archive.sha256").read_text() == f"{sha(body)}  ml-100k--ml-100k.zip\n"
    assert sorted(p.name for p in dest.iterdir()) == ["ml-100k"]  # no temp folders left
    assert list(partial.iterdir()) == []  # the archive is removed after extraction
    assert seen[-1] == (len(body), len(body)) and all(a[0] <= b[0] for a, b in itertools.pairwise(seen))
    ds = load_dataset("ml-100k", dest)
    assert ds.n_users == 2 and ds.interactions.nnz == 3
    # already there: no second download
    n = len(server.requests)
    assert fetch(server, "ml-100k", dirs, url=server.url + "/ml-100k.zip", sha256=sha(body)) == path
    assert len(server.requests) == n


def test_fetch_flat_archive_and_force_replaces(server, dirs):
    files = {f: "x\n" for f in ARCHIVES["lastfm-2k"].required}
    body = make_zip(files)
    server.files["/lastfm.zip"] = body
    path = fetch(server, "lastfm-2k", dirs, url=server.url + "/lastfm.zip", sha256=sha(body))
    assert path.name == "hetrec2011-lastfm-2k" and (path / "user_artists.dat").read_text() == "x\n"
    body2 = make_zip({f: "y\n" for f in files})
    server.files["/lastfm.zip"] = body2
    path2 = fetch(server, "lastfm-2k", dirs, url=server.url + "/lastfm.zip", sha256=sha(body2), force=True)
    assert path2 == path and (path / "user_artists.dat").read_text() == "y\n"
    assert sorted(p.name for p in dirs[0].iterdir()) == ["hetrec2011-lastfm-2k"]


def test_checksum_mismatch_leaves_nothing(server, dirs):
    body = make_zip({f"ml-100k/{k}": v for k, v in ML100K_FILES.items()})
    server.files["/a.zip"] = body
    with pytest.raises(ChecksumError) as e:
        fetch(server, "ml-100k", dirs, url=server.url + "/a.zip", sha256="0" * 64)
    assert sha(body) in str(e.value) and "0" * 64 in str(e.value)
    dest, partial = dirs
    assert nothing_in(dest) and nothing_in(partial)
    # without sha256= the pinned official checksum applies, which this test zip cannot match
    with pytest.raises(ChecksumError):
        fetch(server, "ml-100k", dirs, url=server.url + "/a.zip")
    assert nothing_in(dest)


@pytest.mark.parametrize("evil", ["../evil.txt", "/tmp/abs-evil.txt", "ml-100k/../../evil.txt", "C:/evil.txt"])
def test_zip_slip_is_refused(server, dirs, tmp_path, evil):
    members = {f"ml-100k/{k}": v for k, v in ML100K_FILES.items()} | {evil: "gotcha"}
    body = make_zip(members)
    assert evil in zipfile.ZipFile(io.BytesIO(body)).namelist()
    server.files["/evil.zip"] = body
    with pytest.raises(UnsafeArchiveError, match="outside the target folder"):
        fetch(server, "ml-100k", dirs, url=server.url + "/evil.zip", sha256=sha(body))
    assert nothing_in(dirs[0]) and nothing_in(dirs[1])
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/abs-evil.txt").exists()


def test_http_error_leaves_nothing(server, dirs):
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch(server, "ml-1m", dirs, url=server.url + "/missing.zip", sha256="")
    assert nothing_in(dirs[0])


def test_unreachable_server(dirs):
    with pytest.raises(FetchError, match="cannot reach"):
        fetch(None, "ml-1m", dirs, url="http://127.0.0.1:9/ml-1m.zip", sha256="")
    assert nothing_in(dirs[0])


def test_wrong_archive_or_not_a_zip(server, dirs):
    body = make_zip({"something/else.txt": "x"})
    server.files["/other.zip"] = body
    with pytest.raises(FetchError, match=r"does not contain u\.data"):
        fetch(server, "ml-100k", dirs, url=server.url + "/other.zip", sha256=sha(body))
    assert nothing_in(dirs[0])
    server.files["/page.zip"] = b"<html>not found</html>"
    with pytest.raises(FetchError, match="not a zip archive"):
        fetch(server, "ml-100k", dirs, url=server.url + "/page.zip", sha256="")
    assert nothing_in(dirs[0])


def test_broken_download_resumes_with_range(server, dirs):
    body = make_zip({f"ml-100k/{k}": v * 50 for k, v in ML100K_FILES.items()})
    server.files["/big.zip"] = body
    server.cut_after = len(body) // 2
    with pytest.raises(FetchError, match="resume"):
        fetch(server, "ml-100k", dirs, url=server.url + "/big.zip", sha256=sha(body))
    dest, partial = dirs
    assert nothing_in(dest)
    [part] = list(partial.iterdir())
    assert part.stat().st_size == len(body) // 2
    path = fetch(server, "ml-100k", dirs, url=server.url + "/big.zip", sha256=sha(body))
    assert server.requests[-1] == ("/big.zip", f"bytes={len(body) // 2}-")
    assert (path / "u.data").read_text() == ML100K_FILES["u.data"] * 50


def test_server_without_range_support_restarts(server, dirs):
    body = make_zip({f"ml-100k/{k}": v * 50 for k, v in ML100K_FILES.items()})
    server.files["/big.zip"], server.ranges, server.cut_after = body, False, 100
    with pytest.raises(FetchError):
        fetch(server, "ml-100k", dirs, url=server.url + "/big.zip", sha256=sha(body))
    path = fetch(server, "ml-100k", dirs, url=server.url + "/big.zip", sha256=sha(body))
    assert (path / "u.user").read_text() == ML100K_FILES["u.user"] * 50


def test_unknown_name_and_scheme(dirs):
    with pytest.raises(ValueError, match="choose one of"):
        fetch_dataset("netflix", dirs[0])
    with pytest.raises(FetchError, match="unsupported URL"):
        fetch(None, "ml-1m", dirs, url="ftp://example.org/x.zip")


def test_package_fetch_defaults_to_env_dir_and_matches_catalogue(server, tmp_path, monkeypatch):
    import recsys.data as data

    for name, spec in ARCHIVES.items():
        loc = data._LOCATIONS[name]
        assert spec.folder == loc.folder
        assert all(any(f in spec.required for f in options) for options in loc.required)
    body = make_zip({f"ml-100k/{k}": v for k, v in ML100K_FILES.items()})
    server.files["/z.zip"] = body
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path / "env"))
    path = data.fetch_dataset("ML100K", url=server.url + "/z.zip", sha256=sha(body), partial_dir=tmp_path / "p")
    assert path == tmp_path / "env" / "ml-100k"
    assert data.load_dataset("ml-100k").n_users == 2
