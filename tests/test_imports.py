"""The packages import one another only in the allowed direction.

schemas <- dossier_runtime <- producers | consumers | inspection <- dossier_audit.
producers, consumers and inspection never import each other; schemas imports
nothing of ours and does no network I/O.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"schemas", "dossier_runtime", "producers", "consumers", "inspection", "dossier_audit"}
ALLOWED = {
    "schemas": {"schemas"},
    "dossier_runtime": {"schemas", "dossier_runtime"},
    "producers": {"schemas", "dossier_runtime", "producers"},
    "consumers": {"schemas", "dossier_runtime", "consumers"},
    "inspection": {"schemas", "dossier_runtime", "inspection"},
    "dossier_audit": OURS,
}
NETWORK = {"socket", "http", "urllib.request", "kafka", "clickhouse_connect", "chdb", "requests"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_dependency_direction(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, package
    for path in files:
        for name in _imports(path):
            top = name.split(".")[0]
            if top in OURS:
                assert top in ALLOWED[package], f"{path.relative_to(ROOT)} imports {name}"


def test_schemas_does_no_network_io() -> None:
    for path in sorted((ROOT / "schemas").rglob("*.py")):
        for name in _imports(path):
            assert not any(name == n or name.startswith(n + ".") for n in NETWORK), f"{path.name} imports {name}"


def test_no_module_shadows_the_standard_library() -> None:
    import sys

    for package in OURS:
        for path in (ROOT / package).rglob("*.py"):
            assert path.stem not in sys.stdlib_module_names or path.stem == "__main__", path
