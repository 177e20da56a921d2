"""``dossier inspect replay DOSSIER_ID``: the control sheet of one dossier, rebuilt from its events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from dossier_runtime.settings import Settings
from dossier_runtime.store import Store
from inspection.cliutil import format_option, pass_settings, provenance, reader
from inspection.controlsheet import build_control_sheet
from inspection.controlsheet_view import render_text, to_dict
from inspection.history import load_history
from schemas.rendering import render, table_view
from schemas.workingtime import HCMC_TZ


class _Instant(click.ParamType):  # type: ignore[type-arg]
    """ISO 8601; without an offset the time is Asia/Ho_Chi_Minh local time."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 time such as 2024-02-19T16:00+07:00", param, ctx)
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=HCMC_TZ)


def _known_end(store: Store, known_at: datetime) -> datetime:
    """The latest occurred_at among the events recorded by ``known_at`` (``known_at`` when none were)."""
    latest = store.query(
        "SELECT max(occurred_at), count() FROM events WHERE recorded_at <= {known:DateTime64(6, 'UTC')}",
        {"known": known_at.astimezone(UTC)},
    ).rows[0]
    if not latest[1]:
        return known_at
    end: datetime = latest[0] if latest[0].tzinfo else latest[0].replace(tzinfo=UTC)
    return min(end, known_at)


@click.command("replay")
@click.argument("dossier_id")
@click.option(
    "--as-of",
    type=_Instant(),
    help="Valid time: the dossier as it stood then (by occurred_at) [default: now; with --known-at alone, the "
    "latest event the store had recorded by then].",
)
@click.option("--known-at", type=_Instant(), help="Transaction time: as the system knew it then (by recorded_at).")
@format_option
@pass_settings
def replay_cmd(
    settings: Settings, dossier_id: str, as_of: datetime | None, known_at: datetime | None, fmt: str
) -> None:
    """Rebuild a dossier's control sheet (Phiếu kiểm soát) step by step from its events.

    Each step shows giver → receiver (person, role, unit), when it was handed over
    and ended, its budget, the working time spent (pauses excluded) and whether it
    was early, on time or late; then pauses, apologies, the verdict against the
    original due date, and the seq and hash-chain check. Times without an offset
    are Asia/Ho_Chi_Minh.

    \b
    Examples:
      dossier inspect replay 000.00.06.H29-230209-0001
      dossier inspect replay 000.00.06.H29-230209-0001 --as-of 2023-02-20T12:00 --format json
    """
    with reader(settings) as store:
        events = load_history(store, dossier_id)
        if not events:
            raise click.ClickException(f"no events of dossier {dossier_id!r} in the store ({store.location})")
        computed_on = provenance(store, dossiers=False)
        if known_at is not None and as_of is None:  # the system's view then is judged at its own end, not today
            as_of = _known_end(store, known_at)
    sheet = build_control_sheet(events, as_of=as_of, known_at=known_at, now=datetime.now(UTC))
    if fmt == "table":
        click.echo(render_text(sheet, table_view(fmt).width))
    elif fmt == "json":
        click.echo(json.dumps({"computed_on": computed_on, **to_dict(sheet)}, ensure_ascii=False, indent=2))
    else:
        click.echo(render(to_dict(sheet)["steps"], fmt))
