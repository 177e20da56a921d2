"""``dossier produce seal``: number and hash-chain a history written by hand, after checking it."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dossier_runtime.outfile import OutputFileError
from producers.inputs import write_event_file
from producers.reporting import SUMMARY_FORMATS, render_summary, warn
from producers.sealing import SealInputError, seal_file

EXIT_INVALID = 3


@click.command("seal")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where the sealed history goes: contract JSON Lines, or an Avro container for a name ending in .avro.",
)
@click.option(
    "--reseal",
    is_flag=True,
    help="Recompute hashes written in FILE instead of refusing a changed line (changed events get new event ids).",
)
@click.option("--format", "fmt", type=click.Choice(SUMMARY_FORMATS), default="table", show_default=True)
@click.option("-q", "--quiet", is_flag=True, help="No notes on stderr (problems are still listed).")
def seal_cmd(file: Path, out: Path, reseal: bool, fmt: str, quiet: bool) -> None:
    """Seal a hand-written JSON Lines history: seq, event ids and the hash chain filled in, the whole checked.

    Each line is a contract event in the JSON form that may leave out seq,
    prev_hash, hash, event_id and recorded_at. Per dossier, in file order:
    seq 1, 2, 3 … (a seq written on a line must be its place), recorded_at =
    occurred_at, event_id a UUIDv5 of dossier, seq and sealed content (the
    same file always seals to the same bytes), then the hash chain. Hashes
    already written are checked, not overwritten (--reseal recomputes them,
    and gives each event whose hash changes a new event_id).
    The sealed events are checked as `dossier produce publish --check` does
    (contract, chain, lifecycle); any problem is listed as FILE:LINE: reason
    and nothing is written.

    Exit codes: 0 sealed; 1 FILE or --out cannot be read or written;
    2 usage error (--out is FILE); 3 problems, nothing written.

    \b
    Examples:
      dossier produce seal samples/hand_history.jsonl --out sealed.jsonl
      dossier produce seal sealed.jsonl --out resealed.avro --reseal
    """
    if out.exists() and out.samefile(file):
        raise click.BadParameter("is the input FILE: write the sealed history to another file", param_hint="--out")
    try:
        result = seal_file(file, reseal=reseal)
    except SealInputError as exc:
        raise click.ClickException(str(exc)) from None
    for problem in result.problems:
        click.echo(str(problem), err=True)
    summary = {
        "file": str(file),
        "out": str(out) if result.ok else None,
        "dossiers": result.dossiers,
        "events": result.lines,
        "numbered": result.numbered,
        "hashes_intact": result.checked,
        "resealed": result.resealed,
        "problems": len(result.problems),
    }
    if not result.ok:
        click.echo(f"nothing sealed: {len(result.problems)} problem(s) in {file}", err=True)
        click.echo(render_summary(summary, fmt))
        sys.exit(EXIT_INVALID)
    try:
        write_event_file(result.events, out)
    except OutputFileError as exc:
        raise click.ClickException(str(exc)) from None
    if result.resealed:
        warn(
            f"{result.resealed} event(s) resealed with a new hash and a new event_id "
            "(a changed event, or one after it in its dossier)",
            quiet=quiet,
        )
    click.echo(render_summary(summary, fmt))
