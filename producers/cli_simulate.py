"""``dossier produce simulate``: a calibrated Ho Chi Minh City with ground truth."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any, cast

import click

from dossier_runtime.errors import RuntimeSetupError
from dossier_runtime.outfile import OutputFileError
from dossier_runtime.progress import Progress
from dossier_runtime.settings import Settings
from producers.simulator.kinds import ALL_RATE, DEFAULT_RATES, INJECTED
from producers.simulator.run import SimulationError, SimulationSettings, part_dossiers, simulate
from schemas.pseudonym import DEMO_KEY
from schemas.rulebook import default_params


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    out = {}
    for value in values:
        name, sep, raw = value.partition("=")
        if not sep or not name or not raw:
            raise click.BadParameter(f"{value!r} is not NAME=VALUE", param_hint=option)
        out[name.strip()] = raw.strip()
    return out


def _rates(violations: str, overrides: tuple[str, ...]) -> dict[str, float]:
    base = {"default": dict(DEFAULT_RATES), "none": {}, "all": dict.fromkeys(INJECTED, ALL_RATE)}[violations]
    if violations == "all":
        base.update(dict.fromkeys(("R1", "R2", "R3", "R4"), 0.0003))
    for name, raw in _pairs(overrides, "--rate").items():
        rule = name.upper()
        if rule not in INJECTED:
            raise click.BadParameter(f"{name!r} is not an injectable rule ({', '.join(INJECTED)})", param_hint="--rate")
        try:
            rate = float(raw)
        except ValueError:
            raise click.BadParameter(f"{raw!r} is not a number", param_hint="--rate") from None
        if not 0 <= rate <= 0.5:
            raise click.BadParameter(f"rate {rate} must be between 0 and 0.5", param_hint="--rate")
        base[rule] = rate
    return base


def _params(values: tuple[str, ...]) -> dict[str, Any]:
    params: dict[str, Any] = default_params()
    for name, raw in _pairs(values, "--param").items():
        if name not in params:
            raise click.BadParameter(f"unknown rule parameter {name!r} ({', '.join(params)})", param_hint="--param")
        default = params[name]
        try:
            params[name] = int(raw) if isinstance(default, int) else raw
        except ValueError:
            raise click.BadParameter(f"{name} takes an integer, got {raw!r}", param_hint="--param") from None
    return params


def _part(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[int, int]:
    """K/N as two integers; their range is the settings' to check (SimulationSettings.validate)."""
    k, sep, n = value.partition("/")
    if not (sep and k.isdigit() and n.isdigit()):
        raise click.BadParameter(f"expected K/N, e.g. 3/12; got {value!r}")
    return int(k), int(n)


@click.command("simulate")
@click.option("--dossiers", type=click.IntRange(min=1), default=20_000, show_default=True, help="Dossiers to generate.")
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), default="2023-01-03", show_default=True)
@click.option("--days", type=click.IntRange(min=1), default=365, show_default=True, help="Days of arrivals.")
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same bytes.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Output directory [default: sim/].")
@click.option("--jsonl", is_flag=True, help="Also write the events as JSON Lines (the contract's JSON form).")
@click.option("--publish", is_flag=True, help="Publish the events to Kafka (verified delivery) after writing them.")
@click.option("--on-time", type=float, default=None, help="Share of received dossiers on time [default: 0.9984].")
@click.option("--online-share", type=float, default=0.52, show_default=True, help="Share of dossiers online.")
@click.option("--violations", type=click.Choice(["default", "none", "all"]), default="default", show_default=True)
@click.option("--rate", "rates", multiple=True, metavar="RULE=R", help="Injection rate of one rule, e.g. R5=0.002.")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="A rule parameter of the ground truth.")
@click.option("--pseudonym-key", envvar="DOSSIER_PSEUDONYM_KEY", help="HMAC key of applicant pseudonyms.")
@click.option("--codec", type=click.Choice(["null", "deflate"]), default="null", show_default=True)
@click.option("--workers", type=click.IntRange(min=0), default=0, help="Worker processes [default: one per CPU].")
@click.option(
    "--part",
    callback=_part,
    default="1/1",
    metavar="K/N",
    help="Write only the K-th of N runs of consecutive shards: the same files, byte for byte, as the whole run "
    "writes for them (a year in parts on a small disk).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress or warnings on stderr.")
def simulate_cmd(**opts: Any) -> None:
    """Simulate Ho Chi Minh City's dossiers, calibrated to its 2023 report, with a ground-truth manifest.

    Writes events-NNNNN.avro (released schema), manifest.jsonl (one line per
    rule breach: dossier_id, rule, evidence_seqs), summary.json (achieved
    on-time rate, online share, counts) and the catalogues units.jsonl,
    officials.jsonl, procedures.jsonl. --violations none gives clean data:
    no rule breach at all, hence no late dossier (a late dossier always has
    a step over its budget).

    \b
    Examples:
      dossier produce simulate --dossiers 2000 --out sim/
      dossier produce simulate --dossiers 1000 --violations all --rate R5=0.01 --seed 7 --out sim7/
      dossier produce simulate --dossiers 30000 --part 2/3 --out sim-part2/   # a third of the run's files
      dossier produce simulate --dossiers 1000 --publish   # needs a store of its own: its dossier ids are the demo's
    """
    quiet = opts["quiet"]
    if opts["violations"] == "none" and opts["on_time"] not in (None, 1.0):
        raise click.BadParameter("with --violations none every dossier is on time", param_hint="--on-time")
    on_time = opts["on_time"] if opts["on_time"] is not None else (1.0 if opts["violations"] == "none" else 0.9984)
    key = (opts["pseudonym_key"] or "").encode()
    if not key:
        key = DEMO_KEY
        if not quiet:
            click.echo("warning: DOSSIER_PSEUDONYM_KEY is not set; using the documented demo key", err=True)
    out = opts["out"] or (Path(tempfile.mkdtemp(prefix="dossier-sim-")) if opts["publish"] else Path("sim"))
    settings = SimulationSettings(
        dossiers=opts["dossiers"],
        start=opts["start"].date() if hasattr(opts["start"], "date") else date.fromisoformat(opts["start"]),
        days=opts["days"],
        seed=opts["seed"],
        out=out,
        on_time=on_time,
        online_share=opts["online_share"],
        rates=_rates(opts["violations"], opts["rates"]),
        params=_params(opts["params"]),
        pseudonym_key=key,
        codec=opts["codec"],
        jsonl=opts["jsonl"],
        workers=opts["workers"],
        part=opts["part"],
    )
    try:
        settings.validate()
        dossiers = part_dossiers(settings)
    except SimulationError as exc:
        raise click.UsageError(str(exc)) from None
    if opts["publish"]:  # refused before simulating, not after: nothing would be stored
        from producers.publish import require_embedded_stack

        try:
            require_embedded_stack(click.get_current_context().find_object(Settings) or Settings())
        except RuntimeSetupError as exc:
            raise click.ClickException(f"nothing was simulated or published: {exc}") from exc
    try:
        with Progress(quiet=quiet) as progress:
            summary = simulate(settings, progress=progress.phase("simulating", dossiers, "dossiers"))
    except OutputFileError as exc:
        raise click.ClickException(f"nothing was simulated: {exc}") from None
    achieved = summary["achieved"]
    click.echo(json.dumps({"out": str(out), "events": summary["counts"]["events"], **achieved}, ensure_ascii=False))
    if opts["publish"]:
        _publish(out, summary["counts"]["events"], quiet)


def outbound_from_files(out: Path) -> Iterator[Any]:
    """The events of the simulation's Avro files as they are: each payload is the record's bytes in the file.

    Records are only decoded to find where each ends (and its key); nothing is re-encoded.
    """
    import io

    import fastavro

    from producers.publish import OutboundEvent
    from schemas.codec import MAGIC
    from schemas.registry import current_schema

    schema = current_schema()
    header = MAGIC + schema.fingerprint_bytes
    for path in sorted(out.glob("events-*.avro")):
        with path.open("rb") as fo:
            for block in fastavro.block_reader(fo):
                data = block.bytes_.getvalue()  # type: ignore[attr-defined]  # decompressed; not in the stubs
                buf = io.BytesIO(data)
                for _ in range(block.num_records):
                    start = buf.tell()
                    r = cast(dict[str, Any], fastavro.schemaless_reader(buf, schema.parsed, None))
                    payload = header + data[start : buf.tell()]
                    yield OutboundEvent(r["dossier_id"], str(r["event_id"]), r["seq"], r["event_type"], payload)


def _publish(out: Path, events: int, quiet: bool) -> None:
    from producers.publish import publish_with_settings
    from producers.reporting import stored_progress

    settings = click.get_current_context().find_object(Settings) or Settings()
    try:
        with Progress(quiet=quiet) as progress:
            report = publish_with_settings(
                settings,
                outbound_from_files(out),
                progress=progress.phase("publishing", events),
                keep_payloads=False,  # nothing is written back: the same seed gives the same events again
                stored_progress=stored_progress(progress),
            )
    except RuntimeSetupError as exc:
        raise click.ClickException(f"nothing was published: {exc}") from exc
    if not report.ok:
        raise click.ClickException(
            f"delivery failed: {len(report.delivered)} of {len(report.delivered) + len(report.failed)} events "
            f"were delivered to {report.topic}, {len(report.failed)} were not ({report.first_error}). "
            f"The simulation in {out} is complete. Re-run the same command: the same seed gives the same events, "
            "and events that did arrive are stored once downstream."
        )
    if not quiet:
        click.echo(f"published {len(report.delivered)} events to {report.topic}", err=True)
