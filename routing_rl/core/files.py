"""Files checked before they are touched: what the project reads must be a regular file under a
stated size, and what it writes never goes through a link.

Run folders, suites and kept results are shared between people, so any path the project opens may
have been planted: a ``results.json`` that is a link to ``/dev/zero`` would be read until memory
runs out, a FIFO would hang the reader forever, and a ``run.lock`` that links to another file would
have that file truncated by the writer. Every reader therefore opens through :func:`open_regular`
(non-blocking, so a FIFO answers at once; the opened descriptor is checked, so a file swapped in
between a check and the open is still caught), and every writer refuses a link where its file
should be (:func:`refuse_link`). The limits are named here once, so each error can say which one.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30

RESULTS_LIMIT = 64 * MiB
"""The largest results.json read: a 50-epoch Table 2 trial's is 1.5 MiB, so this leaves room for
runs forty times longer or wider, and stops a planted file long before it can exhaust memory."""

CHECKPOINT_LIMIT = 8 * GiB
"""The largest checkpoint loaded: the routed networks of the papers checkpoint in tens of MiB."""

SETTINGS_LIMIT = 1 * MiB
"""The largest suite or sweep file (TOML): a hand-written file of a few KiB."""

MANIFEST_LIMIT = 64 * MiB
"""The largest ``suite.json``, kept-results manifest or report summary: they list trials, at most a
few thousand."""


class FileCheckError(ValueError):
    """A path that is not a regular file of an acceptable size, or a link where a file is written;
    the message is one line that names the path and what it is."""


def size_text(size: int) -> str:
    """``size`` in binary units for messages: ``"512 B"``, ``"1.5 MiB"``, ``"8 GiB"``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    if unit == "B":
        return f"{int(value)} B"
    return f"{value:.1f} {unit}" if value < 10 and value != int(value) else f"{value:.0f} {unit}"


_KINDS = (
    (stat.S_ISREG, "a file"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISLNK, "a symbolic link"),
)


def kind_of(mode: int) -> str:
    """What a file of ``mode`` is, in words (for "is a FIFO, not a regular file")."""
    return next((words for test, words in _KINDS if test(mode)), "not a file or directory")


def _check_status(path: Path, status: os.stat_result, limit: int, what: str) -> None:
    if not stat.S_ISREG(status.st_mode):
        raise FileCheckError(f"{path}: is {kind_of(status.st_mode)}, not a regular file; give the {what} itself")
    if status.st_size > limit:
        raise FileCheckError(
            f"{path}: {size_text(status.st_size)}, more than the {size_text(limit)} a {what} may be; "
            "it is not one written by routing-rl"
        )


def open_regular(path: Path | str, limit: int, what: str, *, follow: bool = True) -> BinaryIO:
    """``path`` opened for binary reading once it is known to be a regular file of at most
    ``limit`` bytes; ``follow=False`` also refuses a symbolic link. Raises :class:`FileNotFoundError`
    for a missing file (callers say what to do about that) and :class:`FileCheckError` for the rest.

    The open is non-blocking and the check is made on the opened descriptor, so neither a FIFO nor
    a file swapped in after a first look can make the reader wait or read without bound."""
    path = Path(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow:
            raise FileCheckError(f"{path}: is a symbolic link; a {what} must be a plain file: remove the link") from None
        if isinstance(exc, FileNotFoundError):
            raise
        raise FileCheckError(f"{path}: cannot open it ({exc.strerror or exc})") from None
    try:
        _check_status(path, os.fstat(fd), limit, what)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: Path | str, limit: int, what: str, *, follow: bool = True) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (:func:`open_regular`); a file that
    grows past the limit while it is read is refused as well."""
    with open_regular(path, limit, what, follow=follow) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise FileCheckError(f"{path}: more than the {size_text(limit)} a {what} may be; it is not one written by routing-rl")
    return data


def refuse_link(path: Path | str, what: str) -> None:
    """Refuse to write ``path`` if a symbolic link stands where it should be: replacing a link
    could be mistaken for writing what it points at, and a writer that followed it would write
    outside its folder."""
    path = Path(path)
    if path.is_symlink():
        raise FileCheckError(f"{path}: is a symbolic link where routing-rl writes its {what}; remove the link and run again")
