"""A suite's settings: ``[settings.NAME]`` tables, each trained with every run (:mod:`routing_rl.suites.spec`).

A setting's options go over a run's (``env_options`` and ``agent_options`` merged key by key), and
its trials' rows are named ``SETTING.RUN``; ``figure = { x = ..., panel = "..." }`` places the
setting on ``report``'s settings figure. This module reads the tables and names the rows; the suite
file's loader and the tables of :mod:`routing_rl.suites.table` use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from routing_rl.suites.checks import SuiteError, path_name_problem, table_at

SETTING_SEPARATOR = "."
"""Between a setting's name and a run's in a row name (``groups-4.wpl``); setting names hold none."""

def split_setting_row(row: str, has_settings: bool) -> tuple[str | None, str]:
    """``(setting, run)`` of a trial's row name: ``SETTING.RUN`` in a suite with settings (whose names
    hold no separator, so the first one splits), ``(None, row)`` in one without."""
    if not has_settings:
        return None, row
    setting, _, run = row.partition(SETTING_SEPARATOR)
    return setting, run


MERGED_OPTIONS = ("env_options", "agent_options")
"""Options that a setting merges key by key into a run's instead of replacing them."""


def with_setting(options: dict[str, Any], setting: dict[str, Any]) -> dict[str, Any]:
    """A run's options with a setting's over them; ``env_options`` and ``agent_options`` merged key by key
    (a setting that sets ``num_groups`` keeps the run's ``num_tasks``)."""
    merged = {**options, **setting}
    for key in MERGED_OPTIONS:
        if isinstance(options.get(key), dict) and isinstance(setting.get(key), dict):
            merged[key] = {**options[key], **setting[key]}
    return merged


def read_settings(data: dict[str, Any], path: Path) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """``[settings.NAME]``: each setting's options (without ``figure``) and its place on the figure."""
    table = table_at(data, "settings", path, "[settings.NAME]\nenv_options = { num_groups = 2 }")
    settings: dict[str, dict[str, Any]] = {}
    placement: dict[str, dict[str, Any]] = {}
    for name, options in table.items():
        if reason := path_name_problem(name):
            raise SuiteError(f"{path}: setting name {name!r} {reason} (it names the trials' directories)")
        if SETTING_SEPARATOR in name:
            raise SuiteError(f"{path}: setting name {name!r} must not hold {SETTING_SEPARATOR!r} (it separates a setting from a run "
                             "in a row's name); use - instead")  # fmt: skip
        options = dict(table_at(table, name, path, f"[settings.{name}]\nenv_options = {{ num_groups = 2 }}", prefix="settings."))
        figure = options.pop("figure", {})
        if not isinstance(figure, dict) or set(figure) - {"x", "panel"} \
                or not isinstance(figure.get("x", 0), (int, float, str)) or isinstance(figure.get("x"), bool) \
                or not isinstance(figure.get("panel", ""), str):  # fmt: skip
            raise SuiteError(f"{path}: settings.{name}.figure must be {{ x = NUMBER or \"LABEL\", panel = \"NAME\" }} (both optional)")
        settings[name], placement[name] = options, dict(figure)
    return settings, placement
