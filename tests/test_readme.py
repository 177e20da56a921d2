"""The README and docs/ document what the code does: every command, every variable, every event type's fields."""

from __future__ import annotations

import re
from pathlib import Path

import click

from dossier_audit.cli import main
from dossier_runtime.settings import ENVIRONMENT
from schemas.events import EVENT_FIELDS

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = (ROOT / "README.md").read_text(encoding="utf-8")
ALL_DOCS = README + "".join(p.read_text(encoding="utf-8") for p in sorted(DOCS.glob("*.md")))


def _commands(group: click.Group, prefix: str) -> list[tuple[str, click.Command]]:
    found = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        found.append((path, command))
        if isinstance(command, click.Group):
            found.extend(_commands(command, path))
    return found


COMMANDS = _commands(main, "dossier")


def test_every_command_is_documented() -> None:
    missing = [path for path, _ in COMMANDS if f"`{path}" not in ALL_DOCS]
    assert not missing, f"commands missing from README.md and docs/: {missing}"


def test_every_command_help_has_an_example() -> None:
    for path, command in COMMANDS:
        assert "Example" in (command.help or ""), f"{path} --help has no example"


def _envvars(command: click.Command) -> set[str]:
    found = set()
    for param in command.params:
        envvar = getattr(param, "envvar", None)
        if isinstance(envvar, str):
            found.add(envvar)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            found |= _envvars(sub)
    return found


def test_configuration_table_matches_the_variables_the_code_reads() -> None:
    configuration = (DOCS / "configuration.md").read_text(encoding="utf-8")
    table = set(re.findall(r"^\| `(DOSSIER_[A-Z_]+)` \|", configuration, flags=re.MULTILINE))
    assert table == set(ENVIRONMENT)
    assert _envvars(main) <= set(ENVIRONMENT)


def test_fields_table_matches_the_contract() -> None:
    contract = (DOCS / "data-contract.md").read_text(encoding="utf-8")
    for event_type, rule in EVENT_FIELDS.items():
        row = re.search(rf"^\| `{event_type.value}` \| (.*) \| (.*) \|$", contract, flags=re.MULTILINE)
        assert row, event_type
        required = set(re.findall(r"`(\w+)`", row.group(1)))
        optional = set(re.findall(r"`(\w+)`", row.group(2)))
        assert (required, optional) == (set(rule.required), set(rule.optional)), event_type
