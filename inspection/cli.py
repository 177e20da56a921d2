"""``dossier inspect …``: the inspectors' commands (one module per command)."""

from __future__ import annotations

from typing import Final

import click

from inspection.cli_access import AccessLoggedGroup

#: The subcommands of ``dossier inspect``, imported when they run (:class:`dossier_runtime.lazygroup.LazyGroup`).
SUBCOMMANDS: Final = {
    "replay": "inspection.cli_replay:replay_cmd",
    "audit": "inspection.cli_audit:audit_cmd",
    "rules": "inspection.cli_audit:rules_cmd",
    "scorecard": "inspection.cli_scorecard:scorecard_cmd",
    "accountability": "inspection.cli_accountability:accountability_cmd",
    "verify": "inspection.cli_verify:verify_cmd",
    "digest": "inspection.cli_digest:digest_cmd",
    "prove": "inspection.cli_digest:prove_cmd",
    "variants": "inspection.cli_process:variants_cmd",
    "flow": "inspection.cli_process:flow_cmd",
    "report": "inspection.cli_report:report_cmd",
    "export": "inspection.cli_export:export_cmd",
    "sql": "inspection.cli_sql:sql_cmd",
    "access-log": "inspection.cli_access:access_log_cmd",
}


@click.group("inspect", cls=AccessLoggedGroup, lazy_subcommands=SUBCOMMANDS)
def inspect_group() -> None:
    """Replay dossiers, run audit rules, score units, verify integrity, export.

    Every report states what it was computed on, and every command that reads
    the store is recorded in its access log (inspect access-log). Exit codes: 0 ok, 1 the store
    cannot be used (the message says what to do), 2 usage error, 3 findings.

    \b
    Examples:
      dossier inspect replay 000.00.06.H29-230209-0001
      dossier inspect audit R1 R10   # exit 3: the demo has findings
      dossier inspect verify   # exit 3 on the demo: it injects integrity faults
    """
