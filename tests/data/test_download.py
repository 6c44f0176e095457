"""Checksummed atomic downloads and data-directory search (local URLs only, no internet)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from routing_rl.data import download as dl
from routing_rl.data.base import DataError

PAYLOAD = b"routing networks " * 1000


@pytest.fixture
def source(tmp_path: Path) -> Path:
    directory = tmp_path / "served"
    directory.mkdir()
    (directory / "blob.bin").write_bytes(PAYLOAD)
    return directory


def test_digest_helpers(source: Path) -> None:
    path = source / "blob.bin"
    assert dl.md5(path) == hashlib.md5(PAYLOAD).hexdigest()
    assert dl.sha256(path) == hashlib.sha256(PAYLOAD).hexdigest()
    assert dl.file_digest(path, "sha1") == hashlib.sha1(PAYLOAD).hexdigest()


def test_file_url_download_verifies(source: Path, tmp_path: Path, datagen: SimpleNamespace) -> None:
    dest = tmp_path / "out" / "blob.bin"
    url = (source / "blob.bin").as_uri()
    got = dl.download(url, dest, md5=hashlib.md5(PAYLOAD).hexdigest(), sha256=hashlib.sha256(PAYLOAD).hexdigest())
    assert got == dest and dest.read_bytes() == PAYLOAD
    assert datagen.leftovers(dest.parent) == []


def test_http_download(source: Path, tmp_path: Path, serve: Callable[[Path], str]) -> None:
    base = serve(source)
    dest = dl.download(base + "blob.bin", tmp_path / "blob.bin", sha256=hashlib.sha256(PAYLOAD).hexdigest())
    assert dest.read_bytes() == PAYLOAD


def test_checksum_mismatch_leaves_nothing(
    source: Path, tmp_path: Path, serve: Callable[[Path], str], datagen: SimpleNamespace
) -> None:
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"checksum mismatch for .*blob\.bin"):
        dl.download(serve(source) + "blob.bin", out / "blob.bin", md5="0" * 32)
    assert not (out / "blob.bin").exists()
    assert list(out.iterdir()) == []


def test_http_404_and_refused_connection(
    source: Path, tmp_path: Path, serve: Callable[[Path], str], dead_url: str
) -> None:
    out = tmp_path / "out"
    with pytest.raises(DataError, match="could not download"):
        dl.download(serve(source) + "missing.bin", out / "missing.bin")
    with pytest.raises(DataError, match="could not download"):
        dl.download(dead_url + "blob.bin", out / "blob.bin", timeout=5)
    assert list(out.iterdir()) == []


def test_existing_file_survives_failed_download(tmp_path: Path, dead_url: str) -> None:
    dest = tmp_path / "keep.bin"
    dest.write_bytes(b"old")
    with pytest.raises(DataError):
        dl.download(dead_url + "keep.bin", dest, timeout=5)
    assert dest.read_bytes() == b"old"


def test_verify_file_names_file_and_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(PAYLOAD)
    good = hashlib.md5(PAYLOAD).hexdigest()
    with pytest.raises(DataError, match=r"data\.bin"):
        dl.verify_file(path, "md5", "f" * 32)
    dl.verify_file(path, "md5", good)

    def no_hashing(*_: object) -> str:
        raise AssertionError("a verified file version must not be hashed again")

    monkeypatch.setattr(dl, "file_digest", no_hashing)
    dl.verify_file(path, "md5", good)
    monkeypatch.undo()
    path.write_bytes(PAYLOAD + b"x")  # new size: checked again
    with pytest.raises(DataError, match="checksum mismatch"):
        dl.verify_file(path, "md5", good)


def test_candidate_dirs_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = tmp_path / "explicit"
    system = tmp_path / "system"
    assert dl.candidate_dirs(explicit, "suite", [system]) == [explicit / "suite", explicit]
    env = tmp_path / "env"
    monkeypatch.setenv(dl.ENV_VAR, str(env))
    assert dl.candidate_dirs(None, "suite", [system]) == [
        env / "suite",
        env,
        system,
        dl.user_cache_dir() / "suite",
    ]
    assert dl.download_root(None) == env
    assert dl.download_root(explicit) == explicit
    monkeypatch.delenv(dl.ENV_VAR)
    assert dl.candidate_dirs(None, "suite", [system]) == [system, dl.user_cache_dir() / "suite"]
    assert dl.download_root(None) == dl.user_cache_dir()
    assert os.environ["XDG_CACHE_HOME"] in str(dl.user_cache_dir())


def test_find_data_dir(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "marker").write_text("x")
    candidates = [tmp_path / "a", tmp_path / "b", tmp_path]
    assert dl.find_data_dir(candidates, lambda d: (d / "marker").is_file()) == tmp_path / "b"
    assert dl.find_data_dir(candidates, lambda d: False) is None


def test_missing_files_error_says_what_where_and_how(tmp_path: Path) -> None:
    err = dl.missing_files_error("Demo", ["a.bin", "b.bin"], [tmp_path / "x"], tmp_path / "put", "http://example/")
    text = str(err)
    for part in ("a.bin", "b.bin", str(tmp_path / "x"), str(tmp_path / "put"), "http://example/"):
        assert part in text


def test_missing_files_error_speaks_command_line(tmp_path: Path) -> None:
    text = str(dl.missing_files_error("Demo", ["a.bin"], [tmp_path], tmp_path, "http://example/"))
    assert "pass --data-dir DIR" in text and "pass -e download=true" in text
    assert "data_dir=" not in text and "download=True" not in text
    assert "\n" not in text
    partial = str(dl.missing_files_error("Demo", ["a.bin"], [tmp_path], tmp_path, "http://x/", found_in=tmp_path))
    assert f"missing data file(s) a.bin in {tmp_path} (the other files are there)." in partial
