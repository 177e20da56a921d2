"""Schema compatibility: can a reader schema read what a writer schema wrote?

Implements the schema-resolution rules of the Avro specification on schema
JSON, so ``dossier schema check`` can prove FULL_TRANSITIVE compatibility of
the released chain (every version reads every other) without a registry.
The golden payloads then prove it on real bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

_PRIMITIVES: Final = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_PROMOTIONS: Final = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
    "bytes": {"string"},
}

Schema = Any


def _collect_names(schema: Schema, namespace: str, names: dict[str, Schema]) -> None:
    if isinstance(schema, list):
        for branch in schema:
            _collect_names(branch, namespace, names)
        return
    if not isinstance(schema, Mapping):
        return
    kind = schema.get("type")
    if kind in ("record", "enum", "fixed"):
        name = schema["name"]
        space = schema.get("namespace", namespace)
        full = name if "." in name else (f"{space}.{name}" if space else name)
        names[full] = schema
        names.setdefault(full.rsplit(".", 1)[-1], schema)
        if kind == "record":
            for field in schema["fields"]:
                _collect_names(field["type"], full.rsplit(".", 1)[0] if "." in full else "", names)
    elif kind == "array":
        _collect_names(schema["items"], namespace, names)
    elif kind == "map":
        _collect_names(schema["values"], namespace, names)
    elif isinstance(kind, (Mapping, list)):
        _collect_names(kind, namespace, names)


class _Resolver:
    def __init__(self, reader: Schema, writer: Schema) -> None:
        self.reader_names: dict[str, Schema] = {}
        self.writer_names: dict[str, Schema] = {}
        _collect_names(reader, "", self.reader_names)
        _collect_names(writer, "", self.writer_names)
        self.seen: set[tuple[str, str]] = set()

    @staticmethod
    def _deref(schema: Schema, names: Mapping[str, Schema]) -> Schema:
        while True:
            if isinstance(schema, str) and schema not in _PRIMITIVES:
                schema = names.get(schema, names.get(schema.rsplit(".", 1)[-1], schema))
            elif (
                isinstance(schema, Mapping)
                and isinstance(schema.get("type"), (str, Mapping, list))
                and (schema["type"] in _PRIMITIVES or not isinstance(schema["type"], str))
            ):
                inner = schema["type"]
                if isinstance(inner, str) and inner in _PRIMITIVES:
                    return inner
                schema = inner
            else:
                return schema

    def problems(self, reader: Schema, writer: Schema, path: str) -> list[str]:
        r = self._deref(reader, self.reader_names)
        w = self._deref(writer, self.writer_names)
        if isinstance(w, list):
            out: list[str] = []
            for branch in w:
                out.extend(self.problems(r, branch, path))
            return out
        if isinstance(r, list):
            for branch in r:
                if not self.problems(branch, w, path):
                    return []
            return [f"{path}: writer type {_kind(w)} matches no branch of the reader union"]
        rk, wk = _kind(r), _kind(w)
        if rk != wk:
            if isinstance(w, str) and isinstance(r, str) and r in _PROMOTIONS.get(w, set()):
                return []
            return [f"{path}: reader type {rk} cannot read writer type {wk}"]
        if rk == "record":
            return self._record(r, w, path)
        if rk == "enum":
            return self._enum(r, w, path)
        if rk == "fixed":
            ok = r.get("size") == w.get("size") and _short(r["name"]) == _short(w["name"])
            return (
                [] if ok else [f"{path}: fixed {r['name']}({r.get('size')}) cannot read {w['name']}({w.get('size')})"]
            )
        if rk == "array":
            return self.problems(r["items"], w["items"], f"{path}[]")
        if rk == "map":
            return self.problems(r["values"], w["values"], f"{path}{{}}")
        return []

    def _record(self, r: Mapping[str, Any], w: Mapping[str, Any], path: str) -> list[str]:
        if _short(r["name"]) != _short(w["name"]) and _short(w["name"]) not in r.get("aliases", []):
            return [f"{path}: record {r['name']} cannot read record {w['name']}"]
        key = (r["name"], w["name"])
        if key in self.seen:
            return []
        self.seen.add(key)
        writer_fields = {f["name"]: f for f in w["fields"]}
        out: list[str] = []
        for field in r["fields"]:
            names = [field["name"], *field.get("aliases", [])]
            match = next((writer_fields[n] for n in names if n in writer_fields), None)
            where = f"{path}.{field['name']}" if path else field["name"]
            if match is None:
                if "default" not in field:
                    out.append(f"{where}: reader field has no default and the writer does not write it")
            else:
                out.extend(self.problems(field["type"], match["type"], where))
        return out

    @staticmethod
    def _enum(r: Mapping[str, Any], w: Mapping[str, Any], path: str) -> list[str]:
        missing = [s for s in w["symbols"] if s not in r["symbols"]]
        if missing and "default" not in r:
            return [f"{path}: enum {r['name']} lacks writer symbol(s) {', '.join(missing)} and has no default"]
        return []


def _kind(schema: Schema) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, Mapping):
        return str(schema.get("type"))
    return "union"


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def compatibility_problems(reader: Schema, writer: Schema) -> list[str]:
    """Why ``reader`` cannot read data written with ``writer`` (empty: it can)."""
    return _Resolver(reader, writer).problems(reader, writer, "")


def full_transitive_problems(schemas: Sequence[tuple[int, Schema]]) -> list[str]:
    """Problems across every ordered pair of versions (FULL_TRANSITIVE)."""
    out = []
    for rv, reader in schemas:
        for wv, writer in schemas:
            if rv == wv:
                continue
            for problem in compatibility_problems(reader, writer):
                out.append(f"v{rv} reading v{wv}: {problem}")
    return out
