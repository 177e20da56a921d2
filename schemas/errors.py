"""Errors of the contract layer.

Every error carries enough context for a person to find the offending event:
the dossier, the sequence number and what was wrong. Callers higher up add
where the event came from (file and line, topic/partition/offset).
"""

from __future__ import annotations


class ContractError(Exception):
    """Base class: data that does not satisfy the dossier-audit contract."""


class EventValidationError(ContractError):
    """An event is missing a field its type requires, or carries one it must not."""


class DecodeError(ContractError):
    """Bytes that are not a decodable dossier event (bad magic, unknown fingerprint, corrupt body)."""


class UnknownFingerprintError(DecodeError):
    """The writer schema's fingerprint is not one of the released schemas."""

    def __init__(self, fingerprint: bytes) -> None:
        self.fingerprint = fingerprint
        super().__init__(
            f"unknown writer schema fingerprint {fingerprint.hex()} "
            "(not a released dossier-event schema; `dossier schema list` shows the known ones)"
        )


class JsonFormError(ContractError):
    """A JSON-form event that cannot be turned into a contract event."""


class LifecycleError(ContractError):
    """A history that is not a legal dossier history.

    ``kind`` is a stable short code (``illegal-transition``, ``seq-gap``,
    ``seq-repeat``, ``foreign-event``, ``hash-break``, ``prev-hash-break``,
    ``invalid-event``) so reports can group and count them.
    """

    def __init__(self, kind: str, dossier_id: str, seq: int, message: str) -> None:
        self.kind = kind
        self.dossier_id = dossier_id
        self.seq = seq
        super().__init__(f"{dossier_id} seq {seq}: {message}")


class CalendarError(ContractError):
    """A working-time question the calendar cannot answer (e.g. a year without holiday data)."""
