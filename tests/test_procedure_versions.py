"""Procedure versions in force: a dossier whose events name no version is judged by the one in force at reception.

The catalogue holds two versions of one procedure: A (2023-01-01 to 2024-02-29, its last day) and B (from
2024-03-01). A version is in force from 00:00 Asia/Ho_Chi_Minh on valid_from, so 2024-02-29 23:59 local is
A's and 2024-03-01 00:00 local (2024-02-29 17:00 UTC) is B's. The rules (R7, R16, R20) read the real store;
the importer chooses the same version in Python.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from inspection.rules.base import GAP_NO_PROCEDURE, GAP_NO_VERSION, GAP_NOT_IN_FORCE, Scope, catalogue_versions
from producers.importer import import_files
from producers.importmapping import DossierDefaults, ImportMapping
from producers.importrows import read_procedures
from schemas.catalogue import Procedure, version_in_force
from schemas.events import DossierEvent, EventType
from tests.eventfactory import VN, history, make_event
from tests.test_audit_store import AuditStore, Findings

E = EventType
CODE = "1.009001"
ENDED = "1.009002"  # one version, ended 2023-12-31
BEFORE = "2024-02-29 23:59"  # A in force (its last day)
AFTER = "2024-03-01 00:00"  # B in force (its first minute)

#: A lists {X, Y}, is not same-day and issues a paper result; B lists {X, Z}, is same-day, electronic result.
VERSIONS: dict[str, dict[str, Any]] = {
    "A": {
        "valid_from": "2023-01-01",
        "valid_to": "2024-02-29",
        "component_codes": ["X", "Y"],
        "same_day": False,
        "paper_result": True,
    },
    "B": {
        "valid_from": "2024-03-01",
        "valid_to": None,
        "component_codes": ["X", "Z"],
        "same_day": True,
        "paper_result": False,
    },
}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=VN)


def _dossier(n: int, received: str, *after: tuple[EventType, int, dict[str, Any]], **r: Any) -> list[DossierEvent]:
    """A dossier of procedure CODE received at ``received`` (local), then ``after`` (each at 2024-03-04 08:00+)."""
    fields = {"procedure_code": CODE, "form_code": "01", "due_at": at("2024-03-08 17:00"), **r}
    steps = [make_event(E.DOSSIER_RECEIVED, seq=1, status=2, at=at(received), **fields)]
    for i, (kind, status, extra) in enumerate(after):
        when = at(f"2024-03-04 08:0{i}")
        extra = {"procedure_code": fields["procedure_code"], "recorded_at": when, **extra}
        steps.append(make_event(kind, seq=1, status=status, at=when, **extra))
    return history(*steps, dossier_id=f"000.00.31.H29-240301-{n:04d}")


def _request(*docs: str) -> tuple[EventType, int, dict[str, Any]]:
    return (E.SUPPLEMENT_REQUESTED, 5, {"requested_documents": docs})


_PAPER_RESULT = (E.RESULT_ISSUED, 9, {"result_electronic": False})

#: name -> (rule, dossier, expected evidence or None)
CASES: dict[str, tuple[str, list[DossierEvent]]] = {}
EXPECTED: dict[str, tuple[int, ...] | None] = {}


def case(name: str, rule: str, expected: tuple[int, ...] | None, events: list[DossierEvent]) -> None:
    CASES[name] = (rule, events)
    EXPECTED[name] = expected


# R7: Z is only in B, Y only in A.
case("r7-z-the-minute-before", "R7", (2,), _dossier(1, BEFORE, _request("Z")))
case("r7-z-the-minute-after", "R7", None, _dossier(2, AFTER, _request("Z")))
case("r7-y-the-minute-before", "R7", None, _dossier(3, BEFORE, _request("Y")))
case("r7-y-the-minute-after", "R7", (2,), _dossier(4, AFTER, _request("Y")))
case("r7-named-a-after", "R7", (2,), _dossier(5, AFTER, _request("Z"), procedure_version="A"))
case("r7-named-b-before", "R7", (2,), _dossier(6, BEFORE, _request("Y"), procedure_version="B"))
case("r7-before-the-first-version", "R7", None, _dossier(7, "2022-12-31 23:59", _request("Z", "Q")))
case("r7-named-unknown-version", "R7", None, _dossier(8, AFTER, _request("Q"), procedure_version="C"))
case("r7-after-the-last-valid-to", "R7", None, _dossier(9, AFTER, _request("Q"), procedure_code=ENDED))
case("r7-last-day-of-the-last", "R7", (2,), _dossier(10, "2023-12-31 23:59", _request("Q"), procedure_code=ENDED))
# R16: A is not same-day (a reception without form_code is a finding), B is.
case("r16-the-minute-before", "R16", (1,), _dossier(11, BEFORE, form_code=None))
case("r16-the-minute-after", "R16", None, _dossier(12, AFTER, form_code=None))
case("r16-named-a-after", "R16", (1,), _dossier(13, AFTER, form_code=None, procedure_version="A"))
case("r16-before-the-first-version", "R16", None, _dossier(14, "2022-12-31 23:59", form_code=None))
# R20 (b): A issues a paper result that must be digitised, B does not.
case("r20-the-minute-before", "R20", (2,), _dossier(15, BEFORE, _PAPER_RESULT))
case("r20-the-minute-after", "R20", None, _dossier(16, AFTER, _PAPER_RESULT))
case("r20-named-a-after", "R20", (2,), _dossier(17, AFTER, _PAPER_RESULT, procedure_version="A"))
case("r20-before-the-first-version", "R20", None, _dossier(18, "2022-12-31 23:59", _PAPER_RESULT))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuditStore]:
    s = AuditStore(tmp_path_factory.mktemp("versions"))
    s.add([e for _, events in CASES.values() for e in events])
    for version, fields in VERSIONS.items():
        s.add_procedure(procedure_code=CODE, version=version, **fields)
    s.add_procedure(procedure_code=ENDED, version="2023", valid_from="2023-01-01", valid_to="2023-12-31")
    yield s
    s.close()


@pytest.fixture(scope="module")
def found(store: AuditStore) -> Findings:
    return store.findings("R7", "R16", "R20")


@pytest.mark.parametrize("name", list(CASES))
def test_version_at_reception(found: Findings, name: str) -> None:
    rule, events = CASES[name]
    assert found.get((events[0].dossier_id, rule)) == EXPECTED[name]


def test_the_explanation_names_the_version_judged(store: AuditStore) -> None:
    from inspection.audit import audit, select_rules

    report = audit(store.query, select_rules(["R7"]))
    text = {f.dossier_id: f.explanation for f in report.findings}
    assert text[CASES["r7-y-the-minute-after"][1][0].dossier_id] == (
        f"requested Y: not in the published components of {CODE} version B (in force at reception)"
    )
    assert text[CASES["r7-named-a-after"][1][0].dossier_id] == (
        f"requested Z: not in the published components of {CODE} version A"
    )


def test_catalogue_versions_say_why_a_dossier_is_not_assessed(store: AuditStore) -> None:
    rows = store.query(f"SELECT dossier_id, version, gap FROM ({catalogue_versions(Scope())})", {})
    by_case = {name: (events[0].dossier_id) for name, (_, events) in CASES.items()}
    got = {d: (v, g) for d, v, g in rows}
    assert got[by_case["r7-z-the-minute-before"]] == ("A", "")
    assert got[by_case["r7-z-the-minute-after"]] == ("B", "")
    assert got[by_case["r7-named-a-after"]] == ("A", "")
    assert got[by_case["r7-before-the-first-version"]] == ("", GAP_NOT_IN_FORCE)
    assert got[by_case["r7-after-the-last-valid-to"]] == ("", GAP_NOT_IN_FORCE)
    assert got[by_case["r7-named-unknown-version"]] == ("", GAP_NO_VERSION)
    unknown = history((E.DOSSIER_RECEIVED, 2, {"procedure_code": "9.999999"}), dossier_id="000.00.31.H29-240301-0099")
    store.add(unknown)
    rows = store.query(
        f"SELECT gap FROM ({catalogue_versions(Scope())}) WHERE dossier_id = {{d:String}}", {"d": unknown[0].dossier_id}
    )
    assert rows == [(GAP_NO_PROCEDURE,)]


def test_the_gaps_are_read_from_the_first_rows_and_miss_no_dossier(store: AuditStore) -> None:
    """Coverage reads a dossier's procedure from its R and seq 1 only; one whose history has neither still counts."""
    from inspection.coverage import rule_coverage

    def gaps(first_rows: bool) -> dict[str, int]:
        sql = f"SELECT gap, count() FROM ({catalogue_versions(Scope(), first_rows=first_rows)}) GROUP BY gap"
        return dict(store.query(sql, {}))

    assert gaps(True) == gaps(False)
    headless = _dossier(97, AFTER, _request("Z"), procedure_code="9.999998")[1:]  # seq 2, no R: verify says so
    store.add(headless)
    full = gaps(False)
    assert gaps(True).get(GAP_NO_PROCEDURE, 0) == full[GAP_NO_PROCEDURE] - 1
    assert rule_coverage(store.query, ["R7"])["R7"].reasons[GAP_NO_PROCEDURE] == full[GAP_NO_PROCEDURE]


def _procedure(version: str, **fields: Any) -> Procedure:
    row = {
        "procedure_code": CODE, "version": version, "name": "Thủ tục thử", "level": "commune",
        "time_limit_value": 3, "time_limit_unit": "WORKING_DAYS", "service_level": "FULL_ONLINE", "has_fee": False,
        "fee_vnd": 0, "paper_result": False, "same_day": False, "inter_agency": False,
        "clock_stops_for_financial": False, "component_codes": ["X"], "step_budgets": [],
        "valid_from": "2018-01-01", "valid_to": None, **fields,
    }  # fmt: skip
    return Procedure.from_json(row)


def test_python_chooses_the_version_sql_chooses() -> None:
    versions = [_procedure(v, **{k: f[k] for k in ("valid_from", "valid_to")}) for v, f in VERSIONS.items()]
    assert version_in_force(versions, at(BEFORE)).version == "A"  # type: ignore[union-attr]
    assert version_in_force(versions, at(AFTER)).version == "B"  # type: ignore[union-attr]
    assert version_in_force(versions, at("2022-12-31 23:59")) is None
    assert version_in_force([versions[0]], at(AFTER)) is None  # after A's last day
    with pytest.raises(ValueError, match="timezone-aware"):
        version_in_force(versions, datetime(2024, 3, 1))  # noqa: DTZ001


def _export(path: Path, rows: list[tuple[str, str, int]]) -> Path:
    header = (
        "MaHoSo,NguoiXuLy,ChucDanh,ThoiDiemXuLy,PhongBanXuLy,NoiDungXuLy,TrangThai,NgayBatDau,NgayKetThucTheoQuyDinh"
    )
    lines = [header]
    for dossier, stamp, status in rows:
        due = "20240308170000" if status == 2 else ""
        who = "Công dân" if status == 1 else "Cán bộ một cửa"
        lines.append(f"{dossier},Trần Thị Bích,{who},{stamp},000.00.31.H29,Tiếp nhận hồ sơ,{status},{stamp},{due}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_importer_sets_the_version_in_force_at_reception(tmp_path: Path) -> None:
    catalogue = tmp_path / "cat"
    catalogue.mkdir()
    lines = [json.dumps(_procedure(v, **f).to_json()) for v, f in VERSIONS.items()]
    (catalogue / "procedures.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    export = _export(
        tmp_path / "x.csv",
        [
            # submitted online before the boundary, received after it: reception decides (B)
            ("000.00.31.H29-240229-0001", "20240229235900", 1),
            ("000.00.31.H29-240229-0001", "20240301000000", 2),
            ("000.00.31.H29-240229-0002", "20240229235900", 2),
            ("000.00.31.H29-221231-0003", "20221231235900", 2),
        ],
    )
    mapping = ImportMapping(defaults=DossierDefaults(procedure_code=CODE))
    result = import_files([export], mapping, procedures=read_procedures(catalogue))
    assert result.ok, result.problems
    versions = {(e.dossier_id, e.seq): e.procedure_version for e in result.events}
    assert versions == {
        ("000.00.31.H29-240229-0001", 1): "B",
        ("000.00.31.H29-240229-0001", 2): "B",
        ("000.00.31.H29-240229-0002", 1): "A",
        ("000.00.31.H29-221231-0003", 1): None,
    }
    assert result.unversioned == ("000.00.31.H29-221231-0003",)
    assert result.summary()["dossiers_without_version"] == 1
    plain = import_files([export], mapping)
    assert {e.procedure_version for e in plain.events} == {None}
    assert "dossiers_without_version" not in plain.summary()


def test_import_command_reads_the_catalogue(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from producers.cli_import import import_cmd

    export = _export(tmp_path / "x.csv", [("000.00.31.H29-221231-0003", "20221231235900", 2)])
    catalogue = tmp_path / "cat"
    catalogue.mkdir()
    (catalogue / "procedures.jsonl").write_text(json.dumps(_procedure("A", valid_from="2023-01-01").to_json()) + "\n")
    args = [str(export), "--procedure-code", CODE, "--catalogue", str(catalogue), "--check", "--format", "json"]
    result = CliRunner().invoke(import_cmd, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["dossiers_without_version"] == 1
    assert "000.00.31.H29-221231-0003: no version of its procedure in force at reception" in result.stderr
    (catalogue / "procedures.jsonl").write_text("{}\n")
    result = CliRunner().invoke(import_cmd, args)
    assert result.exit_code == 2
    assert f"{catalogue / 'procedures.jsonl'}:1: procedure: missing keys" in result.output
