-- Two derived views compute the same rows with less work per batch. Each is changed in place
-- (MODIFY QUERY), so no batch is stored while a view is missing, and nothing is backfilled: the
-- tables keep their rows and columns.
--
-- dossier_state: each column is taken with its own argMax by seq, instead of one argMax over a
-- tuple of all thirteen (which copies every string of every row that raises the maximum). The same
-- row wins in every column because a batch never holds a dossier's seq twice (the loader's check:
-- a repeated (dossier_id, seq) never reaches the feed). The two Nullable columns go together in a
-- tuple: an aggregate skips the rows where its argument is NULL, and the latest event's NULL must
-- win.
ALTER TABLE dossier_state_mv MODIFY QUERY
SELECT
    dossier_id,
    latest_seq AS seq,
    l_event_type AS event_type,
    l_status AS status,
    l_occurred_at AS occurred_at,
    l_recorded_at AS recorded_at,
    l_unit_code AS unit_code,
    l_procedure_code AS procedure_code,
    l_channel AS channel,
    l_applicant_kind AS applicant_kind,
    l_actor_id AS actor_id,
    l_actor_role AS actor_role,
    tupleElement(l_nullable, 1) AS step_code,
    tupleElement(l_nullable, 2) AS due_at
FROM
(
    SELECT
        dossier_id,
        max(seq) AS latest_seq,
        argMax(event_type, seq) AS l_event_type,
        argMax(status, seq) AS l_status,
        argMax(occurred_at, seq) AS l_occurred_at,
        argMax(recorded_at, seq) AS l_recorded_at,
        argMax(unit_code, seq) AS l_unit_code,
        argMax(procedure_code, seq) AS l_procedure_code,
        argMax(channel, seq) AS l_channel,
        argMax(applicant_kind, seq) AS l_applicant_kind,
        argMax(actor_id, seq) AS l_actor_id,
        argMax(actor_role, seq) AS l_actor_role,
        argMax((step_code, due_at), seq) AS l_nullable
    FROM events_feed
    GROUP BY dossier_id
);

-- dossier_facts: the reception is the least tuple among DossierReceived rows only (minIf),
-- instead of a tuple built for every row with a sentinel for the others; a batch without a
-- reception still gives the sentinel. service_level is required on DossierReceived, so
-- assumeNotNull reads it as it is on those rows. Everything else is 0006's view unchanged.
ALTER TABLE dossier_facts_mv MODIFY QUERY
SELECT
    dossier_id,
    if(countIf(event_type = 'DossierReceived') > 0,
        minIf((seq, toUnixTimestamp64Micro(occurred_at), unit_code, channel, assumeNotNull(service_level),
               procedure_code, ifNull(toUnixTimestamp64Micro(due_at), toInt64(-1))),
              event_type = 'DossierReceived'),
        (toInt64(9223372036854775807), toInt64(0), '', '', '', '', toInt64(-1))) AS reception,
    min(if(status = 9, (seq, toUnixTimestamp64Micro(occurred_at)), (toInt64(9223372036854775807), toInt64(0))))
        AS done,
    min(if(status = 10, (seq, toUnixTimestamp64Micro(occurred_at)), (toInt64(9223372036854775807), toInt64(0))))
        AS returned,
    groupUniqArrayIf((seq, toUnixTimestamp64Micro(occurred_at)), status IN (3, 7, 8)) AS stops,
    groupUniqArrayIf((seq, toUnixTimestamp64Micro(occurred_at)), event_type = 'SupplementRequested') AS supplements,
    groupUniqArrayIf((seq, toUnixTimestamp64Micro(occurred_at)), event_type = 'ApologyIssued') AS apologies,
    groupUniqArrayIf((seq, status, toUnixTimestamp64Micro(occurred_at),
        toUInt8((event_type = 'SupplementRequested' AND status = 5)
            OR (event_type = 'FinancialObligationRequested' AND coalesce(clock_stopped, false) AND status = 6))),
        event_type IN ('AdminOverride', 'FinancialObligationFulfilled', 'FinancialObligationRequested',
                       'ReceptionRefused', 'SupplementReceived', 'SupplementRequested', 'WithdrawalRequested'))
        AS pause_events,
    groupBitOr(toUInt8(
        if(event_type = 'DossierDigitized', 1, 0)
        + if(event_type = 'ResultIssued', 2, 0)
        + if(event_type IN ('ResultIssued', 'DossierDigitized') AND coalesce(result_electronic, false), 4, 0)
        + if(event_type = 'FeePaid' AND payment_channel IN ('NATIONAL_PORTAL', 'LOCAL_GATEWAY'), 8, 0)
        + if(event_type = 'FeePaid' AND coalesce(amount_vnd, 0) > 0, 16, 0)
        + if(event_type = 'FeedbackFiled' OR (event_type = 'CitizenRated' AND rating <= 2), 32, 0))) AS flags,
    groupUniqArrayIf((seq, assumeNotNull(rating)), event_type = 'CitizenRated' AND isNotNull(rating)) AS ratings
FROM events_feed
WHERE event_type NOT IN ('SyncedToNational', 'ApplicantNotified', 'ResultCollected')
GROUP BY dossier_id;
