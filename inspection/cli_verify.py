"""``dossier inspect verify``: prove the stored history was not altered."""

from __future__ import annotations

import click

from dossier_runtime.settings import Settings
from inspection.cliutil import (
    Progress,
    emit,
    exit_with_findings,
    format_option,
    pass_settings,
    provenance,
    quiet_option,
    reader,
)
from inspection.verify import KINDS, verify


@click.command("verify")
@click.option("--dossier", "dossier_id", help="Verify one dossier only.")
@format_option
@quiet_option
@pass_settings
def verify_cmd(settings: Settings, dossier_id: str | None, fmt: str, quiet: bool) -> None:
    """Verify the integrity of the store: seq, hash chain, transitions.

    Over the whole store (or one dossier): seq gaps and repeats, two different
    events at the same (dossier, seq), hash-chain breaks with every hash
    recomputed from the stored fields (naming the first divergent event of each
    dossier), illegal transitions. Exit code 3 when anything is wrong.

    \b
    Examples:
      dossier inspect verify
      dossier inspect verify --dossier 000.00.31.H29-240207-0042 --format json
    """
    progress = Progress(quiet)
    with reader(settings) as store:
        computed_on = provenance(store)
        progress.step(f"verifying {computed_on['events']:,} events of {computed_on['dossiers']:,} dossiers")
        report = verify(lambda sql, params: store.query(sql, params).rows, dossier=dossier_id)
    progress.step("done")
    counts = report.counts()
    computed_on = {**computed_on, "checked_events": report.events, "checked_dossiers": report.dossiers,
                   **{f"{k}": v for k, v in counts.items()}}  # fmt: skip
    rows = [
        {
            "kind": f.kind,
            "dossier_id": f.dossier_id,
            "seq": f.seq,
            "first_divergent_seq": report.first_divergence[f.dossier_id],
            "detail": f.detail,
        }
        for f in report.findings
    ]
    title = "Integrity: OK, seq and hash chains intact" if report.ok else (
        f"Integrity: {len(report.findings)} problem(s) in {len(report.first_divergence)} dossier(s): "
        + ", ".join(f"{k} {counts[k]}" for k in KINDS if counts[k])
    )  # fmt: skip
    emit(rows, fmt, columns=["kind", "dossier_id", "seq", "first_divergent_seq", "detail"], computed_on=computed_on,
         key="findings", title=title, quiet=quiet)  # fmt: skip
    exit_with_findings(not report.ok, no_fail=False)
