"""How each run option is declared once: its default (the :class:`RunConfig` field), and here its help,
its section, the runs it applies to and the values it accepts.

``routing-rl run``'s flags are generated from these declarations (:mod:`routing_rl.cli.run`), and
:meth:`RunConfig.check` applies their ranges and choices to every configuration, one built from a
suite file or in Python alike, so a default, a choice or a bound is never restated. An option's
``scope`` says which runs it configures: ``router`` options (the routed network and its episodes)
are refused for multi-task models, ``multi-label`` ones for single-label suites, by the command line
and suite files alike (:func:`~routing_rl.training.setup.composition.misplaced_options`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from dataclasses import dataclass
from typing import Any

SECTIONS = ("run", "optimisation", "data", "network", "episodes")
"""The sections of a run's options: what and where it runs; how the weights (and router) are
optimised; how the data is split and scored; the routed network (routers only); the routing
episodes and their rewards (routers only)."""

SCOPES = ("all", "router", "multi-label")


class _FieldDefault:
    """The marker of an option whose flag has the field's default."""

    def __repr__(self) -> str:
        return "FIELD_DEFAULT"


FIELD_DEFAULT: Any = _FieldDefault()


@dataclass(frozen=True)
class Option:
    """One run option's declaration; its default is the RunConfig field's."""

    help: str
    section: str
    scope: str = "all"
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] | None = None
    flag: str | None = None
    """The command-line flag, when not ``--`` and the field name with dashes."""
    off_flag: str | None = None
    """A boolean's negative flag (``--contiguous`` for ``--channels-last``); None: a plain on-switch."""
    parse: str | None = None
    """How the command line's text becomes the value: ``epochs`` (``5,10``) or ``factors`` (``0.5,0.2``)."""
    cli_default: Any = FIELD_DEFAULT
    """The flag's default where it differs from the field's (``--routed``: None, the agent's own)."""
    show_default: bool = True
    path: bool = False
    """A directory (the command line checks that it is not a file)."""

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is outside this option's range or choices, in the words of an error message."""
        if value is None:
            return None
        if self.choices is not None and value not in self.choices:
            return f"must be one of {', '.join(self.choices)}, got {value!r}"
        if self.low is None and self.high is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not math.isfinite(value)):
            return f"must be a finite number, got {value}"
        below = value <= self.low if self.low_open else value < self.low if self.low is not None else False
        above = value >= self.high if self.high_open else value > self.high if self.high is not None else False
        return f"{self.range_text()}, got {value}" if below or above else None

    def range_text(self) -> str:
        low, high = self.low, self.high
        if high is None:
            return "must be positive" if low == 0 and self.low_open else f"must be at least {_number(low)}"
        if low is not None and not self.low_open and not self.high_open and float(low).is_integer() and float(high).is_integer():
            return f"must be from {_number(low)} to {_number(high)}"
        return f"must be in {'(' if self.low_open else '['}{_number(low)}, {_number(high)}{')' if self.high_open else ']'}"


def _number(value: float | None) -> str:
    return str(int(value)) if value is not None and float(value).is_integer() else str(value)


def option(default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING, **declaration: Any) -> Any:
    """A RunConfig field with its :class:`Option` declaration."""
    meta = {"option": Option(**declaration)}
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def declared(cls: type) -> list[tuple[dataclasses.Field[Any], Option]]:
    """Every field of a config class with its declaration, in field order."""
    return [(f, f.metadata["option"]) for f in dataclasses.fields(cls) if "option" in f.metadata]


def flag_of(name: str, opt: Option | None = None) -> str:
    """The command-line flag of option ``name``."""
    return (opt.flag if opt is not None and opt.flag else None) or "--" + name.replace("_", "-")


@functools.cache
def section_class(config_cls: type, name: str) -> type:
    """A frozen dataclass of section ``name``'s options, typed as the config class declares them
    (``NetworkOptions`` for ``network``): generated from the declarations, so no field is restated."""
    if name not in SECTIONS:
        raise ValueError(f"unknown section {name!r}; valid choices: {', '.join(SECTIONS)}")
    hints = typing.get_type_hints(config_cls)
    fields = [(f.name, hints[f.name]) for f, d in declared(config_cls) if d.section == name]
    cls = dataclasses.make_dataclass(f"{name.capitalize()}Options", fields, frozen=True)
    cls.__module__ = __name__
    return cls


@functools.cache
def agent_section_class(agent_cls: type) -> type:
    """A frozen dataclass of a router's or model's own options (``-o``; ``SNRTransOptions`` for
    SNR-Trans), typed and defaulted as its constructor declares them (:meth:`Registered.options
    <routing_rl.registry.Registered.options>`): the section that replaces a model's untyped option
    table, so the learner builds the agent from one typed value and a stray key fails by name."""
    fields = []
    for name, spec in agent_cls.options().items():
        default = spec.default
        if isinstance(default, (list, dict, set)):
            fields.append((name, spec.annotation, dataclasses.field(default_factory=functools.partial(type(default), default))))
        else:
            fields.append((name, spec.annotation, dataclasses.field(default=default)))
    cls = dataclasses.make_dataclass(f"{agent_cls.__name__}Options", fields, frozen=True)
    cls.__module__ = __name__
    return cls


def agent_section(agent_cls: type, given: dict[str, Any]) -> Any:
    """``agent_cls``'s options section with the options ``given`` (``agent_options``) over its defaults;
    raises ``ValueError`` naming an option the class does not have."""
    agent_cls.check_option_names(given)
    return agent_section_class(agent_cls)(**given)


def section_values(section: Any) -> dict[str, Any]:
    """A section's options as keyword arguments (shallow: lists stay the objects the section holds)."""
    return {f.name: getattr(section, f.name) for f in dataclasses.fields(section)}

