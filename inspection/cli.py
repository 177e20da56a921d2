"""``dossier inspect …``: the inspectors' commands (one module per command)."""

from __future__ import annotations

import click

from inspection.cli_access import AccessLoggedGroup, access_log_cmd
from inspection.cli_accountability import accountability_cmd
from inspection.cli_audit import audit_cmd, rules_cmd
from inspection.cli_digest import digest_cmd, prove_cmd
from inspection.cli_export import export_cmd
from inspection.cli_process import flow_cmd, variants_cmd
from inspection.cli_replay import replay_cmd
from inspection.cli_report import report_cmd
from inspection.cli_scorecard import scorecard_cmd
from inspection.cli_sql import sql_cmd
from inspection.cli_verify import verify_cmd


@click.group("inspect", cls=AccessLoggedGroup)
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


for _command in (
    replay_cmd,
    audit_cmd,
    rules_cmd,
    scorecard_cmd,
    accountability_cmd,
    verify_cmd,
    digest_cmd,
    prove_cmd,
    variants_cmd,
    flow_cmd,
    report_cmd,
    export_cmd,
    sql_cmd,
    access_log_cmd,
):
    inspect_group.add_command(_command)
