"""Reading QuaTrinhXuLy exports (CSV, JSON, JSON Lines) into rows that know where they came from.

* CSV: UTF-8 (a BOM is fine), a header row naming the columns, ``,`` or ``;``
  as separator; extra columns are ignored. Positions are ``file:line`` (the
  physical line where the row starts).
* JSON Lines: one row object per line, ``file:line``.
* JSON: an array of row objects; or ``{"QuaTrinhXuLy": [...]}``; or an array
  of dossier objects ``{"MaHoSo": …, "QuaTrinhXuLy": [...]}`` whose rows
  inherit ``MaHoSo``. Positions are ``file:#n``, the n-th row of the file.

Values are kept as text (numbers in JSON become their decimal text, so
``"TrangThai": 4`` and ``"TrangThai": "4"`` are the same row). A row knows
which of the nine columns its source did not have at all (a missing
``NoiDungXuLy`` means the reason was not said; an empty one, that it was
blank). ``ChuHoSo`` and ``SoGiayToChuHoSo``, when present, are read too
(:data:`APPLICANT_COLUMNS`).

The procedure catalogue the versions come from (``--catalogue DIR``) is read
by :func:`read_procedures`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from producers.inputs import InputProblem
from schemas.catalogue import CatalogueError, Procedure
from schemas.jsontext import JsonTextError, loads
from schemas.textnorm import normalise

COLUMNS: Final = (
    "MaHoSo",
    "NguoiXuLy",
    "ChucDanh",
    "ThoiDiemXuLy",
    "PhongBanXuLy",
    "NoiDungXuLy",
    "TrangThai",
    "NgayBatDau",
    "NgayKetThucTheoQuyDinh",
)
#: Columns every row must fill.
REQUIRED: Final = ("MaHoSo", "NguoiXuLy", "ThoiDiemXuLy", "TrangThai")
#: The applicant, when the export joins it from the dossier (HoSoDongBoDVC): the name is scrubbed from the
#: free text, the identity number becomes the keyed pseudonym. Neither is stored.
APPLICANT_COLUMNS: Final = ("ChuHoSo", "SoGiayToChuHoSo")


@dataclasses.dataclass(frozen=True)
class Row:
    source: str
    values: Mapping[str, str]
    ordinal: int  # position in the whole input, for stable ordering
    absent: frozenset[str] = frozenset()  # columns of COLUMNS the file (CSV) or the object (JSON) did not have

    def __getitem__(self, column: str) -> str:
        return self.values.get(column, "")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return normalise(str(value))  # NFC, no NBSP/zero-width/BOM padding: checked and stored once


def _row(source: str, obj: Mapping[str, Any], ordinal: int) -> Row:
    values = {column: _text(obj.get(column)) for column in COLUMNS}
    values.update({column: _text(obj[column]) for column in APPLICANT_COLUMNS if obj.get(column) is not None})
    return Row(source, values, ordinal, frozenset(c for c in COLUMNS if c not in obj))


def read_rows(path: Path, start: int = 0) -> Iterator[Row | InputProblem]:
    """The rows of one export file, in file order; unreadable content as problems."""
    name = str(path)
    try:
        data = path.read_bytes()
        text = data.decode("utf-8-sig")
    except OSError as exc:
        yield InputProblem(name, f"cannot read the file: {exc.strerror or exc}")
        return
    except UnicodeDecodeError as exc:
        yield InputProblem(name, f"not UTF-8 text (byte {exc.start + 1}); save the export as UTF-8")
        return
    suffix = path.suffix.lower()
    if suffix == ".json":
        yield from _read_json(text, name, start)
    elif suffix == ".jsonl":
        yield from _read_jsonl(text, name, start)
    else:
        yield from _read_csv(text, name, start)


def _read_csv(text: str, name: str, start: int) -> Iterator[Row | InputProblem]:
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [normalise(h) for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        yield InputProblem(f"{name}:1", f"missing column(s) {', '.join(missing)} (the header has: {', '.join(header)})")
        return
    reader.fieldnames = header
    line = 2
    try:
        for record in reader:
            row = _row(f"{name}:{line}", record, start + line)
            line = reader.line_num + 1
            if any(row.values.values()):
                yield row
    except csv.Error as exc:
        yield InputProblem(f"{name}:{reader.line_num}", f"not valid CSV: {exc}")


def _read_jsonl(text: str, name: str, start: int) -> Iterator[Row | InputProblem]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = loads(line)
        except JsonTextError as exc:
            yield InputProblem(f"{name}:{number}", str(exc))
            continue
        if not isinstance(obj, dict):
            yield InputProblem(f"{name}:{number}", "a row must be a JSON object")
            continue
        yield _row(f"{name}:{number}", obj, start + number)


def _read_json(text: str, name: str, start: int) -> Iterator[Row | InputProblem]:
    try:
        doc = loads(text)
    except JsonTextError as exc:
        yield InputProblem(f"{name}:{exc.lineno}" if exc.lineno else name, str(exc))
        return
    if isinstance(doc, dict):
        doc = doc.get("QuaTrinhXuLy")
    if not isinstance(doc, list):
        yield InputProblem(name, 'expected an array of rows, {"QuaTrinhXuLy": [...]} or an array of dossiers')
        return
    index = 0
    for entry in doc:
        inherited: dict[str, Any] = {}
        rows: Any = [entry]
        if isinstance(entry, dict) and "QuaTrinhXuLy" in entry:
            rows = entry["QuaTrinhXuLy"] if isinstance(entry["QuaTrinhXuLy"], list) else [entry["QuaTrinhXuLy"]]
            inherited = {"MaHoSo": entry["MaHoSo"]} if "MaHoSo" in entry else {}
        for obj in rows:
            index += 1
            where = f"{name}:#{index}"
            if not isinstance(obj, dict):
                yield InputProblem(where, "a row must be a JSON object")
                continue
            yield _row(where, {**inherited, **obj}, start + index)


#: A procedure catalogue: every version of each procedure code.
Procedures = Mapping[str, Sequence[Procedure]]


class ProcedureCatalogueError(ValueError):
    """A procedures.jsonl that cannot be read; the message says file:line."""


def read_procedures(directory: Path) -> dict[str, tuple[Procedure, ...]]:
    """``DIRECTORY/procedures.jsonl`` (the shape of :class:`schemas.catalogue.Procedure`) by procedure code."""
    path = directory / "procedures.jsonl"
    out: dict[str, list[Procedure]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ProcedureCatalogueError(f"cannot read {path}: {exc}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            procedure = Procedure.from_json(loads(line))
        except (JsonTextError, CatalogueError) as exc:
            raise ProcedureCatalogueError(f"{path}:{number}: {exc}") from exc
        out.setdefault(procedure.procedure_code, []).append(procedure)
    return {code: tuple(versions) for code, versions in out.items()}
