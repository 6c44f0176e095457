"""IDX reader/writer: exact official byte layout, gzip detection by magic, strict validation."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from routing_rl.data.base import DataError
from routing_rl.data.idx import idx_bytes, parse_idx, read_idx, read_payload, write_idx


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28),
        np.array([3, 1, 4, 1, 5], dtype=np.uint8),
        np.array([[-7, 70000], [1, 2]], dtype=np.int32),
        np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4),
        np.array([-3, 2], dtype=np.int8),
        np.array([1.5, -2.25], dtype=np.float64),
    ],
)
def test_round_trip(tmp_path: Path, array: np.ndarray, compress: bool) -> None:
    path = write_idx(tmp_path / "a.idx", array, gzip=compress)
    back = read_idx(path)
    assert back.dtype == array.dtype and back.dtype.isnative
    np.testing.assert_array_equal(back, array)


def test_official_header_bytes() -> None:
    data = idx_bytes(np.array([7, 8, 9], dtype=np.uint8))
    assert data == bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 7, 8, 9])
    images = idx_bytes(np.zeros((2, 28, 28), dtype=np.uint8))
    assert images[:16] == bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28])
    assert idx_bytes(np.array([1], dtype=np.int32))[-4:] == b"\x00\x00\x00\x01"  # big-endian data


def test_gzip_is_detected_by_magic_not_extension(tmp_path: Path) -> None:
    array = np.arange(10, dtype=np.uint8)
    gz_without_suffix = write_idx(tmp_path / "labels-idx1-ubyte", array, gzip=True)
    plain_with_suffix = write_idx(tmp_path / "labels-idx1-ubyte.gz", array, gzip=False)
    assert gz_without_suffix.read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(read_idx(gz_without_suffix), array)
    np.testing.assert_array_equal(read_idx(plain_with_suffix), array)
    assert read_payload(gz_without_suffix) == idx_bytes(array)


def test_gzip_output_is_reproducible(tmp_path: Path) -> None:
    array = np.arange(100, dtype=np.uint8)
    first = write_idx(tmp_path / "a.gz", array, gzip=True).read_bytes()
    second = write_idx(tmp_path / "b.gz", array, gzip=True).read_bytes()
    assert first == second and gzip.decompress(first) == idx_bytes(array)


@pytest.mark.parametrize("compress", [False, True])
def test_truncated_file_names_the_file(tmp_path: Path, compress: bool) -> None:
    path = write_idx(tmp_path / "train-images-idx3-ubyte", np.ones((4, 28, 28), dtype=np.uint8), gzip=compress)
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        read_idx(path)


def test_truncated_payload_and_trailing_bytes(tmp_path: Path) -> None:
    payload = idx_bytes(np.ones((3, 5), dtype=np.uint8))
    with pytest.raises(DataError, match=r"x\.idx is truncated"):
        parse_idx(payload[:-1], "x.idx")
    with pytest.raises(DataError, match="longer than its header"):
        parse_idx(payload + b"\x00", "x.idx")
    with pytest.raises(DataError, match="truncated: header"):
        parse_idx(payload[:6], "x.idx")


@pytest.mark.parametrize("header", [b"\x01\x00\x08\x01", b"\x00\x00\x07\x01", b"\x00\x00\x08\x00", b"PK"])
def test_bad_magic(tmp_path: Path, header: bytes) -> None:
    path = tmp_path / "bogus-idx1-ubyte"
    path.write_bytes(header + b"\x00\x00\x00\x01\x05")
    with pytest.raises(DataError, match="bogus-idx1-ubyte"):
        read_idx(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nothere"):
        read_idx(tmp_path / "nothere")


def test_writer_rejects_unsupported_arrays(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dtype"):
        write_idx(tmp_path / "a", np.zeros(3, dtype=np.uint16))
    with pytest.raises(ValueError, match="dimensions"):
        write_idx(tmp_path / "b", np.zeros((), dtype=np.uint8))
    assert not list(tmp_path.iterdir())


def test_a_header_whose_size_overflows_int64_is_truncated_not_negative(tmp_path):
    import struct

    from routing_rl.data.base import DataError
    from routing_rl.data.idx import parse_idx

    payload = bytes([0, 0, 0x08, 2]) + struct.pack(">2I", 2**32 - 1, 2**32 - 1) + b"\0" * 16  # int64 product: negative
    with pytest.raises(DataError, match=r"is truncated: dims .* need \d+ bytes") as info:
        parse_idx(payload, "forged.idx")
    assert "need -" not in str(info.value)
