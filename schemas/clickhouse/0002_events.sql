-- The raw event log: one row per stored event, append-only, every contract field of
-- schemas/avro/dossier_event.v1.avsc as a typed column under its contract name, plus where
-- the event came from (_topic/_partition/_offset: a Kafka position, or file:<name>/0/record
-- index for bulk loads) and when it was stored.
--
-- Types: timestamps DateTime64(6, 'UTC') (timestamp-micros), hashes FixedString(32), enum
-- symbols as String (ClickHouse's Arrow output turns Enum8 into bare integers; String keeps
-- the symbol everywhere and takes future symbols without a migration), unions with null as
-- Nullable, arrays as Array(String). schemas.hashchain.canonical_sql() runs on these columns.
--
-- ORDER BY (dossier_id, seq): a dossier's history reads ~1 granule (platform.md C-5).
CREATE TABLE IF NOT EXISTS events
(
    event_id            String,
    dossier_id          String,
    seq                 Int64,
    event_type          String,
    occurred_at         DateTime64(6, 'UTC'),
    recorded_at         DateTime64(6, 'UTC'),
    unit_code           String,
    actor_id            String,
    actor_role          String,
    procedure_code      String,
    rule_set            String,
    applicant_ref       String,
    applicant_kind      String,
    channel             String,
    status              Int32,
    prev_hash           FixedString(32),
    hash                FixedString(32),
    procedure_version   Nullable(String),
    step_code           Nullable(String),
    due_at              Nullable(DateTime64(6, 'UTC')),
    form_code           Nullable(String),
    n_attachments       Int32,
    to_unit             Nullable(String),
    to_actor            Nullable(String),
    to_role             Nullable(String),
    step_due_at         Nullable(DateTime64(6, 'UTC')),
    step_budget_minutes Nullable(Int32),
    reason              Nullable(String),
    new_due_at          Nullable(DateTime64(6, 'UTC')),
    requested_documents Array(String),
    documents           Array(String),
    time_limit_value    Nullable(Int32),
    time_limit_unit     Nullable(String),
    deadline_convention Nullable(String),
    service_level       Nullable(String),
    amount_vnd          Nullable(Int64),
    payment_channel     Nullable(String),
    clock_stopped       Nullable(Bool),
    result_ref          Nullable(String),
    result_electronic   Nullable(Bool),
    return_channel      Nullable(String),
    rating              Nullable(Int32),
    override_field      Nullable(String),
    override_old        Nullable(String),
    override_new        Nullable(String),
    ref_seq             Nullable(Int64),
    _topic              String,
    _partition          Int32,
    _offset             Int64,
    _ingested_at        DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (dossier_id, seq);
