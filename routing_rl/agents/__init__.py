"""Routers: the agents that choose function blocks. Importing this package registers the built-ins.

Every module in this package is imported, so a new router is one new file here (or any module
the user imports, e.g. with ``routing-rl run --plugin my_module``) and needs no other edit.
"""

from __future__ import annotations

import importlib
import pkgutil

from routing_rl.agents.base import FixedRouteRouter, Router, RouterConfigError

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["FixedRouteRouter", "Router", "RouterConfigError"]
