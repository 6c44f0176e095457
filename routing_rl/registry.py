"""One registration mechanism for everything a user names on the command line.

Task suites (``--env``), routers and multi-task models (``--agent``) all subclass
:class:`Registered`: a subclass that sets its own ``name`` is added to its base's registry when it
is defined, so a user-defined class becomes available to ``routing-rl run`` by being imported and
nothing in the package is edited. The same mixin describes each class's typed constructor options
(:meth:`Registered.options`), which become ``-o``/``-e KEY=VALUE`` flags and ``routing-rl list`` rows.
"""

from __future__ import annotations

import collections.abc
import inspect
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """Raised for a name that is not registered; the message lists the valid choices."""

    def __init__(self, kind: str, name: str, choices: list[str]) -> None:
        self.kind = kind
        self.name = name
        self.choices = choices
        super().__init__(name)

    def __str__(self) -> str:
        return f"unknown {self.kind} {self.name!r}; valid choices: {', '.join(self.choices)}"


class Registry(Generic[T]):
    """Maps registered names to classes, in registration order."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, type[T]] = {}

    def add(self, name: str, cls: type[T]) -> None:
        existing = self._items.get(name)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise ValueError(f"{self.kind} name {name!r} is already registered by {existing.__qualname__}")
        self._items[name] = cls

    def get(self, name: str) -> type[T]:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self.names()) from None

    def names(self) -> list[str]:
        return list(self._items)

    def items(self) -> list[tuple[str, type[T]]]:
        return list(self._items.items())


AGENTS: Registry[Any] = Registry("agent")
"""Every ``--agent`` name: routers and multi-task models share one namespace, so a name means one thing."""

SEQUENCE_ORIGINS = (list, tuple, collections.abc.Sequence)


def parse_value(raw: str, annotation: Any) -> Any:
    """Convert an option string to the annotated type.

    Handles bool, int, float, str, Literal, sequences (``64,32`` for ``Sequence[int]``, giving a
    tuple) and unions, whose members are tried in order (``int | Sequence[int]`` reads ``64`` as an
    int and ``64,32`` as a tuple; ``none`` is None where the union allows it).
    """
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        if raw not in [str(a) for a in args]:
            raise ValueError(f"must be one of {', '.join(map(str, args))}")
        return next(a for a in args if str(a) == raw)
    if origin in (typing.Union, types.UnionType):
        if raw.lower() == "none" and type(None) in args:
            return None
        errors = []
        for member in (a for a in args if a is not type(None)):
            try:
                return parse_value(raw, member)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(errors[0] if errors else "no type to parse")
    if origin in SEQUENCE_ORIGINS:
        item_type = args[0] if args else str
        parts = [part.strip() for part in raw.split(",")]
        if not raw.strip() or any(not part for part in parts):
            raise ValueError("expected comma-separated values without empty items, e.g. 64,32")
        items = tuple(parse_value(part, item_type) for part in parts)
        return list(items) if origin is list else items
    if annotation is bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError("must be true or false")
    if annotation in (int, float):
        try:
            value = annotation(raw)
        except ValueError:
            raise ValueError(f"expected {'an integer' if annotation is int else 'a number'}, got {raw!r}") from None
        if annotation is float and not math.isfinite(value):
            raise ValueError(f"expected a finite number, got {raw!r}")
        return value
    return raw


def cli_parseable(annotation: Any) -> bool:
    """Whether :func:`parse_value` can build this type from a string (excludes e.g. ``torch.Generator``)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal or annotation in (bool, int, float, str):
        return True
    if origin in (typing.Union, types.UnionType):
        return all(cli_parseable(a) for a in typing.get_args(annotation) if a is not type(None))
    if origin in SEQUENCE_ORIGINS:
        return all(cli_parseable(a) for a in typing.get_args(annotation))
    return False


def type_name(annotation: Any) -> str:
    """A short human name of an option type: ``float``, ``int | seq[int]``, ``one of a, b``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(map(str, args))
    if origin in (typing.Union, types.UnionType):
        return " | ".join("none" if a is type(None) else type_name(a) for a in args)
    if origin in SEQUENCE_ORIGINS:
        return f"seq[{type_name(args[0]) if args else 'str'}]"
    return getattr(annotation, "__name__", str(annotation))


@dataclass(frozen=True)
class OptionSpec:
    """One constructor option of a registered class: its name, type, default and one-line help."""

    name: str
    annotation: Any
    default: Any
    help: str

    @property
    def type_name(self) -> str:
        return type_name(self.annotation)

    def parse(self, raw: str) -> Any:
        return parse_value(raw, self.annotation)


class Registered:
    """Mixin: registration by ``name`` in the base's ``registry``, plus typed option introspection.

    A base class declares ``registry = Registry("kind")``; its subclasses set ``name``,
    ``description`` and ``family`` (a grouping shown by ``routing-rl list``) and document their
    options in ``option_help``. Constructor parameters with a default value and a type the
    command line can express are options; ``internal_arguments`` names those the framework
    supplies itself (a router's ``seed``, a model's gate noise generator).
    """

    registry: ClassVar[Registry[Any]]
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    family: ClassVar[str] = ""
    option_help: ClassVar[dict[str, str]] = {}
    internal_arguments: ClassVar[frozenset[str]] = frozenset({"seed", "gate_generator"})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):
            cls.registry.add(cls.name, cls)

    @classmethod
    def options(cls) -> dict[str, OptionSpec]:
        """The constructor options a user can set, in signature order."""
        signature = inspect.signature(cls.__init__)
        hints = typing.get_type_hints(cls.__init__)
        helps: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            helps.update(getattr(klass, "option_help", {}) or {})
        kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        out: dict[str, OptionSpec] = {}
        for name, param in signature.parameters.items():
            if param.kind not in kinds or param.default is inspect.Parameter.empty or name in cls.internal_arguments:
                continue
            annotation = hints.get(name, str)
            if cli_parseable(annotation):
                out[name] = OptionSpec(name, annotation, param.default, helps.get(name, ""))
        return out

    @classmethod
    def check_option_names(cls, names: typing.Iterable[str]) -> None:
        """The one unknown-option check of agents and suites (``-o``/``-e`` pairs, suite and sweep
        option tables, the typed agent section): ``ValueError`` naming every name that is not one
        of :meth:`options`, and the valid ones."""
        specs = cls.options()
        if unknown := [name for name in names if name not in specs]:
            raise ValueError(f"{cls.name} has no option {', '.join(map(repr, unknown))}; valid options: {', '.join(specs) or '(none)'}")

    @classmethod
    def parse_options(cls, pairs: typing.Iterable[str]) -> dict[str, Any]:
        """Parse ``KEY=VALUE`` strings against :meth:`options`; ``ValueError`` names the bad pair."""
        specs = cls.options()
        out: dict[str, Any] = {}
        for pair in pairs:
            key, sep, raw = pair.partition("=")
            key = key.strip().replace("-", "_")
            if not sep:
                raise ValueError(f"expected KEY=VALUE, got {pair!r}")
            cls.check_option_names([key])
            try:
                out[key] = specs[key].parse(raw.strip())
            except ValueError as exc:
                raise ValueError(f"{key}={raw!r}: {exc}") from None
        return out
