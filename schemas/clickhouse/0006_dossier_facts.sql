-- Per-dossier facts for the scorecard (inspection.dossier_facts): one row per dossier after merges,
-- so a report reads ~1 row per dossier instead of scanning every event; and the step boundaries
-- the accountability report reads (inspection.accountability), ~4 of a dossier's ~12 events.
--
-- Kept by a materialized view on events_feed (every batch the loader stores), and backfilled from
-- events for stores loaded before this migration. A batch holds part of a dossier's history, so
-- every column is an aggregate that can be combined across batches (AggregatingMergeTree: read it
-- with GROUP BY dossier_id, or FINAL), and every aggregate is idempotent (min, bit-or, sets):
-- feeding the same event twice (a replay, or the backfill racing the live loader) changes nothing.
--
-- Only times are stored (microseconds since the epoch), never working-time positions: the working
-- calendar and the procedure catalogue are applied when the report runs, so a calendar or
-- catalogue update needs no rebuild. The event-type lists below are those of
-- inspection.dossier_facts (STATUS_KEEPING, PAUSE_TYPES, the flag bits F_*); a test checks that
-- they still agree.
ALTER TABLE events_feed ADD COLUMN IF NOT EXISTS service_level Nullable(String);

ALTER TABLE events_feed ADD COLUMN IF NOT EXISTS result_electronic Nullable(Bool);

ALTER TABLE events_feed ADD COLUMN IF NOT EXISTS payment_channel Nullable(String);

ALTER TABLE events_feed ADD COLUMN IF NOT EXISTS amount_vnd Nullable(Int64);

ALTER TABLE events_feed ADD COLUMN IF NOT EXISTS rating Nullable(Int32);

ALTER TABLE events_feed ADD COLUMN IF NOT EXISTS clock_stopped Nullable(Bool);

ALTER TABLE events_feed ADD COLUMN IF NOT EXISTS to_unit Nullable(String);

ALTER TABLE events_feed ADD COLUMN IF NOT EXISTS to_actor Nullable(String);

ALTER TABLE events_feed ADD COLUMN IF NOT EXISTS to_role Nullable(String);

ALTER TABLE events_feed ADD COLUMN IF NOT EXISTS step_due_at Nullable(DateTime64(6, 'UTC'));

ALTER TABLE events_feed ADD COLUMN IF NOT EXISTS step_budget_minutes Nullable(Int32);

-- reception: the first DossierReceived by seq (seq 9223372036854775807: none yet);
-- done / returned: the first event with status 9 / 10; stops: events with status 3, 7 or 8;
-- supplements / apologies: (seq, time) of each SupplementRequested / ApologyIssued;
-- pause_events: (seq, status, time, opener) of the events a pause depends on;
-- flags: bit-or of 1 digitised, 2 result issued, 4 electronic result, 8 paid online,
-- 16 fee paid, 32 complaint; ratings: (seq, rating) of each CitizenRated.
CREATE TABLE IF NOT EXISTS dossier_facts
(
    dossier_id String,
    reception SimpleAggregateFunction(min, Tuple(
        seq Int64, us Int64, unit_code String, channel String, service_level String, procedure_code String,
        due_us Int64)),
    done SimpleAggregateFunction(min, Tuple(seq Int64, us Int64)),
    returned SimpleAggregateFunction(min, Tuple(seq Int64, us Int64)),
    stops SimpleAggregateFunction(groupUniqArrayArray, Array(Tuple(seq Int64, us Int64))),
    supplements SimpleAggregateFunction(groupUniqArrayArray, Array(Tuple(seq Int64, us Int64))),
    apologies SimpleAggregateFunction(groupUniqArrayArray, Array(Tuple(seq Int64, us Int64))),
    pause_events SimpleAggregateFunction(groupUniqArrayArray,
        Array(Tuple(seq Int64, status Int32, us Int64, opener UInt8))),
    flags SimpleAggregateFunction(groupBitOr, UInt8),
    ratings SimpleAggregateFunction(groupUniqArrayArray, Array(Tuple(seq Int64, rating Int32)))
)
ENGINE = AggregatingMergeTree
ORDER BY dossier_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS dossier_facts_mv TO dossier_facts AS
SELECT
    dossier_id,
    min(if(event_type = 'DossierReceived',
        (seq, toUnixTimestamp64Micro(occurred_at), unit_code, channel, ifNull(service_level, ''), procedure_code,
         ifNull(toUnixTimestamp64Micro(due_at), toInt64(-1))),
        (toInt64(9223372036854775807), toInt64(0), '', '', '', '', toInt64(-1)))) AS reception,
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

-- Backfill: the same aggregates over the events stored before the view existed. Running it again
-- (a migration interrupted and repeated) adds rows that merge into the same facts.
INSERT INTO dossier_facts
SELECT
    dossier_id,
    min(if(event_type = 'DossierReceived',
        (seq, toUnixTimestamp64Micro(occurred_at), unit_code, channel, ifNull(service_level, ''), procedure_code,
         ifNull(toUnixTimestamp64Micro(due_at), toInt64(-1))),
        (toInt64(9223372036854775807), toInt64(0), '', '', '', '', toInt64(-1)))) AS reception,
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
FROM events
WHERE event_type NOT IN ('SyncedToNational', 'ApplicantNotified', 'ResultCollected')
GROUP BY dossier_id;

-- The control sheet's step boundaries (inspection.controlsheet): every event that opens a step
-- (OPENS_STEP_SQL) or ends the handling (status 3, 7, 8, 9 or 10, AdminOverride and the
-- status-keeping events excepted), with who received the dossier in it (r_*) and who handed it
-- over (g_*). One row per (dossier_id, seq): a replayed event replaces itself (read with FINAL).
CREATE TABLE IF NOT EXISTS dossier_steps
(
    dossier_id String,
    seq Int64,
    procedure_code String,
    event_type LowCardinality(String),
    us Int64,
    is_start Bool,
    budget Nullable(Int32),
    due_us Nullable(Int64),
    r_actor String,
    r_role LowCardinality(String),
    r_unit String,
    g_actor String,
    g_unit String
)
ENGINE = ReplacingMergeTree
ORDER BY (dossier_id, seq);

CREATE MATERIALIZED VIEW IF NOT EXISTS dossier_steps_mv TO dossier_steps AS
SELECT
    dossier_id, seq, procedure_code, event_type, toUnixTimestamp64Micro(occurred_at) AS us,
    event_type IN ('DossierReceived', 'DossierTransferred', 'InterAgencyTransferred', 'StepHandedOver', 'StepReturned')
        OR (event_type = 'ResultApproved' AND (to_actor IS NOT NULL OR to_unit IS NOT NULL)) AS is_start,
    step_budget_minutes AS budget, toUnixTimestamp64Micro(step_due_at) AS due_us,
    if(event_type = 'DossierReceived', actor_id, coalesce(to_actor, '')) AS r_actor,
    if(event_type = 'DossierReceived', actor_role, coalesce(to_role, '')) AS r_role,
    if(event_type = 'DossierReceived', unit_code, coalesce(to_unit, unit_code)) AS r_unit,
    if(event_type = 'DossierReceived', '', actor_id) AS g_actor,
    if(event_type = 'DossierReceived', '', unit_code) AS g_unit
FROM events_feed
WHERE event_type IN ('DossierReceived', 'DossierTransferred', 'InterAgencyTransferred', 'StepHandedOver', 'StepReturned')
    OR (event_type = 'ResultApproved' AND (to_actor IS NOT NULL OR to_unit IS NOT NULL))
    OR (status IN (3, 7, 8, 9, 10)
        AND event_type NOT IN ('SyncedToNational', 'ApplicantNotified', 'ResultCollected', 'AdminOverride'));

INSERT INTO dossier_steps
SELECT
    dossier_id, seq, procedure_code, event_type, toUnixTimestamp64Micro(occurred_at) AS us,
    event_type IN ('DossierReceived', 'DossierTransferred', 'InterAgencyTransferred', 'StepHandedOver', 'StepReturned')
        OR (event_type = 'ResultApproved' AND (to_actor IS NOT NULL OR to_unit IS NOT NULL)) AS is_start,
    step_budget_minutes AS budget, toUnixTimestamp64Micro(step_due_at) AS due_us,
    if(event_type = 'DossierReceived', actor_id, coalesce(to_actor, '')) AS r_actor,
    if(event_type = 'DossierReceived', actor_role, coalesce(to_role, '')) AS r_role,
    if(event_type = 'DossierReceived', unit_code, coalesce(to_unit, unit_code)) AS r_unit,
    if(event_type = 'DossierReceived', '', actor_id) AS g_actor,
    if(event_type = 'DossierReceived', '', unit_code) AS g_unit
FROM events
WHERE event_type IN ('DossierReceived', 'DossierTransferred', 'InterAgencyTransferred', 'StepHandedOver', 'StepReturned')
    OR (event_type = 'ResultApproved' AND (to_actor IS NOT NULL OR to_unit IS NOT NULL))
    OR (status IN (3, 7, 8, 9, 10)
        AND event_type NOT IN ('SyncedToNational', 'ApplicantNotified', 'ResultCollected', 'AdminOverride'));
