"""R12, R13, R17, R19: what the record itself shows (backdating, overrides, stops, synchronisation)."""

from __future__ import annotations

from inspection.dossier_facts import merged_facts
from inspection.rules.base import (
    D_INDEX,
    MINUTE_US,
    NO_TIME,
    NOBODY,
    R_INDEX,
    T_INDEX,
    Scope,
    after,
    end_index,
    evidence,
    having,
    history,
    minutes_text,
    param,
    rule_sql,
    working_instant,
)
from schemas.textnorm import blank_sql

_ENDS = "status IN (3, 7, 8, 9, 10)"
_NOT_PEOPLE = "('SYSTEM', 'APPLICANT')"


def _r12_candidates(scope: Scope) -> str:
    late_record = (
        "toUnixTimestamp64Micro(recorded_at) - toUnixTimestamp64Micro(occurred_at) > "
        f"{param('backdate_threshold_minutes')} * {MINUTE_US}"
    )
    # (c) candidates: an end event at the instant of some dossier's due0 (a set of numbers, from the facts).
    at_due = (
        f"{_ENDS} AND toUnixTimestamp64Micro(occurred_at) IN (SELECT due_us FROM ("  # noqa: S608
        f"{merged_facts('tupleElement(reception, 7) AS due_us', scope.dossiers, 'tupleElement(reception, 7) >= 0')}))"
    )
    off_hours = f"{_ENDS} AND actor_role NOT IN {_NOT_PEOPLE} AND NOT {working_instant('occurred_at')}"
    # (b): events that, in seq order, go back in time: each dossier's (seq, time) packed in one number
    # (seq in the high 64 bits), so a plain numeric sort orders them (one array: two groupArrays need
    # not list the rows in the same order).
    offset = "bitXor(reinterpretAsUInt64({}), 9223372036854775808)"  # Int64 -> UInt64, order kept
    packed = (
        f"bitOr(bitShiftLeft(toUInt128({offset.format('seq')}), 64), "
        f"toUInt128({offset.format('toUnixTimestamp64Micro(occurred_at)')}))"
    )
    times = f"arrayMap(x -> toUInt64(bitAnd(x, 18446744073709551615)), arraySort(groupArray({packed})))"
    return (
        f"dossier_id IN (SELECT dossier_id FROM events WHERE ({scope.dossiers}) "  # noqa: S608
        f"AND (({late_record}) OR ({at_due}) OR ({off_hours})) "
        f"UNION ALL SELECT dossier_id FROM events WHERE {scope.dossiers} GROUP BY dossier_id "
        f"HAVING arrayExists((a, b) -> a < b, arrayPopFront({times} AS us), arrayPopBack(us)))"
    )


@rule_sql("R12")
def r12(scope: Scope) -> str:
    threshold = f"{param('backdate_threshold_minutes')} * {MINUTE_US}"
    h = history(
        ("event_type", "status", "occurred_at", "recorded_at", "due_at", "actor_role"),
        scope=scope,
        candidates=_r12_candidates(scope),
    )
    parts = f"""
        arrayFilter(i -> toUnixTimestamp64Micro(e_recorded_at[i]) - toUnixTimestamp64Micro(e_occurred_at[i])
                         > {threshold}, arrayEnumerate(e_seq)) AS ra,
        arrayFilter(i -> i > 1 AND e_occurred_at[i] < e_occurred_at[i - 1], arrayEnumerate(e_seq)) AS rb,
        e > 0 AND isNotNull(e_due_at[r]) AND e_occurred_at[e] = e_due_at[r] AS rc,
        e > 0 AND e_actor_role[e] NOT IN {_NOT_PEOPLE} AND NOT {working_instant("e_occurred_at[e]")} AS rd"""
    seqs = (
        "arrayConcat(arrayMap(i -> e_seq[i], ra), arrayMap(i -> e_seq[i - 1], rb), arrayMap(i -> e_seq[i], rb), "
        "if(rc, [e_seq[r], e_seq[e]], []), if(rd, [e_seq[e]], []))"
    )
    lag = (
        "arrayMax(arrayMap(i -> toUnixTimestamp64Micro(e_recorded_at[i]) - toUnixTimestamp64Micro(e_occurred_at[i]), "
        "ra))"
    )
    return f"""
SELECT dossier_id, {evidence(seqs)} AS evidence_seqs,
       arrayStringConcat(arrayConcat(
           if(length(ra) > 0, [concat(toString(length(ra)), ' event(s) recorded more than ',
                                      toString({param("backdate_threshold_minutes")}), ' min after they happened (max ',
                                      {minutes_text(lag)}, ')')], []),
           if(length(rb) > 0, [concat(toString(length(rb)), ' event(s) dated before the previous event')], []),
           if(rc, ['ended exactly at the due date'], []),
           if(rd, [concat('ended outside working hours by ', lower(e_actor_role[e]))], [])), '; ') AS explanation,
       arraySort(arrayDistinct(arrayConcat(arrayMap(i -> e_seq[i], arrayConcat(ra, rb)), if(rc OR rd, [e_seq[e]], []))))
       AS actor_seqs, false AS holder
FROM (SELECT *, {R_INDEX} AS r, {D_INDEX} AS d, {T_INDEX} AS t, {end_index()} AS e, {parts} FROM ({h}))
WHERE length(ra) > 0 OR length(rb) > 0 OR rc OR rd
"""  # noqa: S608


@rule_sql("R13")
def r13(scope: Scope) -> str:
    h = history(
        ("event_type", "override_field"), scope=scope, where="event_type IN ('AdminOverride', 'ResultRecalled')"
    )
    what = (
        "arrayMap((ty, f) -> if(ty = 'AdminOverride', concat('override of ', ifNull(f, '?')), 'recall'), "
        "e_event_type, e_override_field)"
    )
    return f"""
SELECT dossier_id, {evidence("e_seq")} AS evidence_seqs,
       concat('administrative ', arrayStringConcat({what}, ', ')) AS explanation, e_seq AS actor_seqs, false AS holder
FROM ({h})
"""  # noqa: S608


@rule_sql("R17")
def r17(scope: Scope) -> str:
    h = history(
        ("event_type", "occurred_at", "due_at", "reason", "n_attachments", "actor_role"),
        scope=scope,
        candidates=having("event_type IN ('ReceptionRefused', 'ProcessingStopped')", scope=scope),
    )
    no_reason = blank_sql("e_reason[i]")  # NBSP, zero-width and other invisible characters count as nothing
    hiding = (
        "(e_event_type[i] = 'ProcessingStopped' AND r > 0 AND isNotNull(e_due_at[r]) "
        "AND e_occurred_at[i] > e_due_at[r] "
        "AND NOT arrayExists((ty, role, q) -> ty = 'WithdrawalRequested' AND role = 'APPLICANT' AND q < e_seq[i], "
        "e_event_type, e_actor_role, e_seq))"
    )
    return f"""
SELECT dossier_id, {evidence("arrayMap(i -> e_seq[i], x)")} AS evidence_seqs,
       arrayStringConcat(arrayMap(i -> concat(
           if(e_event_type[i] = 'ReceptionRefused', 'refusal', 'stop'), ' (seq ', toString(e_seq[i]), ') ',
           arrayStringConcat(arrayConcat(
               if({no_reason}, ['without a reason'], []),
               if(e_n_attachments[i] = 0, ['without attachments'], []),
               if(hide[i], ['after the due date with no withdrawal asked by the applicant'], [])), ', ')), x), '; ')
       AS explanation, arrayMap(i -> e_seq[i], x) AS actor_seqs, false AS holder
FROM (
    SELECT *, {R_INDEX} AS r,
           arrayMap(i -> {hiding}, arrayEnumerate(e_seq)) AS hide,
           arrayFilter(i -> (e_event_type[i] IN ('ReceptionRefused', 'ProcessingStopped')
                             AND ({no_reason} OR e_n_attachments[i] = 0)) OR hide[i], arrayEnumerate(e_seq)) AS x
    FROM ({h})
)
WHERE length(x) > 0
"""  # noqa: S608


@rule_sql("R19")
def r19(scope: Scope) -> str:
    limit = f"{param('sync_max_hours')} * 60 * {MINUTE_US}"
    # Numbers only: status, time (µs), and the sync flag folded into ref (a synchronisation's ref_seq,
    # -1 when absent; -2 for every other event): a 4-tuple per event over the whole log, not a 5-tuple.
    h = history(
        (
            "status",
            "toUnixTimestamp64Micro(occurred_at)",
            "if(event_type = 'SyncedToNational', ifNull(ref_seq, -1), -2)",
        ),
        names=("status", "us", "ref"),
        scope=scope,
    )
    h = f"SELECT *, arrayMap(r -> r != -2, e_ref) AS e_sync FROM ({h})"  # noqa: S608
    changes = "arrayFilter(i -> (i = 1 OR e_status[i] != e_status[i - 1]) AND NOT e_sync[i], arrayEnumerate(e_seq))"

    # Usually the next synchronisation covers a change; only when it does not are all later ones tried.
    def covers(j: str) -> str:
        return f"(e_sync[{j}] AND e_seq[{j}] > e_seq[i] AND e_ref[{j}] >= e_seq[i] AND e_us[{j}] - e_us[i] <= {limit})"

    nxt = (
        "arrayPushBack(arrayPopFront(arrayReverseFill(x -> x > 0, "
        "arrayMap((sy, j) -> if(sy, j, 0), e_sync, arrayEnumerate(e_seq)))), 0)"
    )
    covered = f"(n[i] > 0 AND {covers('n[i]')}) OR arrayExists(j -> {covers('j')}, arrayEnumerate(e_seq))"
    # Prefilter, elementwise: a change the next synchronisation does not cover (most dossiers have none).
    nxt_seq, nxt_ref, nxt_us = (after(f"e_{c}", "e_sync", NO_TIME) for c in ("seq", "ref", "us"))
    uncovered_by_next = (
        "arrayExists((i, st, before, sy, q, nq, nr, u, nu) -> (i = 1 OR st != before) AND NOT sy "
        f"AND NOT (nq != {NO_TIME} AND nq > q AND nr >= q AND nu - u <= {limit}), "
        "arrayEnumerate(e_seq), e_status, arrayPushFront(arrayPopBack(e_status), toInt32(0)), e_sync, e_seq, "
        f"{nxt_seq}, {nxt_ref}, e_us, {nxt_us})"
    )
    return f"""
SELECT dossier_id, {evidence("arrayMap(i -> e_seq[i], x)")} AS evidence_seqs,
       concat(toString(length(x)), ' status change(s) not synchronised to the national portal within ',
              toString({param("sync_max_hours")}), ' h (first: seq ', toString(e_seq[x[1]]), ', status ',
              toString(e_status[x[1]]), ')') AS explanation, {NOBODY} AS actor_seqs, false AS holder
FROM (
    SELECT dossier_id, e_seq, e_status, {nxt} AS n, arrayFilter(i -> NOT ({covered}), {changes}) AS x FROM ({h})
    WHERE {uncovered_by_next}
)
WHERE length(x) > 0
"""  # noqa: S608
