"""docker-compose.yml, checked statically (Docker does not run where this project is built)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner

from dossier_audit.cli import main
from dossier_runtime.settings import ENVIRONMENT, Settings, clickhouse_server
from tests.test_readme import _envvars

ROOT = Path(__file__).resolve().parent.parent
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, Any] = COMPOSE["services"]


def test_services_and_profiles_are_as_documented() -> None:
    assert set(SERVICES) == {"kafka", "clickhouse", "migrate", "consumer", "simulator"}
    assert SERVICES["simulator"]["profiles"] == ["simulate"]
    assert all("profiles" not in SERVICES[s] for s in ("kafka", "clickhouse", "migrate", "consumer"))
    readme = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
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
    assert f"INTERNAL://{env['DOSSIER_KAFKA_BOOTSTRAP']}" in kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert ":9092" in kafka_env["KAFKA_LISTENERS"]
    assert env["DOSSIER_CLICKHOUSE_URL"] == "http://clickhouse:8123/dossier"
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


# deploy/cluster: the same stack on a ClickHouse cluster (2 shards x 2 replicas + Keeper).
CLUSTER_DIR = ROOT / "deploy" / "cluster"
CLUSTER_COMPOSE: dict[str, Any] = yaml.safe_load((CLUSTER_DIR / "docker-compose.cluster.yml").read_text("utf-8"))
CLUSTER_SERVICES: dict[str, Any] = CLUSTER_COMPOSE["services"]
NODES = sorted(name for name, s in CLUSTER_SERVICES.items() if s["image"].startswith("clickhouse/clickhouse-server:"))
CLUSTER_XML = ET.parse(CLUSTER_DIR / "config.d" / "cluster.xml").getroot()


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path → host path (relative to deploy/cluster) of a service's bind mounts."""
    found = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            found[target] = source
    return found


def _shards() -> list[list[str]]:
    (cluster,) = list(CLUSTER_XML.find("remote_servers") or [])
    return [[r.findtext("host") or "" for r in shard.findall("replica")] for shard in cluster.findall("shard")]


def test_the_single_node_compose_runs_without_a_cluster() -> None:
    assert COMPOSE["x-dossier-env"]["DOSSIER_CLICKHOUSE_CLUSTER"] == ""


def test_cluster_compose_passes_every_variable_and_names_the_configured_cluster() -> None:
    env = CLUSTER_COMPOSE["x-dossier-env"]
    assert set(env) == set(ENVIRONMENT)
    for name in ("migrate", "consumer", "simulator"):
        assert CLUSTER_SERVICES[name]["environment"] == env
    (cluster,) = list(CLUSTER_XML.find("remote_servers") or [])
    assert env["DOSSIER_CLICKHOUSE_CLUSTER"] == cluster.tag == "dossier"
    same = set(ENVIRONMENT) - {"DOSSIER_CLICKHOUSE_URL", "DOSSIER_CLICKHOUSE_CLUSTER"}
    assert {k: env[k] for k in same} == {k: COMPOSE["x-dossier-env"][k] for k in same}


def test_cluster_is_two_shards_of_two_replicas_and_every_host_is_a_node() -> None:
    shards = _shards()
    assert [len(s) for s in shards] == [2, 2]
    assert sorted(h for s in shards for h in s) == NODES
    for shard in CLUSTER_XML.iter("shard"):
        assert shard.findtext("internal_replication") == "true"
        for replica in shard.findall("replica"):
            assert replica.findtext("port") == "9000"
            assert replica.findtext("user") == "dossier"
            assert replica.find("password").get("from_env") == "CLICKHOUSE_PASSWORD"  # type: ignore[union-attr]


def test_every_node_has_its_own_macros_and_the_shared_config() -> None:
    shard_of = {host: i for i, shard in enumerate(_shards(), start=1) for host in shard}
    replicas = set()
    for node in NODES:
        service = CLUSTER_SERVICES[node]
        assert service["hostname"] == node
        mounts = _mounts(service)
        assert mounts["/etc/clickhouse-server/config.d/cluster.xml"] == "./config.d/cluster.xml"
        assert mounts["/etc/clickhouse-server/users.d/dossier.xml"] == "./users.d/dossier.xml"
        macros = ET.parse(CLUSTER_DIR / mounts["/etc/clickhouse-server/config.d/macros.xml"]).getroot().find("macros")
        assert macros is not None, node
        assert macros.findtext("replica") == node
        assert macros.findtext("shard") == f"{shard_of[node]:02d}"
        assert macros.findtext("cluster") == CLUSTER_COMPOSE["x-dossier-env"]["DOSSIER_CLICKHOUSE_CLUSTER"]
        replicas.add(macros.findtext("replica"))
        for source in mounts.values():
            assert (CLUSTER_DIR / source).is_file(), source
        assert service["environment"]["CLICKHOUSE_DB"] == "dossier"
        assert service["depends_on"]["keeper"]["condition"] == "service_healthy"
        assert "8123" in service["healthcheck"]["test"][1]
    assert len(replicas) == len(NODES)  # unique across the cluster: the all-nodes tables share a Keeper path


def test_keeper_address_agrees_everywhere() -> None:
    node = CLUSTER_XML.find("zookeeper/node")
    assert node is not None
    keeper = ET.parse(CLUSTER_DIR / "keeper" / "keeper_config.xml").getroot()
    assert node.findtext("host") == CLUSTER_SERVICES["keeper"]["hostname"] == "keeper"
    assert node.findtext("port") == keeper.findtext("keeper_server/tcp_port") == "9181"
    assert keeper.findtext("keeper_server/raft_configuration/server/hostname") == "keeper"
    assert "9181" in CLUSTER_SERVICES["keeper"]["healthcheck"]["test"][-1]
    assert _mounts(CLUSTER_SERVICES["keeper"]) == {
        "/etc/clickhouse-keeper/keeper_config.xml": "./keeper/keeper_config.xml"
    }
    assert CLUSTER_XML.findtext("distributed_ddl/path")


def test_cluster_images_are_pinned_and_match_the_single_node_stack() -> None:
    server = SERVICES["clickhouse"]["image"]
    for name, service in CLUSTER_SERVICES.items():
        if "image" in service and not service["image"].startswith("dossier-audit"):
            assert re.match(r"^[\w./-]+:\d+(\.\d+)+$", service["image"]), name
    assert {CLUSTER_SERVICES[n]["image"] for n in NODES} == {server}
    assert CLUSTER_SERVICES["keeper"]["image"].split(":")[1] == server.split(":")[1]
    assert CLUSTER_SERVICES["kafka"]["image"] == SERVICES["kafka"]["image"]


def test_cluster_ports_volumes_and_startup_order() -> None:
    host_ports = [p.rsplit(":", 1)[0] for s in CLUSTER_SERVICES.values() for p in s.get("ports", [])]
    assert len(host_ports) == len(set(host_ports))
    declared = set(CLUSTER_COMPOSE["volumes"])
    used = {v.split(":")[0] for s in CLUSTER_SERVICES.values() for v in s.get("volumes", []) if not v.startswith("./")}
    assert used == declared
    env = CLUSTER_COMPOSE["x-dossier-env"]
    url_host = re.search(r"^http://([\w-]+):8123/dossier$", env["DOSSIER_CLICKHOUSE_URL"])
    assert url_host and url_host.group(1) in NODES
    assert set(CLUSTER_SERVICES["migrate"]["depends_on"]) == set(NODES)  # ON CLUSTER needs every node
    assert all(c["condition"] == "service_healthy" for c in CLUSTER_SERVICES["migrate"]["depends_on"].values())
    consumer = CLUSTER_SERVICES["consumer"]
    assert consumer["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert consumer["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert CLUSTER_SERVICES["migrate"]["build"] == "../.."
    assert (CLUSTER_DIR / CLUSTER_SERVICES["migrate"]["build"] / "Dockerfile").is_file()


def test_cluster_query_defaults_make_distributed_inserts_synchronous() -> None:
    profile = ET.parse(CLUSTER_DIR / "users.d" / "dossier.xml").getroot().find("profiles/default")
    assert profile is not None
    assert profile.findtext("distributed_foreground_insert") == "1"
    assert profile.findtext("distributed_product_mode") == "global"


def test_cluster_env_substitutions_are_in_env_example() -> None:
    text = (CLUSTER_DIR / "docker-compose.cluster.yml").read_text(encoding="utf-8")
    required = set(re.findall(r"\$\{(\w+):\?", text))
    example = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines() if "=" in line}
    assert required <= example


# The stack from the host: what the services, their health checks, the listeners and the CLI's variables say
# must agree, for the single-node and the cluster compose file alike.
def _env_example() -> dict[str, str]:
    """.env.example's values, ``${VAR}`` references expanded as the shell and compose expand them."""
    values: dict[str, str] = {}
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            name, value = line.split("=", 1)
            values[name] = re.sub(r"\$\{(\w+)\}", lambda m: values.get(m.group(1), ""), value)
    return values


def _substituted(value: object, env: dict[str, str]) -> str:
    """A compose value with ``${VAR:-default}`` and ``${VAR:?message}`` filled from ``env``."""

    def one(match: re.Match[str]) -> str:
        name, op, default = match.group(1), match.group(2), match.group(3)
        return env.get(name) or (default if op == ":-" else "")

    return re.sub(r"\$\{(\w+)(:[-?])?([^}]*)\}", one, str(value))


def _published(service: dict[str, Any]) -> dict[int, int]:
    """Host port → container port of a service's published ports (host side on loopback only)."""
    found = {}
    for entry in service.get("ports", []):
        host_ip, host_port, container_port = str(entry).split(":")
        assert host_ip == "127.0.0.1", f"{entry}: publish on loopback only"
        found[int(host_port)] = int(container_port)
    return found


def _listeners(value: str) -> dict[str, tuple[str, int]]:
    found = {}
    for item in value.split(","):
        name, _, address = item.partition("://")
        host, _, port = address.rpartition(":")
        found[name] = (host, int(port))
    return found


@pytest.mark.parametrize("compose", [COMPOSE, CLUSTER_COMPOSE], ids=["single-node", "cluster"])
def test_health_checks_listeners_and_the_cli_variables_agree(compose: dict[str, Any]) -> None:
    services, env, example = compose["services"], compose["x-dossier-env"], _env_example()
    # Every service the CLI services wait for is healthy by a check of its own, on a port it listens on.
    for name, service in services.items():
        for needed, condition in service.get("depends_on", {}).items():
            if condition["condition"] == "service_healthy":
                assert services[needed]["healthcheck"]["test"], (name, needed)
    kafka = services["kafka"]["environment"]
    listeners, advertised = _listeners(kafka["KAFKA_LISTENERS"]), _listeners(kafka["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(item.split(":") for item in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(advertised) <= set(listeners) and set(listeners) <= set(protocols)
    assert kafka["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    for name, (_, port) in advertised.items():
        assert listeners[name][1] == port, f"{name} is advertised on another port than it listens on"
    health = " ".join(services["kafka"]["healthcheck"]["test"])
    assert re.search(r"--bootstrap-server localhost:(\d+)", health).group(1) in {  # type: ignore[union-attr]
        str(port) for _, port in listeners.values()
    }
    # Inside the network the services use one advertised listener; the host uses another, on a published port.
    assert env["DOSSIER_KAFKA_BOOTSTRAP"] in {f"{h}:{p}" for h, p in advertised.values()}
    host_side = {f"{h}:{p}" for h, p in advertised.values() if h in ("localhost", "127.0.0.1")}
    assert example["DOSSIER_KAFKA_BOOTSTRAP"] in host_side
    kafka_host_port = int(example["DOSSIER_KAFKA_BOOTSTRAP"].rsplit(":", 1)[1])
    assert _published(services["kafka"])[kafka_host_port] == kafka_host_port  # advertised = published = listened
    # ClickHouse: the services' URL names a node's HTTP port, the host's URL a port published to it.
    inside = clickhouse_server(env["DOSSIER_CLICKHOUSE_URL"])
    node = services[inside.host]
    assert str(inside.port) in node["healthcheck"]["test"][1]
    outside = clickhouse_server(example["DOSSIER_CLICKHOUSE_URL"])
    assert outside.host in ("localhost", "127.0.0.1")
    published = {
        h: c for s in services.values() if "clickhouse-server" in s.get("image", "") for h, c in _published(s).items()
    }
    assert published[outside.port] == inside.port == 8123
    assert _published(node)[outside.port] == inside.port, "the host's URL reaches the node the services use"
    ch_env = node["environment"]
    for url in (inside, outside):
        assert url.database == ch_env["CLICKHOUSE_DB"]
    assert env["DOSSIER_CLICKHOUSE_USER"] == example["DOSSIER_CLICKHOUSE_USER"] == ch_env["CLICKHOUSE_USER"]
    assert env["DOSSIER_CLICKHOUSE_PASSWORD"] == ch_env["CLICKHOUSE_PASSWORD"]  # the same ${CLICKHOUSE_PASSWORD}
    assert example["DOSSIER_CLICKHOUSE_PASSWORD"] == example["CLICKHOUSE_PASSWORD"]
    # Every DOSSIER_* variable compose or .env.example sets is one the CLI reads, and compose sets them all.
    assert set(env) == set(ENVIRONMENT)
    assert {k for k in example if k.startswith("DOSSIER_")} <= set(ENVIRONMENT)
    assert _envvars(main) == set(ENVIRONMENT)


@pytest.mark.parametrize("side", ["services", "host"])
def test_the_cli_accepts_what_compose_and_env_example_give_it(side: str) -> None:
    """The values compose passes the services, and .env.example's host-side ones, start the real CLI."""
    example = _env_example()
    example["CLICKHOUSE_PASSWORD"] = "p@ss:w/rd#1%"  # any character: the login is not in the URL
    example["DOSSIER_CLICKHOUSE_PASSWORD"] = example["CLICKHOUSE_PASSWORD"]
    if side == "services":
        env = {k: _substituted(v, example) for k, v in COMPOSE["x-dossier-env"].items()}
    else:
        env = {k: v for k, v in example.items() if k in ENVIRONMENT}
    seen: list[Settings] = []

    @main.command("probe-settings", hidden=True)
    @click.pass_obj
    def probe(settings: Settings) -> None:
        seen.append(settings)

    try:
        result = CliRunner().invoke(main, ["probe-settings"], env=env)
    finally:
        main.commands.pop("probe-settings")
    assert result.exit_code == 0, result.output
    (settings,) = seen
    server = settings.clickhouse_server
    assert server is not None and server.password == "p@ss:w/rd#1%" and server.username == "dossier"
    assert server.read_timeout == 300
    assert "p@ss" not in repr(settings) and "p@ss" not in str(settings.describe())
