"""Finding, verifying and (on request) downloading the data files of a task suite.

Experiments must not silently run on a truncated or substituted file, and a machine without
network must fail with a message that says what to do. So this module keeps three rules:

* A data directory is searched in a fixed order: the explicit ``data_dir`` argument (and only it,
  when given), else ``$ROUTING_RL_DATA``, else the suite's system directories and the user cache.
* Files are downloaded only when they are missing *and* the caller passed ``download=True``
  (``-e download=true`` on the command line); a
  download streams into a temporary file next to the target, is checksum-verified and only then
  moved into place with :func:`os.replace`, so an interrupted or corrupt download leaves nothing.
* Checksums are verified once per process per file version (path, size, mtime), so repeat loads
  are cheap.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from routing_rl.core.files import kind_of
from routing_rl.data.base import DataError

ENV_VAR = "ROUTING_RL_DATA"
"""Environment variable naming a root directory that holds the data of all suites."""

_CHUNK = 1 << 20
_verified: set[tuple[str, int, int, str, str]] = set()


# ----------------------------------------------------------------------------- digests


def file_digest(path: Path | str, algorithm: str) -> str:
    """Hex digest of a file's bytes with ``algorithm`` (any name :func:`hashlib.new` accepts)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def md5(path: Path | str) -> str:
    """MD5 hex digest of a file (the checksum the official dataset pages publish)."""
    return file_digest(path, "md5")


def sha256(path: Path | str) -> str:
    """SHA-256 hex digest of a file."""
    return file_digest(path, "sha256")


def _stat_key(path: Path, algorithm: str, expected: str) -> tuple[str, int, int, str, str]:
    stat = path.stat()
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns, algorithm, expected.lower())


def is_verified(path: Path, algorithm: str, expected: str) -> bool:
    """Whether this exact file version already passed this check in this process."""
    return _stat_key(path, algorithm, expected) in _verified


def mark_verified(path: Path, algorithm: str, expected: str) -> None:
    """Remember that this file version passed the check, so later loads skip the hashing."""
    _verified.add(_stat_key(path, algorithm, expected))


def checksum_error(path: Path, algorithm: str, expected: str, actual: str, hint: str = "") -> DataError:
    """The error for a file whose checksum does not match; names the file and what to do."""
    message = (
        f"checksum mismatch for {path}: {algorithm} is {actual}, expected {expected}. "
        "The file is corrupt, truncated or a different version; delete it and fetch it again."
    )
    return DataError(message + (f" {hint}" if hint else ""))


def verify_file(path: Path, algorithm: str, expected: str, hint: str = "") -> None:
    """Raise :class:`DataError` unless ``path`` has the expected digest (cached per file version)."""
    if is_verified(path, algorithm, expected):
        return
    actual = file_digest(path, algorithm)
    if actual.lower() != expected.lower():
        raise checksum_error(path, algorithm, expected, actual, hint)
    mark_verified(path, algorithm, expected)


# ----------------------------------------------------------------------------- directories


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/routing_rl`` (default ``~/.cache/routing_rl``): where downloads go by default."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "routing_rl"


def candidate_dirs(
    data_dir: Path | str | None, subdir: str, system_dirs: Sequence[Path | str] = ()
) -> list[Path]:
    """Directories to search, in order, for a suite whose files live in ``subdir`` of a data root.

    An explicit ``data_dir`` is searched alone (itself and ``data_dir/subdir``): asking for a
    directory must not silently read files from elsewhere. Otherwise ``$ROUTING_RL_DATA`` (and its
    ``subdir``), then ``system_dirs``, then the user cache are searched.
    """
    if data_dir is not None:
        roots: list[Path] = [Path(data_dir)]
        extra: list[Path] = []
    else:
        env = os.environ.get(ENV_VAR)
        roots = [Path(env)] if env else []
        extra = [Path(d) for d in system_dirs] + [user_cache_dir() / subdir]
    ordered: list[Path] = []
    for root in roots:
        ordered += [root / subdir, root]
    ordered += extra
    return list(dict.fromkeys(ordered))


def find_data_dir(candidates: Iterable[Path], has_files: Callable[[Path], bool]) -> Path | None:
    """The first candidate directory for which ``has_files`` is true, or None."""
    for directory in candidates:
        if directory.is_dir() and has_files(directory):
            return directory
    return None


def download_root(data_dir: Path | str | None) -> Path:
    """The root that downloads go under: ``data_dir``, else ``$ROUTING_RL_DATA``, else the user cache."""
    if data_dir is not None:
        return Path(data_dir)
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else user_cache_dir()


def not_regular_files(files: Sequence[str], directories: Sequence[Path]) -> list[str]:
    """A sentence for each data file that is there but is no regular file (a FIFO, a device, a
    folder, a link to one): the loaders never open those, so they count as missing, and the
    message should say why the file the user put there was passed over."""
    notes = []
    for directory in directories:
        for name in (f.removesuffix("(.gz)") for f in files):
            for path in (directory / name, directory / f"{name}.gz"):
                if os.path.lexists(path) and not path.is_file():
                    what = kind_of(path.stat().st_mode) if path.exists() else "a broken symbolic link"
                    notes.append(f"{path} is {what}, not a regular file.")
    return notes


def missing_files_error(
    title: str,
    files: Sequence[str],
    searched: Sequence[Path],
    put_in: Path,
    source: str,
    reason: str = "",
    found_in: Path | None = None,
) -> DataError:
    """The error for absent data: which files are missing, where to put them, where to get them.

    Users meet it through ``routing-rl run``, so the remedies are spelled as command-line options
    (``--data-dir DIR``, ``-e download=true``), not as the Python keywords they map to.
    ``found_in`` names a directory that holds only some of the files, so the message can say the
    others were found there instead of implying that nothing was.
    """
    where = f" in {found_in} (the other files are there)" if found_in is not None else ""
    lines = [
        f"{title}: missing data file(s) {', '.join(files)}{where}.",
        *not_regular_files(files, [found_in] if found_in is not None else searched),
        "Searched: " + (", ".join(str(d) for d in searched) if searched else "(no directory)") + ".",
        f"Put the files in {put_in} (or pass --data-dir DIR, or set ${ENV_VAR} to a directory holding them).",
        f"Get them from {source}, or pass -e download=true to fetch them automatically.",
    ]
    if reason:
        lines.append(f"Download failed: {reason}")
    return DataError(" ".join(lines))


# ----------------------------------------------------------------------------- download


def _stream(url: str, handle: BinaryIO, digests: dict[str, Any], timeout: float) -> None:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - URL is the suite's mirror
        for chunk in iter(lambda: response.read(_CHUNK), b""):
            handle.write(chunk)
            for digest in digests.values():
                digest.update(chunk)


def download(
    url: str,
    dest: Path | str,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    timeout: float = 60.0,
) -> Path:
    """Fetch ``url`` to ``dest`` atomically, verifying the given checksums; returns ``dest``.

    The bytes go to a hidden temporary file in ``dest``'s directory; only a complete, verified file
    is moved to ``dest`` with :func:`os.replace`. Any failure (network, HTTP error, checksum
    mismatch, interruption) removes the temporary file and raises :class:`DataError`.
    """
    dest = Path(dest)
    expected = {name: value.lower() for name, value in (("md5", md5), ("sha256", sha256)) if value}
    digests = {name: hashlib.new(name) for name in expected}
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as exc:
        raise DataError(f"cannot write {dest.name} into {dest.parent}: {exc}") from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            _stream(url, handle, digests, timeout)
        for name, digest in digests.items():
            if digest.hexdigest() != expected[name]:
                raise checksum_error(dest, name, expected[name], digest.hexdigest(), f"(downloaded from {url})")
        os.replace(tmp, dest)
    except DataError:
        tmp.unlink(missing_ok=True)
        raise
    except (OSError, urllib.error.URLError, ValueError) as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(f"could not download {url} to {dest}: {exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    for name, value in expected.items():
        mark_verified(dest, name, value)
    return dest

