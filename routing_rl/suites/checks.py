"""Checks of the values a suite or sweep file hands over, before any trial starts or anything is written.

The command line types every option through click; a TOML file arrives already typed by the TOML
parser, so ``lr = "fast"`` or ``seed = true`` would reach :class:`RunConfig` unchecked and fail deep
inside a trial (or, worse, be accepted). These checks compare each value with the annotation of the
option it sets and name the key in the message. They only accept or refuse, never convert: a valid
file's values, and so its trials' configuration hashes, stay exactly as written.
"""

from __future__ import annotations

import collections.abc
import math
import types
import typing
from pathlib import Path
from typing import Any

MAX_SEED = 2**31 - 1
"""The largest ``routing-rl run --seed``; a suite's seeds obey the same bound."""

MAX_TRIALS = 10_000
"""Trials one suite (one scale) may hold: listing grows with them, and more is a typo, not a plan."""

MAX_NAME = 120
"""Characters of a name that becomes a directory (the trial adds ``-s<seed>-<hash>``, within 255)."""

SEQUENCES = (list, tuple, collections.abc.Sequence)


def describe(value: Any) -> str:
    """A value as the user wrote it in TOML (``true``, ``"x"``, ``[1, 2]``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "a table"
    return str(value) if len(str(value)) <= 60 else str(value)[:57] + "..."


def problem(value: Any, annotation: Any) -> str | None:
    """Why ``value`` cannot stand for ``annotation`` (None when it can); unknown annotations pass."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is typing.Any:
        return None
    if origin is typing.Literal:
        return None if value in args and type(value) in {type(a) for a in args} else f"must be one of {', '.join(map(str, args))}"
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        reasons = [problem(value, a) for a in args if a is not type(None)]
        return None if any(r is None for r in reasons) else next((r for r in reasons if r), "has the wrong type")
    if origin in SEQUENCES:
        if not isinstance(value, list):
            return "must be a list, e.g. [64, 32]"
        item = args[0] if args else typing.Any
        return next((f"item {describe(v)} {r}" for v in value if (r := problem(v, item))), None)
    if origin is dict or annotation is dict:
        return None if isinstance(value, dict) else "must be a table, e.g. { key = 1 }"
    if annotation is bool:
        return None if isinstance(value, bool) else "must be true or false"
    if annotation is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "must be an integer"
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "must be a number"
        return None if math.isfinite(value) else "must be a finite number"
    if annotation is str:
        return None if isinstance(value, str) else "must be a string"
    return None


def check_value(key: str, value: Any, annotation: Any) -> None:
    """Raise ``ValueError`` naming ``key`` and the value when it does not fit ``annotation``."""
    reason = problem(value, annotation)
    if reason:
        raise ValueError(f"{key} = {describe(value)}: {reason}")


def path_name_problem(name: Any) -> str | None:
    """Why a name that becomes one directory level would not (None when it would): a suite's name or
    a run's. ``..``, a separator or an absolute path would put trials outside the suite directory."""
    if not isinstance(name, str) or not name.strip():
        return "must be a non-empty string"
    if name in (".", "..") or any(c in name for c in "/\\\0") or name.startswith("-"):
        return "must be one directory name: no /, \\, leading -, and not . or .."
    if len(name) > MAX_NAME:
        return f"must be at most {MAX_NAME} characters"
    if any(not c.isprintable() for c in name):
        return "must not hold control characters"
    return None


def seeds_problem(seeds: Any) -> str | None:
    """Why a list of seeds cannot be a suite's (None when it can): ``run --seed``'s range, no repeats."""
    if not isinstance(seeds, list) or not seeds:
        return "must be a non-empty list of integers, e.g. [0, 1, 2]"
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            return f"holds {describe(seed)}; seeds are integers from 0 to {MAX_SEED}, as routing-rl run --seed"
    if len(set(seeds)) != len(seeds):
        return "repeats a seed; list each seed once"
    if len(seeds) > MAX_TRIALS:
        return f"holds {len(seeds)} seeds; a suite holds at most {MAX_TRIALS} trials"
    return None


class SuiteError(ValueError):
    """A suite file that cannot be used; the message names the file and the key."""


def table_at(data: dict[str, Any], key: str, path: Path, example: str, prefix: str = "") -> dict[str, Any]:
    """``data[key]`` when it is a TOML table (an empty one when absent), else a :class:`SuiteError`
    that shows the table's form: ``runs = 3`` or ``[runs]\\nname = 1`` must not reach the code as a number."""
    value = data.get(key, {})
    if not isinstance(value, dict):
        shown = example.replace("\n", "; ")
        raise SuiteError(f"{path}: {prefix}{key} must be a table, not {type(value).__name__} {describe(value)}; write it as {shown}")
    return value
