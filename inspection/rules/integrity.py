"""INTEGRITY-SEQ and INTEGRITY-HASH: the contract's seq numbering and hash chain.

Both first find the dossiers that can be broken with plain aggregates over
the whole log (counts and sums, no arrays), then read only those dossiers'
histories to name the exact events.
"""

from __future__ import annotations

from inspection import ledger
from inspection.rules.base import NOBODY, Scope, evidence, history, rule_sql
from schemas.hashchain import canonical_sql


@rule_sql("INTEGRITY-SEQ")
def integrity_seq(scope: Scope) -> str:
    suspects = (
        f"dossier_id IN (SELECT dossier_id FROM events WHERE {scope.dossiers} GROUP BY dossier_id "  # noqa: S608
        "HAVING min(seq) > 1 OR max(seq) - min(seq) + 1 != uniqExact(seq) OR count() != uniqExact(seq))"
    )
    h = history(("1",), names=("one",), scope=scope, candidates=suspects)
    return f"""
SELECT dossier_id, {NOBODY} AS actor_seqs, false AS holder,
       {
        evidence(
            "arrayConcat(if(s[1] > 1, [s[1]], []), arrayFlatten(arrayMap(i -> if(s[i + 1] > s[i] + 1, "
            "[s[i], s[i + 1]], []), arrayEnumerate(arrayPopBack(s)))), "
            "arrayFilter(q -> countEqual(e_seq, q) > 1, s))"
        )
    } AS evidence_seqs,
       arrayStringConcat(arrayConcat(
           if(s[1] > 1, [concat('starts at seq ', toString(s[1]))], []),
           arrayFlatten(arrayMap(i -> if(s[i + 1] > s[i] + 1, [concat('seq ', toString(s[i] + 1),
               if(s[i + 1] > s[i] + 2, concat('-', toString(s[i + 1] - 1)), ''), ' missing')], []),
               arrayEnumerate(arrayPopBack(s)))),
           arrayMap(q -> concat('seq ', toString(q), ' held by ', toString(countEqual(e_seq, q)), ' events'),
                    arrayFilter(q -> countEqual(e_seq, q) > 1, s))), '; ') AS explanation
FROM (SELECT *, arrayDistinct(e_seq) AS s FROM ({h}))
"""  # noqa: S608


_ZERO = "toFixedString(unhex(repeat('00', 32)), 32)"


@rule_sql("INTEGRITY-HASH")
def integrity_hash(scope: Scope) -> str:
    # A dossier whose links all hold has sum(h(seq, hash)) over its events equal to
    # sum(h(seq - 1, prev_hash)) over its events after seq 1 plus h of its last event;
    # any break (or gap) changes one side. Tampered content is found row by row.
    links = (
        f"dossier_id IN (SELECT dossier_id FROM events WHERE {scope.dossiers} GROUP BY dossier_id "  # noqa: S608
        "HAVING sum(cityHash64(seq, hash)) != sumIf(cityHash64(seq - 1, prev_hash), seq > 1) "
        f"+ argMax(cityHash64(seq, hash), seq) OR countIf(seq = 1 AND prev_hash != {_ZERO}) > 0)"
    )
    # Hashes are recomputed outside the parts the integrity ledger covers (inspection.ledger; all of
    # them with full_recompute=1), and the dossiers it holds a break of are examined again.
    uncovered, known = "", ""
    if scope.ledger:
        uncovered = f"AND NOT {ledger.COVERED_PART} "
        known = f" OR {ledger.KNOWN_BREAK}"
    tampered = (
        f"dossier_id IN (SELECT dossier_id FROM events WHERE ({scope.dossiers}) "  # noqa: S608
        f"{uncovered}AND SHA256({canonical_sql()}) != hash){known}"
    )
    h = history(
        ("hash", "prev_hash", f"SHA256({canonical_sql()})"),
        scope=scope,
        candidates=f"{links} OR {tampered}",
        names=("hash", "prev_hash", "recomputed"),
    )
    broken_link = (
        f"if(e_seq[i] = 1, e_prev_hash[i] != {_ZERO}, "
        "indexOf(e_seq, e_seq[i] - 1) > 0 AND e_hash[indexOf(e_seq, e_seq[i] - 1)] != e_prev_hash[i])"
    )
    return f"""
SELECT dossier_id, {NOBODY} AS actor_seqs, false AS holder,
       {evidence("arrayMap(i -> e_seq[i], arrayConcat(bad_hash, bad_link))")} AS evidence_seqs,
       arrayStringConcat(arrayConcat(
           arrayMap(i -> concat('seq ', toString(e_seq[i]), ' does not match its hash'), bad_hash),
           arrayMap(i -> concat('seq ', toString(e_seq[i]), ' prev_hash is not the hash of seq ',
                                toString(e_seq[i] - 1)), bad_link)), '; ') AS explanation
FROM (
    SELECT *, arrayFilter(i -> e_recomputed[i] != e_hash[i], arrayEnumerate(e_seq)) AS bad_hash,
           arrayFilter(i -> {broken_link}, arrayEnumerate(e_seq)) AS bad_link
    FROM ({h})
)
WHERE length(bad_hash) > 0 OR length(bad_link) > 0
"""  # noqa: S608
