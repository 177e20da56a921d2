"""A click group whose subcommands are imported when they run.

Each command of the CLI pulls its own libraries in (Kafka, NumPy, pyarrow, chDB's bindings); a group that
imported all of its subcommands to start would make every command pay for every other's. A
:class:`LazyGroup` holds ``name -> "module:attribute"`` and imports a subcommand the first time it is asked
for: to run it, to print its line in a listing, or for code that walks ``commands`` (which imports them all).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import click


class LazyGroup(click.Group):
    """``click.group(cls=LazyGroup, lazy_subcommands={"name": "module:attribute", …})``."""

    def __init__(self, *args: Any, lazy_subcommands: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        self._lazy = dict(lazy_subcommands or {})
        super().__init__(*args, **kwargs)

    @property  # type: ignore[override]
    def commands(self) -> dict[str, click.Command]:
        """Every subcommand, each imported now if it was not yet."""
        for name in self._lazy:
            self._load(name)
        return self._commands

    @commands.setter
    def commands(self, value: dict[str, click.Command]) -> None:
        self._commands = value

    def _load(self, name: str) -> click.Command | None:
        if name not in self._commands and name in self._lazy:
            module, attribute = self._lazy[name].split(":")
            command = getattr(importlib.import_module(module), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self._lazy[name]} is not a click command")
            self._commands[name] = command
        return self._commands.get(name)

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        name = name or cmd.name
        if name is None:
            raise TypeError("Command has no name.")
        self._commands[name] = cmd

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self._commands, *self._lazy})


__all__ = ["LazyGroup"]
