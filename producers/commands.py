"""The command vocabulary of the live publisher: what a one-stop system can say about a dossier.

Each command names exactly one event type; the lifecycle table decides
whether it is allowed now and which status follows. Commands are verbs in
the imperative (``hand-over``), events their past-tense record
(``StepHandedOver``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from schemas.events import ActorRole, ApplicantKind, Channel, EventType

_E = EventType


class Command(StrEnum):
    """What a one-stop system can tell the publisher; each names one event type."""

    SUBMIT = "submit"
    GUIDE = "guide"
    RECEIVE = "receive"
    REFUSE = "refuse"
    DIGITIZE = "digitize"
    PAY_FEE = "pay-fee"
    TRANSFER = "transfer"
    HAND_OVER = "hand-over"
    RETURN_STEP = "return-step"
    TRANSFER_INTER_AGENCY = "transfer-inter-agency"
    REQUEST_SUPPLEMENT = "request-supplement"
    RECEIVE_SUPPLEMENT = "receive-supplement"
    REQUEST_FINANCIAL_OBLIGATION = "request-financial-obligation"
    FULFIL_FINANCIAL_OBLIGATION = "fulfil-financial-obligation"
    APOLOGISE = "apologise"
    REQUEST_WITHDRAWAL = "request-withdrawal"
    DECLINE_WITHDRAWAL = "decline-withdrawal"
    STOP = "stop"
    APPROVE = "approve"
    ISSUE_RESULT = "issue-result"
    NOTIFY = "notify"
    RETURN_RESULT = "return-result"
    COLLECT_RESULT = "collect-result"
    RECALL_RESULT = "recall-result"
    OVERRIDE = "override"
    RATE = "rate"
    FILE_FEEDBACK = "file-feedback"
    SYNC = "sync"


COMMAND_EVENTS: Final[Mapping[Command, EventType]] = {
    Command.SUBMIT: _E.DOSSIER_SUBMITTED,
    Command.GUIDE: _E.RECEPTION_GUIDANCE_ISSUED,
    Command.RECEIVE: _E.DOSSIER_RECEIVED,
    Command.REFUSE: _E.RECEPTION_REFUSED,
    Command.DIGITIZE: _E.DOSSIER_DIGITIZED,
    Command.PAY_FEE: _E.FEE_PAID,
    Command.TRANSFER: _E.DOSSIER_TRANSFERRED,
    Command.HAND_OVER: _E.STEP_HANDED_OVER,
    Command.RETURN_STEP: _E.STEP_RETURNED,
    Command.TRANSFER_INTER_AGENCY: _E.INTER_AGENCY_TRANSFERRED,
    Command.REQUEST_SUPPLEMENT: _E.SUPPLEMENT_REQUESTED,
    Command.RECEIVE_SUPPLEMENT: _E.SUPPLEMENT_RECEIVED,
    Command.REQUEST_FINANCIAL_OBLIGATION: _E.FINANCIAL_OBLIGATION_REQUESTED,
    Command.FULFIL_FINANCIAL_OBLIGATION: _E.FINANCIAL_OBLIGATION_FULFILLED,
    Command.APOLOGISE: _E.APOLOGY_ISSUED,
    Command.REQUEST_WITHDRAWAL: _E.WITHDRAWAL_REQUESTED,
    Command.DECLINE_WITHDRAWAL: _E.WITHDRAWAL_DECLINED,
    Command.STOP: _E.PROCESSING_STOPPED,
    Command.APPROVE: _E.RESULT_APPROVED,
    Command.ISSUE_RESULT: _E.RESULT_ISSUED,
    Command.NOTIFY: _E.APPLICANT_NOTIFIED,
    Command.RETURN_RESULT: _E.RESULT_RETURNED,
    Command.COLLECT_RESULT: _E.RESULT_COLLECTED,
    Command.RECALL_RESULT: _E.RESULT_RECALLED,
    Command.OVERRIDE: _E.ADMIN_OVERRIDE,
    Command.RATE: _E.CITIZEN_RATED,
    Command.FILE_FEEDBACK: _E.FEEDBACK_FILED,
    Command.SYNC: _E.SYNCED_TO_NATIONAL,
}


@dataclasses.dataclass(frozen=True)
class DossierContext:
    """The envelope a dossier keeps for life, given with its first command."""

    procedure_code: str
    rule_set: str
    applicant_ref: str
    applicant_kind: ApplicantKind
    channel: Channel
    procedure_version: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class DossierCommand:
    """One domain command. ``fields`` holds type-specific payload and context fields.

    ``status`` is needed only where the lifecycle allows more than one status
    after the event (e.g. a fulfilled financial obligation: back to 4, or 9).
    ``context`` is required for a dossier's first command and ignored after.
    """

    dossier_id: str
    command: Command
    actor_id: str
    actor_role: ActorRole
    unit_code: str
    occurred_at: datetime | None = None
    status: int | None = None
    fields: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    context: DossierContext | None = None
