"""R9, R10, R11, R14, R15, R18, R21: how a dossier moved through the offices."""

from __future__ import annotations

from inspection.rules.base import (
    AS_OF,
    CLOSERS,
    D_INDEX,
    HANDOVERS,
    MINUTE_US,
    NO_TIME,
    NOBODY,
    R_INDEX,
    WD_US,
    Scope,
    after,
    at_local,
    day_flag,
    evidence,
    having,
    history,
    local_day,
    local_text,
    local_tod,
    minutes_text,
    next_working_day,
    param,
    periods_us,
    pos,
    rule_sql,
    sql_list,
    wd_text,
)

_PROCESSING = sql_list(
    ("StepHandedOver", "StepReturned", "InterAgencyTransferred", "SupplementRequested", "FinancialObligationRequested")
)


@rule_sql("R9")
def r9(scope: Scope) -> str:
    facts = f"""
SELECT dossier_id, minIf(seq, event_type = 'DossierReceived') AS r_seq,
       argMinIf(occurred_at, seq, event_type = 'DossierReceived') AS received,
       countIf(event_type = 'DossierReceived') > 0 AS has_r,
       arraySort(x -> tupleElement(x, 1),
                 groupArrayIf(tuple(seq, occurred_at), event_type = 'DossierTransferred')) AS transfers
FROM events
WHERE ({scope.dossiers}) AND event_type IN ('DossierReceived', 'DossierTransferred')
GROUP BY dossier_id
"""  # noqa: S608
    first_start, last_end = periods_us()[0][0], periods_us()[-1][1]
    same_day = f"{day_flag('rday')} = 1 AND {local_tod('received')} <= {param('transfer_cutoff')} * {MINUTE_US}"
    grace = f"{first_start} + {param('transfer_grace_minutes')} * {MINUTE_US}"
    limit = f"if({same_day}, {at_local('rday', str(last_end))}, {at_local(next_working_day('rday'), grace)})"
    return f"""
SELECT dossier_id, [r_seq, tupleElement(x, 1)] AS evidence_seqs,
       concat('received ', {local_text("received")}, ', transferred ', {local_text("tupleElement(x, 2)")},
              '; limit ', {local_text("lim")}) AS explanation, [r_seq] AS actor_seqs, false AS holder
FROM (
    SELECT *, arrayFirst(t -> tupleElement(t, 1) > r_seq, transfers) AS x, {local_day("received")} AS rday,
           {limit} AS lim
    FROM ({facts})
    WHERE has_r AND arrayExists(t -> tupleElement(t, 1) > r_seq, transfers)
)
WHERE tupleElement(x, 2) > lim
"""  # noqa: S608


@rule_sql("R10")
def r10(scope: Scope) -> str:
    closers = sql_list(CLOSERS)
    # Numbers only: seq, closer flag, time (µs), budget (-1: opens no step).
    h = history(
        (f"event_type IN ({closers})", "toUnixTimestamp64Micro(occurred_at)", "ifNull(step_budget_minutes, -1)"),
        names=("closer", "us", "budget"),
        scope=scope,
        where=f"step_budget_minutes IS NOT NULL OR event_type IN ({closers})",
    )
    # c[i]: index of the first closer after i (reverse fill of the closers' own indexes, shifted by one).
    nxt = (
        "arrayPushBack(arrayPopFront(arrayReverseFill(x -> x > 0, "
        "arrayMap((cl, j) -> if(cl, j, 0), e_closer, arrayEnumerate(e_seq)))), 0)"
    )
    wt = (
        f"{pos('fromUnixTimestamp64Micro(e_us[c[i]], ' + chr(39) + 'UTC' + chr(39) + ')')} - "
        f"{pos('fromUnixTimestamp64Micro(e_us[i], ' + chr(39) + 'UTC' + chr(39) + ')')}"
    )
    # Working time never exceeds wall-clock time: the calendar is consulted only past the budget.
    over = f"e_budget[i] >= 0 AND c[i] > 0 AND e_us[c[i]] - e_us[i] > e_budget[i] * {MINUTE_US}"
    return f"""
SELECT dossier_id,
       {evidence("arrayConcat(arrayMap(i -> e_seq[i], o), arrayMap(i -> e_seq[c[i]], o))")} AS evidence_seqs,
       concat(toString(length(o)), ' step(s) over budget; first: seq ', toString(e_seq[o[1]]), ' to ',
              toString(e_seq[c[o[1]]]), ' took ', {minutes_text("took[1]")}, ' of ',
              toString(e_budget[o[1]]), ' min') AS explanation,
       arrayMap(i -> e_seq[i], o) AS actor_seqs, true AS holder
FROM (
    SELECT dossier_id, e_seq, e_budget, {nxt} AS c,
           arrayFilter(i -> {over} AND {wt} > e_budget[i] * {MINUTE_US}, arrayEnumerate(e_seq)) AS o,
           arrayMap(i -> {wt}, o) AS took
    FROM ({h})
    WHERE arrayExists((b, u, nu) -> b >= 0 AND nu != {NO_TIME} AND nu - u > b * {MINUTE_US}, e_budget, e_us,
                      {after("e_us", "e_closer", NO_TIME)})
)
WHERE length(o) > 0
"""  # noqa: S608


@rule_sql("R11")
def r11(scope: Scope) -> str:
    notify = param("notify_max_wd")
    facts = f"""
SELECT dossier_id,
       countIf(event_type = 'DossierReceived') > 0 AS has_r,
       argMinIf(ifNull(toUnixTimestamp64Micro(due_at), -1), seq, event_type = 'DossierReceived') AS due_us,
       if(NOT has_r OR due_us < 0, NULL, fromUnixTimestamp64Micro(due_us, 'UTC')) AS due0,
       minIf(seq, status = 9) AS d_seq, argMinIf(occurred_at, seq, status = 9) AS done,
       countIf(status = 9) > 0 AS has_d,
       minIf(seq, status = 10) AS t_seq, argMinIf(occurred_at, seq, status = 10) AS returned,
       countIf(status = 10) > 0 AS has_t,
       groupArrayIf(tuple(seq, occurred_at), event_type IN ('ApplicantNotified', 'ResultReturned')) AS told
FROM events
WHERE ({scope.dossiers})
  AND (status IN (9, 10) OR event_type IN ('DossierReceived', 'ApplicantNotified', 'ResultReturned'))
GROUP BY dossier_id
HAVING has_d
"""  # noqa: S608
    in_time = (
        f"arrayExists(x -> tupleElement(x, 1) > d_seq AND (toUnixTimestamp64Micro(tupleElement(x, 2)) - "
        f"toUnixTimestamp64Micro(done) <= {notify} * {WD_US} OR "
        f"{pos('tupleElement(x, 2)')} - {pos('done')} <= {notify} * {WD_US}), told)"
    )
    parts = f"""
        has_t AND isNotNull(due0) AND done <= due0 AND due0 < returned AS a,
        NOT (has_t AND returned <= {AS_OF})
            AND {pos(AS_OF)} - {pos("done")} > {param("unreturned_max_wd")} * {WD_US} AS b,
        NOT {in_time} AS c"""
    return f"""
SELECT dossier_id, arraySort(arrayConcat([d_seq], if(a, [t_seq], []))) AS evidence_seqs,
       arrayStringConcat(arrayConcat(
           if(a, [concat('result ready ', {local_text("done")}, ' by the due date ', {local_text("due0")},
                         ' but returned ', {local_text("returned")})], []),
           if(b, [concat('result ready ', {local_text("done")}, ' still not returned at ', {local_text(AS_OF)})], []),
           if(c, [concat('applicant not notified within ', toString({notify}), ' WD of the result')], [])), '; ')
       AS explanation, {NOBODY} AS actor_seqs, false AS holder
FROM (SELECT *, {parts} FROM ({facts}))
WHERE a OR b OR c
"""  # noqa: S608


@rule_sql("R14")
def r14(scope: Scope) -> str:
    handovers = sql_list(HANDOVERS)
    h = history(
        ("event_type", "status", "occurred_at", "actor_id", "n_attachments"),
        scope=scope,
        candidates=having("event_type = 'DossierReceived' AND n_attachments = 0", scope=scope),
    )
    return f"""
SELECT dossier_id, [e_seq[r], e_seq[d]] AS evidence_seqs,
       concat('received without attachments and finished by the same official ', {minutes_text("took")},
              ' later with no hand-over (limit ', toString({param("phantom_max_minutes")}), ' min)') AS explanation,
       [e_seq[r]] AS actor_seqs, false AS holder
FROM (
    SELECT *, {R_INDEX} AS r, {D_INDEX} AS d,
           {pos("e_occurred_at[d]")} - {pos("e_occurred_at[r]")} AS took
    FROM ({h})
)
WHERE r > 0 AND d > 0 AND e_actor_id[r] = e_actor_id[d] AND e_n_attachments[r] = 0
  AND NOT arrayExists((ty, q) -> q > e_seq[r] AND q < e_seq[d] AND ty IN ({handovers}), e_event_type, e_seq)
  AND took < {param("phantom_max_minutes")} * {MINUTE_US}
"""  # noqa: S608


@rule_sql("R15")
def r15(scope: Scope) -> str:
    facts = f"""
SELECT dossier_id,
       minIf(seq, event_type = 'DossierReceived') AS r_seq, countIf(event_type = 'DossierReceived') > 0 AS has_r,
       minIf(seq, status = 9) AS d_seq, countIf(status = 9) > 0 AS has_d,
       groupArrayIf(seq, event_type = 'ResultApproved') AS approvals
FROM events
WHERE ({scope.dossiers}) AND (event_type IN ('DossierReceived', 'ResultApproved') OR status = 9)
GROUP BY dossier_id
"""  # noqa: S608
    return f"""
SELECT dossier_id, [r_seq, d_seq] AS evidence_seqs,
       'result ready with no approval (ResultApproved) after reception' AS explanation,
       [d_seq] AS actor_seqs, false AS holder
FROM ({facts})
WHERE has_r AND has_d AND d_seq > r_seq AND NOT arrayExists(q -> q > r_seq AND q < d_seq, approvals)
"""  # noqa: S608


@rule_sql("R18")
def r18(scope: Scope) -> str:
    limit = f"{param('unreceived_max_wh')} * 60 * {MINUTE_US}"
    # Numbers only over every event; the first event's type is checked against the DossierSubmitted rows.
    facts = f"""
SELECT dossier_id, min(seq) AS s_seq, argMin(occurred_at, seq) AS submitted,
       minIf(seq, status != 1) AS l_seq, argMinIf(occurred_at, seq, status != 1) AS left_at,
       countIf(status != 1) > 0 AS has_l
FROM events
WHERE {scope.dossiers}
GROUP BY dossier_id
HAVING (dossier_id, s_seq) IN (SELECT dossier_id, seq FROM events PREWHERE event_type = 'DossierSubmitted'
                               WHERE ({scope.dossiers}) AND status = 1)
"""  # noqa: S608
    end = f"if(has_l, left_at, {AS_OF})"
    return f"""
SELECT dossier_id, if(has_l, [s_seq, l_seq], [s_seq]) AS evidence_seqs,
       concat('submitted online ', {local_text("submitted")}, ', ',
              if(has_l, concat('received ', {local_text("left_at")}), 'still unreceived'),
              ' after ', {wd_text("waited")}, ' (limit ', toString({param("unreceived_max_wh")}), ' working hours)')
       AS explanation, {NOBODY} AS actor_seqs, false AS holder
FROM (SELECT *, {pos(end)} - {pos("submitted")} AS waited FROM ({facts}) WHERE {end} > submitted)
WHERE waited > {limit}
"""  # noqa: S608


@rule_sql("R21")
def r21(scope: Scope) -> str:
    # Who received (hashed: numbers aggregate cheaply) against who approved, per dossier.
    suspects = f"""dossier_id IN (
SELECT dossier_id FROM events
WHERE ({scope.dossiers}) AND event_type IN ('DossierReceived', 'ResultApproved')
GROUP BY dossier_id
HAVING has(groupArrayIf(cityHash64(actor_id), event_type = 'ResultApproved'),
           argMinIf(cityHash64(actor_id), seq, event_type = 'DossierReceived'))
   AND countIf(event_type = 'DossierReceived') > 0)"""  # noqa: S608
    h = history(
        ("event_type", "actor_id"),
        scope=scope,
        where=f"event_type IN ('DossierReceived', 'ResultApproved', {_PROCESSING})",
        candidates=suspects,
    )
    return f"""
SELECT dossier_id, {evidence("[e_seq[r], e_seq[p], e_seq[q]]")} AS evidence_seqs,
       concat('official ', e_actor_id[r], ' received (seq ', toString(e_seq[r]), '), processed (seq ',
              toString(e_seq[p]), ') and approved (seq ', toString(e_seq[q]), ') the same dossier') AS explanation,
       [e_seq[r]] AS actor_seqs, false AS holder
FROM (
    SELECT *, {R_INDEX} AS r,
           arrayFirstIndex((ty, sq, who) -> ty IN ({_PROCESSING}) AND sq > e_seq[r] AND who = e_actor_id[r],
                           e_event_type, e_seq, e_actor_id) AS p,
           arrayFirstIndex((ty, who) -> ty = 'ResultApproved' AND who = e_actor_id[r], e_event_type, e_actor_id) AS q
    FROM ({h})
)
WHERE r > 0 AND p > 0 AND q > 0
"""  # noqa: S608
