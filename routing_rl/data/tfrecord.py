"""TFRecord files, read and written without TensorFlow (the messages inside: :mod:`routing_rl.data.tf_example`).

YouTube8M ships as TFRecord files of ``tf.train.Example`` protos. Depending on TensorFlow just to
read them would pull in a multi-gigabyte package, so this module implements the record framing
directly:

* Record framing (TensorFlow ``core/lib/io/record_writer.cc``), little-endian::

      uint64 length
      uint32 masked_crc32c(length bytes)
      byte   data[length]
      uint32 masked_crc32c(data)

  with ``masked_crc(c) = (((c >> 15) | (c << 17)) + 0xa282ead8) mod 2^32`` over CRC-32C
  (Castagnoli, reflected polynomial 0x82F63B78).

CRC-32C uses the ``google-crc32c`` (or ``crc32c``) package when installed, a C implementation that
checks a 1 GB YouTube8M shard in about a second; otherwise a table-driven pure-Python fallback,
correct but roughly 1 MB/s, so install ``google-crc32c`` or pass ``verify=False`` for full data
(``-e verify_crc=false`` for ``routing-rl run --env youtube8m``).
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from routing_rl.data.base import DataError

_CRC32C_POLY = 0x82F63B78
_MASK_DELTA = 0xA282EAD8
_U32 = 0xFFFFFFFF


def _make_crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _CRC32C_POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _make_crc_table()


def crc32c_python(data: bytes) -> int:
    """CRC-32C of ``data`` by the byte-wise table method (reference implementation, slow)."""
    crc = _U32
    table = _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ _U32


def _select_backend() -> tuple[str, object]:
    try:
        import google_crc32c  # type: ignore[import-not-found]

        if getattr(google_crc32c, "implementation", "c") == "c":
            return "google-crc32c", google_crc32c.value
    except ImportError:
        pass
    try:
        import crc32c as crc32c_pkg  # type: ignore[import-not-found]

        return "crc32c", crc32c_pkg.crc32c
    except ImportError:
        return "python", crc32c_python


CRC32C_BACKEND, _crc32c_impl = _select_backend()
"""Which implementation :func:`crc32c` uses: ``google-crc32c``, ``crc32c`` or ``python``."""


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``; ``crc32c(b"123456789") == 0xE3069283``."""
    return int(_crc32c_impl(bytes(data)))  # type: ignore[operator]


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC: ``(((crc >> 15) | (crc << 17)) + 0xa282ead8) mod 2^32``."""
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & _U32) + _MASK_DELTA) & _U32


# --------------------------------------------------------------------------------------------
# Record framing


def frame_record(data: bytes) -> bytes:
    """One TFRecord record (header, CRCs and payload) for ``data``."""
    header = struct.pack("<Q", len(data))
    return b"".join((header, struct.pack("<I", masked_crc32c(header)), data, struct.pack("<I", masked_crc32c(data))))


def write_tfrecord(path: str | Path, records: Iterable[bytes]) -> int:
    """Write ``records`` to a TFRecord file (uncompressed); returns the number written."""
    count = 0
    with open(path, "wb") as f:
        for data in records:
            f.write(frame_record(data))
            count += 1
    return count


def read_tfrecord(path: str | Path, verify: bool = True) -> Iterator[bytes]:
    """Yield the payload of every record of an uncompressed TFRecord file.

    With ``verify`` both CRCs of each record are checked. A CRC mismatch or a truncated record
    raises :class:`DataError` naming the file and the record number (0-based), and so does a path
    that cannot be opened as a file (a directory named like a shard, a broken link).

    The length field is checked against the bytes left in the file *before* the payload is read:
    with ``verify`` off nothing else vouches for it, and a corrupt length of up to 2**64 - 1 would
    otherwise make Python try to allocate that many bytes (``MemoryError``/``OverflowError``).
    """
    path = Path(path)
    with _open_record_file(path) as f:
        info = os.fstat(f.fileno())
        size = info.st_size if stat.S_ISREG(info.st_mode) else None  # unknown for pipes
        index = 0
        while True:
            header = f.read(8)
            if not header:
                return
            if len(header) < 8:
                raise DataError(
                    f"{path}: record {index} (0-based): truncated header; the file is incomplete, download it again"
                )
            length_crc = _read_exact(f, 4, path, index, "length CRC")
            (length,) = struct.unpack("<Q", header)
            if verify and struct.unpack("<I", length_crc)[0] != masked_crc32c(header):
                raise DataError(
                    f"{path}: record {index} (0-based): length CRC mismatch; the file is corrupt, download it again"
                )
            if size is not None and length + 4 > (left := size - f.tell()):
                raise DataError(
                    f"{path}: record {index} (0-based): length field says {length} bytes, but only {left} bytes "
                    f"are left in the file for the payload and its 4-byte CRC; the file is truncated or corrupt, "
                    "download it again"
                )
            data = _read_exact(f, length, path, index, "data")
            data_crc = _read_exact(f, 4, path, index, "data CRC")
            if verify and struct.unpack("<I", data_crc)[0] != masked_crc32c(data):
                raise DataError(
                    f"{path}: record {index} (0-based): data CRC mismatch; the file is corrupt, download it again"
                )
            yield data
            index += 1


def _open_record_file(path: Path) -> BinaryIO:
    """``open(path, "rb")``, with :class:`DataError` instead of ``IsADirectoryError`` and friends."""
    try:
        return open(path, "rb")
    except OSError as exc:
        what = "is a directory, not a TFRecord file" if path.is_dir() else f"cannot be read ({exc.strerror or exc})"
        raise DataError(f"{path} {what}; move it out of the way or replace it with the file") from None


def _read_exact(f: BinaryIO, n: int, path: Path, index: int, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise DataError(
            f"{path}: record {index} (0-based): truncated {what}; the file is incomplete, download it again"
        )
    return data
