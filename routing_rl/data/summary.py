"""What a loaded data set is, in the lines ``suite init`` and ``run`` print before anything trains.

A researcher's own table is read by rules (kinds inferred from the values, features encoded by
their type, ID-like columns left out): each choice is printed, so that a target read as a feature,
a count read as classes or a column left out is seen before a battery spends an hour on it.
"""

from __future__ import annotations

from typing import Any

SHOWN_LABELS = 6
"""Classes named per task before the rest are counted."""


def data_summary(info: dict[str, Any]) -> list[str]:
    """The tasks (kind, classes, metric), the feature columns and their encoding, the columns left
    out and the split sizes, from a files suite's ``info`` (empty for suites that record none)."""
    kinds: dict[str, str] = info.get("kinds") or {}
    if not kinds:
        return []
    labels: dict[str, list[str]] = info.get("labels") or {}
    tasks = []
    for name, kind in kinds.items():
        values = labels.get(name, [])
        if kind in ("binary", "multi-class"):
            shown = ", ".join(values[:SHOWN_LABELS]) + (f", ... ({len(values)} in all)" if len(values) > SHOWN_LABELS else "")
            tasks.append(f"{name} ({kind}: {shown}; accuracy)")
        elif kind == "multi-label":
            tasks.append(f"{name} (multi-label, {len(values)} labels; MAP@K)")
        else:
            tasks.append(f"{name} (regression{f', {len(values)} outputs' if len(values) > 1 else ''}; MSE)")
    lines = [f"tasks: {'; '.join(tasks)}"]
    for name, note in (info.get("notes") or {}).items():
        lines.append(f"note: task {name}: {note}")
    encoding: list[str] = info.get("encoding") or []
    features: list[str] = info.get("features") or []
    if encoding:
        lines.append(f"features ({len(features)} inputs from {len(encoding)} columns): {'; '.join(encoding)}")
    elif features:
        lines.append(f"features: {', '.join(features)}")
    for column in info.get("left_out") or []:
        lines.append(f"left out: {column}")
    rows = info.get("rows") or {}
    if rows:
        lines.append("rows: " + ", ".join(f"{n:,} {split}" for split, n in rows.items()))
    return lines
