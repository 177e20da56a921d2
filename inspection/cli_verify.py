"""``dossier inspect verify``: prove the stored history was not altered."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from dossier_runtime.settings import Settings
from dossier_runtime.store import Store
from inspection import digest as digests
from inspection import ledger
from inspection.against import AGAINST_KINDS, access_log, compare
from inspection.cliutil import (
    EXIT_FINDINGS,
    Progress,
    emit,
    exit_with_findings,
    listing_options,
    pass_settings,
    provenance,
    quiet_option,
    reader,
)
from inspection.verify import KINDS, Finding, verify
from schemas.evidence import EvidenceError, check_digest, load_public_key
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
    help="Recompute hashes only outside the parts a recorded run covers, and check again only the dossiers with an "
    "event outside the parts a recorded run checked or with a finding on record.",
)
@click.option(
    "--record/--no-record",
    default=True,
    show_default=True,
    help="Put a full run on the integrity ledger, so the audit's INTEGRITY-HASH recomputes only what changed since.",
)
@click.option(
    "--against",
    "against_path",
    metavar="DIGEST",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also prove the store holds, for every dossier of this signed digest, the history up to its head.",
)
@click.option(
    "--public-key",
    "public_key_path",
    metavar="PUB",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The digest signer's public key (signing.pub); required with --against.",
)
@listing_options
@quiet_option
@pass_settings
def verify_cmd(
    settings: Settings,
    dossier_id: str | None,
    since_text: str | None,
    use_ledger: bool,
    record: bool,
    against_path: Path | None,
    public_key_path: Path | None,
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
    events of dossiers with a recorded break), and checks seq, links,
    transitions and reused ids again only for the dossiers with an event in a
    part no recorded run checked, or with a finding on record; every dossier
    is checked again when rows a run read were deleted or dropped since. What
    it did goes on the ledger: the cheap run to schedule after each load,
    with a full run now and then.

    \b
    With --against DIGEST (and --public-key PUB), also: the digest's signature
    holds, and for every dossier of the digest the store holds an event at the
    digest's last seq whose hash is the digest's head (later events allowed):
    a chain rewritten and re-hashed consistently, a deleted dossier or deleted
    events are named (exit 3). The heads file must sit next to the digest.

    \b
    Examples:
      dossier inspect verify   # exit 3 on the demo: it injects integrity faults
      dossier inspect verify --dossier 000.00.06.H29-230209-0001 --format json
      dossier inspect verify --since 2026-11-27T10:15:02.123456+00:00   # exit 3 on the demo
      dossier inspect verify --use-ledger   # exit 3 on the demo
      dossier inspect verify --against digest.json --public-key keys/signing.pub   # exit 3 on the demo
    """
    if use_ledger and (since_text is not None or dossier_id is not None):
        raise click.UsageError("--use-ledger verifies the whole store; it does not go with --since or --dossier")
    since = _watermark(since_text)
    signed_body = _signed_body(against_path, public_key_path, since_text is not None or dossier_id is not None)
    progress = Progress(quiet)
    with reader(settings) as store:
        # The store's dossiers are not counted apart (a read of every event's id, ~11 s at a year of the city): a
        # full run counts them as it checks them, and the other modes state the dossiers they checked.
        computed_on = provenance(store, dossiers=False)
        progress.step(f"verifying {computed_on['events']:,} events")
        query = lambda sql, params: store.query(sql, params).rows  # noqa: E731
        coverage = ledger.coverage(query) if use_ledger else None
        report = verify(query, dossier=dossier_id, since=since, coverage=coverage)
        ledger_note = ledger.record_and_tell(store.record_run, report.entry) if record else "not recorded (--no-record)"
        cut_short = _cut_short(store) if dossier_id is None else []
        broken = {str(t): int(n) for t, n in store.query(BROKEN_PARTS_SQL).rows} if dossier_id is None else {}
        against = _against(store, against_path, signed_body, progress) if against_path and signed_body else None
    progress.step("done")
    if report.events == 0 and dossier_id is not None:
        raise click.ClickException(
            f"no events of dossier {dossier_id} in the store ({computed_on['store']}): nothing to verify; "
            "check the code (<unit code>-<yyMMdd>-<nnnn>, e.g. 000.00.31.H29-230207-0042)"
        )
    if report.events == 0 and since is None and not (report.ledger_checked and computed_on["events"]):
        note = (f"; {unfinished_sentence(cut_short)}" if cut_short else "") + (
            f"; {broken_sentence(broken)}" if broken else ""
        )
        raise click.ClickException(f"the store ({computed_on['store']}) holds no events: nothing to verify{note}")
    counts = report.counts()
    full = since is None and dossier_id is None and not report.ledger_checked
    computed_on = {**computed_on, **({"dossiers": report.dossiers} if full else {}),
                   "checked_events": report.events, "checked_dossiers": report.dossiers,
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
    checked = f"{report.events:,} event(s) of {report.dossiers:,} dossier(s) checked" + (
        " again, the others on the integrity ledger's record" if report.ledger_checked else ""
    )
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
    if against is not None:
        title = _with_against(title, against, rows, computed_on, report.first_divergence)
    emit(rows, fmt, columns=["kind", "dossier_id", "seq", "first_divergent_seq", "detail"], computed_on=computed_on,
         key="findings", title=title, quiet=quiet, hide_first=["first_divergent_seq"])  # fmt: skip
    exit_with_findings(not report.ok or bool(cut_short) or bool(broken) or bool(against and against[0]), no_fail=False)


def _signed_body(path: Path | None, public_key: Path | None, partial: bool) -> dict[str, Any] | None:
    """``--against``: the digest's body once its signature holds; a forged or altered digest is a finding (exit 3)."""
    if path is None:
        if public_key is not None:
            raise click.UsageError("--public-key goes with --against DIGEST")
        return None
    if partial:
        raise click.UsageError("--against compares the whole store; it does not go with --since or --dossier")
    if public_key is None:
        raise click.UsageError("--against needs --public-key PUB, the signer's signing.pub")
    try:
        key = load_public_key(public_key.read_bytes())
        signed = digests.read_signed(path)
    except OSError as exc:
        raise click.ClickException(f"cannot read {exc.filename}: {exc.strerror}") from None
    except EvidenceError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        return check_digest(signed, key)
    except EvidenceError as exc:
        click.echo(f"Digest {path} refused: {exc}", err=True)
        raise SystemExit(EXIT_FINDINGS) from None


def _against(store: Store, path: Path, body: dict[str, Any], progress: Progress) -> tuple[list[Finding], int, str]:
    """Findings of the store against the digest, how many dossiers were compared, and the digest's name."""
    progress.step(f"comparing {body['dossiers']:,} dossier heads with digest {path}")
    try:
        found, compared = compare(store, digests.stored_heads(path, body))
        found += access_log(store, body)
    except EvidenceError as exc:
        click.echo(f"Digest {path} refused: {exc}", err=True)
        raise SystemExit(EXIT_FINDINGS) from None
    return found, compared, f"{path} ({body['created_at']}, root {body['tree']['root'][:16]}…)"


def _with_against(
    title: str,
    against: tuple[list[Finding], int, str],
    rows: list[dict[str, Any]],
    computed_on: dict[str, Any],
    first: dict[str, int],
) -> str:
    found, compared, name = against
    computed_on["against"] = name
    computed_on["against_dossiers"] = compared
    computed_on.update({kind: sum(1 for f in found if f.kind == kind) for kind in AGAINST_KINDS})
    for f in found:
        first_seq = min(first.get(f.dossier_id, f.seq), f.seq)
        rows.append({"kind": f.kind, "dossier_id": f.dossier_id, "seq": f.seq, "first_divergent_seq": first_seq,
                     "detail": f.detail})  # fmt: skip
    rows.sort(key=lambda r: (r["dossier_id"], r["seq"], r["kind"]))
    if not found:
        return f"{title}; against digest {name}: all {compared:,} dossiers hold the history it signed"
    head = found[0]
    return (
        f"{title.replace(': OK, ', ': ', 1)}; against digest {name}: {len({f.dossier_id for f in found}):,} of "
        f"{compared:,} dossier(s) diverge, the first {head.dossier_id} at seq {head.seq} ({head.kind})"
    )


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
