"""The catalogue of audit rules, as data: the one definition every implementation follows.

The simulator's ground truth (``producers.simulator``) and the inspection SQL
both implement exactly these predicates, so a rule finds on simulated data
precisely what the simulator's ``manifest.jsonl`` lists. Each rule says what it
reads, the boundary of every comparison and which events are its evidence.

Conventions shared by every rule (the :data:`TERMS` below spell them out):

* a rule yields **at most one finding per dossier**; its evidence is the sorted
  set of distinct ``seq`` of every event any breaching instance names;
* events are taken in ``seq`` order; "earlier"/"later" means by ``seq``;
* instants are compared exactly (microseconds); working time is
  ``wt(a, b)`` in microseconds and a threshold of N minutes means
  ``N * 60_000_000`` microseconds;
* a rule that needs ``R`` (the reception) or ``due0`` says nothing about a
  dossier without them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal

Expressible = Literal["full", "partial", "none"]


@dataclasses.dataclass(frozen=True, slots=True)
class Param:
    """A rule parameter (``--param name=value``)."""

    name: str
    default: int | str
    unit: str
    doc: str
    maximum: int | None = None  # the largest whole number taken (a switch: 1), when less than the audit's limit


@dataclasses.dataclass(frozen=True, slots=True)
class Rule:
    """One audit rule: what it checks, how exactly, and what proves a finding."""

    id: str
    title: str
    legal_basis: str
    version: int
    params: tuple[Param, ...]
    expressible: Expressible
    not_expressed: str  # the parts events cannot express, and why ("" when none)
    predicate: str
    evidence: str
    injected: str  # how the simulator injects it ("" when it does not)
    needs_catalogue: bool = False  # joins procedures.jsonl (procedure_code, procedure_version)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(f"rule {self.id} has no parameter {name!r}")


#: The vocabulary the predicates use. Working-time helpers are those of schemas.workingtime.
TERMS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "wt(a, b)": "default_calendar().working_time_between(a, b): working time from a to b in microseconds "
        "(Vietnamese calendar with days off and make-up days, 07:00-11:30 and 13:30-17:00 Asia/Ho_Chi_Minh); "
        "negative when b < a. Equivalently pos(b) - pos(a), pos(t) = working time from a fixed origin to t "
        "(flat outside working hours: pos(17:30) = pos(17:00) = pos(07:00 next working day)).",
        "WD": "one working day of working time = 480 minutes = 28_800_000_000 microseconds.",
        "working instant": "a local (Asia/Ho_Chi_Minh) time on a working day with time of day in [07:00, 11:30) "
        "or [13:30, 17:00) (half-open: 17:00 itself is not one).",
        "R": "the first DossierReceived event; received_at = R.occurred_at; due0 = R.due_at (the original due "
        "date: apologies and overrides never change it).",
        "D": "the first event whose status is 9; done_at = D.occurred_at.",
        "T": "the first event whose status is 10; returned_at = T.occurred_at.",
        "E": "the end event (domain.md §b.8): D if present, else T if present, else the first event with "
        "seq > R.seq whose status is 3, 7 or 8; end_at = E.occurred_at. Without R there is no E.",
        "pause": "opened by a SupplementRequested whose status is 5, or by a FinancialObligationRequested with "
        "clock_stopped = true whose status is 6; closed by the first later event whose status differs from the "
        "opening one. Open pauses count nothing (this is schemas.lifecycle's paused_working_time).",
        "pause_wt": "the sum of wt(open.occurred_at, close.occurred_at) over the dossier's closed pauses.",
        "over(x)": "wt(x, end_at) - pause_wt: by how much working time, net of pauses, the dossier ended after x.",
        "late": "E exists and over(due0) > 0 (end_adj > due0 with end_adj = end_at minus the paused working time).",
        "status change": "an event whose status differs from that of the previous event (the first event is one).",
        "hand-over types": "DossierTransferred, StepHandedOver, StepReturned, InterAgencyTransferred.",
        "step": "opened by any event with a non-null step_budget_minutes (O), closed by the first later event (C) "
        "whose type is a step closer; a step without a closer is not judged.",
        "step closers": "DossierTransferred, StepHandedOver, StepReturned, InterAgencyTransferred, ResultApproved, "
        "ResultIssued, SupplementRequested, FinancialObligationRequested, WithdrawalRequested, ProcessingStopped, "
        "ReceptionRefused.",
        "document requests": "SupplementRequested and ReceptionGuidanceIssued events (their requested_documents).",
        "catalogue": "procedures.jsonl row with the dossier's procedure_code and procedure_version (those of R, "
        "else of the first event); without a procedure_version, the version in force at reception: valid_from <= "
        "the local (Asia/Ho_Chi_Minh) date of R.occurred_at (else of the first event's) <= valid_to, a missing "
        "valid_to meaning still in force (the latest valid_from when several are). No such row: the rule does not "
        "apply (the dossier is not assessable against the catalogue).",
        "as_of": "the instant a rule about something that has not happened yet is judged at; default the latest "
        "occurred_at in the data the rule runs over.",
    }
)

_APOLOGY_LEAD = Param(
    "apology_lead_wd",
    1,
    "working days",
    "an apology is timely when wt(apology.occurred_at, due0) >= this x WD; 1 = national rule "
    "(at least 1 working day before the due date), 0 = HCMC QĐ 5157 (no later than the due date)",
)

_RULES: Final[tuple[Rule, ...]] = (
    Rule(
        "R1",
        "Late without a timely apology",
        "NĐ 61/2018 Đ20.1đ; HCMC QĐ 5157/2016",
        1,
        (_APOLOGY_LEAD,),
        "full",
        "",
        "late AND NOT EXISTS ApologyIssued A with A.seq > R.seq AND wt(A.occurred_at, due0) >= apology_lead_wd x WD.",
        "[R.seq, E.seq]",
        "a late dossier without an apology, or with one issued after the lead time",
    ),
    Rule(
        "R2",
        "More than one re-appointment",
        "NĐ 61/2018 Đ20.1đ (the due date may be re-set at most once)",
        1,
        (Param("max_apologies", 1, "count", "apologies allowed per dossier"),),
        "full",
        "",
        "COUNT(ApologyIssued) > max_apologies OR COUNT(DISTINCT new_due_at of ApologyIssued) > 1.",
        "seqs of every ApologyIssued",
        "a late dossier with two apologies and two new dates",
    ),
    Rule(
        "R3",
        "Apology date missed",
        "NĐ 61/2018 Đ20.1đ",
        1,
        (),
        "full",
        "",
        "L = the last ApologyIssued; E exists AND over(L.new_due_at) > 0.",
        "[L.seq, E.seq]",
        "a late dossier that also ends after its apology's new date",
    ),
    Rule(
        "R4",
        "Repeated supplement requests",
        "NĐ 61/2018 Đ20.1c (one complete request); Index 766 2.1 counts such dossiers late",
        1,
        (Param("max_supplement_requests", 1, "count", "supplement requests allowed after reception"),),
        "full",
        "",
        "COUNT(SupplementRequested with seq > R.seq) > max_supplement_requests.",
        "seqs of every SupplementRequested with seq > R.seq",
        "two supplement rounds (the dossier is also made late, with a timely apology)",
    ),
    Rule(
        "R5",
        "Late supplement request",
        "NĐ 61/2018 Đ20.1c (within 3 working days of reception)",
        1,
        (Param("supplement_deadline_wd", 3, "working days", "latest request after reception"),),
        "full",
        "",
        "F = the first SupplementRequested with seq > R.seq; "
        "wt(received_at, F.occurred_at) > supplement_deadline_wd x WD (exactly at the limit is in time).",
        "[R.seq, F.seq]",
        "the first request 3.2-4 working days after reception",
    ),
    Rule(
        "R6",
        "Clock-stopping abuse near the due date",
        "inference from NĐ 61/2018 Đ20 [U]",
        1,
        (Param("last_day_minutes", 480, "working minutes", "a request with less working time left is abuse"),),
        "full",
        "",
        "any SupplementRequested S with seq > R.seq AND wt(S.occurred_at, due0) < last_day_minutes x 60e6 "
        "(covers requests after due0, where wt is negative).",
        "seqs of every such S",
        "a request in the last working day before due0",
    ),
    Rule(
        "R7",
        "Requested documents outside the published list",
        "NĐ 61/2018 Đ5 (no requests beyond the law)",
        1,
        (),
        "full",
        "",
        "any document request X with an item of X.requested_documents not in catalogue.component_codes.",
        "seqs of every such X",
        "a supplement request naming a document the procedure does not list",
        needs_catalogue=True,
    ),
    Rule(
        "R8",
        "Re-requested documents already held",
        "NĐ 107/2021, NĐ 45/2020",
        1,
        (),
        "partial",
        "Documents held in the personal data store or a national database (DuocLayTuKhoDMQG, DSKetNoiCSDL) are not "
        "carried by events; only documents digitised in the dossier itself (DossierDigitized.documents) are.",
        "any document request X with an item also in the documents of a DossierDigitized G with G.seq < X.seq.",
        "seqs of every such X and of every such G holding one of X's items",
        "a paper dossier's supplement request naming a document digitised at reception",
    ),
    Rule(
        "R9",
        "Slow transfer from the one-stop office",
        "NĐ 61/2018 Đ19 (same working day; after 15:00, the start of the next one)",
        1,
        (
            Param("transfer_cutoff", "15:00", "local time", "received at or before it: transfer the same day"),
            Param("transfer_grace_minutes", 60, "minutes", "allowed after 07:00 of the next working day"),
        ),
        "full",
        "",
        "X = the first DossierTransferred with seq > R.seq. limit = 17:00 of received_at's local date when that is "
        "a working day and its local time <= transfer_cutoff; otherwise 07:00 + transfer_grace_minutes (wall clock) "
        "of the first working day after that date. X.occurred_at > limit.",
        "[R.seq, X.seq]",
        "a transfer 1.5-3 working days after reception",
    ),
    Rule(
        "R10",
        "Step overdue",
        "TT 01/2018 control sheet (Mẫu 05): each step's result early / on time / late",
        1,
        (),
        "full",
        "",
        "any step (O, C) with wt(O.occurred_at, C.occurred_at) > O.step_budget_minutes x 60e6 "
        "(pauses are not subtracted: a pause always closes the step, and the hand-over after it opens a new one).",
        "[O.seq, C.seq] of every overdue step (one actor: O.to_actor, the holder)",
        "implied by every calibrated late dossier (a step overruns) and by some other injections",
    ),
    Rule(
        "R11",
        "Result ready but returned late, or applicant not notified",
        "NĐ 61/2018 Đ22",
        1,
        (
            Param("notify_max_wd", 1, "working days", "an ApplicantNotified or ResultReturned must follow D within"),
            Param("unreturned_max_wd", 5, "working days", "a result still unreturned after this at as_of"),
        ),
        "full",
        "",
        "(a) D and T exist AND done_at <= due0 < returned_at; "
        "(b) D exists, no T with T.occurred_at <= as_of, and wt(done_at, as_of) > unreturned_max_wd x WD; "
        "(c) D exists AND NOT EXISTS ApplicantNotified or ResultReturned N with N.seq > D.seq AND "
        "wt(done_at, N.occurred_at) <= notify_max_wd x WD.",
        "(a) [D.seq, T.seq]; (b) [D.seq]; (c) [D.seq]",
        "(a) a result ready on time returned after due0; (c) no notification and a return after 1 WD. "
        "(b) is never present in simulated data: every simulated result is returned",
    ),
    Rule(
        "R12",
        "Backdating and after-the-fact edits",
        "practice [P]: 'Đặt lại hồ sơ quá hạn' sets NgayKetThucXuLy := NgayHenTra",
        1,
        (Param("backdate_threshold_minutes", 60, "minutes", "allowed recorded_at - occurred_at"),),
        "partial",
        "History rows written already soft-deleted are not events; deleted rows cannot be seen.",
        "(a) any event with recorded_at - occurred_at > backdate_threshold_minutes (wall clock); "
        "(b) any event X whose occurred_at is earlier than that of the event P with the next lower seq; "
        "(c) E exists AND end_at = due0 exactly; "
        "(d) E exists AND E.actor_role NOT IN (SYSTEM, APPLICANT) AND end_at is not a working instant.",
        "(a) [X.seq]; (b) [P.seq, X.seq]; (c) [R.seq, E.seq]; (d) [E.seq]",
        "(a) an event recorded hours to days late; (b) an event dated before its predecessor; "
        "(d) a result issued in the evening",
    ),
    Rule(
        "R13",
        "Administrative overrides",
        "practice [P]: reset due date / reset overdue / recall",
        1,
        (),
        "full",
        "",
        "any AdminOverride or ResultRecalled event.",
        "seqs of every such event",
        "an AdminOverride of due_at moving it 2 working days later",
    ),
    Rule(
        "R14",
        "Phantom dossier (hồ sơ ảo)",
        "inspection practice [U]",
        1,
        (Param("phantom_max_minutes", 15, "working minutes", "reception to result faster than this"),),
        "partial",
        "Applicant = staff, many dossiers from one account, phone or IP: events carry only a keyed pseudonym of the "
        "applicant and no staff identity numbers, phones or IPs.",
        "R and D exist AND R.actor_id = D.actor_id AND R.n_attachments = 0 AND no event of a hand-over type with "
        "R.seq < seq < D.seq AND wt(received_at, done_at) < phantom_max_minutes x 60e6.",
        "[R.seq, D.seq]",
        "one reception officer receives a dossier without attachments and issues its result minutes later",
    ),
    Rule(
        "R15",
        "Handled outside the system",
        "NĐ 61/2018 Đ5",
        1,
        (),
        "partial",
        "A result document's own date or number, the paper receipt stamp and direct dealings are not carried.",
        "R and D exist, D.seq > R.seq, AND no ResultApproved with R.seq < seq < D.seq.",
        "[R.seq, D.seq]",
        "a result issued with no approval step (also every phantom dossier)",
    ),
    Rule(
        "R16",
        "Missing receipt or due date",
        "NĐ 61/2018 Đ18 (Mẫu 01; same-day procedures may skip it, Đ18.3)",
        1,
        (),
        "full",
        "",
        "R exists AND catalogue.same_day = false AND (R.form_code IS NULL OR R.due_at IS NULL).",
        "[R.seq]",
        "a reception without form_code",
        needs_catalogue=True,
    ),
    Rule(
        "R17",
        "Refusal or stop without reason, or a stop hiding lateness",
        "NĐ 61/2018 Đ18, Đ20.1d",
        1,
        (),
        "full",
        "",
        "(a) any ReceptionRefused or ProcessingStopped X with a blank reason (NULL, or only spaces and invisible "
        "characters such as NBSP or zero-width space: schemas.textnorm), or n_attachments = 0; (b) any "
        "ProcessingStopped X with X.occurred_at > due0 and no WithdrawalRequested by actor_role APPLICANT with "
        "seq < X.seq.",
        "seqs of every such X",
        "(a) a stop with an empty reason or a refusal without attachments",
    ),
    Rule(
        "R18",
        "Online dossier left unreceived",
        "local rules [U]",
        1,
        (Param("unreceived_max_wh", 8, "working hours", "longest wait in status 1"),),
        "full",
        "",
        "S = the first event, a DossierSubmitted with status 1; L = the first event whose status is not 1: "
        "wt(S.occurred_at, L.occurred_at) > unreceived_max_wh x 60 minutes; without L, the same with as_of.",
        "[S.seq, L.seq] ([S.seq] without L)",
        "an online dossier received 9-30 working hours after submission",
    ),
    Rule(
        "R19",
        "Not synchronised to the national portal in time",
        "QĐ 766/QĐ-TTg indicator 1.4",
        1,
        (Param("sync_max_hours", 24, "hours", "wall-clock delay allowed between a status change and its sync"),),
        "full",
        "",
        "any status change X (not itself a SyncedToNational) with no SyncedToNational Y such that Y.seq > X.seq, "
        "Y.ref_seq >= X.seq and Y.occurred_at - X.occurred_at <= sync_max_hours.",
        "seqs of every such X",
        "a dossier never synchronised, or whose last status change is not",
    ),
    Rule(
        "R20",
        "Digitisation gaps",
        "QĐ 766/QĐ-TTg indicators 4.1, 4.2; NĐ 107/2021",
        1,
        (),
        "full",
        "",
        "(a) R exists, R.channel IN (DIRECT, POSTAL) AND no DossierDigitized with seq > R.seq; "
        "(b) catalogue.paper_result = true, I = the first ResultIssued, I.result_electronic = false AND no "
        "DossierDigitized with seq > I.seq and result_electronic = true.",
        "(a) [R.seq]; (b) [I.seq]",
        "(a) a paper dossier never digitised; (b) a paper result never issued electronically",
        needs_catalogue=True,
    ),
    Rule(
        "R21",
        "Segregation of duties",
        "good practice [U]",
        1,
        (),
        "full",
        "",
        "a = R.actor_id; EXISTS P of type StepHandedOver, StepReturned, InterAgencyTransferred, SupplementRequested "
        "or FinancialObligationRequested with P.seq > R.seq and P.actor_id = a, AND EXISTS ResultApproved Q with "
        "Q.actor_id = a.",
        "[R.seq, the first such P.seq, the first such Q.seq]",
        "one official receives, processes and approves a dossier",
    ),
    Rule(
        "INTEGRITY-SEQ",
        "Sequence gap or repeat",
        "the contract: seq runs 1..n without gaps per dossier",
        1,
        (),
        "full",
        "",
        "over the dossier's distinct seqs in order s1 < s2 < ...: s1 > 1 (evidence [s1]); s(i+1) > s(i) + 1 "
        "(evidence [s(i), s(i+1)]); and any seq held by two events (evidence [seq]).",
        "as in the predicate, united",
        "an event removed from the middle of a history",
    ),
    Rule(
        "INTEGRITY-HASH",
        "Broken hash chain or tampered event",
        "the contract: schemas.hashchain",
        1,
        (
            Param(
                "full_recompute",
                0,
                "0 or 1",
                "1: recompute every hash; 0: not those of the parts a recorded `verify` run covers "
                "(inspection/ledger.py)",
                maximum=1,
            ),
        ),
        "full",
        "",
        "any event X with X.hash != compute_hash(X) (canonical_sql in ClickHouse), or whose prev_hash is not the "
        "hash of the event with seq X.seq - 1 (32 zero bytes for seq 1; not judged when that event is missing).",
        "seqs of every such X",
        "a field changed after sealing, or a prev_hash re-pointed",
    ),
)

RULES: Final[Mapping[str, Rule]] = MappingProxyType({r.id: r for r in _RULES})
RULE_IDS: Final = tuple(r.id for r in _RULES)


def get_rule(rule_id: str) -> Rule:
    try:
        return RULES[rule_id.upper()]
    except KeyError:
        raise KeyError(f"no rule {rule_id!r}; known rules: {', '.join(RULE_IDS)}") from None


def param_maximum(name: str) -> int | None:
    """The largest value parameter ``name`` takes, when it has its own limit."""
    return next((p.maximum for r in _RULES for p in r.params if p.name == name), None)


def default_params() -> dict[str, int | str]:
    """Every parameter of every rule with its default (parameter names are unique across rules)."""
    return {p.name: p.default for r in _RULES for p in r.params}


#: The Index 766 indicator 2.1 (on-time rate) over the same terms, for the scorecard.
ON_TIME_2_1: Final = (
    "Denominator: dossiers with R. A dossier is counted late when it has more than one SupplementRequested "
    "after R (domain.md §b.8), or when it is late (E exists and over(due0) > 0), or, without E, when its status "
    "is 5 and wt(due0, the last SupplementRequested.occurred_at) - pause_wt > 0, or otherwise (in progress) when "
    "wt(due0, as_of) - pause_wt > 0. Every other dossier counts as on time (early or on time)."
)


@dataclasses.dataclass(frozen=True, slots=True)
class Need:
    """A fact a rule reads on some events: when one of them has it unknown, the rule does not judge the dossier."""

    fact: str  # a field of schemas.events.UNKNOWABLE_FACTS
    events: tuple[str, ...]  # event types on which the rule reads it


_RECEIVED: Final = ("DossierReceived",)
_DOC_REQUESTS: Final = ("SupplementRequested", "ReceptionGuidanceIssued")
_HANDOVERS: Final = ("DossierTransferred", "StepHandedOver", "StepReturned", "InterAgencyTransferred")
_STOPS: Final = ("ReceptionRefused", "ProcessingStopped")

#: The facts each rule reads whose absence it could mistake for evidence. A dossier with one of them unknown
#: (``unknown_facts``) on such an event is not assessable by the rule: it yields no finding there, and the audit
#: counts it under "<fact> unknown". Rules not listed read no such fact. ``needs_catalogue`` rules are also not
#: assessable on a dossier whose procedure (or the version in force at reception) is not in the catalogue. A
#: procedure version the source did not say is not a need: the version in force at reception is the one that
#: applies (domain.md §0).
NEEDS: Final[Mapping[str, tuple[Need, ...]]] = MappingProxyType(
    {
        "R1": (Need("due_at", _RECEIVED),),
        "R3": (Need("due_at", _RECEIVED),),
        "R6": (Need("due_at", _RECEIVED),),
        "R7": (Need("requested_documents", _DOC_REQUESTS),),
        "R8": (Need("requested_documents", _DOC_REQUESTS), Need("documents", ("DossierDigitized",))),
        "R10": (Need("step_budget_minutes", (*_RECEIVED, *_HANDOVERS)),),  # every type that can open a step
        "R11": (Need("due_at", _RECEIVED),),
        "R12": (Need("due_at", _RECEIVED),),
        "R14": (Need("n_attachments", _RECEIVED),),
        "R16": (Need("form_code", _RECEIVED), Need("due_at", _RECEIVED)),
        "R17": (Need("reason", _STOPS), Need("n_attachments", _STOPS), Need("due_at", _RECEIVED)),
        "R20": (Need("result_electronic", ("ResultIssued", "DossierDigitized")),),
    }
)

#: Rules that read the catalogue in one part only: without it, that part is not judged and the rest is.
CATALOGUE_PARTS: Final[Mapping[str, str]] = MappingProxyType({"R20": "(b)"})


def needs(rule_id: str) -> tuple[Need, ...]:
    """The facts rule ``rule_id`` needs known (empty when it reads none that can be unknown)."""
    return NEEDS.get(get_rule(rule_id).id, ())


#: How a rule reads a boundary that domain.md §b–§c states differently, or leaves open, and which clock counts.
#: Every limit is compared exactly (microseconds); "in time" at the limit itself unless said otherwise. The
#: hand-written cases of tests/test_rules_boundaries.py sit on these boundaries (exactly at them, and one
#: microsecond past), and tests/test_rules_user_path.py runs them through seal, load and audit.
BOUNDARIES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "R1": "domain.md gives occurred_at <= wd_add(due0, -1) (national) or <= due0 (HCMC). Read in working time: "
        "timely when at least apology_lead_wd x 480 working minutes remain before due0, not by the end of the "
        "previous calendar day. 17:00 and 07:00 of the next working day are the same working instant, so with a "
        "17:00 due0 an apology at 17:00 of the working day before, or at 07:00 of the due day, is timely. National "
        "rule by default; the HCMC rule (QĐ 5157) is apology_lead_wd=0. Ending exactly at due0, or at the next "
        "working instant after a 17:00 due0, is on time.",
        "R3": "Ending exactly at the apology's new date is in time; pauses are subtracted as for R1.",
        "R5": "domain.md gives wd_add(received_at, 3). Counted as supplement_deadline_wd x 480 working minutes from "
        "the reception instant (deployed practice, §b.3: the same clock time 3 working days later), not from the "
        "next day as the Civil Code counts a limit in days (§b.3). A request exactly at the limit is in time.",
        "R6": "domain.md says 'a request in the last working day before due0'. Read as less than last_day_minutes "
        "working minutes left before due0 (a sliding window, not the calendar day of due0): exactly 480 left is "
        "allowed. Days off in between do not count.",
        "R9": "domain.md gives received_at < 15:00 ? end of that working day : start of next working day + 1h. A "
        "reception at exactly transfer_cutoff (and one before 07:00) is before the cut-off: the limit is 17:00 that "
        "day. After it, or on a day not worked, the limit is 07:00 + transfer_grace_minutes (wall clock) of the next "
        "working day: a make-up Saturday is one, the days of a break are skipped. A transfer exactly at the limit is "
        "in time.",
        "R10": "A step's time is working time: lunch (11:30-13:30), nights and days off do not count. Exactly the "
        "budget is on time.",
        "R11": "(a) a result ready exactly at due0 and returned after it is a finding; one returned exactly at due0 is "
        "not. (c) 'within 1 working day' = at most 480 working minutes after done_at (a holiday break does not "
        "count); exactly 480 is in time.",
        "R12": "(a) wall clock, exactly the threshold is allowed. (c) to the microsecond. (d) a working instant is "
        "half-open: 17:00 and 11:30 themselves, lunch, nights and days off are outside working hours (a result "
        "issued at 17:00:00 is a finding, one at 16:59:59.999999 is not); a make-up Saturday is a working day.",
        "R14": "Working minutes: lunch and nights do not count (11:25 to 13:40 is 15 minutes). Exactly "
        "phantom_max_minutes is not a phantom.",
        "R17": "(b) compares instants, not working time: a stop exactly at due0 is not after it, one a microsecond "
        "later is, even at 17:00:00.000001 after a 17:00 due0 (which R1 counts as the same working instant).",
        "R18": "Working hours: nights and days off (Tết) do not count; a submission outside working hours starts "
        "counting at the next working instant (domain.md §b.5 leaves this open). Exactly unreceived_max_wh is "
        "in time.",
        "R19": "Wall-clock hours, not working hours: nights, weekends and holidays count. Exactly sync_max_hours "
        "is in time.",
    }
)


def boundaries(rule_id: str) -> str:
    """How rule ``rule_id`` reads its boundaries ("" when it compares nothing domain.md leaves open)."""
    return BOUNDARIES.get(get_rule(rule_id).id, "")
