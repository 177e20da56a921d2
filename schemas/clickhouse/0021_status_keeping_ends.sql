-- The status-keeping events that claim an end status, kept per dossier with its other facts.
--
-- R1 (late without a timely apology) takes as candidates the dossiers dossier_facts shows ending late,
-- plus those whose D, T or first stop is a status-keeping event (a SyncedToNational, ApplicantNotified or
-- ResultCollected): in a legal history such an event carries the status it found, so it never comes before
-- the event that set an end status; in an illegal one it can (`verify` reports the transition), and then
-- the rulebook's D, T or E is that event (inspection.rules.base.end_facts). dossier_facts left those
-- events out, so R1 found them by grouping the facts with every status-keeping event of an end status
-- (~5 million of 20 million simulated events, ~3 a dossier): 1.2-2.3 s on 20 million events, 1.8 s a
-- slice of 16 million at the year, for no dossier at all in a legal history (R1 3.8 -> 2.3 s with this).
--
-- 1. Three columns: the least seq of a status-keeping event with status 9 (kept_done), 10 (kept_returned),
--    3, 7 or 8 (kept_stop); 9223372036854775807 when there is none (what the facts' other first-event
--    columns use for "none").
-- 2. The view of 0015 reads those events too (its WHERE let none through) and keeps them out of done,
--    returned and stops, as before.
-- 3. The events stored before: rows with only these columns (every other aggregate gets its neutral
--    value, so they merge into the facts), then every part merged, so a dossier is one row again
--    (inspection.dossier_facts.merged_facts reads a dossier held in several rows through FINAL). The
--    grouping takes ~235 bytes a dossier (390 MB for 1.7 million): past 2 GB (the year's ~23 million
--    dossiers) it spills to disk rather than hold ~5.5 GB.
--
-- Re-running the file after a crash is safe: the columns and the view are the same, the backfill's rows
-- merge into the same minimums.
ALTER TABLE dossier_facts
    ADD COLUMN IF NOT EXISTS kept_done SimpleAggregateFunction(min, Int64)
        DEFAULT toInt64(9223372036854775807) CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS kept_returned SimpleAggregateFunction(min, Int64)
        DEFAULT toInt64(9223372036854775807) CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS kept_stop SimpleAggregateFunction(min, Int64)
        DEFAULT toInt64(9223372036854775807) CODEC(ZSTD(1));

-- 0015's view; the status-keeping events with an end status reach it, and only its kept_* columns.
ALTER TABLE dossier_facts_mv MODIFY QUERY
WITH event_type IN ('SyncedToNational', 'ApplicantNotified', 'ResultCollected') AS kept
SELECT
    dossier_id,
    if(countIf(event_type = 'DossierReceived') > 0,
        minIf((seq, toUnixTimestamp64Micro(occurred_at), unit_code, channel, assumeNotNull(service_level),
               procedure_code, ifNull(toUnixTimestamp64Micro(due_at), toInt64(-1))),
              event_type = 'DossierReceived'),
        (toInt64(9223372036854775807), toInt64(0), '', '', '', '', toInt64(-1))) AS reception,
    min(if(status = 9 AND NOT kept, (seq, toUnixTimestamp64Micro(occurred_at)),
           (toInt64(9223372036854775807), toInt64(0)))) AS done,
    min(if(status = 10 AND NOT kept, (seq, toUnixTimestamp64Micro(occurred_at)),
           (toInt64(9223372036854775807), toInt64(0)))) AS returned,
    groupUniqArrayIf((seq, toUnixTimestamp64Micro(occurred_at)), status IN (3, 7, 8) AND NOT kept)
        AS stops,
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
    groupUniqArrayIf((seq, assumeNotNull(rating)), event_type = 'CitizenRated' AND isNotNull(rating)) AS ratings,
    groupBitOr(toUInt8(
        if(event_type = 'DossierReceived' AND has(unknown_facts, 'due_at'), 1, 0)
        + if(event_type IN ('ResultIssued', 'DossierDigitized') AND has(unknown_facts, 'result_electronic'), 2, 0)))
        AS unknown,
    min(if(status = 9 AND kept, seq, toInt64(9223372036854775807))) AS kept_done,
    min(if(status = 10 AND kept, seq, toInt64(9223372036854775807))) AS kept_returned,
    min(if(status IN (3, 7, 8) AND kept, seq, toInt64(9223372036854775807))) AS kept_stop
FROM events_feed
WHERE NOT kept OR status IN (3, 7, 8, 9, 10)
GROUP BY dossier_id;

INSERT INTO dossier_facts (dossier_id, reception, done, returned, flags, unknown,
    kept_done, kept_returned, kept_stop)
SELECT
    dossier_id,
    (toInt64(9223372036854775807), toInt64(0), '', '', '', '', toInt64(-1)),
    (toInt64(9223372036854775807), toInt64(0)),
    (toInt64(9223372036854775807), toInt64(0)),
    toUInt8(0),
    toUInt8(0),
    min(if(status = 9, seq, toInt64(9223372036854775807))) AS kept_done,
    min(if(status = 10, seq, toInt64(9223372036854775807))) AS kept_returned,
    min(if(status IN (3, 7, 8), seq, toInt64(9223372036854775807))) AS kept_stop
FROM events
PREWHERE status IN (3, 7, 8, 9, 10) AND event_type IN ('SyncedToNational', 'ApplicantNotified', 'ResultCollected')
GROUP BY dossier_id
SETTINGS max_bytes_before_external_group_by = 2000000000;

OPTIMIZE TABLE dossier_facts FINAL;
