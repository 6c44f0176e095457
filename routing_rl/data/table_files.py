"""Reading a user's data file (CSV, Parquet or ``.npz``) into named columns, after a memory check.

The ``files`` suite takes any multi-task table or array set a user already has. The formats are
read by the libraries that define them (pandas for CSV, pyarrow for Parquet, numpy for ``.npz``),
never by a hand-written parser, and every failure a user can cause (a missing or empty file, an
unknown format, a file too large for this machine) is one :class:`DataError` naming the file and
what to do. The size check runs on what the file says about itself (the size on disk, Parquet's
footer, the ``.npz`` members' headers) before any data is read, so an oversized file is refused
instead of swapping the machine to a halt.

Column names are checked as the file states them, not as a reader reports them: pandas renames a
repeated CSV header (``f1,f1`` becomes ``f1``, ``f1.1``), numpy keeps only the last of two ``.npz``
members of one name, and pyarrow reads a Parquet file of repeated names only to fail on them. A
repeated name is ambiguous in ``-e tasks`` and ``-e features``, so each format's own header is
read and a repeat refused by name.
"""

from __future__ import annotations

import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from routing_rl.data.base import DataError
from routing_rl.data.memory import available_memory, format_bytes

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".npz": "npz"}
"""File endings and the format each is read as."""

CSV_BYTES_PER_BYTE = 4
"""Peak memory of pandas' CSV reader per byte of text: the text, its parsed columns and the float
copy this suite makes of the features (object columns of strings cost the most)."""

COPIES = 3
"""Copies of the decoded data alive at the peak: the columns, the feature matrix and its splits."""


@dataclass(frozen=True)
class Columns:
    """A file's data as named columns of equal length ``rows`` (``.npz`` arrays may have more axes)."""

    source: str
    values: dict[str, np.ndarray]
    rows: int

    def names(self) -> list[str]:
        return list(self.values)


def file_format(path: Path) -> str:
    """``csv``, ``parquet`` or ``npz`` from the file's ending; anything else is a :class:`DataError`."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{path}: unknown file format {path.suffix or '(no ending)'!r}; give a .csv, .parquet or .npz file")
    return kind


def estimated_bytes(path: Path, kind: str) -> int:
    """Peak bytes of reading ``path``, from its metadata alone (nothing is decoded)."""
    if kind == "csv":
        return path.stat().st_size * CSV_BYTES_PER_BYTE
    if kind == "parquet":
        import pyarrow.parquet as pq

        try:
            meta = pq.ParquetFile(path).metadata
        except Exception as exc:  # pyarrow raises ArrowInvalid/OSError for a file that is not Parquet
            raise DataError(f"{path}: not a readable Parquet file ({exc}); write it with pandas.DataFrame.to_parquet") from None
        decoded = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        return max(decoded, meta.num_rows * meta.num_columns * 8) * COPIES
    try:
        with zipfile.ZipFile(path) as archive:
            return sum(info.file_size for info in archive.infolist()) * COPIES
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc}); write it with numpy.savez") from None


def require_fits(path: Path, kind: str) -> None:
    """Refuse a file whose decoded data would not fit in the memory available now."""
    needed = estimated_bytes(path, kind)
    available = available_memory()
    if available is not None and needed > available:
        raise DataError(
            f"{path}: reading it needs about {format_bytes(needed)} of memory, but this machine has {format_bytes(available)} "
            "available; use a sample of its rows, or fewer columns"
        )


def read_columns(path: str | Path) -> Columns:
    """The columns of a CSV, Parquet or ``.npz`` file, checked for existence, size and emptiness."""
    path = Path(path)
    kind = file_format(path)
    if not path.is_file():
        what = "no such file" if not path.exists() else "a directory" if path.is_dir() else "not a regular file (a device, FIFO or socket)"
        raise DataError(f"{path}: {what}; give the data file with -e path=FILE (in a suite file, relative to the suite file's folder)")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty; it needs a header and at least one row of data")
    require_fits(path, kind)
    columns = _read_npz(path) if kind == "npz" else _read_table(path, kind)
    if columns.rows == 0:
        raise DataError(f"{path}: the file has no rows of data")
    return columns


def _read_table(path: Path, kind: str) -> Columns:
    import pandas as pd

    try:
        if kind == "csv":
            frame = pd.read_csv(path)
            require_unique_names(path, csv_header(path))
        else:
            require_unique_names(path, parquet_names(path))
            frame = pd.read_parquet(path, engine="pyarrow")
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty; it needs a header and at least one row of data") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise DataError(f"{path}: cannot read it as {kind.upper()} ({str(exc).splitlines()[0]})") from None
    except Exception as exc:  # pyarrow's ArrowInvalid and friends
        raise DataError(f"{path}: cannot read it as {kind.upper()} ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    require_unique_names(path, [str(c) for c in frame.columns])
    return Columns(str(path), {str(c): frame[c].to_numpy() for c in frame.columns}, len(frame))


def repeated(names: list[str]) -> list[str]:
    """The names that occur more than once, sorted."""
    counts = Counter(names)
    return sorted(name for name, count in counts.items() if count > 1)


def require_unique_names(path: Path, names: list[str], what: str = "column") -> None:
    """Refuse a file whose columns (or ``.npz`` arrays) repeat a name: ``-e tasks=f1`` could mean either."""
    twice = repeated(names)
    if twice:
        raise DataError(f"{path}: {what} names repeat ({', '.join(map(repr, twice))}); name every {what} once, "
                        "so that -e tasks and -e features each name one")  # fmt: skip


def csv_header(path: Path) -> list[str]:
    """The CSV's header row as written, read by the same parser as the data (one row, no renaming).

    Empty header cells are left out: pandas names each ``Unnamed: <position>``, which cannot repeat.
    """
    import pandas as pd

    first = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False, na_filter=False)
    return [str(v) for v in first.iloc[0].tolist() if str(v) != ""] if len(first) else []


def parquet_names(path: Path) -> list[str]:
    """The column names in a Parquet file's schema, read from its footer (pandas' index columns left out)."""
    import pyarrow.parquet as pq

    schema = pq.ParquetFile(path).schema_arrow
    index = set()
    if schema.metadata and b"pandas" in schema.metadata:
        import json

        index = {c for c in json.loads(schema.metadata[b"pandas"]).get("index_columns", []) if isinstance(c, str)}
    return [name for name in schema.names if name not in index]


def _read_npz(path: Path) -> Columns:
    try:
        with np.load(path, allow_pickle=False) as archive:
            require_unique_names(path, list(archive.files), "array")
            arrays = {name: archive[name] for name in archive.files}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc}); write it with numpy.savez (no object arrays)") from None
    if not arrays:
        raise DataError(f"{path}: the .npz file holds no arrays")
    lengths = {name: (a.shape[0] if a.ndim else None) for name, a in arrays.items()}
    first = next(iter(arrays))
    for name, length in lengths.items():
        if length != lengths[first]:
            raise DataError(
                f"{path}: array {name!r} has {length if length is not None else 'no'} rows but {first!r} has {lengths[first]}; "
                "every array needs one row per example"
            )
    return Columns(str(path), arrays, int(lengths[first] or 0))
