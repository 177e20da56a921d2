"""``dossier produce publish``: check event files as a whole, then publish them with verified delivery."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dossier_runtime.errors import RuntimeSetupError
from dossier_runtime.progress import Progress
from dossier_runtime.settings import Settings
from producers.filepublish import FilePublishResult, publish_checked, summary, write_rejected
from producers.publish import require_embedded_stack
from producers.reporting import SUMMARY_FORMATS, render_summary, sidecar, stored_progress, warn
from producers.validation import CheckedInput, check_paths

EXIT_FAILED = 1
EXIT_INVALID = 3
_SHOW_UNDELIVERED = 20


def _settings() -> Settings:
    return click.get_current_context().find_object(Settings) or Settings()


@click.command("publish")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Publish the valid dossiers and write every line of the rejected ones to --rejected-out.",
)
@click.option(
    "--continuation",
    is_flag=True,
    help="Accept dossiers that start after seq 1 (their beginning is already on the topic, e.g. an undelivered file).",
)
@click.option("--check", "check_only", is_flag=True, help="Only check the input; publish nothing.")
@click.option(
    "--rejected-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where --skip-invalid writes rejected dossiers [default: FILE.rejected.jsonl next to the first FILE].",
)
@click.option(
    "--undelivered-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where a failed run writes the undelivered events [default: FILE.undelivered.jsonl next to the first FILE].",
)
@click.option("--format", "fmt", type=click.Choice(SUMMARY_FORMATS), default="table", show_default=True)
@click.option("-q", "--quiet", is_flag=True, help="No progress or warnings on stderr (problems are still listed).")
def publish_cmd(
    files: tuple[Path, ...],
    skip_invalid: bool,
    continuation: bool,
    check_only: bool,
    rejected_out: Path | None,
    undelivered_out: Path | None,
    fmt: str,
    quiet: bool,
) -> None:
    """Publish dossier events from JSON Lines or Avro container FILES to Kafka.

    The whole input is checked first: every event against the contract, every
    dossier's events (across all FILES, in order) as a legal history: seq
    without gap or repeat, hash chain intact, each move allowed by the
    lifecycle. Any problem: nothing is published and every bad line is listed
    on stderr as FILE:LINE: reason (Avro records as FILE:#N).

    Events go to the configured topic (created with its partition count),
    keyed by dossier_id, with headers event_type and schema-fingerprint, and
    every send is confirmed. If the broker fails mid-run, the events without
    acknowledgement go to an undelivered file that this command accepts
    (with --continuation) to send just those.

    Exit codes: 0 published (with --skip-invalid: the valid dossiers were);
    1 broker unreachable, no embedded stack running (nothing would be
    stored: start `dossier consume run` first), delivery failed, or a file
    could not be written;
    2 usage error; 3 invalid input, nothing published.

    \b
    Examples:
      dossier produce publish sealed.jsonl
      dossier produce publish --skip-invalid --rejected-out fix-me.jsonl sealed.jsonl imported.avro
      dossier produce publish --continuation sealed.undelivered.jsonl   # needs the file a failed publish wrote
    """
    settings = _settings()
    if not check_only:
        try:
            require_embedded_stack(settings)  # before the whole input is read: refused early, nothing sent
        except RuntimeSetupError as exc:
            raise click.ClickException(f"{exc}; nothing was published") from exc
    progress = Progress(quiet=quiet)
    with progress:
        checked = check_paths(list(files), continuation=continuation, phase=progress.phase)
    for problem in checked.problems:
        click.echo(str(problem), err=True)
    rejected_file = None
    if checked.problems and not check_only and skip_invalid:
        rejected_file = rejected_out or sidecar(files, ".rejected.jsonl")
        try:
            written = write_rejected(checked, rejected_file)
        except OSError as exc:
            raise click.ClickException(f"cannot write the rejected dossiers to {rejected_file}: {exc}") from exc
        warn(
            f"{checked.rejected_dossiers} dossier(s) rejected; their {written} line(s) are in {rejected_file}: "
            "fix them and publish that file",
            quiet=quiet,
        )
    if check_only or (checked.problems and not skip_invalid) or not checked.accepted:
        _finish_without_sending(checked, files, settings, fmt, check_only, skip_invalid, rejected_file)
        return
    result = _publish(settings, checked, files, undelivered_out, progress)
    click.echo(
        render_summary(
            summary(
                checked,
                len(files),
                settings.topic,
                result.report,
                rejected_file=rejected_file,
                undelivered_file=result.undelivered_file,
                delivery_file=result.delivery_file,
            ),
            fmt,
        )
    )
    if not result.report.ok:
        sys.exit(EXIT_FAILED)


def _finish_without_sending(
    checked: CheckedInput,
    files: tuple[Path, ...],
    settings: Settings,
    fmt: str,
    check_only: bool,
    skip_invalid: bool,
    rejected_file: Path | None,
) -> None:
    if checked.problems:
        hint = "" if skip_invalid or check_only else "; fix them, or publish the valid dossiers with --skip-invalid"
        click.echo(
            f"nothing published: {len(checked.problems)} problem(s) in "
            f"{checked.rejected_dossiers} of {checked.dossiers} dossier(s){hint}",
            err=True,
        )
    click.echo(render_summary(summary(checked, len(files), settings.topic, None, rejected_file=rejected_file), fmt))
    if checked.problems:
        sys.exit(EXIT_INVALID)


def _publish(
    settings: Settings, checked: CheckedInput, files: tuple[Path, ...], undelivered_out: Path | None, progress: Progress
) -> FilePublishResult:
    undelivered_file = undelivered_out or sidecar(files, ".undelivered.jsonl")
    delivery_file = undelivered_file.with_name(undelivered_file.name.removesuffix(".jsonl") + ".report.jsonl")
    try:
        with progress:
            result = publish_checked(
                settings,
                checked,
                undelivered_out=undelivered_file,
                delivery_out=delivery_file,
                progress=progress.phase("publishing", len(checked.accepted)),
                stored_progress=stored_progress(progress),
            )
    except RuntimeSetupError as exc:
        raise click.ClickException(f"{exc}; nothing was published") from exc
    except OSError as exc:
        raise click.ClickException(f"cannot write the delivery files: {exc}") from exc
    report = result.report
    if not report.ok:
        for item in report.failed[:_SHOW_UNDELIVERED]:
            where = f"{item.event.source}: " if item.event.source else ""
            click.echo(f"{where}not delivered: {item.dossier_id} seq {item.seq} ({item.error})", err=True)
        if len(report.failed) > _SHOW_UNDELIVERED:
            click.echo(f"… and {len(report.failed) - _SHOW_UNDELIVERED} more (see {delivery_file})", err=True)
        click.echo(
            f"delivery failed: {len(report.delivered)} of {len(checked.accepted)} event(s) delivered, "
            f"{len(report.failed)} not. Undelivered events: {result.undelivered_file}; per-event report: "
            f"{delivery_file}. When the broker is back, send just those with:\n"
            f"  dossier produce publish --continuation {result.undelivered_file}",
            err=True,
        )
    return result
