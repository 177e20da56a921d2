"""docker-compose.yml, checked statically (Docker does not run where this project is built)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from dossier_runtime.settings import ENVIRONMENT

ROOT = Path(__file__).resolve().parent.parent
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, Any] = COMPOSE["services"]


def test_services_and_profiles_are_as_documented() -> None:
    assert set(SERVICES) == {"kafka", "clickhouse", "migrate", "consumer", "simulator"}
    assert SERVICES["simulator"]["profiles"] == ["simulate"]
    assert all("profiles" not in SERVICES[s] for s in ("kafka", "clickhouse", "migrate", "consumer"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docker compose --profile simulate" in (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert "docker compose" in readme


def test_images_are_pinned() -> None:
    for name in ("kafka", "clickhouse"):
        image = SERVICES[name]["image"]
        assert re.match(r"^[\w./-]+:\d+(\.\d+)+$", image), image


def test_every_dossier_variable_is_one_the_code_reads_and_vice_versa() -> None:
    env = COMPOSE["x-dossier-env"]
    assert set(env) == set(ENVIRONMENT)
    for name in ("migrate", "consumer", "simulator"):
        assert SERVICES[name]["environment"] == env


def test_env_example_covers_every_required_substitution() -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    required = set(re.findall(r"\$\{(\w+):\?", text))
    example = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines() if "=" in line}
    assert required <= example
    for var in example:
        assert var in ENVIRONMENT or var in text, f".env.example sets {var}, which nothing reads"


def test_ports_and_addresses_agree() -> None:
    env = COMPOSE["x-dossier-env"]
    kafka_env = SERVICES["kafka"]["environment"]
    assert kafka_env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{env['DOSSIER_KAFKA_BOOTSTRAP']}"
    assert ":9092" in kafka_env["KAFKA_LISTENERS"]
    assert "@clickhouse:8123/dossier" in env["DOSSIER_CLICKHOUSE_URL"]
    assert SERVICES["clickhouse"]["environment"]["CLICKHOUSE_DB"] == "dossier"
    assert "8123" in SERVICES["clickhouse"]["healthcheck"]["test"][1]


def test_named_volumes_are_declared_and_used() -> None:
    declared = set(COMPOSE["volumes"])
    used = {v.split(":")[0] for s in SERVICES.values() for v in s.get("volumes", [])}
    assert used == declared


def test_consumers_wait_for_migrations_and_a_healthy_broker() -> None:
    consumer = SERVICES["consumer"]
    assert consumer["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert consumer["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert SERVICES["migrate"]["depends_on"]["clickhouse"]["condition"] == "service_healthy"
    for name in ("kafka", "clickhouse"):
        assert "healthcheck" in SERVICES[name]
