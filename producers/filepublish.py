"""Publishing checked event files, and the files a person needs when something goes wrong.

* The rejected-dossiers file (``--skip-invalid``) holds every line of every
  rejected dossier, as written (Avro records as their JSON form), in input
  order: fix it and publish it again.
* The undelivered file holds the events without an acknowledgement as
  contract JSON Lines: ``dossier produce publish --continuation FILE`` sends
  just those. Events are re-sent byte for byte, so one that did arrive after
  all is stored once downstream (the consumer keys on event_id and
  (dossier_id, seq)).
* The delivery report (JSON Lines, one line per event in input order) says
  for each event: delivered with partition and offset, failed with the
  error, or not sent.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dossier_runtime.settings import Settings
from producers.inputs import InputEvent
from producers.publish import DeliveryReport, outbound_event, publish_with_settings, write_undelivered
from producers.validation import CheckedInput


@dataclasses.dataclass(frozen=True)
class FilePublishResult:
    checked: CheckedInput
    report: DeliveryReport
    undelivered_file: Path | None = None
    delivery_file: Path | None = None


def write_rejected(checked: CheckedInput, path: Path) -> int:
    """Write the rejected dossiers' lines for a person to fix; return the number of lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for item in checked.rejected:
            raw = item.raw
            if raw is None:
                continue  # a whole unreadable file, or a line too long to copy
            out.write(raw + "\n")
            count += 1
    return count


def publish_checked(
    settings: Settings,
    checked: CheckedInput,
    *,
    undelivered_out: Path,
    delivery_out: Path,
    progress: Callable[[int], None] | None = None,
    producer_config: Mapping[str, Any] | None = None,
    stored_progress: Callable[[int, int], None] | None = None,
) -> FilePublishResult:
    """Publish the accepted events of ``checked``; on failure write the undelivered file and the delivery report."""
    events = (outbound_event(item.event, item.source) for item in checked.accepted)
    report = publish_with_settings(
        settings, events, progress=progress, producer_config=producer_config, stored_progress=stored_progress
    )
    if report.ok:
        return FilePublishResult(checked, report)
    write_undelivered(report, undelivered_out)
    write_delivery_report(checked.accepted, report, delivery_out)
    return FilePublishResult(checked, report, undelivered_out, delivery_out)


def write_delivery_report(accepted: tuple[InputEvent, ...], report: DeliveryReport, path: Path) -> None:
    delivered = {d.event_id: d for d in report.delivered}
    failed = {u.event_id: u for u in report.failed}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for item in accepted:
            event = item.event
            line: dict[str, Any] = {
                "source": item.source,
                "dossier_id": event.dossier_id,
                "seq": event.seq,
                "event_id": event.event_id,
            }
            if event.event_id in delivered:
                d = delivered[event.event_id]
                line.update(status="delivered", topic=d.topic, partition=d.partition, offset=d.offset)
            else:
                u = failed.get(event.event_id)
                line.update(status="failed" if u is not None and u.sent else "not-sent", error=u.error if u else None)
            out.write(json.dumps(line, ensure_ascii=False) + "\n")


def summary(
    checked: CheckedInput,
    files: int,
    topic: str,
    report: DeliveryReport | None,
    *,
    rejected_file: Path | None = None,
    undelivered_file: Path | None = None,
    delivery_file: Path | None = None,
) -> dict[str, Any]:
    """The one record ``publish`` prints (counts, and the files it wrote)."""
    return {
        "files": files,
        "dossiers": checked.dossiers,
        "events": checked.items_read,
        "valid_dossiers": checked.accepted_dossiers,
        "rejected_dossiers": checked.rejected_dossiers,
        "rejected_events": len(checked.rejected),
        "problems": len(checked.problems),
        "continuations": checked.continuations,
        "topic": topic,
        "delivered": len(report.delivered) if report else 0,
        "undelivered": len(report.failed) if report else 0,
        "why_undelivered": report.first_error if report else None,
        "rejected_file": str(rejected_file) if rejected_file else None,
        "undelivered_file": str(undelivered_file) if undelivered_file else None,
        "delivery_report": str(delivery_file) if delivery_file else None,
    }
