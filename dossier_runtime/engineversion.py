"""The ClickHouse versions dossier-audit supports: one range, checked when a store opens.

The range is what the test suite proves: the inspection suite runs on the
lowest and the newest version (``tests/test_engine_matrix.py``, each engine a
chDB release served over HTTP by ``tests/chserver.py``). The lowest is the
newest long-term-support release (ClickHouse's LTS are the .3 and .8 of each
year); older releases failed on the project's SQL (24.8: ``arrayMin`` with a
lambda over tuples returns the tuple, "Unexpected type of filter column" in
rules R7, R16, R20; up to 25.8: UUIDs do not convert to Arrow, which the
ledger now avoids) and are not tested (the HTTP harness cannot serve chDB
3.x: its ``query`` takes no bound parameters). The compose
files pin the lowest (``docker-compose.yml``, ``deploy/cluster/``); a test
checks they agree with this module and the README.
"""

from __future__ import annotations

import re
from typing import Final

from dossier_runtime.errors import StoreError

#: (major, minor) of the lowest and the newest ClickHouse release supported, both ends included.
MINIMUM: Final = (26, 3)
NEWEST: Final = (26, 9)
#: The range in words, as the refusal and the README say it.
SUPPORTED: Final = f"ClickHouse {MINIMUM[0]}.{MINIMUM[1]} (LTS) through {NEWEST[0]}.{NEWEST[1]}"


def release(version: str) -> tuple[int, int] | None:
    """(major, minor) of a ``version()`` answer such as ``26.3.9.1``; None when it is not one."""
    match = re.match(r"\s*(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else None


def supported(version: str) -> bool:
    found = release(version)
    return found is not None and MINIMUM <= found <= NEWEST


def check(version: str, where: str) -> None:
    """Refuse an engine outside the supported range, in one sentence naming it and the range."""
    if supported(version):
        return
    found = release(version)
    todo = "upgrade it" if found is None or found < MINIMUM else "run a supported one"
    raise StoreError(
        f"{where} runs version {version.strip() or '(none given)'}, which dossier-audit does not support: "
        f"it supports {SUPPORTED} (the compose files pin {MINIMUM[0]}.{MINIMUM[1]}); {todo}"
    )
