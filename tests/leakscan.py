"""Looking for values that must not be there: in files, in what commands print, and inside the store.

A value is searched in every form a program could have turned it into: Unicode NFC and NFD, any letter case,
without diacritics, JSON's ``\\uXXXX`` escapes, and for secrets percent-encoding, base64 and hex. Text is
compared case-folded, so ``NGUYỄN`` and ``nguyễn`` are one needle.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import quote

from producers.scrub import strip_marks

ROOT = Path(__file__).resolve().parent.parent


def name_forms(name: str) -> set[str]:
    """A person's name as a program could write it: NFC, NFD, without diacritics, JSON-escaped."""
    nfc = unicodedata.normalize("NFC", name)
    forms = {nfc, unicodedata.normalize("NFD", nfc), strip_marks(nfc)}
    return forms | {json.dumps(f)[1:-1] for f in forms}


def number_forms(digits: str) -> set[str]:
    """A 12-digit ID number, whole and in groups of three (spaces, dots, dashes)."""
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return {digits} | {sep.join(groups) for sep in (" ", ".", "-")}


def phone_forms(national: str) -> set[str]:
    """A Vietnamese phone number (``0`` and 9 digits) as written at home and abroad, and its 9 digits alone."""
    core = national[1:]
    groups = (core[:3], core[3:6], core[6:])
    spaced = " ".join(groups)
    forms = {national, f"0{core[:3]} {core[3:6]} {core[6:]}", f"0{core[:3]}.{core[3:6]}.{core[6:]}"}
    forms |= {f"0{core[:3]}-{core[3:6]}-{core[6:]}", f"+84{core}", f"+84 {spaced}", f"84{core}", f"0084{core}"}
    return forms | {core, spaced}


def secret_forms(secret: str) -> set[str]:
    """A secret as it is, percent-encoded, hex, and base64 at each of the three byte alignments."""
    raw = secret.encode()
    forms = {secret, quote(secret, safe=""), raw.hex(), raw.hex().upper()}
    for pad in range(3):  # the characters that hold bits of the secret only, whatever comes before and after
        encoded = base64.b64encode(b"\0" * pad + raw).decode()
        forms.add(encoded[-(-pad * 8 // 6) : (pad + len(raw)) * 8 // 6])
    return forms


def found_in(text: str, needles: Mapping[str, str]) -> list[str]:
    """The labels of the needles (needle → label) that occur in ``text``, letter case ignored."""
    folded = text.casefold()
    return sorted({label for needle, label in needles.items() if needle.casefold() in folded})


def scan_text(where: str, text: str, needles: Mapping[str, str]) -> list[str]:
    return [f"{where}: {label}" for label in found_in(text, needles)]


def scan_bytes(where: str, data: bytes, needles: Mapping[str, str]) -> list[str]:
    return scan_text(where, data.decode("utf-8", errors="replace"), needles)


def scan_tree(root: Path, needles: Mapping[str, str], *, skip: Iterable[Path] = ()) -> tuple[list[str], int]:
    """Every regular file under ``root`` byte for byte: (what was found where, files scanned)."""
    skipped = {p.resolve() for p in skip}
    leaks: list[str] = []
    files = 0
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.resolve() not in skipped:
            files += 1
            leaks += scan_bytes(str(path.relative_to(root)), path.read_bytes(), needles)
    return leaks, files


#: Run in a fresh interpreter (chDB serves one store per process): prints every table of the store with the
#: text of each of its String-typed columns (String, Nullable, LowCardinality, Array, Map, Tuple of them).
_DUMP = r"""
import json, sys
from pathlib import Path
from dossier_runtime.settings import Settings
from dossier_runtime.store import open_store

store = open_store(Settings(data_dir=Path(sys.argv[1])), role="reader", serve=False)
tables = store.query(
    "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine NOT IN ('View', 'MaterializedView')"
).rows
for (table,) in tables:
    columns = store.query(
        "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = {t:String} "
        "AND type LIKE '%String%'",
        {"t": table},
    ).rows
    rows = 0
    texts = []
    for (column,) in columns:
        quoted = "`" + column.replace("`", "``") + "`"
        got = store.query(f"SELECT toString({quoted}) FROM `{table}`").rows
        rows = max(rows, len(got))
        texts += [r[0] for r in got if r[0] is not None]
    print(json.dumps({"table": table, "columns": [c for (c,) in columns], "rows": rows, "text": texts},
                     ensure_ascii=False))
store.close()
"""


def dump_store(data_dir: Path) -> list[dict[str, object]]:
    """Every String column of every table of the embedded store in ``data_dir``, read through the engine."""
    done = subprocess.run(
        [sys.executable, "-c", _DUMP, str(data_dir)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


#: Runs many ``dossier`` commands in one fresh interpreter (Python's and chDB's start-up once, not per command),
#: each with file descriptors 1 and 2 sent to files of its own: what the code prints, what its logging and the
#: native libraries (chDB, librdkafka) write, all of it.
_MANY = r"""
import json, os, sys, tempfile
from dossier_audit.cli import main

commands = json.loads(sys.argv[1])
results = []
for args in commands:
    files = [tempfile.TemporaryFile(), tempfile.TemporaryFile()]
    saved = [os.dup(1), os.dup(2)]
    os.dup2(files[0].fileno(), 1)
    os.dup2(files[1].fileno(), 2)
    try:
        main.main(args=args, prog_name="dossier")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
    out = []
    for f in files:
        f.seek(0)
        out.append(f.read().decode("utf-8", errors="replace"))
    results.append({"args": args, "code": code, "stdout": out[0], "stderr": out[1]})
print(json.dumps(results, ensure_ascii=False))
"""


def run_many(commands: list[list[str]], env: Mapping[str, str], timeout: float = 600) -> list[dict[str, object]]:
    """Each command's exit code, stdout and stderr, run one after the other in one interpreter."""
    import os

    done = subprocess.run(
        [sys.executable, "-c", _MANY, json.dumps(commands)],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    results: list[dict[str, object]] = json.loads(done.stdout.splitlines()[-1])
    return results
