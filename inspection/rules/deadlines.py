"""R1-R6: lateness, apologies and supplement requests (NĐ 61/2018 Đ20)."""

from __future__ import annotations

from inspection.rules.base import (
    D_INDEX,
    MINUTE_US,
    NOBODY,
    R_INDEX,
    T_INDEX,
    WD_US,
    Scope,
    end_facts,
    end_index,
    evidence,
    having,
    history,
    local_text,
    minutes_text,
    param,
    pause_wt,
    pos,
    positions,
    rule_sql,
    wd_text,
)

#: What "late" and "over(x)" read: the whole history (a pause closes at any change of status).
_LATE_COLUMNS = ("event_type", "status", "occurred_at", "due_at", "clock_stopped")


def _terms() -> str:
    """r, d, t, e, e_pos, pw (paused working time), due0 and its position."""
    return (
        f"{R_INDEX} AS r, {D_INDEX} AS d, {T_INDEX} AS t, {end_index()} AS e, {positions()} AS e_pos, "
        f"{pause_wt()} AS pw, if(r > 0, e_due_at[r], NULL) AS due0, {pos('due0')} AS due_pos"
    )


def late_candidates(scope: Scope) -> str:
    """Dossiers whose end lies after due0 in working time before pauses (a superset of the late ones).

    From ``dossier_facts`` (~1 row per dossier), with the dossiers whose end is a status-keeping event.
    """
    late = f"end_seq > 0 AND isNotNull(due0) AND end_at > due0 AND {pos('end_at')} > {pos('assumeNotNull(due0)')}"
    return f"dossier_id IN (SELECT dossier_id FROM ({end_facts(scope)}) WHERE kept_end OR ({late}))"  # noqa: S608


@rule_sql("R1")
def r1(scope: Scope) -> str:
    lead = f"{param('apology_lead_wd')} * {WD_US}"
    h = history(_LATE_COLUMNS, scope=scope, candidates=late_candidates(scope))
    return f"""
SELECT dossier_id, [e_seq[r], e_seq[e]] AS evidence_seqs,
       concat('ended ', {local_text("e_occurred_at[e]")}, ', ', {wd_text("over_due")},
              ' (net of pauses) after the due date ', {local_text("due0")}, '; ',
              if(n_apologies = 0, 'no apology', concat(toString(n_apologies), ' apology(ies), none')),
              ' at least ', toString({param("apology_lead_wd")}), ' WD before the due date') AS explanation,
       {NOBODY} AS actor_seqs, false AS holder
FROM (
    SELECT *, {_terms()}, e_pos[e] - due_pos - pw AS over_due,
           countEqual(e_event_type, 'ApologyIssued') AS n_apologies,
           arrayExists((ty, q, p) -> ty = 'ApologyIssued' AND q > e_seq[r] AND due_pos - p >= {lead},
                       e_event_type, e_seq, e_pos) AS timely
    FROM ({h})
)
WHERE e > 0 AND over_due > 0 AND NOT timely
"""  # noqa: S608


@rule_sql("R2")
def r2(scope: Scope) -> str:
    h = history(("new_due_at",), scope=scope, where="event_type = 'ApologyIssued'")
    dates = "length(arrayDistinct(arrayMap(x -> ifNull(toUnixTimestamp64Micro(x), -1), e_new_due_at)))"
    return f"""
SELECT dossier_id, {evidence("e_seq")} AS evidence_seqs,
       concat(toString(length(e_seq)), ' apologies with ', toString({dates}), ' distinct new due date(s); at most ',
              toString({param("max_apologies")}), ' apology and one new date allowed') AS explanation,
       e_seq AS actor_seqs, false AS holder
FROM ({h})
WHERE length(e_seq) > {param("max_apologies")} OR {dates} > 1
"""  # noqa: S608


@rule_sql("R3")
def r3(scope: Scope) -> str:
    h = history(
        (*_LATE_COLUMNS, "new_due_at"),
        scope=scope,
        candidates=having("event_type = 'ApologyIssued'", scope=scope),
    )
    return f"""
SELECT dossier_id, {evidence("[e_seq[l], e_seq[e]]")} AS evidence_seqs,
       concat('ended ', {local_text("e_occurred_at[e]")}, ', ', {wd_text("over_new")},
              ' (net of pauses) after the apology''s new date ', {local_text("e_new_due_at[l]")}) AS explanation,
       [e_seq[l]] AS actor_seqs, false AS holder
FROM (
    SELECT *, {_terms()}, arrayLastIndex(x -> x = 'ApologyIssued', e_event_type) AS l,
           e_pos[e] - {pos("e_new_due_at[l]")} - pw AS over_new
    FROM ({h})
)
WHERE l > 0 AND e > 0 AND over_new > 0
"""  # noqa: S608


def _supplements(columns: tuple[str, ...], scope: Scope, extra: str = "") -> str:
    return history(
        columns,
        scope=scope,
        where="event_type IN ('DossierReceived', 'SupplementRequested')",
        candidates=having("event_type = 'SupplementRequested'", scope=scope, extra=extra),
    )


_AFTER_R = "arrayFilter(i -> e_event_type[i] = 'SupplementRequested' AND e_seq[i] > e_seq[r], arrayEnumerate(e_seq))"


@rule_sql("R4")
def r4(scope: Scope) -> str:
    most = param("max_supplement_requests")
    h = _supplements(("event_type",), scope, extra=f"count() > {most}")
    return f"""
SELECT dossier_id, {evidence("arrayMap(i -> e_seq[i], s)")} AS evidence_seqs,
       concat(toString(length(s)), ' supplement requests after reception; at most ', toString({most}),
              ' allowed') AS explanation, arrayMap(i -> e_seq[i], s) AS actor_seqs, false AS holder
FROM (SELECT *, {R_INDEX} AS r, {_AFTER_R} AS s FROM ({h}))
WHERE r > 0 AND length(s) > {most}
"""  # noqa: S608


@rule_sql("R5")
def r5(scope: Scope) -> str:
    limit = param("supplement_deadline_wd")
    h = _supplements(("event_type", "occurred_at"), scope)
    return f"""
SELECT dossier_id, [e_seq[r], e_seq[f]] AS evidence_seqs,
       concat('first supplement request ', {wd_text("took")}, ' after reception ',
              {local_text("e_occurred_at[r]")}, '; limit ', toString({limit}), ' WD') AS explanation,
       [e_seq[f]] AS actor_seqs, false AS holder
FROM (
    SELECT *, {R_INDEX} AS r,
           arrayFirstIndex((ty, q) -> ty = 'SupplementRequested' AND q > e_seq[r], e_event_type, e_seq) AS f,
           {pos("e_occurred_at[f]")} - {pos("e_occurred_at[r]")} AS took
    FROM ({h})
)
WHERE r > 0 AND f > 0 AND took > {limit} * {WD_US}
"""  # noqa: S608


@rule_sql("R6")
def r6(scope: Scope) -> str:
    limit = f"{param('last_day_minutes')} * {MINUTE_US}"
    h = _supplements(("event_type", "occurred_at", "due_at"), scope)
    abusive = (
        f"arrayFilter(i -> e_event_type[i] = 'SupplementRequested' AND e_seq[i] > e_seq[r] "
        f"AND due_pos - {pos('e_occurred_at[i]')} < {limit}, arrayEnumerate(e_seq))"
    )
    return f"""
SELECT dossier_id, {evidence("arrayMap(i -> e_seq[i], s)")} AS evidence_seqs,
       concat(toString(length(s)), ' supplement request(s) near or after the due date ', {local_text("e_due_at[r]")},
              '; the first with ', {minutes_text("due_pos - " + pos("e_occurred_at[s[1]]"))},
              ' of working time left (at least ', toString({param("last_day_minutes")}), ' min required)')
       AS explanation, arrayMap(i -> e_seq[i], s) AS actor_seqs, false AS holder
FROM (
    SELECT *, {R_INDEX} AS r, {pos("e_due_at[r]")} AS due_pos, {abusive} AS s
    FROM ({h})
)
WHERE r > 0 AND isNotNull(e_due_at[r]) AND length(s) > 0
"""  # noqa: S608
