"""``dossier inspect verify``: prove the stored history was not altered."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from dossier_runtime.settings import Settings
from dossier_runtime.store import Store
from inspection import ledger
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
from schemas.journal import BROKEN_PARTS_SQL, UNFINISHED_LOADS_SQL, broken_sentence, unfinished_sentence


@click.command("verify")
@click.option("--dossier", "dossier_id", help="Verify one dossier only.")
@click.option(
    "--since",
    "since_text",
    metavar="WATERMARK",
    help="Incremental: only what was stored after WATERMARK (the `watermark` a previous run printed, ISO 8601).",
)
@click.option(
    "--use-ledger",
    is_flag=True,
    help="Recompute hashes only outside the parts a recorded run covers; every other check still runs over all.",
)
@click.option(
    "--record/--no-record",
    default=True,
    show_default=True,
    help="Put a full run on the integrity ledger, so the audit's INTEGRITY-HASH recomputes only what changed since.",
)
@format_option
@quiet_option
@pass_settings
def verify_cmd(
    settings: Settings,
    dossier_id: str | None,
    since_text: str | None,
    use_ledger: bool,
    record: bool,
    fmt: str,
    quiet: bool,
) -> None:
    """Verify the integrity of the store: seq, hash chain, transitions.

    Over the whole store (or one dossier): seq gaps and repeats, two different
    events at the same (dossier, seq), hash-chain breaks with every hash
    recomputed from the stored fields (naming the first divergent event of each
    dossier), illegal transitions. Exit code 3 when anything is wrong.

    \b
    With --since, only the events stored after the watermark have their hash
    recomputed, and only their dossiers are re-checked (fast, for a schedule);
    it cannot see a change to an event verified before, so run the full check
    too. Every run prints the watermark for the next one.

    \b
    A full run goes on the integrity ledger (which parts of the log it read,
    which events it found broken): the audit's INTEGRITY-HASH then recomputes
    hashes only where the log changed since. --no-record leaves it out.
    With --use-ledger, verify itself recomputes only those hashes (and the
    events of dossiers with a recorded break); seq, links and transitions are
    still checked everywhere, and the parts recomputed go on the ledger: the
    cheap run to schedule after each load, with a full run now and then.

    \b
    Examples:
      dossier inspect verify
      dossier inspect verify --dossier 000.00.31.H29-240207-0042 --format json
      dossier inspect verify --since 2026-11-27T10:15:02.123456+00:00
      dossier inspect verify --use-ledger
    """
    if use_ledger and (since_text is not None or dossier_id is not None):
        raise click.UsageError("--use-ledger verifies the whole store; it does not go with --since or --dossier")
    since = _watermark(since_text)
    progress = Progress(quiet)
    with reader(settings) as store:
        computed_on = provenance(store)
        progress.step(f"verifying {computed_on['events']:,} events of {computed_on['dossiers']:,} dossiers")
        query = lambda sql, params: store.query(sql, params).rows  # noqa: E731
        coverage = ledger.coverage(query) if use_ledger else None
        report = verify(query, dossier=dossier_id, since=since, coverage=coverage)
        ledger_note = ledger.record_and_tell(store.record_run, report.entry) if record else "not recorded (--no-record)"
        cut_short = _cut_short(store) if dossier_id is None else []
        broken = {str(t): int(n) for t, n in store.query(BROKEN_PARTS_SQL).rows} if dossier_id is None else {}
    progress.step("done")
    if report.events == 0 and dossier_id is not None:
        raise click.ClickException(
            f"no events of dossier {dossier_id} in the store ({computed_on['store']}): nothing to verify; "
            "check the code (<unit code>-<yyMMdd>-<nnnn>, e.g. 000.00.31.H29-230207-0042)"
        )
    if report.events == 0 and since is None:
        note = (f"; {unfinished_sentence(cut_short)}" if cut_short else "") + (
            f"; {broken_sentence(broken)}" if broken else ""
        )
        raise click.ClickException(f"the store ({computed_on['store']}) holds no events: nothing to verify{note}")
    counts = report.counts()
    computed_on = {**computed_on, "checked_events": report.events, "checked_dossiers": report.dossiers,
                   "mode": "incremental" if since else "ledger" if use_ledger else "full",
                   "watermark": report.watermark.isoformat() if report.watermark else None,
                   "ledger": ledger_note,
                   **({"integrity": coverage.describe()} if coverage is not None else {}),
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
    scope = f"Integrity of what was stored after {since.isoformat()}" if since else "Integrity"
    checked = f"{report.events:,} event(s) of {report.dossiers:,} dossier(s) checked"
    title = f"{scope}: nothing was stored since, nothing checked" if report.events == 0 else (
        f"{scope}: OK, {checked}; seq and hash chains intact"
    ) if report.ok else (
        f"{scope}: {len(report.findings)} problem(s) in {len(report.first_divergence)} dossier(s) "
        f"({checked}): " + ", ".join(f"{k} {counts[k]}" for k in KINDS if counts[k])
    )  # fmt: skip
    if cut_short:  # what is stored may be intact and still not all of a file: never "OK" then
        computed_on["unfinished_loads"] = [str(r[0]) for r in cut_short]
        title = f"{title.replace(': OK, ', ': ', 1)}; but {unfinished_sentence(cut_short)}"
    if broken:  # rows set aside by the engine are not in what was checked: never "OK" either
        computed_on["broken_parts"] = broken
        title = f"{title.replace(': OK, ', ': ', 1)}; but {broken_sentence(broken)}"
    emit(rows, fmt, columns=["kind", "dossier_id", "seq", "first_divergent_seq", "detail"], computed_on=computed_on,
         key="findings", title=title, quiet=quiet)  # fmt: skip
    exit_with_findings(not report.ok or bool(cut_short) or bool(broken), no_fail=False)


def _cut_short(store: Store) -> list[Any]:
    """Loads the journal holds as started and never completed (none in a store from before migration 0012)."""
    has = store.query(
        "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = 'file_loads'"
    ).scalar()
    return list(store.query(UNFINISHED_LOADS_SQL).rows) if has else []


def _watermark(text: str | None) -> datetime | None:
    """``--since``: an ISO 8601 instant; without an offset it is read as UTC (watermarks are printed in UTC)."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 instant (e.g. 2026-11-27T10:15:02+00:00)") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)
