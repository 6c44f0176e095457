"""One way from a name to an object: a :class:`RunConfig` resolved into its parts, exactly once.

``--agent`` and ``--env`` are names; a run needs classes. :func:`agent_class` and
:func:`suite_class` are the only places that turn those names into classes, and
:class:`Composition` holds what they resolve to for one run (the router or model class, the task
suite class, whether the agent is a router, its learner, its router learning rate, its run
directory), so the command line, the suite runner, sweeps, the report and the tests all build a
run the same way, and nothing below looks a name up again. The config is checked once, here, when
it is composed; the trainer is built from a composition only, and the learners receive the
agent's class from it (:func:`routing_rl.training.loop.learner_factory.make_learner`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from routing_rl.data import MultiTaskDataset, Suite, load_from
from routing_rl.registry import AGENTS
from routing_rl.training.setup.config import MULTI_OUTPUT_ONLY_OPTIONS, ROUTER_ONLY_OPTIONS, RunConfig


def agent_class(name: str) -> type[Any]:
    """The router or multi-task model class registered as ``name`` (``--agent``); raises
    :class:`~routing_rl.registry.UnknownNameError` listing the valid names."""
    import routing_rl.agents  # noqa: F401  (registers the built-in routers)
    import routing_rl.models  # noqa: F401  (and models)

    return AGENTS.get(name)


def suite_class(name: str) -> type[Suite]:
    """The task suite class registered as ``name`` (``--env``); raises ``UnknownNameError``."""
    return Suite.registry.get(name)


def is_router_class(cls: type[Any]) -> bool:
    """Whether an agent class is a router (trained in a routed network) rather than a multi-task model."""
    from routing_rl.agents.base import Router

    return issubclass(cls, Router)


def default_routed(cls: type[Any]) -> str:
    """``--routed`` where the command line or a suite does not give it: the router's own default
    (``Router.default_routed``: ``all`` for no-sharing), else ``fc``."""
    return str(getattr(cls, "default_routed", "fc"))


def router_lr(config: RunConfig, cls: type[Any]) -> float:
    """``--router-lr`` if given, else the router's own default (``Router.default_router_lr``), else ``--lr``."""
    if config.router_lr is not None:
        return config.router_lr
    default = getattr(cls, "default_router_lr", None)
    return default if default is not None else config.lr


def misplaced_options(given: Iterable[str], agent_cls: type[Any], suite_cls: type[Suite], flag: Callable[[str], str]) -> str | None:
    """Why options set explicitly (``given``: RunConfig field names) do not apply to this agent and
    suite, or None: network and episode options only configure routers, ``map_k`` only multi-label
    suites. The command line and suite files both ask this, so a suite cannot pass what a run refuses.
    ``flag`` prints a field name as the caller's user wrote it (``--fc-layers`` or ``fc_layers``)."""
    given = list(given)
    if not is_router_class(agent_cls) and (wrong := [n for n in given if n in ROUTER_ONLY_OPTIONS]):
        return (f"{', '.join(map(flag, wrong))} only appl{'ies' if len(wrong) == 1 else 'y'} to routers; "
                f"{agent_cls.name} is a multi-task model (size it with -o, see `routing-rl list`)")  # fmt: skip
    if not suite_cls.takes_multi_output_options() and (wrong := [n for n in given if n in MULTI_OUTPUT_ONLY_OPTIONS]):
        return f"{', '.join(map(flag, wrong))} only applies to multi-label suites, not {suite_cls.name}"
    return None


@dataclass(frozen=True)
class Composition:
    """A run's configuration with the classes its names resolve to."""

    config: RunConfig
    agent_cls: type[Any]
    """The router or multi-task model class ``config.agent`` names."""
    suite_cls: type[Suite]
    """The task suite class ``config.env`` names."""

    def section(self, name: str) -> Any | None:
        """The typed options of section ``name`` (:meth:`RunConfig.section`), or None where the
        section does not apply to this run: ``network`` and ``episodes`` configure routers only.
        ``agent`` is the router's or model's own options (``-o``), typed by its class
        (:func:`~routing_rl.training.setup.options.agent_section`)."""
        if name == "agent":
            from routing_rl.training.setup.options import agent_section

            return agent_section(self.agent_cls, self.config.agent_options)
        if name in ("network", "episodes") and not self.is_router:
            return None
        return self.config.section(name)

    def run_dir(self) -> Path:
        """The run directory: ``--logdir``, else ``runs/<env>-<agent>[-routed_<layers>]-seed<seed>``."""
        return self.config.run_dir(routed=self.is_router)

    @property
    def is_router(self) -> bool:
        """Whether the agent is a router (trained in a routed network) rather than a multi-task model."""
        return is_router_class(self.agent_cls)

    @property
    def router_lr(self) -> float:
        """The routing parameters' learning rate: ``--router-lr``, else the router's own, else ``--lr``."""
        return router_lr(self.config, self.agent_cls)

    def load_data(self) -> MultiTaskDataset:
        """The task suite built with ``env_options`` and loaded from ``data_dir`` (seeded split)."""
        cfg = self.config
        return load_from(self.suite_cls(**cfg.env_options), cfg.env, cfg.data_dir, cfg.seed, cfg.val_fraction)


class ConfigError(ValueError):
    """Options no run can take. ``option`` names the RunConfig field the value came from (``agent``,
    ``env``, ``preset``, ``agent_options``, ``env_options``, ...), or is None for a combination."""

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


def configure(
    given: dict[str, Any], agent_pairs: Iterable[str] = (), env_pairs: Iterable[str] = (), flag: Callable[[str], str] = str,
) -> Composition:
    """The one config builder of the command line and suite files: the options set explicitly
    (RunConfig field names; ``-o``/``-e`` as ``KEY=VALUE`` pairs or as ``agent_options``/``env_options``
    tables) over the preset they name, over RunConfig's defaults; the agent and suite names resolved
    once; every declared check and the scope check applied. Raises :class:`ConfigError`; ``flag``
    prints an option's name in the caller's words in its messages."""
    from routing_rl.registry import UnknownNameError
    from routing_rl.training.setup.presets import PresetError, apply_preset, get_preset

    values = dict(given)
    preset_name = values.pop("preset", None)
    try:
        preset_env = get_preset(preset_name).options.get("env") if preset_name is not None else None
    except PresetError as exc:
        raise ConfigError(str(exc), "preset") from None
    try:
        agent_cls = agent_class(values.get("agent", RunConfig.agent))
    except UnknownNameError as exc:
        raise ConfigError(str(exc), "agent") from None
    try:
        suite_cls = suite_class(values.get("env", preset_env or RunConfig.env))
    except UnknownNameError as exc:
        raise ConfigError(str(exc), "env") from None
    if problem := misplaced_options(values, agent_cls, suite_cls, flag):
        raise ConfigError(problem)
    for key, cls, pairs in (("agent_options", agent_cls, agent_pairs), ("env_options", suite_cls, env_pairs)):
        pairs = list(pairs)
        if pairs:
            try:
                values[key] = {**values.get(key, {}), **cls.parse_options(pairs)}
            except ValueError as exc:
                raise ConfigError(str(exc), key) from None
        if key in values and not values[key]:
            del values[key]  # an empty table sets nothing (the preset's options stay)
    try:
        values = apply_preset(preset_name, values)
    except PresetError as exc:
        raise ConfigError(str(exc), "preset") from None
    values.setdefault("routed", default_routed(agent_cls))
    try:
        return checked(RunConfig(**values), agent_cls, suite_cls)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None


def checked(config: RunConfig, agent_cls: type[Any], suite_cls: type[Suite]) -> Composition:
    """The composition of ``config`` with its resolved classes, after the config's one check
    (:meth:`RunConfig.check`: every declared range and combination); raises ``ValueError``."""
    config.check()
    return Composition(config, agent_cls, suite_cls)


def compose(config: RunConfig) -> Composition:
    """Check ``config`` and resolve its agent and suite names, once: the composition every run is
    built from (a config built in code, a suite trial in its worker, a test)."""
    return checked(config, agent_class(config.agent), suite_class(config.env))


__all__ = ["Composition", "ConfigError", "agent_class", "checked", "compose", "configure", "default_routed", "is_router_class", "misplaced_options", "router_lr", "suite_class"]
