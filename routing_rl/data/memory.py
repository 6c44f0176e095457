"""Refusing generated suites that cannot fit in memory, before they allocate anything.

The generated suites (``synthetic-groups``, ``multilabel-synthetic``, ``mmoe-synthetic``) size
their arrays from ``-e`` options alone, so a typo such as ``-e num_tasks=99999999999`` used to
grow the process until the kernel killed it (after swapping the machine to a halt). Each suite
therefore estimates the peak bytes of its generation from its options and calls
:func:`require_memory` in its constructor, which compares the estimate with the memory available
*now* and raises a one-line :class:`DataError` naming the ``-e`` options responsible.

The estimates count the large arrays (and their main temporaries) only, so they are within a
small factor of the real peak: good enough to stop absurd sizes, never a reason to refuse a size
that would fit with room to spare. When the available memory cannot be read the check is skipped.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from routing_rl.data.base import DataError

MEMINFO = Path("/proc/meminfo")
"""Linux's memory summary; its ``MemAvailable`` line is what the kernel says can be allocated
without swapping (free memory plus reclaimable caches)."""

SIGNIFICANT_SHARE = 0.1
"""A term of an estimate that is at least this share of the total makes its options "responsible"."""

MemoryTerm = tuple[int, Sequence[str]]
"""One part of an estimate: its bytes and the names of the options it grows with."""


def available_memory(meminfo: Path | str = MEMINFO) -> int | None:
    """Bytes of memory available to a new allocation, or None when this cannot be known.

    Reads ``MemAvailable`` from ``/proc/meminfo`` (Linux 3.14+); elsewhere falls back to the
    free physical pages that ``os.sysconf`` reports (which ignores reclaimable caches, so it
    errs low, but only matters for estimates far larger than any plausible configuration).
    """
    try:
        with open(meminfo, encoding="ascii") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key == "MemAvailable":
                    number, _, unit = value.strip().partition(" ")
                    return int(number) * (1024 if unit.strip().lower() == "kb" else 1)
    except (OSError, ValueError, UnicodeDecodeError):
        pass
    try:
        pages, page_size = os.sysconf("SC_AVPHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):  # no sysconf (Windows) or no such name
        return None
    return pages * page_size if pages > 0 and page_size > 0 else None


def format_bytes(size: float) -> str:
    """``size`` in decimal units for messages: ``"512 B"``, ``"1.5 GB"``, ``"13 PB"``."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB"):
        if abs(value) < 1000 or unit == "ZB":
            break
        value /= 1000
    if unit == "B":
        return f"{int(value)} B"
    return f"{value:.1f} {unit}" if abs(value) < 10 else f"{value:.0f} {unit}"


def constructor_defaults(cls: type) -> dict[str, object]:
    """Default values of ``cls``'s constructor keywords (its ``-e`` options)."""
    return {
        name: param.default
        for name, param in inspect.signature(cls.__init__).parameters.items()
        if param.default is not inspect.Parameter.empty
    }


def option_text(name: str, value: object) -> str:
    """``-e name=value`` as it is typed, sequences comma-separated (long ones shortened)."""
    if isinstance(value, (list, tuple)):
        shown = ",".join(str(v) for v in value[:8]) + (f",... ({len(value)} values)" if len(value) > 8 else "")
        return f"-e {name}={shown}"
    return f"-e {name}={value}"


def require_memory(
    suite: str,
    terms: Sequence[MemoryTerm],
    options: Mapping[str, object],
    defaults: Mapping[str, object] | None = None,
    what: str = "its generated data",
) -> None:
    """Raise :class:`DataError` when the summed ``terms`` exceed the memory available now.

    ``options`` maps option names to the values in use (in the order to report them);
    ``defaults`` are the constructor defaults. The message leads with the options of the large
    terms that differ from their defaults (the likely typo), follows with the other options of
    those terms as context, and gives the estimate and the available memory, e.g. ``-e
    num_tasks=99999999999 with -e train_per_task=1000 needs about 13 PB of memory ...``.
    """
    needed = sum(int(size) for size, _ in terms)
    available = available_memory()
    if available is None or needed <= available:
        return
    large = {name for size, names in terms if size >= SIGNIFICANT_SHARE * needed for name in names}
    involved = [name for name in options if name in large]
    defaults = defaults or {}
    changed = [name for name in involved if name not in defaults or options[name] != defaults[name]]
    context = [name for name in involved if name not in changed]
    lead = changed or involved
    text = ", ".join(option_text(name, options[name]) for name in lead)
    if changed and context:
        text += " with " + ", ".join(option_text(name, options[name]) for name in context)
    raise DataError(
        f"{suite}: {text} needs about {format_bytes(needed)} of memory for {what}; this machine has "
        f"{format_bytes(available)} available. Lower {', '.join(f'-e {name}' for name in lead)}."
    )
