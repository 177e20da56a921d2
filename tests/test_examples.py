"""The example consumers for other teams (examples/), run against the embedded broker after a simulated city."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

from dossier_runtime.broker import BrokerHandle
from dossier_runtime.settings import Settings
from producers.cli_simulate import simulate_cmd
from schemas.registry import released_schemas

pytestmark = pytest.mark.broker
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ["consume_kafka_python.py", "consume_confluent.py"]


def test_each_example_decodes_every_message_of_a_simulated_city(
    broker: BrokerHandle, topic: str, tmp_path: Path
) -> None:
    settings = Settings(kafka_bootstrap=broker.bootstrap, topic=topic, partitions=3)
    argv = ["--dossiers", "40", "--days", "3", "--seed", "5", "--out", str(tmp_path), "--publish", "--quiet"]
    result = CliRunner().invoke(simulate_cmd, argv, obj=settings, env={"DOSSIER_PSEUDONYM_KEY": "k" * 32})
    assert result.exit_code == 0, result.output
    published = json.loads(result.stdout)["events"]
    assert published > 40

    def run(example: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, str(ROOT / "examples" / example), broker.bootstrap, topic, "--idle", "2"]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    with ThreadPoolExecutor(len(EXAMPLES)) as pool:  # each in its own group: both read everything
        done = dict(zip(EXAMPLES, pool.map(run, EXAMPLES), strict=True))
    for example, proc in done.items():
        assert proc.returncode == 0, f"{example}\n{proc.stderr[-3000:]}"
        lines = proc.stdout.splitlines()
        assert proc.stderr.strip().endswith(f"{published} events decoded"), (example, proc.stderr[-2000:])
        positions = {tuple(line.split()[:2]) for line in lines}
        assert len(lines) == len(positions) == published, example  # every message once
        assert {line.split()[2] for line in lines} == {
            line.split()[2] for line in done[EXAMPLES[0]].stdout.splitlines()
        }


def test_avro_python_fingerprint_differs_and_the_readme_way_around_matches_the_header() -> None:
    """Apache avro's Schema.fingerprint() hashes another canonical form; fastavro's matches the wire."""
    import avro.schema
    from fastavro.schema import fingerprint, to_parsing_canonical_form

    for released in released_schemas():
        source = json.loads((ROOT / "schemas" / "avro" / released.filename).read_text(encoding="utf-8"))
        assert avro.schema.parse(json.dumps(source)).fingerprint().hex() != released.fingerprint_hex
        assert fingerprint(to_parsing_canonical_form(source), "CRC-64-AVRO") == released.fingerprint_hex
