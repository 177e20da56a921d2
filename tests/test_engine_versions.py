"""One supported ClickHouse range: the constant, the compose pins, the README, the test matrix and the refusal agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from dossier_audit.cli import main
from dossier_runtime import engineversion
from dossier_runtime.errors import StoreError
from tests import chserver

ROOT = Path(__file__).resolve().parent.parent
LOWEST = f"{engineversion.MINIMUM[0]}.{engineversion.MINIMUM[1]}"


def _images() -> dict[str, str]:
    found = {}
    for path in ("docker-compose.yml", "deploy/cluster/docker-compose.cluster.yml"):
        services = yaml.safe_load((ROOT / path).read_text(encoding="utf-8"))["services"]
        for name, service in services.items():
            image = str(service.get("image", ""))
            if image.startswith(("clickhouse/clickhouse-server:", "clickhouse/clickhouse-keeper:")):
                found[f"{path}:{name}"] = image
    return found


def test_the_compose_files_pin_the_lowest_supported_release() -> None:
    images = _images()
    assert "docker-compose.yml:clickhouse" in images and "deploy/cluster/docker-compose.cluster.yml:keeper" in images
    for where, image in images.items():
        tag = image.split(":", 1)[1]
        assert engineversion.supported(tag), (where, image)
        assert engineversion.release(tag) == engineversion.MINIMUM, (where, image)  # the LTS, for a deployment


def test_the_docs_and_the_test_matrix_say_the_same_range() -> None:
    readme = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    assert engineversion.SUPPORTED in readme
    assert f"clickhouse/clickhouse-server:{LOWEST}" in readme
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    minimum = re.search(r"^CH_MINIMUM := (\S+)$", makefile, re.M)
    # chdb-core X.Y.z embeds ClickHouse X.Y
    assert minimum and engineversion.release(minimum.group(1)) == engineversion.MINIMUM
    assert "DOSSIER_TEST_CHSERVER_PYTHONS=" in makefile


def test_the_embedded_engine_is_in_the_range() -> None:
    import chdb

    assert engineversion.supported(chdb.engine_version), chdb.engine_version
    assert engineversion.release(chdb.engine_version) == engineversion.NEWEST  # the newest is tested by every test


@pytest.mark.parametrize(
    ("version", "refused"),
    [
        ("24.8.14.39", "upgrade it"),
        ("25.8.2.1", "upgrade it"),
        ("26.3.9.1", None),
        ("26.9.2.1", None),
        ("26.10.1.1", "run a supported one"),
        ("", "upgrade it"),
    ],
)
def test_the_refusal_names_the_version_and_the_range(version: str, refused: str | None) -> None:
    if refused is None:
        engineversion.check(version, "ClickHouse at h:8123")
        return
    with pytest.raises(StoreError) as caught:
        engineversion.check(version, "ClickHouse at h:8123")
    message = str(caught.value)
    assert message.startswith(f"ClickHouse at h:8123 runs version {version or '(none given)'}, ")
    assert message.endswith(refused)
    assert "ClickHouse 26.3 (LTS) through 26.9" in message
    assert message.count(". ") == 0 and "\n" not in message  # one sentence


def test_a_server_outside_the_range_is_refused_on_connect(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real handshake: a 26.9 engine behind HTTP, with the range moved above it, is refused (exit 1)."""
    server = chserver.start(tmp_path / "data")
    try:
        url = server.fresh_database()
        monkeypatch.setattr(engineversion, "MINIMUM", (26, 10))
        done = CliRunner().invoke(main, ["consume", "status"], env={"DOSSIER_CLICKHOUSE_URL": url})
    finally:
        server.stop()
    assert done.exit_code == 1, done.output
    assert f"ClickHouse at 127.0.0.1:{server.port} runs version {server.version}, which" in done.output
    assert "Traceback" not in done.output
