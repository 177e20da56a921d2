-- The catalogue the inspection rules need: administrative units, officials, procedures.
-- Loaded from JSON Lines by `dossier consume load-catalogue DIR`; reloading replaces rows
-- with the same key (ReplacingMergeTree on _loaded_at). Query with FINAL. A missing valid_from
-- is stored as 1900-01-01 (valid since always); a missing valid_to as NULL (still valid).
CREATE TABLE IF NOT EXISTS units
(
    unit_code String,
    name String,
    level LowCardinality(String),
    parent_code Nullable(String),
    valid_from Date32,
    valid_to Nullable(Date32),
    _loaded_at DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(_loaded_at)
ORDER BY (unit_code, valid_from);

CREATE TABLE IF NOT EXISTS officials
(
    actor_id String,
    unit_code String,
    role LowCardinality(String),
    _loaded_at DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(_loaded_at)
ORDER BY (actor_id, unit_code);

CREATE TABLE IF NOT EXISTS procedures
(
    procedure_code String,
    version String,
    name String,
    level LowCardinality(String),
    time_limit_value Nullable(Int32),
    time_limit_unit LowCardinality(String),
    service_level LowCardinality(String),
    has_fee Bool,
    fee_vnd Nullable(Int64),
    paper_result Bool,
    same_day Bool,
    inter_agency Bool,
    clock_stops_for_financial Bool,
    component_codes Array(String),
    step_budgets Array(Tuple(step_code String, role String, minutes Int32)),
    valid_from Nullable(Date32),
    valid_to Nullable(Date32),
    _loaded_at DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(_loaded_at)
ORDER BY (procedure_code, version);
