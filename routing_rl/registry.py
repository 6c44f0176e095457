"""A small class-level registry shared by task suites and routers.

Subclasses register themselves by a class attribute ``name``, so a user-defined router or task
suite becomes available to ``routing-rl run`` by being imported: nothing in the package is edited.
"""

from __future__ import annotations

from typing import Generic, TypeVar

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
