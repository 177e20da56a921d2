"""R7, R8, R16, R20: documents asked for, held, received and digitised.

R7, R16 and R20 (b) judge a dossier against one catalogue version, chosen by
:func:`inspection.rules.base.catalogue_index` (the one its events name, else the one in force at
reception); a dossier without one is not assessed by them.
"""

from __future__ import annotations

from inspection.rules.base import (
    DOC_REQUESTS,
    PROCEDURE_COLUMNS,
    R_INDEX,
    Scope,
    catalogue_index,
    catalogue_join,
    evidence,
    having,
    history,
    procedure_of,
    rule_sql,
    sql_list,
)

_REQUESTS = sql_list(DOC_REQUESTS)


@rule_sql("R7")
def r7(scope: Scope) -> str:
    h = history(
        ("event_type", "requested_documents", *PROCEDURE_COLUMNS),
        scope=scope,
        candidates=having(f"event_type IN ({_REQUESTS})", scope=scope),
    )
    foreign = "arrayFilter(x -> NOT has(allowed, x), e_requested_documents[i])"
    return f"""
SELECT dossier_id, {evidence("arrayMap(i -> e_seq[i], x)")} AS evidence_seqs,
       concat('requested ', arrayStringConcat(arrayDistinct(arrayFlatten(arrayMap(i -> {foreign}, x))), ', '),
              ': not in the published components of ', proc_code, ' version ', version,
              if(isNull(proc_version), ' (in force at reception)', '')) AS explanation,
       arrayMap(i -> e_seq[i], x) AS actor_seqs, false AS holder
FROM (
    SELECT *, tupleElement(cat_versions[ci], 1) AS version, tupleElement(cat_versions[ci], 2) AS allowed,
           arrayFilter(i -> e_event_type[i] IN ({_REQUESTS}) AND length({foreign}) > 0, arrayEnumerate(e_seq)) AS x
    FROM (SELECT *, {R_INDEX} AS r, {procedure_of()} FROM ({h})) AS d
    {catalogue_join()}
    WHERE ({catalogue_index()} AS ci) > 0
)
WHERE length(x) > 0
"""  # noqa: S608


@rule_sql("R8")
def r8(scope: Scope) -> str:
    kinds = sql_list((*DOC_REQUESTS, "DossierDigitized"))
    h = history(
        ("event_type", "requested_documents", "documents"),
        scope=scope,
        where=f"event_type IN ({kinds})",
        candidates=having(
            f"event_type IN ({kinds})",
            scope=scope,
            extra=f"countIf(event_type = 'DossierDigitized') > 0 AND countIf(event_type IN ({_REQUESTS})) > 0",
        ),
    )
    held = (
        f"arrayMap(i -> if(e_event_type[i] IN ({_REQUESTS}), arrayFilter(j -> e_event_type[j] = 'DossierDigitized' "
        "AND e_seq[j] < e_seq[i] AND hasAny(e_documents[j], e_requested_documents[i]), arrayEnumerate(e_seq)), []), "
        "arrayEnumerate(e_seq))"
    )
    items = (
        "arrayDistinct(arrayFlatten(arrayMap(i -> arrayFilter(d -> arrayExists(j -> has(e_documents[j], d), held[i]), "
        "e_requested_documents[i]), x)))"
    )
    return f"""
SELECT dossier_id, {evidence("arrayConcat(arrayMap(i -> e_seq[i], x), arrayMap(j -> e_seq[j], flat))")}
       AS evidence_seqs,
       concat('requested again ', arrayStringConcat({items}, ', '), ': already digitised in this dossier')
       AS explanation, arrayMap(i -> e_seq[i], x) AS actor_seqs, false AS holder
FROM (SELECT *, {held} AS held, arrayFilter(i -> length(held[i]) > 0, arrayEnumerate(e_seq)) AS x,
             arrayFlatten(arrayMap(i -> held[i], x)) AS flat FROM ({h}))
WHERE length(x) > 0
"""  # noqa: S608


@rule_sql("R16")
def r16(scope: Scope) -> str:
    h = history(
        ("form_code", "due_at", *PROCEDURE_COLUMNS),
        scope=scope,
        where="event_type = 'DossierReceived'",
        candidates=having("event_type = 'DossierReceived' AND (form_code IS NULL OR due_at IS NULL)", scope=scope),
    )
    return f"""
SELECT dossier_id, [e_seq[1]] AS evidence_seqs, [e_seq[1]] AS actor_seqs, false AS holder,
       concat('received without ', multiIf(isNull(e_form_code[1]) AND isNull(e_due_at[1]),
              'a receipt (form_code) nor a due date', isNull(e_form_code[1]), 'a receipt (form_code)', 'a due date'),
              ' for ', proc_code, ', not a same-day procedure') AS explanation
FROM (SELECT *, 1 AS r, {procedure_of()} FROM ({h})) AS d
{catalogue_join()}
WHERE ({catalogue_index()} AS ci) > 0 AND NOT tupleElement(cat_versions[ci], 3)
  AND (isNull(e_form_code[1]) OR isNull(e_due_at[1]))
"""  # noqa: S608


@rule_sql("R20")
def r20(scope: Scope) -> str:
    # Plain aggregates keyed by seq: each dossier costs a few numbers.
    facts = f"""
SELECT dossier_id,
       minIf(seq, event_type = 'DossierReceived') AS r_seq, countIf(event_type = 'DossierReceived') > 0 AS has_r,
       argMinIf(channel IN ('DIRECT', 'POSTAL'), seq, event_type = 'DossierReceived') AS paper,
       maxIf(seq, event_type = 'DossierDigitized') AS last_digitised,
       countIf(event_type = 'DossierDigitized') > 0 AS has_digitised,
       minIf(seq, event_type = 'ResultIssued') AS i_seq, countIf(event_type = 'ResultIssued') > 0 AS has_i,
       argMinIf(ifNull(result_electronic, true) = false, seq, event_type = 'ResultIssued') AS paper_result,
       maxIf(seq, event_type = 'DossierDigitized' AND ifNull(result_electronic, false)) AS last_e_result,
       countIf(event_type = 'DossierDigitized' AND ifNull(result_electronic, false)) > 0 AS has_e_result
FROM events
WHERE ({scope.dossiers}) AND event_type IN ('DossierReceived', 'DossierDigitized', 'ResultIssued')
GROUP BY dossier_id
"""  # noqa: S608
    never_digitised = "has_r AND paper AND (NOT has_digitised OR last_digitised <= r_seq)"
    unscanned = "has_i AND paper_result AND (NOT has_e_result OR last_e_result <= i_seq)"
    # The catalogue (paper_result) is read only for the few dossiers that issued a paper result.
    procedure = f"""
SELECT dossier_id, arrayFirstIndex(x -> x, e_is_r) AS r, {procedure_of()}
FROM ({
        history(
            ("event_type = 'DossierReceived'", *PROCEDURE_COLUMNS),
            scope=scope,
            names=("is_r", *PROCEDURE_COLUMNS),
            candidates=having("event_type = 'ResultIssued' AND result_electronic = false", scope=scope),
        )
    })
"""  # noqa: S608
    return f"""
SELECT dossier_id,
       arraySort(arrayConcat(if(a, [r_seq], []), if(b, [i_seq], []))) AS evidence_seqs,
       arrayStringConcat(arrayConcat(if(a, ['paper dossier never digitised after reception'], []),
                                     if(b, ['paper result never digitised as an electronic result'], [])), '; ')
       AS explanation,
       arraySort(arrayConcat(if(a, [r_seq], []), if(b, [i_seq], []))) AS actor_seqs, false AS holder
FROM (
    SELECT f.*, {never_digitised} AS a,
           {unscanned} AND p.dossier_id != '' AND ({catalogue_index()} AS ci) > 0
               AND tupleElement(cat_versions[ci], 4) AS b
    FROM (SELECT * FROM ({facts}) WHERE ({never_digitised}) OR ({unscanned})) AS f
    LEFT JOIN (SELECT * FROM ({procedure}) AS d {catalogue_join()}) AS p ON p.dossier_id = f.dossier_id
)
WHERE a OR b
"""  # noqa: S608
