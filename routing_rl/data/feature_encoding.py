"""A table's feature columns as numbers, the way they come: numbers, strings, booleans, dates, gaps.

Real tables hold more than numbers: a penguin's island, a diamond's cut, a survey's region are
strings; a flag is a boolean; a measurement is sometimes missing. Asking a user to encode them
first sends them back to Python, so each column is encoded by its kind, with scikit-learn's
encoders, **fitted on the training rows only** (nothing of a validation or test row shapes the
encoding, as nothing of it shapes the scaling):

* **numbers**: as they are; a missing value is filled with the training rows' mean and a
  ``<column> (missing)`` indicator column is added (``SimpleImputer(add_indicator=True)``), so
  that "not measured" stays visible to the network instead of passing for an average row;
* **booleans** (``True``/``False``, or the strings ``true``/``false``): one 0/1 column;
* **dates** (a date/time column, or strings written ``YYYY-MM-DD...``): days since 1970-01-01,
  a number like any other;
* **strings** (categories): one-hot (``OneHotEncoder``), one column per category seen in the
  training rows; a missing value is its own category ``(missing)``. A column of many categories
  keeps the :data:`MAX_ONE_HOT` - 1 most frequent and pools the rest into one ``(other)`` column
  (``max_categories``), so a high-cardinality column costs a bounded width, and a category never
  seen in training (a new region in the test file) lands there too, or on all zeros when nothing
  was pooled.

A string column that is different in nearly every row (an ID, a name, free text) carries no
category to learn; taken by default (no ``-e features``) it is left out and named in
``left_out``, which ``suite init`` and ``run`` print. Named in ``-e features`` it is encoded as
asked. Every choice is recorded per column in ``described`` for the same printouts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from routing_rl.data.base import DataError
from routing_rl.data.table_files import Columns
from routing_rl.data.task_kinds import as_numbers, missing_mask

MAX_ONE_HOT = 32
"""Most one-hot columns one string column becomes: the 31 most frequent training categories and
one ``(other)`` column for the rest (a 30-row table keeps every category; a 3,000-value ZIP code
column costs 32 inputs, not 3,000)."""

ID_SHARE = 0.5
"""A string column whose training rows hold more distinct values than this share of the rows
(and more than :data:`MAX_ONE_HOT`) is an ID or free text, not a category."""

MISSING = "(missing)"
"""The category of a missing string or boolean cell."""

DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?([+-]\d{2}:?\d{2}|Z)?$")
"""An ISO 8601 date or date-time, as written by every tool that writes dates to a table."""

TRUE_FALSE = {"true": 1.0, "false": 0.0}
"""Strings read as booleans (case-insensitive)."""


@dataclass
class EncodedFeatures:
    """The encoded matrix and how it came about.

    ``x`` float64 ``[N, D]``; ``names`` one per column of ``x`` (``island=Biscoe``,
    ``bill_length_mm (missing)``); ``described`` one line per source column (``island: string,
    3 categories, one-hot``); ``left_out`` the default columns left out, with why.
    """

    x: np.ndarray
    names: list[str]
    described: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)


def column_kind(values: np.ndarray) -> str:
    """``number``, ``boolean``, ``date`` or ``string``: what a feature column holds (missing cells aside)."""
    if values.dtype.kind == "b":
        return "boolean"
    if values.dtype.kind in "iuf":
        return "number"
    if values.dtype.kind == "M":
        return "date"
    present = values[~missing_mask(values)]
    if present.size == 0:
        return "number"
    if all(isinstance(v, (bool, np.bool_)) for v in present) or all(isinstance(v, str) and v.strip().lower() in TRUE_FALSE for v in present):
        return "boolean"
    if as_numbers(present, np.ones(present.size, dtype=bool)) is not None:
        return "number"
    if all(isinstance(v, str) and DATE.match(v.strip()) for v in present):
        return "date"
    return "string"


def is_identifier(values: np.ndarray, train: np.ndarray) -> bool:
    """A string column whose training rows are nearly all different: an ID, a name or free text."""
    rows = values[train & ~missing_mask(values)]
    distinct = len(set(map(str, rows)))
    return distinct > MAX_ONE_HOT and distinct > ID_SHARE * max(rows.size, 1)


def encode_features(data: Columns, names: list[str], train: np.ndarray, named: bool) -> EncodedFeatures:
    """The feature columns ``names`` of ``data`` as a float64 matrix, encoders fitted on the rows ``train``.

    ``named``: the user listed the features (``-e features``), so an ID-like string column is
    encoded as asked instead of being left out.
    """
    blocks: list[np.ndarray] = []
    out_names: list[str] = []
    described: list[str] = []
    left_out: list[str] = []
    for name in names:
        values = data.values[name]
        kind = column_kind(values)
        if kind == "string" and not named and is_identifier(values, train):
            distinct = len(set(map(str, values[train & ~missing_mask(values)])))
            left_out.append(f"{name} (text or an ID: {distinct:,} different values in {int(train.sum()):,} training rows; "
                            "name it in -e features to one-hot its most frequent values)")  # fmt: skip
            continue
        if kind == "number":
            block, cols, line = _numbers(data.source, name, values, train)
        elif kind == "date":
            block, cols, line = _numbers(data.source, name, _days(data.source, name, values), train, "date, as days since 1970-01-01")
        else:
            block, cols, line = _categories(name, values, train, kind)
        blocks.append(block)
        out_names.extend(cols)
        described.append(line)
    if not blocks:
        raise DataError(f"{data.source}: no feature column is left ({'; '.join(left_out)}); name the features with -e features=COL1,COL2")
    return EncodedFeatures(np.concatenate(blocks, axis=1), out_names, described, left_out)


def _numbers(source: str, name: str, values: np.ndarray, train: np.ndarray, what: str = "number") -> tuple[np.ndarray, list[str], str]:
    from sklearn.impute import SimpleImputer

    column = values.astype(np.float64) if values.dtype.kind in "biuf" else as_numbers(values, ~missing_mask(values))
    assert column is not None  # column_kind said number
    bad = np.isinf(column)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{source}: row {row + 1}, column {name!r} is infinite ({int(bad.sum())} rows have such features); "
                        "fix or empty those cells: an empty cell is filled in, an infinite one cannot be")  # fmt: skip
    missing = np.isnan(column)
    if not missing.any():
        return column.reshape(-1, 1), [name], f"{name}: {what}"
    if not (train & ~missing).any():
        raise DataError(f"{source}: feature column {name!r} has no value in any training row; drop it from the features")
    imputer = SimpleImputer(strategy="mean", add_indicator=True, keep_empty_features=True).fit(column[train].reshape(-1, 1))
    block = imputer.transform(column.reshape(-1, 1))
    cols = [name, f"{name} (missing)"] if block.shape[1] == 2 else [name]
    return block, cols, f"{name}: {what}, {int(missing.sum()):,} missing filled with the training mean" + (" and flagged" if len(cols) == 2 else "")


def _days(source: str, name: str, values: np.ndarray) -> np.ndarray:
    import pandas as pd

    try:
        stamps = pd.to_datetime(pd.Series(values), format="ISO8601", utc=True)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{source}: column {name!r} looks like dates but one cannot be read ({str(exc).splitlines()[0]}); "
                        "write them as YYYY-MM-DD, or drop the column from the features")  # fmt: skip
    epoch = pd.Timestamp("1970-01-01", tz="UTC")
    days = (stamps - epoch).dt.total_seconds() / 86400.0
    return days.to_numpy(dtype=np.float64, na_value=np.nan)


def _categories(name: str, values: np.ndarray, train: np.ndarray, kind: str) -> tuple[np.ndarray, list[str], str]:
    from sklearn.preprocessing import OneHotEncoder

    missing = missing_mask(values)
    cells = np.array([MISSING if m else _category(v, kind) for v, m in zip(values, missing)], dtype=object).reshape(-1, 1)
    if kind == "boolean" and not missing.any():
        return (cells[:, 0] == "true").astype(np.float64).reshape(-1, 1), [name], f"{name}: boolean, 1 for true"
    encoder = OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=MAX_ONE_HOT, sparse_output=False, dtype=np.float64)
    import warnings

    with warnings.catch_warnings():  # an unseen category at transform time is what "infrequent_if_exist" is for
        warnings.simplefilter("ignore", UserWarning)
        block = encoder.fit(cells[train]).transform(cells)
    cols = [f"{name}={c.removeprefix('x0_')}" for c in encoder.get_feature_names_out()]
    cols = [c.replace("=infrequent_sklearn", "=(other)") for c in cols]
    seen = len(encoder.categories_[0])
    pooled = f", the {seen - (len(cols) - 1)} rarest pooled as (other)" if any(c.endswith("=(other)") for c in cols) else ""
    return block, cols, f"{name}: {kind}, {seen} {'values' if kind == 'boolean' else 'categories'} in training, one-hot{pooled}"


def _category(value: object, kind: str) -> str:
    if kind == "boolean":
        return "true" if (value is True or (isinstance(value, (bool, np.bool_)) and bool(value)) or str(value).strip().lower() == "true") else "false"
    return str(value)
