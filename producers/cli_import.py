"""``dossier produce import``: QuaTrinhXuLy exports → contract events (file or Kafka)."""

from __future__ import annotations

import csv
import dataclasses
import sys
from enum import StrEnum
from pathlib import Path
from typing import Any

import click

from dossier_runtime.errors import RuntimeSetupError
from dossier_runtime.outfile import OutputFileError, atomic_output, make_directory
from dossier_runtime.progress import Progress
from dossier_runtime.settings import Settings
from producers.importer import ImportResult, import_files
from producers.importmapping import ImportMapping, MappingError, load_mapping
from producers.importrows import APPLICANT_COLUMNS, COLUMNS, ProcedureCatalogueError, read_procedures
from producers.inputs import write_event_file
from producers.publish import outbound_event, publish_with_settings
from producers.reporting import SUMMARY_FORMATS, render_summary, sidecar, stored_progress, warn
from schemas.events import ApplicantKind, Channel, DeadlineConvention, TimeLimitUnit
from schemas.pseudonym import PseudonymKeyError, check_real_key

EXIT_FAILED = 1
EXIT_INVALID = 3


class KeyRefused(click.ClickException):
    """A pseudonym key that would not hide real applicants (the demo key, too short): exit code 2."""

    exit_code = 2


def _choice(enum: type[StrEnum]) -> click.Choice[str]:
    return click.Choice([m.value for m in enum if m.value != "UNKNOWN"], case_sensitive=False)


@click.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write events to .jsonl or .avro.")
@click.option("--publish", "to_kafka", is_flag=True, help="Publish the events to Kafka (verified delivery).")
@click.option("--check", "check_only", is_flag=True, help="Only check the export; write and publish nothing.")
@click.option("--mapping", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Mapping file (JSON).")
@click.option("--procedure-code", help="MaTTHC of every dossier (e.g. 1.001612) unless the mapping names one.")
@click.option(
    "--catalogue",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Directory with procedures.jsonl: sets procedure_version to the version in force at reception.",
)
@click.option("--rule-set", help="Rule set [default: ND61-2018, or ND118-2025 for receptions from 2025-07-01].")
@click.option("--channel", type=_choice(Channel), help="[default: ONLINE when the history starts at status 1]")
@click.option("--applicant-kind", type=_choice(ApplicantKind), help="[default: INDIVIDUAL]")
@click.option("--time-limit", type=click.IntRange(0), help="Time limit [default: derived from the reception row].")
@click.option("--time-limit-unit", type=_choice(TimeLimitUnit), default="WORKING_DAYS", show_default=True)
@click.option("--deadline-convention", type=_choice(DeadlineConvention), help="[default: WORKING_HOURS]")
@click.option("--skip-invalid", is_flag=True, help="Go on with the valid dossiers; rejected rows to --rejected-out.")
@click.option(
    "--rejected-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV of rejected dossiers' rows [default: FILE.rejected.csv next to the first FILE].",
)
@click.option("--format", "fmt", type=click.Choice(SUMMARY_FORMATS), default="table", show_default=True)
@click.option("-q", "--quiet", is_flag=True, help="No progress or warnings on stderr (problems are still listed).")
def import_cmd(
    files: tuple[Path, ...],
    out: Path | None,
    to_kafka: bool,
    check_only: bool,
    mapping: Path | None,
    procedure_code: str | None,
    catalogue: Path | None,
    rule_set: str | None,
    channel: str | None,
    applicant_kind: str | None,
    time_limit: int | None,
    time_limit_unit: str,
    deadline_convention: str | None,
    skip_invalid: bool,
    rejected_out: Path | None,
    fmt: str,
    quiet: bool,
) -> None:
    """Import processing histories (QuaTrinhXuLy rows) from CSV, JSON or JSON Lines FILES.

    Rows are grouped by MaHoSo, ordered by ThoiDiemXuLy (yyyyMMddHHmmss,
    UTC+7), mapped to events (see the README's mapping table), numbered,
    hash-chained and checked against the lifecycle. A bad row rejects its
    whole dossier and is listed on stderr as FILE:LINE: reason (JSON rows as
    FILE:#N). Re-importing the same rows gives the same events: event_id is
    derived from the row's content.

    What a row cannot say (attachments, forms, step budgets, the result's
    number, component codes unless every item named is one of the catalogue's)
    is listed in each event's unknown_facts, and the audit reports it as not
    assessable. A citizen's row carries the applicant's pseudonym, never the
    name; free text is scrubbed of ID, passport and phone numbers, e-mail
    addresses and the applicant's name (ChuHoSo) before it is sealed.

    Fields the export lacks come from options or the --mapping file (options
    win over the file's defaults; the file's per-dossier entries win over both).
    With --catalogue DIR (DIR/procedures.jsonl, as the simulator writes it),
    procedure_version is the version in force on the local date of reception
    (valid_from <= date <= valid_to); without it, or when none is in force,
    it stays null.

    Exit codes: 0 imported; 1 broker unreachable, delivery failed, or a file
    could not be written; 2 usage error (also: neither --out, --publish nor
    --check; DOSSIER_PSEUDONYM_KEY is the documented demo key or shorter than
    16 bytes); 3 invalid rows: nothing written or published (with --skip-invalid:
    every dossier was invalid).

    \b
    Examples:
      dossier produce import samples/qtxl_phuong.csv --procedure-code 1.001612 --out imported.jsonl
      dossier produce import samples/qtxl_so.json --mapping samples/qtxl_mapping.json --out imported.avro --publish
      dossier produce import samples/qtxl_loi.csv --procedure-code 2.000908 --check   # exit 3: bad rows
      dossier produce import samples/qtxl_phuong.csv --procedure-code 2.009859 \\
        --catalogue dossier-data/demo/simulation/ --out imported.jsonl
    """
    if not (out or to_kafka or check_only):
        raise click.UsageError("say where the events go: --out FILE (.jsonl or .avro), --publish, or --check")
    settings = click.get_current_context().find_object(Settings) or Settings()
    if settings.pseudonym_key is not None:
        try:  # real applicants come in here: the demo key, printed in the README, would hide none of them
            check_real_key(settings.pseudonym_key)
        except PseudonymKeyError as exc:
            raise KeyRefused(str(exc)) from None
    try:
        base = _options(
            procedure_code,
            rule_set,
            channel,
            applicant_kind,
            time_limit,
            time_limit_unit,
            deadline_convention,
            load_mapping(mapping),
        )
    except MappingError as exc:
        raise click.BadParameter(str(exc), param_hint="--mapping") from None
    try:
        procedures = read_procedures(catalogue) if catalogue is not None else None
    except ProcedureCatalogueError as exc:
        raise click.BadParameter(str(exc), param_hint="--catalogue") from None
    result = import_files(list(files), base, pseudonym_key=settings.pseudonym_key, procedures=procedures)
    for problem in result.problems:
        click.echo(str(problem), err=True)
    for duplicate in result.duplicates:
        warn(duplicate, quiet=quiet)
    for dossier_id in result.unversioned or ():
        warn(
            f"{dossier_id}: no version of its procedure in force at reception in the catalogue; "
            "procedure_version left null",
            quiet=quiet,
        )
    summary = result.summary()
    if result.problems and skip_invalid and not check_only:
        summary["rejected_file"] = str(_write_rejected(result, rejected_out or sidecar(files, ".rejected.csv"), quiet))
    if check_only or (result.problems and not skip_invalid) or not result.events:
        if result.problems:
            click.echo(
                f"nothing imported: {len(result.problems)} problem(s) in {result.dossiers_rejected} "
                f"of {result.dossiers_read} dossier(s)",
                err=True,
            )
        click.echo(render_summary(summary, fmt))
        if result.problems:
            sys.exit(EXIT_INVALID)
        return
    failed = _deliver(result, out, to_kafka, settings, summary, quiet)
    click.echo(render_summary(summary, fmt))
    if failed:
        sys.exit(EXIT_FAILED)


def _options(
    procedure_code: str | None,
    rule_set: str | None,
    channel: str | None,
    applicant_kind: str | None,
    time_limit: int | None,
    time_limit_unit: str,
    deadline_convention: str | None,
    mapping: ImportMapping,
) -> ImportMapping:
    """Command-line options over the mapping file's global defaults."""
    changes: dict[str, Any] = {}
    if procedure_code:
        changes["procedure_code"] = procedure_code
    if rule_set:
        changes["rule_set"] = rule_set
    if channel:
        changes["channel"] = Channel(channel.upper())
    if applicant_kind:
        changes["applicant_kind"] = ApplicantKind(applicant_kind.upper())
    if time_limit is not None:
        changes["time_limit_value"] = time_limit
        changes["time_limit_unit"] = TimeLimitUnit(time_limit_unit.upper())
    mapping = dataclasses.replace(mapping, defaults=dataclasses.replace(mapping.defaults, **changes))
    if deadline_convention:
        mapping = dataclasses.replace(mapping, deadline_convention=DeadlineConvention(deadline_convention.upper()))
    return mapping


def _write_rejected(result: ImportResult, path: Path, quiet: bool) -> Path:
    try:
        make_directory(path.parent)
        with atomic_output(path, newline="") as handle:
            extra = [c for c in APPLICANT_COLUMNS if any(c in row.values for row in result.rejected_rows)]
            writer = csv.writer(handle)
            writer.writerow([*COLUMNS, *extra])
            writer.writerows([row[c] for c in (*COLUMNS, *extra)] for row in result.rejected_rows)
    except OutputFileError as exc:
        raise click.ClickException(f"the rejected rows: {exc}") from None
    warn(f"{result.dossiers_rejected} dossier(s) rejected; their rows are in {path}: fix and import it", quiet=quiet)
    return path


def _deliver(
    result: ImportResult, out: Path | None, to_kafka: bool, settings: Settings, summary: dict[str, Any], quiet: bool
) -> bool:
    """Write and/or publish the accepted events; True when the delivery failed."""
    if out is not None:
        try:
            summary["written"] = write_event_file(result.events, out)
        except OutputFileError as exc:
            raise click.ClickException(str(exc)) from None
        summary["out"] = str(out)
    if not to_kafka:
        return False
    outbound = (outbound_event(e, s) for e, s in zip(result.events, result.sources, strict=True))
    try:
        with Progress(quiet=quiet) as progress:
            report = publish_with_settings(
                settings,
                outbound,
                progress=progress.phase("publishing", len(result.events)),
                stored_progress=stored_progress(progress),
            )
    except RuntimeSetupError as exc:
        raise click.ClickException(f"{exc}; nothing was published") from exc
    summary.update(topic=settings.topic, delivered=len(report.delivered), undelivered=len(report.failed))
    if not report.ok:
        click.echo(
            f"delivery failed: {len(report.delivered)} of {len(result.events)} event(s) delivered "
            f"({report.first_error}). Re-run the same import when the broker is back: event ids are "
            "derived from the rows, so events that did arrive are stored once.",
            err=True,
        )
    return not report.ok
