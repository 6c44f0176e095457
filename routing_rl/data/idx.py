"""Reader and writer for the IDX format of MNIST and Fashion-MNIST, plain or gzip-compressed.

The official files are IDX: a 4-byte magic ``0x00 0x00 <dtype> <ndim>``, then ``ndim`` big-endian
uint32 dimensions, then the row-major big-endian data. Decoding it here (instead of depending on
torchvision) keeps the package light, and strict validation turns a truncated download or a
wrong file into a :class:`DataError` that names the file rather than into silently wrong arrays.
Compression is detected from the gzip magic bytes, not from the file name.
"""

from __future__ import annotations

import gzip as gzip_module
import math
import os
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np

from routing_rl.data.base import DataError

GZIP_MAGIC = b"\x1f\x8b"

IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
"""IDX type code -> big-endian numpy dtype."""

_CODES = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}


def read_payload(path: Path | str) -> bytes:
    """The raw IDX bytes of ``path``, decompressed when the file starts with the gzip magic."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise DataError(f"cannot read IDX file {path}: {exc}") from exc
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip_module.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"corrupt or truncated gzip file {path}: {exc}; delete it and fetch it again") from exc


def parse_idx(payload: bytes, name: str | Path) -> np.ndarray:
    """Decode IDX bytes into an array in native byte order; ``name`` is used in error messages."""
    if len(payload) < 4:
        raise DataError(f"{name} is not an IDX file: only {len(payload)} bytes")
    zero0, zero1, code, ndim = payload[:4]
    if zero0 != 0 or zero1 != 0 or code not in IDX_DTYPES or ndim == 0:
        raise DataError(f"{name} is not an IDX file: bad magic {payload[:4].hex()}")
    header = 4 + 4 * ndim
    if len(payload) < header:
        raise DataError(f"{name} is truncated: header needs {header} bytes, file has {len(payload)}")
    dims = struct.unpack(f">{ndim}I", payload[4:header])
    dtype = IDX_DTYPES[code]
    expected = header + math.prod(dims) * dtype.itemsize  # Python ints: a forged header cannot overflow to a negative size
    if len(payload) != expected:
        kind = "truncated" if len(payload) < expected else "longer than its header says"
        raise DataError(
            f"{name} is {kind}: dims {list(dims)} need {expected} bytes, file has {len(payload)}; "
            "delete it and fetch it again"
        )
    data = np.frombuffer(payload, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: Path | str) -> np.ndarray:
    """Read an IDX file (plain or gzip) into a native-byte-order numpy array."""
    return parse_idx(read_payload(path), path)


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode ``array`` as IDX bytes (magic, big-endian uint32 dims, big-endian data)."""
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _CODES:
        raise ValueError(f"IDX cannot store dtype {array.dtype}; use one of {sorted(map(str, _CODES))}")
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError("IDX needs an array with 1..255 dimensions")
    code = _CODES[native]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()


def write_idx(path: Path | str, array: np.ndarray, gzip: bool = False) -> Path:
    """Write ``array`` as an IDX file exactly like the official ones (gzip with mtime 0 if asked).

    The file is written to a temporary name and moved into place, so readers never see half a file.
    """
    path = Path(path)
    data = idx_bytes(array)
    if gzip:
        data = gzip_module.compress(data, compresslevel=6, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
