"""fmbook.data: registry, checked fetch (mirror, cache, download) and Tiny Shakespeare."""

import hashlib
import http.server
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from fmbook import data
from fmbook.data import registry as reg
from fmbook.data import shakespeare

PAYLOAD = bytes(range(256)) * 64  # 16 KiB of generated test data
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path):
    """No test sees the developer's mirror or cache, and retries do not wait."""
    monkeypatch.delenv(reg.MIRROR_ENV, raising=False)
    monkeypatch.setenv(reg.CACHE_ENV, str(tmp_path / "default-cache"))
    monkeypatch.setattr(reg, "BACKOFF_SECONDS", 0.01)


class Handler(http.server.BaseHTTPRequestHandler):
    """/ok sends PAYLOAD; /drop promises it all but closes halfway; /flaky fails once."""

    requests: list[str] = []

    def do_GET(self):
        type(self).requests.append(self.path)
        if self.path == "/flaky" and self.requests.count("/flaky") == 1:
            self.send_error(503, "try again")
            return
        body = PAYLOAD[: len(PAYLOAD) // 2] if self.path == "/drop" else PAYLOAD
        if self.path not in ("/ok", "/drop", "/flaky"):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A local HTTP server on 127.0.0.1 (ephemeral port); yields its base URL."""
    Handler.requests = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def fake(*urls, sha256=PAYLOAD_SHA256):
    """A test record of PAYLOAD served from ``urls``."""
    return reg.Dataset(
        name="fake",
        urls=urls,
        sha256=sha256,
        path="fake/payload.bin",
        size=len(PAYLOAD),
        license="CC0",
        citation="generated in the test",
        bibtex_key="none",
        description="a generated file",
    )


def files_under(folder):
    return sorted(p for p in folder.rglob("*") if p.is_file())


def closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/nothing-here"


# --- the registry ---------------------------------------------------------------------------


def test_tinyshakespeare_record_has_provenance():
    record = data.REGISTRY["tinyshakespeare"]
    assert record.path == "tinyshakespeare/input.txt"
    assert record.urls[0].startswith("https://raw.githubusercontent.com/karpathy/char-rnn/")
    assert record.size == 1_115_394 and record.bibtex_key == "karpathy2015charrnn"
    assert set(data.REGISTRY) == {"tinyshakespeare", "fra-eng"}  # fsdd: see fmbook.data.fsdd


def test_every_data_set_has_a_url_that_serves_its_bytes():
    """The book's own copy (a release asset) for each data set, upstream URLs after it."""
    for record in data.REGISTRY.values():
        assert record.asset.startswith(f"{reg.DATA_TAG}/"), record.name
        urls = reg.candidate_urls(record)
        assert urls[0] == f"{reg.RELEASE_URL}/{record.asset}" and urls[1:] == list(record.urls)
    assert data.REGISTRY["fra-eng"].urls == ()  # no upstream URL serves the derived file


def test_release_url_is_the_books_repository(monkeypatch):
    import setup_cell

    assert reg.RELEASE_URL == f"{setup_cell.repository_url()}/releases/download"
    monkeypatch.setenv(reg.RELEASE_URL_ENV, "http://teacher:8000/")
    assert reg.release_url("data-v1/fra-eng.txt") == "http://teacher:8000/data-v1/fra-eng.txt"


@pytest.mark.slow
def test_data_release_is_byte_stable_and_serves_every_data_set(data_mirror, tmp_path):
    """`make data-release`: two builds give the same assets, and a reader gets every data
    set from them (the tool fetches them through file:// URLs into an empty cache)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "tools" / "build_data_release.py"
    spec = importlib.util.spec_from_file_location("build_data_release", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.main(["--mirror", str(data_mirror), "--out", str(tmp_path / "a" / "data-v1")])
    tool.build(data_mirror, tmp_path / "b" / "data-v1")
    sums = [(tmp_path / d / "data-v1" / "SHA256SUMS").read_text() for d in "ab"]
    assert sums[0] == sums[1]
    names = sorted(line.split()[1] for line in sums[0].splitlines())
    assert names == ["fra-eng.txt", "fsdd-recordings.tar", "tinyshakespeare-input.txt"]
    # and CI rebuilds the mirror from them (tools/mirror_from_release.py, standard library)
    mirror = tmp_path / "mirror"
    script = path.with_name("mirror_from_release.py")
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "a" / "data-v1"), str(mirror)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "3,002 files, checked" in done.stdout
    ours = (mirror / "SHA256SUMS").read_text().splitlines()
    theirs = set((data_mirror / "SHA256SUMS").read_text().splitlines())
    assert len(ours) == 3002 and set(ours) <= theirs


def test_record_rejects_bad_fields():
    with pytest.raises(ValueError, match="sha256"):
        fake("http://127.0.0.1/x", sha256="abc")
    with pytest.raises(ValueError, match="URL"):
        fake()


def test_unknown_name_lists_known_names(tmp_path):
    with pytest.raises(data.UnknownDatasetError, match="tinyshakespeare") as info:
        data.fetch("shakespear", cache=tmp_path)
    assert isinstance(info.value, ValueError) and "'shakespear'" in str(info.value)


# --- mirror and cache -----------------------------------------------------------------------


def test_mirror_hit_is_verified_and_used_in_place(data_mirror, tmp_path, monkeypatch):
    monkeypatch.setenv(reg.MIRROR_ENV, str(data_mirror))
    path = data.fetch("tinyshakespeare", cache=tmp_path)
    assert path == data_mirror / "tinyshakespeare" / "input.txt"
    assert path.stat().st_size == data.REGISTRY["tinyshakespeare"].size
    assert files_under(tmp_path) == []  # nothing copied into the cache


def test_bad_mirror_file_raises_and_is_left_alone(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "fake").mkdir(parents=True)
    (mirror / "fake" / "payload.bin").write_bytes(b"not the payload")
    with pytest.raises(data.ChecksumError) as info:
        data.fetch(fake("http://127.0.0.1:9/x"), mirror=mirror, cache=tmp_path / "cache")
    assert info.value.expected == fake("x").sha256 and info.value.got != info.value.expected
    assert (mirror / "fake" / "payload.bin").read_bytes() == b"not the payload"


def test_cache_hit_needs_no_network(tmp_path, monkeypatch):
    cached = tmp_path / "fake" / "payload.bin"
    cached.parent.mkdir()
    cached.write_bytes(PAYLOAD)
    monkeypatch.setenv(reg.CACHE_ENV, str(tmp_path))
    assert data.fetch(fake(closed_port_url())) == cached


def test_corrupted_cache_file_is_replaced(server, tmp_path):
    cached = tmp_path / "fake" / "payload.bin"
    cached.parent.mkdir()
    cached.write_bytes(b"corrupted")
    with pytest.warns(UserWarning, match="wrong checksum"):
        path = data.fetch(fake(f"{server}/ok"), cache=tmp_path)
    assert path == cached and cached.read_bytes() == PAYLOAD


# --- downloads ------------------------------------------------------------------------------


def test_download_into_cache(server, tmp_path):
    path = data.fetch("fake", cache=tmp_path, registry={"fake": fake(f"{server}/ok")})
    assert path == tmp_path / "fake" / "payload.bin" and path.read_bytes() == PAYLOAD
    assert files_under(tmp_path) == [path]  # no temporary file left over
    assert data.fetch("fake", cache=tmp_path, registry={"fake": fake(f"{server}/ok")}) == path
    assert Handler.requests == ["/ok"]  # the second fetch was a cache hit


def test_wrong_checksum_keeps_nothing(server, tmp_path):
    with pytest.raises(data.ChecksumError, match="discarded") as info:
        data.fetch(fake(f"{server}/ok", sha256="0" * 64), cache=tmp_path, retries=2)
    assert info.value.expected == "0" * 64
    assert info.value.got == PAYLOAD_SHA256
    assert files_under(tmp_path) == []
    assert Handler.requests == ["/ok"]  # same server, same bytes: no point in retrying


def test_dropped_connection_keeps_nothing(server, tmp_path):
    with pytest.raises(data.DownloadError, match="closed after 8192 of 16384 bytes"):
        data.fetch(fake(f"{server}/drop"), cache=tmp_path, retries=1)
    assert files_under(tmp_path) == []
    assert Handler.requests == ["/drop", "/drop"]


def test_unreachable_server_explains_what_to_do(tmp_path):
    url = closed_port_url()
    with pytest.raises(data.DownloadError) as info:
        data.fetch(fake(url), cache=tmp_path, retries=0, timeout=5)
    message = str(info.value)
    assert url in message and "FMBOOK_DATA_MIRROR" in message
    assert str(tmp_path / "fake" / "payload.bin") in message  # where to put the file by hand
    assert files_under(tmp_path) == []


def test_retries_until_the_server_answers(server, tmp_path):
    path = data.fetch(fake(f"{server}/flaky"), cache=tmp_path, retries=1)
    assert path.read_bytes() == PAYLOAD
    assert Handler.requests == ["/flaky", "/flaky"]


def test_next_url_after_a_missing_file(server, tmp_path):
    path = data.fetch(fake(f"{server}/missing", f"{server}/ok"), cache=tmp_path, retries=3)
    assert path.read_bytes() == PAYLOAD
    assert Handler.requests == ["/missing", "/ok"]  # a 404 is not retried


def test_interrupt_leaves_no_partial_file(server, tmp_path, monkeypatch):
    def interrupted(response, out):
        out.write(response.read(100))
        raise KeyboardInterrupt

    monkeypatch.setattr(reg, "_stream", interrupted)
    with pytest.raises(KeyboardInterrupt):
        data.fetch(fake(f"{server}/ok"), cache=tmp_path)
    assert files_under(tmp_path) == []


# --- Tiny Shakespeare -----------------------------------------------------------------------


def test_load_and_split_tiny_shakespeare(data_mirror, monkeypatch):
    monkeypatch.setenv(reg.MIRROR_ENV, str(data_mirror))
    text = shakespeare.load_text()
    assert text.startswith("First Citizen:") and len(text) == 1_115_394
    train, val = shakespeare.split(text)
    assert train + val == text and len(train) == int(0.9 * len(text))


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1, float("nan")])
def test_split_rejects_bad_fractions(fraction):
    with pytest.raises(ValueError, match="train_fraction"):
        shakespeare.split("some text", fraction)


def test_split_rejects_too_short_text_and_non_numbers():
    with pytest.raises(ValueError, match="too short"):
        shakespeare.split("a")
    with pytest.raises(TypeError, match="train_fraction"):
        shakespeare.split("some text", "0.9")
