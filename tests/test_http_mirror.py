"""FMBOOK_DATA_MIRROR as an http(s):// address, and archives checked file by file, against a
local HTTP server (tests/local_server.py): a mirror folder or a release folder served over
HTTP, wrong bytes, a dropped connection, the FSDD archive. No test touches the internet:
the release URL points at the local server and upstream URLs at closed ports."""

import hashlib
import io
import tarfile

import pytest
from local_server import LocalServer

from fmbook import data
from fmbook.data import fsdd
from fmbook.data import registry as reg

PAYLOAD = bytes(range(256)) * 64  # 16 KiB of generated test data
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path):
    """No developer mirror or cache; retries do not wait; no URL leaves this machine."""
    monkeypatch.delenv(reg.MIRROR_ENV, raising=False)
    monkeypatch.setenv(reg.CACHE_ENV, str(tmp_path / "default-cache"))
    monkeypatch.setenv(reg.RELEASE_URL_ENV, "http://127.0.0.1:9/releases")  # closed port
    monkeypatch.setattr(reg, "BACKOFF_SECONDS", 0.01)
    monkeypatch.setattr(fsdd, "UPSTREAM", "http://127.0.0.1:9/recordings/")
    monkeypatch.setattr(fsdd, "UPSTREAM_ARCHIVE", "http://127.0.0.1:9/fsdd.tar.gz")


def record(**changes):
    fields = dict(
        name="fake",
        urls=(),
        asset="data-v1/fake-payload.bin",
        sha256=SHA,
        path="fake/payload.bin",
        size=len(PAYLOAD),
        license="CC0",
        citation="generated in the test",
        bibtex_key="none",
        description="a generated file",
    )
    return reg.Dataset(**(fields | changes))


def files_under(folder):
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())


def put(folder, relative, body=PAYLOAD):
    (folder / relative).parent.mkdir(parents=True, exist_ok=True)
    (folder / relative).write_bytes(body)


def test_http_mirror_serving_a_mirror_folder(tmp_path):
    put(tmp_path / "srv", "fake/payload.bin")
    cache = tmp_path / "cache"
    with LocalServer(tmp_path / "srv") as server:
        path = data.fetch(record(), mirror=server.url + "/", cache=cache)
    assert path == cache / "fake" / "payload.bin" and path.read_bytes() == PAYLOAD
    assert server.requests == ["/fake/payload.bin"]


@pytest.mark.parametrize("served", ["dist", "dist/data-v1"])
def test_http_mirror_serving_a_release_folder(tmp_path, monkeypatch, served):
    put(tmp_path / "dist" / "data-v1", "fake-payload.bin")
    with LocalServer(tmp_path / served) as server:
        monkeypatch.setenv(reg.MIRROR_ENV, server.url)  # the environment variable, too
        path = data.fetch(record(), cache=tmp_path / "cache")
    assert path.read_bytes() == PAYLOAD
    found = "/data-v1/fake-payload.bin" if served == "dist" else "/fake-payload.bin"
    assert server.requests[-1] == found and len(server.requests) <= 3  # 404s are not retried


def test_release_url_is_used_after_the_mirror(tmp_path, monkeypatch):
    put(tmp_path / "dist" / "data-v1", "fake-payload.bin")
    with LocalServer(tmp_path / "dist") as server:
        monkeypatch.setenv(reg.RELEASE_URL_ENV, server.url)
        path = data.fetch(record(), cache=tmp_path / "cache")
        assert reg.candidate_urls(record()) == [f"{server.url}/data-v1/fake-payload.bin"]
    assert path.read_bytes() == PAYLOAD and server.requests == ["/data-v1/fake-payload.bin"]


def test_http_mirror_with_wrong_bytes_raises_and_keeps_nothing(tmp_path):
    put(tmp_path / "srv", "fake/payload.bin")
    cache = tmp_path / "cache"
    with LocalServer(tmp_path / "srv") as server:
        server.faults["/fake/payload.bin"] = "wrong"
        with pytest.raises(data.ChecksumError, match="discarded") as info:
            data.fetch(record(), mirror=server.url, cache=cache, retries=2)
    assert info.value.expected == SHA and info.value.got != SHA
    assert f"{server.url}/fake/payload.bin" in str(info.value)
    assert server.requests.count("/fake/payload.bin") == 1  # same server, same bytes
    assert files_under(cache) == []


def test_http_mirror_dropping_the_connection_is_retried_then_explained(tmp_path):
    put(tmp_path / "srv", "fake/payload.bin")
    cache = tmp_path / "cache"
    with LocalServer(tmp_path / "srv") as server:
        server.faults["/fake/payload.bin"] = "drop"
        with pytest.raises(data.DownloadError) as info:
            data.fetch(record(), mirror=server.url, cache=cache, retries=2)
    message = str(info.value)
    assert "closed after 8192 of 16384 bytes" in message and "attempt 3" in message
    assert server.url in message and "FMBOOK_DATA_MIRROR" in message
    assert server.requests.count("/fake/payload.bin") == 3
    assert files_under(cache) == []


def test_a_dropped_connection_then_a_good_one_succeeds(tmp_path):
    put(tmp_path / "srv", "fake/payload.bin")
    with LocalServer(tmp_path / "srv") as server:
        server.faults["/fake/payload.bin"] = "drop-once"
        path = data.fetch(record(), mirror=server.url, cache=tmp_path / "cache", retries=1)
    assert path.read_bytes() == PAYLOAD
    assert server.requests == ["/fake/payload.bin"] * 2


# --- the FSDD recordings as one archive -----------------------------------------------------

NAMES = ["0_george_0.wav", "1_jackson_7.wav", "9_theo_49.wav"]


def recordings(data_mirror):
    return {n: (data_mirror / fsdd.FOLDER / n).read_bytes() for n in NAMES}


def tar_of(members: dict[str, bytes], mode="w") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


def test_fsdd_comes_as_one_archive_checked_file_by_file(tmp_path, data_mirror):
    audio = recordings(data_mirror)
    put(
        tmp_path / "srv",
        "fsdd-recordings.tar",
        tar_of({f"fsdd/recordings/{n}": b for n, b in audio.items()}),
    )
    cache = tmp_path / "cache"
    with LocalServer(tmp_path / "srv") as server:
        folder = fsdd.fetch_fsdd(NAMES, mirror=server.url, cache=cache)
        again = fsdd.fetch_fsdd(NAMES, mirror=server.url, cache=cache)  # from the cache
    assert folder == again == cache / "fsdd" / "recordings"
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == audio
    assert server.requests == ["/data-v1/fsdd-recordings.tar", "/fsdd-recordings.tar"]
    assert files_under(cache) == [
        cache_path.relative_to(cache) for cache_path in sorted(folder.iterdir())
    ]


def test_fsdd_archive_with_another_folder_and_compression(tmp_path, data_mirror):
    """Like the upstream repository's archive: another top folder, gzip; same files."""
    audio = recordings(data_mirror)
    members = {f"free-spoken-digit-dataset-1.0.10/recordings/{n}": b for n, b in audio.items()}
    members["free-spoken-digit-dataset-1.0.10/README.md"] = b"not wanted"
    put(tmp_path / "srv", "fsdd.tar.gz", tar_of(members, mode="w:gz"))
    with LocalServer(tmp_path / "srv") as server:
        records = [
            fsdd.recording_record(n, hashlib.sha256(b).hexdigest(), len(b))
            for n, b in audio.items()
        ]
        paths = reg.fetch_members(records, [f"{server.url}/fsdd.tar.gz"], cache=tmp_path / "c")
    assert [p.read_bytes() for p in paths] == list(audio.values())


def test_fsdd_archive_with_a_wrong_recording_is_rejected(tmp_path, data_mirror):
    audio = recordings(data_mirror)
    audio_bad = dict(audio)
    audio_bad[NAMES[1]] = audio[NAMES[1]][:-1] + b"\x00"
    put(
        tmp_path / "srv",
        "fsdd-recordings.tar",
        tar_of({f"fsdd/recordings/{n}": b for n, b in audio_bad.items()}),
    )
    cache = tmp_path / "cache"
    with LocalServer(tmp_path / "srv") as server, pytest.raises(data.ChecksumError) as info:
        fsdd.fetch_fsdd(NAMES, mirror=server.url, cache=cache, retries=1)
    assert NAMES[1] in str(info.value) and "discarded" in str(info.value)
    assert not (cache / fsdd.FOLDER / NAMES[1]).exists()  # the wrong file is never written
    assert not [p for p in cache.rglob("*.part")]
    assert server.requests.count("/fsdd-recordings.tar") == 1  # wrong bytes are not retried


def test_fsdd_archive_dropped_then_file_by_file_from_a_mirror_folder(tmp_path, data_mirror):
    """A server that drops the archive: retried, then the HTTP mirror's folder, file by file."""
    audio = recordings(data_mirror)
    put(
        tmp_path / "srv",
        "fsdd-recordings.tar",
        tar_of({f"fsdd/recordings/{n}": b for n, b in audio.items()}),
    )
    for name, body in audio.items():
        put(tmp_path / "srv", f"fsdd/recordings/{name}", body)
    cache = tmp_path / "cache"
    with LocalServer(tmp_path / "srv") as server:
        server.faults["/fsdd-recordings.tar"] = "drop"
        folder = fsdd.fetch_fsdd(NAMES, mirror=server.url, cache=cache, retries=1)
    assert server.requests.count("/fsdd-recordings.tar") == 2
    assert [r for r in server.requests if r.endswith(".wav")] == [
        f"/fsdd/recordings/{n}" for n in NAMES
    ]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == audio
    assert not [p for p in cache.rglob("*.part")]


def test_fsdd_without_any_source_is_a_clear_error(tmp_path):
    with pytest.raises(data.DownloadError) as info:
        fsdd.fetch_fsdd(NAMES, cache=tmp_path / "cache", retries=0, timeout=5)
    message = str(info.value)
    assert "FMBOOK_DATA_MIRROR" in message and "fsdd-recordings.tar" in message
    assert files_under(tmp_path) == []
