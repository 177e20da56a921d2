"""``dossier schema check``: prove the released chain is FULL_TRANSITIVE.

Three independent proofs, all of which must hold:

1. structurally, every released version can read every other one
   (:mod:`schemas.compat`, the Avro resolution rules);
2. every golden payload of every version decodes with every released
   reader, and with the current one into exactly the values of its JSON form;
3. the current version's golden payloads are reproduced byte for byte by the
   encoder, and there is one for every event type.
"""

from __future__ import annotations

import dataclasses
import io

from fastavro import schemaless_reader

from schemas.codec import HEADER_SIZE, decode, encode, writer_schema
from schemas.compat import full_transitive_problems
from schemas.errors import ContractError
from schemas.events import EventType
from schemas.golden import GoldenPayload, golden_payloads
from schemas.jsonform import from_json, to_json
from schemas.registry import current_schema, released_schemas


@dataclasses.dataclass(frozen=True)
class CheckReport:
    versions: tuple[int, ...]
    payloads_checked: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_payload(golden: GoldenPayload) -> list[str]:
    where = f"golden v{golden.version}/{golden.event_type}"
    problems: list[str] = []
    try:
        writer = writer_schema(golden.payload)
        for reader in released_schemas():
            schemaless_reader(io.BytesIO(golden.payload[HEADER_SIZE:]), writer.parsed, reader.parsed)
        decoded = to_json(decode(golden.payload))
    except (ContractError, ValueError, TypeError, KeyError, EOFError) as exc:
        return [f"{where}: does not decode: {exc}"]
    if writer.version != golden.version:
        problems.append(f"{where}: written with schema v{writer.version}, filed under v{golden.version}")
    for name, value in golden.json_form.items():
        if decoded.get(name) != value:
            problems.append(f"{where}: field {name} decodes as {decoded.get(name)!r}, golden says {value!r}")
    if golden.version == current_schema().version:
        try:
            again = encode(from_json(golden.json_form))
        except ContractError as exc:
            return [*problems, f"{where}: JSON form no longer encodes: {exc}"]
        if again != golden.payload:
            problems.append(f"{where}: the encoder no longer reproduces the golden bytes")
    return problems


def check_released() -> CheckReport:
    """Run all three proofs over the schemas and golden files shipped with the package."""
    schemas = released_schemas()
    problems = full_transitive_problems([(s.version, dict(s.source)) for s in schemas])
    count = 0
    current_types = set()
    for golden in golden_payloads():
        count += 1
        problems.extend(_check_payload(golden))
        if golden.version == current_schema().version:
            current_types.add(golden.event_type)
    for event_type in EventType:
        if event_type is not EventType.UNKNOWN and event_type.value not in current_types:
            problems.append(f"no golden payload for {event_type.value} in v{current_schema().version}")
    return CheckReport(tuple(s.version for s in schemas), count, tuple(problems))
