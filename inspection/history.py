"""Reading dossier histories out of the store as contract events."""

from __future__ import annotations

from typing import Final

from dossier_runtime.store import Store
from schemas.events import FIELD_NAMES, DossierEvent

_COLUMNS: Final = ", ".join(f"`{name}`" for name in FIELD_NAMES)


def load_history(store: Store, dossier_id: str) -> list[DossierEvent]:
    """Every stored event of one dossier, in seq order (the raw log is ordered by dossier, seq)."""
    result = store.query(
        f"SELECT {_COLUMNS} FROM events WHERE dossier_id = {{id:String}} ORDER BY seq, event_id",  # noqa: S608
        {"id": dossier_id},
    )
    return [DossierEvent.from_record(row) for row in result.named()]
