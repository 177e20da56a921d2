"""``dossier`` imports a subcommand when it runs, not every command's libraries at every start."""

from __future__ import annotations

import subprocess
import sys

from tests.test_consumers_support import ROOT

PROBE = """
import sys
from click.testing import CliRunner
from dossier_audit.cli import main
done = CliRunner().invoke(main, sys.argv[1:])
assert done.exit_code == 0, done.output
print(" ".join(sorted(m for m in sys.modules if m.split(".")[0] in ("kafka", "numpy", "chdb", "inspection"))))
"""


def _imported(*argv: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    return set(done.stdout.split())


def test_a_command_imports_its_own_libraries_only() -> None:
    calendar = _imported("calendar", "due", "2024-02-07T16:00+07:00", "--days", "3")
    assert not {m for m in calendar if m.startswith(("kafka", "numpy", "chdb", "inspection"))}, calendar
    replay_help = _imported("inspect", "replay", "--help")
    assert "inspection.cli_replay" in replay_help
    assert not {"inspection.cli_scorecard", "inspection.cli_audit", "kafka"} & replay_help, replay_help


def test_the_listings_and_the_tree_still_hold_every_command() -> None:
    from dossier_audit.cli import SUBCOMMANDS, main
    from inspection.cli import SUBCOMMANDS as INSPECT
    from inspection.cli import inspect_group

    assert set(main.commands) == set(SUBCOMMANDS) and set(inspect_group.commands) == set(INSPECT)
    listing = _imported("inspect", "--help")
    assert {"inspection.cli_scorecard", "inspection.cli_sql"} <= listing  # its lines need every command's help
