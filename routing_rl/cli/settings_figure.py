"""``settings.png`` of a suite with settings: each method against its setting's baseline, per setting."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from routing_rl.plots import figures
from routing_rl.registry import UnknownNameError
from routing_rl.suites.settings import split_setting_row
from routing_rl.suites.table import build_setting_tables
from routing_rl.suites.table_text import SIGNIFICANCE
from routing_rl.training.setup.composition import agent_class


def routes_by_known_groups(agent: str | None) -> bool:
    """Whether ``agent`` routes by the data's known task groups (the oracle): the figure's ceiling."""
    try:
        return agent is not None and bool(agent_class(agent).needs_task_groups)
    except UnknownNameError:
        return False


def settings_figures(directory: Path, out: Path, manifest: dict[str, Any]) -> list[Path]:
    """``settings.png`` of a suite with settings: each method's difference to the baseline of its
    setting with its 95% interval, against the setting's x, a panel per ``figure.panel``; a method
    whose router routes by the known task groups (``oracle-groups``) drawn as the ceiling."""
    head = manifest["suite"]
    settings, placement = head["settings"], head.get("placement") or {}
    tables = build_setting_tables(manifest["trials"], directory, head["baseline"], list(settings), head.get("metric", "last"),
                                  head.get("kept"), test=head.get("test", "paired"))  # fmt: skip
    if not any(r.n for t in tables for r in t.table.rows):
        return []
    agents = {split_setting_row(t["run"], True)[1]: t["config"].get("agent") for t in manifest["trials"]}
    ceiling = next((run for run, agent in agents.items() if routes_by_known_groups(agent)), None)
    xs = {name: placement.get(name, {}).get("x", i + 1) for i, name in enumerate(settings)}
    numeric = all(isinstance(x, (int, float)) for x in xs.values())
    position = {name: float(x) if numeric else float(list(dict.fromkeys(xs.values())).index(x) + 1) for name, x in xs.items()}
    panels: dict[str, dict[str, list[figures.SettingPoint]]] = {}
    for entry in tables:
        series = panels.setdefault(placement.get(entry.setting, {}).get("panel", ""), {})
        for row in entry.table.rows:
            if row.method == head["baseline"] or row.difference is None:
                continue
            beats = row.p_holm is not None and not math.isnan(row.p_holm) and row.p_holm < SIGNIFICANCE
            series.setdefault(row.method, []).append((position[entry.setting], row.difference, row.ci_low if row.ci_low is not None else math.nan,
                                                      row.ci_high if row.ci_high is not None else math.nan, beats))  # fmt: skip
    ticks = sorted({(position[n], str(x)) for n, x in xs.items()})
    log_x = numeric and min(position.values()) > 0 and max(position.values()) / min(position.values()) >= 8
    metric = next(t.table.metric for t in tables if any(r.n for r in t.table.rows))
    path = out / "settings.png"
    figures.save(figures.settings_figure(list(panels.items()), ticks, metric, f"suite {head['name']}: each method against {head['baseline']}",
                                         head.get("x_label") or "setting", head["baseline"], ceiling, log_x), path)  # fmt: skip
    return [path]
