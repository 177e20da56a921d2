"""National dossier statuses (TrangThaiHoSo) and the one table of legal transitions.

:data:`TRANSITIONS` is the project's reading of domain.md §a. It is the only
place the lifecycle is written down: the fold in :mod:`schemas.lifecycle`,
the simulator and the audit rules all ask it, so a change of reading is a
change of one table.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from types import MappingProxyType
from typing import Final

from schemas.errors import LifecycleError
from schemas.events import DossierEvent, EventType


class Status(IntEnum):
    """The national status codes 1-10 (status *after* an event)."""

    SUBMITTED = 1
    RECEIVED = 2
    REFUSED = 3
    PROCESSING = 4
    SUPPLEMENT_REQUESTED = 5
    FINANCIAL_OBLIGATION = 6
    WITHDRAWAL_REQUESTED = 7
    STOPPED = 8
    DONE = 9
    RETURNED = 10

    @property
    def vi(self) -> str:
        return _NAMES[self.value][0]

    @property
    def en(self) -> str:
        return _NAMES[self.value][1]

    @property
    def label(self) -> str:
        """``9 (Đã xử lý xong)``: the form messages and reports use."""
        return f"{self.value} ({self.vi})"


_NAMES: Final[Mapping[int, tuple[str, str]]] = {
    1: ("Mới đăng ký", "submitted, awaiting reception"),
    2: ("Được tiếp nhận", "received"),
    3: ("Không được tiếp nhận", "refused"),
    4: ("Đang xử lý", "in processing"),
    5: ("Yêu cầu bổ sung giấy tờ", "supplement requested"),
    6: ("Yêu cầu thực hiện nghĩa vụ tài chính", "financial obligation requested"),
    7: ("Công dân yêu cầu rút hồ sơ", "withdrawal requested"),
    8: ("Dừng xử lý", "processing stopped"),
    9: ("Đã xử lý xong", "processing finished"),
    10: ("Đã trả kết quả", "result returned"),
}

#: Statuses that end a dossier. 10 is terminal yet can be recalled (ResultRecalled).
TERMINAL: Final = frozenset({Status.REFUSED, Status.STOPPED, Status.RETURNED})

_E = EventType


def _to(*codes: int) -> frozenset[Status]:
    return frozenset(Status(code) for code in codes)


# Per status before the event (None: the dossier's first event), the event
# types allowed and the statuses each may lead to.
_BY_STATUS: Final[Mapping[Status | None, Mapping[EventType, frozenset[Status]]]] = {
    None: {
        _E.DOSSIER_SUBMITTED: _to(1),
        _E.DOSSIER_RECEIVED: _to(2),  # a direct dossier may start at the counter
    },
    Status.SUBMITTED: {
        _E.RECEPTION_GUIDANCE_ISSUED: _to(1),
        _E.DOSSIER_RECEIVED: _to(2),
        _E.RECEPTION_REFUSED: _to(3),
        _E.DOSSIER_DIGITIZED: _to(1),
        _E.FEE_PAID: _to(1),
    },
    Status.RECEIVED: {
        _E.DOSSIER_TRANSFERRED: _to(4),
        _E.RESULT_APPROVED: _to(2),
        _E.RESULT_ISSUED: _to(9),  # same-day procedures
        _E.SUPPLEMENT_REQUESTED: _to(5),
        _E.FINANCIAL_OBLIGATION_REQUESTED: _to(6),
        _E.WITHDRAWAL_REQUESTED: _to(7),
        _E.PROCESSING_STOPPED: _to(8),
        _E.DOSSIER_DIGITIZED: _to(2),
        _E.FEE_PAID: _to(2),
        _E.APOLOGY_ISSUED: _to(2),
    },
    Status.PROCESSING: {
        _E.STEP_HANDED_OVER: _to(4),
        _E.STEP_RETURNED: _to(4),
        _E.INTER_AGENCY_TRANSFERRED: _to(4),
        _E.RESULT_APPROVED: _to(4),
        _E.SUPPLEMENT_REQUESTED: _to(5),
        _E.FINANCIAL_OBLIGATION_REQUESTED: _to(6),
        _E.WITHDRAWAL_REQUESTED: _to(7),
        _E.PROCESSING_STOPPED: _to(8),
        _E.RESULT_ISSUED: _to(9),
        _E.DOSSIER_DIGITIZED: _to(4),
        _E.FEE_PAID: _to(4),
        _E.APOLOGY_ISSUED: _to(4),
    },
    Status.SUPPLEMENT_REQUESTED: {
        _E.SUPPLEMENT_RECEIVED: _to(4),
        _E.RECEPTION_REFUSED: _to(3),  # supplement deadline passed
        _E.WITHDRAWAL_REQUESTED: _to(7),
        _E.APOLOGY_ISSUED: _to(5),
        _E.DOSSIER_DIGITIZED: _to(5),
    },
    Status.FINANCIAL_OBLIGATION: {
        _E.FINANCIAL_OBLIGATION_FULFILLED: _to(4, 9),
        _E.FEE_PAID: _to(6),
        _E.APOLOGY_ISSUED: _to(6),
    },
    Status.WITHDRAWAL_REQUESTED: {
        _E.PROCESSING_STOPPED: _to(8),
        _E.WITHDRAWAL_DECLINED: _to(4),
    },
    Status.DONE: {
        _E.RESULT_RETURNED: _to(10),
        _E.RESULT_RECALLED: _to(4),
        _E.DOSSIER_DIGITIZED: _to(9),
        _E.FEE_PAID: _to(9),
        _E.CITIZEN_RATED: _to(9),
    },
    Status.RETURNED: {
        _E.RESULT_COLLECTED: _to(10),
        _E.RESULT_RECALLED: _to(4, 9),
        _E.DOSSIER_DIGITIZED: _to(10),
        _E.CITIZEN_RATED: _to(10),
    },
    Status.REFUSED: {_E.CITIZEN_RATED: _to(3)},
    Status.STOPPED: {_E.CITIZEN_RATED: _to(8)},
}

#: Allowed in every status; the first three never change it (a notice to the
#: applicant, e.g. "result ready", can come at any stage), AdminOverride is
#: listed as "to any status" and narrowed by :func:`check_transition`.
_EVERY_STATUS: Final = (_E.SYNCED_TO_NATIONAL, _E.FEEDBACK_FILED, _E.APPLICANT_NOTIFIED, _E.ADMIN_OVERRIDE)


def _flatten() -> dict[tuple[Status | None, EventType], frozenset[Status]]:
    table: dict[tuple[Status | None, EventType], frozenset[Status]] = {}
    for before, moves in _BY_STATUS.items():
        for event_type, after in moves.items():
            table[(before, event_type)] = after
    for status in Status:
        table[(status, _E.SYNCED_TO_NATIONAL)] = frozenset({status})
        table[(status, _E.FEEDBACK_FILED)] = frozenset({status})
        table[(status, _E.APPLICANT_NOTIFIED)] = frozenset({status})
        table[(status, _E.ADMIN_OVERRIDE)] = frozenset(Status)
    return table


#: (status before or None for the first event, event type) -> statuses allowed after.
#: A pair that is not a key is illegal; EventType.UNKNOWN is never a key.
TRANSITIONS: Final[Mapping[tuple[Status | None, EventType], frozenset[Status]]] = MappingProxyType(_flatten())


def allowed_after(before: Status | int | None, event_type: EventType) -> frozenset[Status]:
    """The statuses ``event_type`` may lead to from ``before`` (empty: illegal)."""
    if before is not None:
        if before not in _NAMES:
            return frozenset()
        before = Status(before)
    return TRANSITIONS.get((before, event_type), frozenset())


def status_label(code: Status | int | None) -> str:
    """``9 (Đã xử lý xong)``; ``none (first event)`` for None; the bare number when out of range."""
    if code is None:
        return "none (first event)"
    if code in _NAMES:
        return Status(code).label
    return str(code)


def check_transition(before: Status | None, event: DossierEvent) -> Status:
    """The status after ``event``, or :class:`LifecycleError` ``illegal-transition``.

    Beyond the table, AdminOverride may change the status only as an explicit
    status override (``override_field == "status"``, ``override_old`` the old
    code, ``override_new`` the new one): a correction of the due date that
    also moves the dossier is how a status gets laundered.
    """
    after = event.status
    problem: str | None = None
    if after in allowed_after(before, event.event_type):
        if event.event_type is not _E.ADMIN_OVERRIDE or before is None:
            return Status(after)
        problem = _override_problem(before, event)
        if problem is None:
            return Status(after)
    message = f"illegal transition from {status_label(before)} by {event.event_type.value} to {after}"
    if problem:
        message += f": {problem}"
    raise LifecycleError("illegal-transition", event.dossier_id, event.seq, message)


def _override_problem(before: Status, event: DossierEvent) -> str | None:
    if event.override_field != "status":
        if event.status == before:
            return None
        return f"an AdminOverride of {event.override_field!r} must leave the status unchanged"
    if event.override_old != str(before.value):
        return f"override_old {event.override_old!r} is not the status before ({before.value})"
    try:
        new = int(event.override_new or "")
    except ValueError:
        return f"override_new {event.override_new!r} is not a status code"
    if new != event.status:
        return f"override_new {event.override_new!r} does not match the event's status ({event.status})"
    return None
