"""Hand-written histories at every rule's boundaries, judged by the rules' SQL in a real store.

Each case is one dossier: exactly at a limit (no finding) and one microsecond
past it (a finding with the rulebook's evidence). The histories are minimal, so
other rules may fire on them too; each case asserts only its own rule.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from schemas.events import Channel, DossierEvent, EventType
from tests.eventfactory import VN, history, make_event
from tests.test_audit_store import AuditStore, Findings

#: "Hồ sơ không đủ điều kiện" as some exports write it: letters + combining accents (NFD).
NFD_REASON = unicodedata.normalize("NFD", "Hồ sơ không đủ điều kiện")

E = EventType
US = timedelta(microseconds=1)
HOUR = timedelta(hours=1)


def at(text: str) -> datetime:
    """A local (Asia/Ho_Chi_Minh) time: '2024-01-15 08:00'."""
    return datetime.fromisoformat(text).replace(tzinfo=VN)


def ev(kind: EventType, status: int, when: datetime, **fields: Any) -> tuple[EventType, int, dict[str, Any]]:
    return (kind, status, {"at": when, **fields})


def received(when: datetime, due: datetime | None = None, **fields: Any) -> tuple[EventType, int, dict[str, Any]]:
    return ev(E.DOSSIER_RECEIVED, 2, when, due_at=due, form_code="01", **fields)


#: name -> (rule, steps, expected evidence or None)
CASES: dict[str, tuple[str, list[Any], tuple[int, ...] | None]] = {}
_LATE_DUE = at("2024-05-04 17:00")  # a make-up working Saturday


def case(name: str, rule: str, expected: tuple[int, ...] | None, *steps: Any) -> None:
    CASES[name] = (rule, list(steps), expected)


# R1: the due date falls on a make-up Saturday; 17:00 Sat -> 07:00 Mon is no working time.
_r = received(at("2024-04-25 10:00"), _LATE_DUE)
case("r1-ends-at-next-working-start", "R1", None, _r, ev(E.RESULT_ISSUED, 9, at("2024-05-06 07:00")))
case("r1-late-by-a-microsecond", "R1", (1, 2), _r, ev(E.RESULT_ISSUED, 9, at("2024-05-06 07:00") + US))
case(
    "r1-apology-exactly-1-wd-before",
    "R1",
    None,
    _r,
    ev(E.APOLOGY_ISSUED, 2, at("2024-05-03 17:00"), new_due_at=at("2024-05-07 17:00")),
    ev(E.RESULT_ISSUED, 9, at("2024-05-06 09:00")),
)
case(  # 07:00 of the due day is the working instant of 17:00 the day before
    "r1-apology-at-0700-of-the-due-day",
    "R1",
    None,
    _r,
    ev(E.APOLOGY_ISSUED, 2, at("2024-05-04 07:00"), new_due_at=at("2024-05-07 17:00")),
    ev(E.RESULT_ISSUED, 9, at("2024-05-06 09:00")),
)
case(
    "r1-apology-a-microsecond-too-late",
    "R1",
    (1, 3),
    _r,
    ev(E.APOLOGY_ISSUED, 2, at("2024-05-04 07:00") + US, new_due_at=at("2024-05-07 17:00")),
    ev(E.RESULT_ISSUED, 9, at("2024-05-06 09:00")),
)
case(
    "r1-a-pause-makes-it-on-time",
    "R1",
    None,
    received(at("2024-01-15 08:00"), at("2024-01-16 08:00")),
    ev(E.SUPPLEMENT_REQUESTED, 5, at("2024-01-15 09:00")),
    ev(E.SUPPLEMENT_RECEIVED, 4, at("2024-01-15 10:00")),
    ev(E.RESULT_ISSUED, 9, at("2024-01-16 09:00")),
)
# R1 over an illegal history: a status-keeping event (dossier_facts leaves them out) claiming an end
# status first is the rulebook's D (or T, or stop) all the same; `verify` reports the transition.
_d = at("2024-01-16 17:00")
case(
    "r1-late-end-is-an-illegal-sync",
    "R1",
    (1, 2),
    received(at("2024-01-15 08:00"), _d),
    ev(E.SYNCED_TO_NATIONAL, 9, at("2024-01-17 09:00"), ref_seq=1),
    ev(E.RESULT_ISSUED, 9, at("2024-01-16 09:00")),
)
case(
    "r1-late-return-is-an-illegal-collection",
    "R1",
    (1, 3),
    received(at("2024-01-15 08:00"), _d),
    ev(E.STEP_HANDED_OVER, 4, at("2024-01-15 09:00")),
    ev(E.RESULT_COLLECTED, 10, at("2024-01-17 09:00")),
    ev(E.RESULT_RETURNED, 10, at("2024-01-16 09:00")),
)
case(
    "r1-late-stop-is-an-illegal-notice",
    "R1",
    (1, 3),
    received(at("2024-01-15 08:00"), _d),
    ev(E.STEP_HANDED_OVER, 4, at("2024-01-15 09:00")),
    ev(E.APPLICANT_NOTIFIED, 8, at("2024-01-17 09:00")),
)
case(
    "r1-on-time-end-is-an-illegal-sync",
    "R1",
    None,
    received(at("2024-01-15 08:00"), _d),
    ev(E.SYNCED_TO_NATIONAL, 9, at("2024-01-16 09:00"), ref_seq=1),
    ev(E.RESULT_ISSUED, 9, at("2024-01-17 09:00")),
)
#: Illegal on purpose (`verify` names the transition): `dossier produce seal` refuses them, so they run in-process only.
ILLEGAL = frozenset(name for name in CASES if "-illegal-" in name)
# R2
_due = at("2024-01-22 17:00")
case(
    "r2-one-apology",
    "R2",
    None,
    received(at("2024-01-15 08:00"), _due),
    ev(E.APOLOGY_ISSUED, 2, at("2024-01-19 08:00")),
)
case(
    "r2-two-apologies",
    "R2",
    (2, 3),
    received(at("2024-01-15 08:00"), _due),
    ev(E.APOLOGY_ISSUED, 2, at("2024-01-19 08:00"), new_due_at=at("2024-01-25 17:00")),
    ev(E.APOLOGY_ISSUED, 2, at("2024-01-19 09:00"), new_due_at=at("2024-01-25 17:00")),
)
# R3: the apology's new date is met exactly, or missed by a microsecond.
_apology = ev(E.APOLOGY_ISSUED, 2, at("2024-01-19 08:00"), new_due_at=at("2024-01-24 10:00"))
case(
    "r3-new-date-met",
    "R3",
    None,
    received(at("2024-01-15 08:00"), _due),
    _apology,
    ev(E.RESULT_ISSUED, 9, at("2024-01-24 10:00")),
)
case(
    "r3-new-date-missed",
    "R3",
    (2, 3),
    received(at("2024-01-15 08:00"), _due),
    _apology,
    ev(E.RESULT_ISSUED, 9, at("2024-01-24 10:00") + US),
)
# R4
case(
    "r4-one-request",
    "R4",
    None,
    received(at("2024-01-15 08:00"), _due),
    ev(E.SUPPLEMENT_REQUESTED, 5, at("2024-01-16 08:00")),
)
case(
    "r4-two-requests",
    "R4",
    (2, 4),
    received(at("2024-01-15 08:00"), _due),
    ev(E.SUPPLEMENT_REQUESTED, 5, at("2024-01-16 08:00")),
    ev(E.SUPPLEMENT_RECEIVED, 4, at("2024-01-16 09:00")),
    ev(E.SUPPLEMENT_REQUESTED, 5, at("2024-01-16 10:00")),
)
# R5: received Thursday 10:00; 3 working days later is Tuesday 10:00 (over the weekend).
_thu = received(at("2024-01-18 10:00"), at("2024-01-30 10:00"))
case("r5-request-exactly-at-3-wd", "R5", None, _thu, ev(E.SUPPLEMENT_REQUESTED, 5, at("2024-01-23 10:00")))
case("r5-request-a-microsecond-late", "R5", (1, 2), _thu, ev(E.SUPPLEMENT_REQUESTED, 5, at("2024-01-23 10:00") + US))
# R5 over Tết 2024 (Thu 8 - Wed 14 Feb off): from Wed 7 Feb 10:00, 3 working days end Mon 19 Feb 10:00.
_tet = received(at("2024-02-07 10:00"), at("2024-02-19 10:00"))
case("r5-tet-request-exactly-at-3-wd", "R5", None, _tet, ev(E.SUPPLEMENT_REQUESTED, 5, at("2024-02-19 10:00")))
case(
    "r5-tet-request-a-microsecond-late", "R5", (1, 2), _tet, ev(E.SUPPLEMENT_REQUESTED, 5, at("2024-02-19 10:00") + US)
)
# R6: a request with exactly 480 working minutes left is allowed; less is not.
case(
    "r6-one-full-day-left",
    "R6",
    None,
    received(at("2024-01-15 08:00"), _due),
    ev(E.SUPPLEMENT_REQUESTED, 5, at("2024-01-19 17:00")),
)
case(
    "r6-less-than-a-day-left",
    "R6",
    (2,),
    received(at("2024-01-15 08:00"), _due),
    ev(E.SUPPLEMENT_REQUESTED, 5, at("2024-01-22 07:00") + US),
)
case(
    "r6-after-the-due-date",
    "R6",
    (2,),
    received(at("2024-01-15 08:00"), _due),
    ev(E.SUPPLEMENT_REQUESTED, 5, at("2024-01-23 08:00")),
)
# R6 across Tết 2024: due Thu 15 Feb 10:00, so Wed 7 Feb 10:00 leaves exactly one working day.
_tet_due = received(at("2024-02-05 10:00"), at("2024-02-15 10:00"))
case("r6-tet-one-full-day-left", "R6", None, _tet_due, ev(E.SUPPLEMENT_REQUESTED, 5, at("2024-02-07 10:00")))
case("r6-tet-less-than-a-day-left", "R6", (2,), _tet_due, ev(E.SUPPLEMENT_REQUESTED, 5, at("2024-02-07 10:00") + US))
# R7, R8
case(
    "r7-listed-document",
    "R7",
    None,
    received(at("2024-01-15 08:00"), _due),
    ev(E.SUPPLEMENT_REQUESTED, 5, at("2024-01-16 08:00"), requested_documents=("Giấy xác nhận cư trú",)),
)
case(
    "r7-document-outside-the-list",
    "R7",
    (2,),
    received(at("2024-01-15 08:00"), _due),
    ev(E.SUPPLEMENT_REQUESTED, 5, at("2024-01-16 08:00"), requested_documents=("Sổ hộ khẩu",)),
)
case(
    "r8-digitised-then-requested",
    "R8",
    (2, 3),
    received(at("2024-01-15 08:00"), _due),
    ev(E.DOSSIER_DIGITIZED, 2, at("2024-01-15 08:05"), documents=("Giấy xác nhận cư trú",)),
    ev(E.SUPPLEMENT_REQUESTED, 5, at("2024-01-16 08:00")),
)
case(
    "r8-requested-then-digitised",
    "R8",
    None,
    received(at("2024-01-15 08:00"), _due),
    ev(E.SUPPLEMENT_REQUESTED, 5, at("2024-01-16 08:00")),
    ev(E.DOSSIER_DIGITIZED, 5, at("2024-01-16 08:05"), documents=("Giấy xác nhận cư trú",)),
)
# R9: the 15:00 cut-off, and a Friday afternoon whose next working day is a make-up Saturday.
case(
    "r9-received-at-15-transferred-at-17",
    "R9",
    None,
    received(at("2024-01-15 15:00"), _due),
    ev(E.DOSSIER_TRANSFERRED, 4, at("2024-01-15 17:00")),
)
case(
    "r9-received-at-15-transferred-after-17",
    "R9",
    (1, 2),
    received(at("2024-01-15 15:00"), _due),
    ev(E.DOSSIER_TRANSFERRED, 4, at("2024-01-15 17:00") + US),
)
case(  # before 07:00 is before the cut-off too
    "r9-received-before-0700-transferred-at-17",
    "R9",
    None,
    received(at("2024-01-15 06:30"), _due),
    ev(E.DOSSIER_TRANSFERRED, 4, at("2024-01-15 17:00")),
)
case(
    "r9-after-cutoff-saturday-0800",
    "R9",
    None,
    received(at("2024-05-03 15:00") + US, _LATE_DUE),
    ev(E.DOSSIER_TRANSFERRED, 4, at("2024-05-04 08:00")),
)
case(
    "r9-after-cutoff-saturday-late",
    "R9",
    (1, 2),
    received(at("2024-05-03 15:00") + US, _LATE_DUE),
    ev(E.DOSSIER_TRANSFERRED, 4, at("2024-05-04 08:00") + US),
)
# R9 around 2/9/2026: Sat 22 Aug is worked (make-up for Mon 31 Aug); 31 Aug - 2 Sep are off.
_makeup_sat = received(at("2026-08-22 10:00"), at("2026-08-26 10:00"))
case("r9-makeup-saturday-same-day", "R9", None, _makeup_sat, ev(E.DOSSIER_TRANSFERRED, 4, at("2026-08-22 17:00")))
case(
    "r9-makeup-saturday-after-1700",
    "R9",
    (1, 2),
    _makeup_sat,
    ev(E.DOSSIER_TRANSFERRED, 4, at("2026-08-22 17:00") + US),
)
_before_2_9 = received(at("2026-08-28 16:30"), at("2026-09-07 16:30"))
case("r9-after-cutoff-over-2-9-at-0800", "R9", None, _before_2_9, ev(E.DOSSIER_TRANSFERRED, 4, at("2026-09-03 08:00")))
case(
    "r9-after-cutoff-over-2-9-late",
    "R9",
    (1, 2),
    _before_2_9,
    ev(E.DOSSIER_TRANSFERRED, 4, at("2026-09-03 08:00") + US),
)
# R10: 11:00 -> 14:00 is 60 working minutes (lunch does not count).
_step = ev(E.STEP_HANDED_OVER, 4, at("2024-01-15 11:00"), step_budget_minutes=60)
_transfer = ev(E.DOSSIER_TRANSFERRED, 4, at("2024-01-15 10:00"))
case(
    "r10-step-on-budget",
    "R10",
    None,
    received(at("2024-01-15 08:00"), _due),
    _transfer,
    _step,
    ev(E.RESULT_APPROVED, 4, at("2024-01-15 14:00")),
)
case(
    "r10-step-over-budget",
    "R10",
    (3, 4),
    received(at("2024-01-15 08:00"), _due),
    _transfer,
    _step,
    ev(E.RESULT_APPROVED, 4, at("2024-01-15 14:00") + US),
)
# R11
_r11 = received(at("2024-01-15 08:00"), at("2024-01-22 16:00"))
case(
    "r11-ready-at-due-returned-after",
    "R11",
    (2, 3),
    _r11,
    ev(E.RESULT_ISSUED, 9, at("2024-01-22 16:00")),
    ev(E.RESULT_RETURNED, 10, at("2024-01-22 16:30")),
)
case(
    "r11-returned-at-due",
    "R11",
    None,
    _r11,
    ev(E.RESULT_ISSUED, 9, at("2024-01-22 15:00")),
    ev(E.RESULT_RETURNED, 10, at("2024-01-22 16:00")),
)
case(
    "r11-notified-exactly-1-wd-later",
    "R11",
    None,
    _r11,
    ev(E.RESULT_ISSUED, 9, at("2024-01-17 10:00")),
    ev(E.APPLICANT_NOTIFIED, 9, at("2024-01-18 10:00")),
    ev(E.RESULT_RETURNED, 10, at("2024-01-19 10:00")),
)
case(
    "r11-notified-too-late",
    "R11",
    (2,),
    _r11,
    ev(E.RESULT_ISSUED, 9, at("2024-01-17 10:00")),
    ev(E.APPLICANT_NOTIFIED, 9, at("2024-01-18 10:00") + US),
    ev(E.RESULT_RETURNED, 10, at("2024-01-19 10:00")),
)
# R11 over the 2/9/2026 break: one working day after Fri 28 Aug 10:00 is Thu 3 Sep 10:00.
_r11_sep = received(at("2026-08-26 10:00"), at("2026-09-07 10:00"), time_limit_value=5)
case(
    "r11-notified-1-wd-later-over-2-9",
    "R11",
    None,
    _r11_sep,
    ev(E.RESULT_ISSUED, 9, at("2026-08-28 10:00")),
    ev(E.APPLICANT_NOTIFIED, 9, at("2026-09-03 10:00")),
    ev(E.RESULT_RETURNED, 10, at("2026-09-04 10:00")),
)
case(
    "r11-notified-too-late-over-2-9",
    "R11",
    (2,),
    _r11_sep,
    ev(E.RESULT_ISSUED, 9, at("2026-08-28 10:00")),
    ev(E.APPLICANT_NOTIFIED, 9, at("2026-09-03 10:00") + US),
    ev(E.RESULT_RETURNED, 10, at("2026-09-04 10:00")),
)
# R12
case(
    "r12-recorded-an-hour-late", "R12", None, received(at("2024-01-15 08:00"), _due, recorded_at=at("2024-01-15 09:00"))
)
case(
    "r12-recorded-too-late",
    "R12",
    (1,),
    received(at("2024-01-15 08:00"), _due, recorded_at=at("2024-01-15 09:00") + US),
)
case(
    "r12-dated-before-its-predecessor",
    "R12",
    (1, 2),
    received(at("2024-01-15 08:00"), _due),
    ev(E.DOSSIER_TRANSFERRED, 4, at("2024-01-15 08:00") - US, recorded_at=at("2024-01-15 08:00")),
)
case(
    "r12-ends-exactly-at-due",
    "R12",
    (1, 2),
    received(at("2024-01-15 08:00"), at("2024-01-22 16:00")),
    ev(E.RESULT_ISSUED, 9, at("2024-01-22 16:00")),
)
case(
    "r12-ends-just-after-due",
    "R12",
    None,
    received(at("2024-01-15 08:00"), at("2024-01-22 16:00")),
    ev(E.RESULT_ISSUED, 9, at("2024-01-22 16:00") + US),
)
case(
    "r12-issued-at-1700",
    "R12",
    (2,),
    received(at("2024-01-15 08:00"), _due),
    ev(E.RESULT_ISSUED, 9, at("2024-01-15 17:00")),
)
case(
    "r12-issued-just-before-1700",
    "R12",
    None,
    received(at("2024-01-15 08:00"), _due),
    ev(E.RESULT_ISSUED, 9, at("2024-01-15 16:59:59.999999")),
)
# R13-R15
case(
    "r13-override", "R13", (2,), received(at("2024-01-15 08:00"), _due), ev(E.ADMIN_OVERRIDE, 2, at("2024-01-15 09:00"))
)
case(
    "r13-recall",
    "R13",
    (4,),
    received(at("2024-01-15 08:00"), _due),
    ev(E.RESULT_APPROVED, 2, at("2024-01-15 09:00")),
    ev(E.RESULT_ISSUED, 9, at("2024-01-15 10:00")),
    ev(E.RESULT_RECALLED, 4, at("2024-01-15 11:00")),
)
case(  # a new date by apology is no override
    "r13-apology-moves-the-date",
    "R13",
    None,
    received(at("2024-01-15 08:00"), _due),
    ev(E.APOLOGY_ISSUED, 2, at("2024-01-19 08:00"), new_due_at=at("2024-01-25 17:00")),
)
_bare = received(at("2024-01-15 08:00"), _due, n_attachments=0)
case("r14-phantom", "R14", (1, 2), _bare, ev(E.RESULT_ISSUED, 9, at("2024-01-15 08:15") - US, actor_id="tn-01"))
case("r14-fifteen-minutes", "R14", None, _bare, ev(E.RESULT_ISSUED, 9, at("2024-01-15 08:15"), actor_id="tn-01"))
# R14 across lunch: 11:25 -> 13:40 is 15 working minutes.
_noon = received(at("2024-01-15 11:25"), _due, n_attachments=0)
_after_lunch = at("2024-01-15 13:40")
case("r14-phantom-over-lunch", "R14", (1, 2), _noon, ev(E.RESULT_ISSUED, 9, _after_lunch - US, actor_id="tn-01"))
case("r14-fifteen-minutes-over-lunch", "R14", None, _noon, ev(E.RESULT_ISSUED, 9, _after_lunch, actor_id="tn-01"))
case(
    "r15-no-approval",
    "R15",
    (1, 2),
    received(at("2024-01-15 08:00"), _due),
    ev(E.RESULT_ISSUED, 9, at("2024-01-15 10:00")),
)
case(
    "r15-approved",
    "R15",
    None,
    received(at("2024-01-15 08:00"), _due),
    ev(E.RESULT_APPROVED, 2, at("2024-01-15 09:00")),
    ev(E.RESULT_ISSUED, 9, at("2024-01-15 10:00")),
)
# R16 (the catalogue lists 1.001612 as not same-day, 2.000001 as same-day)
case("r16-no-receipt", "R16", (1,), ev(E.DOSSIER_RECEIVED, 2, at("2024-01-15 08:00"), due_at=_due))
case(
    "r16-same-day-procedure",
    "R16",
    None,
    ev(E.DOSSIER_RECEIVED, 2, at("2024-01-15 08:00"), due_at=_due, procedure_code="2.000001"),
)
case("r16-unknown-procedure", "R16", None, ev(E.DOSSIER_RECEIVED, 2, at("2024-01-15 08:00"), procedure_code="9.999999"))
# R17
case(
    "r17-blank-reason",
    "R17",
    (2,),
    received(at("2024-01-15 08:00"), _due),
    ev(E.PROCESSING_STOPPED, 8, at("2024-01-15 09:00"), reason=" \t", n_attachments=1),
)
# a reason of what a web form's &nbsp;&nbsp; leaves, or of zero-width space + BOM, is no reason
case(
    "r17-nbsp-reason",
    "R17",
    (2,),
    received(at("2024-01-15 08:00"), _due),
    ev(E.PROCESSING_STOPPED, 8, at("2024-01-15 09:00"), reason="\u00a0\u00a0", n_attachments=1),
)
case(
    "r17-invisible-refusal-reason",
    "R17",
    (2,),
    ev(E.DOSSIER_SUBMITTED, 1, at("2024-01-15 08:00")),
    ev(E.RECEPTION_REFUSED, 3, at("2024-01-15 09:00"), reason="\u200b\ufeff", n_attachments=1),
)
case(
    "r17-nfd-vietnamese-reason",
    "R17",
    None,
    received(at("2024-01-15 08:00"), _due),
    ev(E.PROCESSING_STOPPED, 8, at("2024-01-15 09:00"), reason=NFD_REASON, n_attachments=1),
)
case(
    "r17-stop-with-reason",
    "R17",
    None,
    received(at("2024-01-15 08:00"), _due),
    ev(E.PROCESSING_STOPPED, 8, at("2024-01-15 09:00"), n_attachments=1),
)
case(
    "r17-stop-exactly-at-due",
    "R17",
    None,
    received(at("2024-01-15 08:00"), _due),
    ev(E.PROCESSING_STOPPED, 8, at("2024-01-22 17:00"), n_attachments=1),
)
case(
    "r17-stop-after-due",
    "R17",
    (2,),
    received(at("2024-01-15 08:00"), _due),
    ev(E.PROCESSING_STOPPED, 8, at("2024-01-22 17:00") + US, n_attachments=1),
)
case(
    "r17-stop-after-due-on-request",
    "R17",
    None,
    received(at("2024-01-15 08:00"), _due),
    ev(E.WITHDRAWAL_REQUESTED, 7, at("2024-01-22 10:00")),
    ev(E.PROCESSING_STOPPED, 8, at("2024-01-23 08:00"), n_attachments=1),
)
# R18: 8 working hours from Monday 09:00 is Tuesday 09:00.
_sub = ev(E.DOSSIER_SUBMITTED, 1, at("2024-01-15 09:00"))
case("r18-received-at-8-wh", "R18", None, _sub, received(at("2024-01-16 09:00"), _due))
case("r18-received-too-late", "R18", (1, 2), _sub, received(at("2024-01-16 09:00") + US, _due))
# R18 across Tết 2024: 8 working hours from Wed 7 Feb 16:00 end Thu 15 Feb 16:00.
_sub_tet = ev(E.DOSSIER_SUBMITTED, 1, at("2024-02-07 16:00"))
case("r18-tet-received-at-8-wh", "R18", None, _sub_tet, received(at("2024-02-15 16:00"), at("2024-02-20 16:00")))
case(
    "r18-tet-received-too-late", "R18", (1, 2), _sub_tet, received(at("2024-02-15 16:00") + US, at("2024-02-20 16:00"))
)
# R19: synchronised exactly 24 h later, or a microsecond more, or pointing at an earlier event.
_r19 = received(at("2024-01-15 08:00"), _due)
case("r19-synced-at-24h", "R19", None, _r19, ev(E.SYNCED_TO_NATIONAL, 2, at("2024-01-16 08:00"), ref_seq=1))
case("r19-synced-late", "R19", (1,), _r19, ev(E.SYNCED_TO_NATIONAL, 2, at("2024-01-16 08:00") + US, ref_seq=1))
case(
    "r19-never-synced-change",
    "R19",
    (3,),
    _r19,
    ev(E.SYNCED_TO_NATIONAL, 2, at("2024-01-15 09:00"), ref_seq=1),
    ev(E.DOSSIER_TRANSFERRED, 4, at("2024-01-15 10:00")),
)
# R20
case("r20-paper-never-digitised", "R20", (1,), received(at("2024-01-15 08:00"), _due, channel=Channel.DIRECT))
case(
    "r20-paper-digitised",
    "R20",
    None,
    received(at("2024-01-15 08:00"), _due, channel=Channel.DIRECT),
    ev(E.DOSSIER_DIGITIZED, 2, at("2024-01-15 08:05")),
)
case(
    "r20-paper-result",
    "R20",
    (2,),
    received(at("2024-01-15 08:00"), _due, procedure_code="1.000777"),
    ev(E.RESULT_ISSUED, 9, at("2024-01-15 10:00"), result_electronic=False, procedure_code="1.000777"),
)
case(
    "r20-paper-result-digitised",
    "R20",
    None,
    received(at("2024-01-15 08:00"), _due, procedure_code="1.000777"),
    ev(E.RESULT_ISSUED, 9, at("2024-01-15 10:00"), result_electronic=False, procedure_code="1.000777"),
    ev(E.DOSSIER_DIGITIZED, 9, at("2024-01-15 10:05"), result_electronic=True, procedure_code="1.000777"),
)
# R21
case(
    "r21-one-official-does-all",
    "R21",
    (1, 3, 4),
    received(at("2024-01-15 08:00"), _due),
    ev(E.DOSSIER_TRANSFERRED, 4, at("2024-01-15 08:30")),
    ev(E.STEP_HANDED_OVER, 4, at("2024-01-15 09:00"), actor_id="tn-01"),
    ev(E.RESULT_APPROVED, 4, at("2024-01-15 10:00"), actor_id="tn-01"),
)
case(
    "r21-separate-officials",
    "R21",
    None,
    received(at("2024-01-15 08:00"), _due),
    ev(E.DOSSIER_TRANSFERRED, 4, at("2024-01-15 08:30")),
    ev(E.STEP_HANDED_OVER, 4, at("2024-01-15 09:00")),
    ev(E.RESULT_APPROVED, 4, at("2024-01-15 10:00")),
)

IDS = {name: f"000.00.31.H29-240115-{n:04d}" for n, name in enumerate(CASES, start=1)}
#: The catalogue the cases are judged against: AuditStore.add_procedure's row with these fields changed.
PROCEDURES: tuple[dict[str, Any], ...] = (
    {},
    {"procedure_code": "2.000001", "same_day": True},
    {"procedure_code": "1.000777", "paper_result": True},
)


def _dossier(name: str) -> list[DossierEvent]:
    steps = []
    for kind, status, fields in CASES[name][1]:
        fields = dict(fields)
        when = fields.pop("at")
        fields.setdefault("recorded_at", when)
        steps.append(make_event(kind, seq=1, status=status, at=when, **fields))
    return history(*steps, dossier_id=IDS[name])


def _integrity_cases() -> list[DossierEvent]:
    base = [
        (E.DOSSIER_SUBMITTED, 1),
        (E.DOSSIER_RECEIVED, 2),
        (E.DOSSIER_TRANSFERRED, 4),
        (E.STEP_HANDED_OVER, 4),
    ]
    gap = history(*base, dossier_id="000.00.31.H29-240116-0001")
    del gap[2]
    late_start = history(*base, dossier_id="000.00.31.H29-240116-0002")[1:]
    tampered = history(*base, dossier_id="000.00.31.H29-240116-0003")
    tampered[1] = tampered[1].replace(actor_id="someone-else")
    repointed = history(*base, dossier_id="000.00.31.H29-240116-0004")
    repointed[3] = repointed[3].replace(prev_hash=repointed[1].hash)
    return gap + late_start + tampered + repointed


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuditStore]:
    s = AuditStore(tmp_path_factory.mktemp("boundaries"))
    s.add([e for name in CASES for e in _dossier(name)] + _integrity_cases())
    for fields in PROCEDURES:
        s.add_procedure(**fields)
    yield s
    s.close()


@pytest.fixture(scope="module")
def found(store: AuditStore) -> Findings:
    return store.findings()


@pytest.mark.parametrize("name", list(CASES))
def test_boundary(found: Findings, name: str) -> None:
    rule, _, expected = CASES[name]
    assert found.get((IDS[name], rule)) == expected


def test_every_rule_has_a_hand_written_case() -> None:
    from inspection.rules import CATALOGUE

    covered = {rule for rule, _, _ in CASES.values()} | {"INTEGRITY-SEQ", "INTEGRITY-HASH"}
    assert covered == set(CATALOGUE)


def test_integrity_rules_name_the_broken_events(found: Findings) -> None:
    assert found[("000.00.31.H29-240116-0001", "INTEGRITY-SEQ")] == (2, 4)
    assert found[("000.00.31.H29-240116-0002", "INTEGRITY-SEQ")] == (2,)
    assert found[("000.00.31.H29-240116-0003", "INTEGRITY-HASH")] == (2,)
    assert found[("000.00.31.H29-240116-0004", "INTEGRITY-HASH")] == (4,)
    assert ("000.00.31.H29-240116-0001", "INTEGRITY-HASH") not in found  # a gap is not judged as a broken link


def test_hcmc_profile_accepts_an_apology_on_the_due_date(store: AuditStore) -> None:
    late = IDS["r1-apology-a-microsecond-too-late"]
    assert (late, "R1") not in store.findings("R1", params={"apology_lead_wd": "0"})
    assert (late, "R1") in store.findings("R1")


def test_unreturned_result_is_judged_at_as_of(store: AuditStore) -> None:
    dossier = "000.00.31.H29-240117-0001"
    store.add(
        history(
            make_event(E.DOSSIER_RECEIVED, seq=1, status=2, at=at("2024-01-15 08:00"), due_at=_due),
            make_event(E.RESULT_ISSUED, seq=2, status=9, at=at("2024-01-15 10:00")),
            make_event(E.APPLICANT_NOTIFIED, seq=3, status=9, at=at("2024-01-15 11:00")),
            dossier_id=dossier,
        )
    )
    limit = at("2024-01-22 10:00")  # 5 working days after the result
    assert (dossier, "R11") not in store.findings("R11", as_of=limit)
    assert store.findings("R11", as_of=limit + US)[(dossier, "R11")] == (2,)


def test_the_holder_answers_for_an_overdue_step(store: AuditStore) -> None:
    from inspection.audit import audit, select_rules

    report = audit(store.query, select_rules(["R10"]))
    (finding,) = [f for f in report.findings if f.dossier_id == IDS["r10-step-over-budget"]]
    assert finding.actor_id == "ld-01" and finding.unit_code == "000.00.31.H29"
    assert "seq 3 to 4 took 60 min of 60 min" in finding.explanation
