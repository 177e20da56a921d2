"""Keyed pseudonyms for applicants' identity numbers.

Personal data never travels in clear. An applicant is referred to by
``HMAC-SHA-256(key, normalised identity number)``, truncated to 128 bits
(32 hex digits): dossiers of one applicant link, yet nobody without the key
can tell whose they are. A plain hash would not do: Vietnamese citizen
identity numbers have 12 digits, so an unkeyed hash is reversed by trying
them all. The key comes from configuration (``DOSSIER_PSEUDONYM_KEY``) and
must stay the same for as long as dossiers should link.

The demo key (:data:`DEMO_KEY`) is printed in the README, so it hides nobody:
only made-up people (``dossier demo``, ``dossier produce simulate``) are
pseudonymised with it; the importer, where real applicants come in, refuses it
(:func:`check_real_key`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Final

_MIN_KEY_BYTES: Final = 16
#: The documented demo key: the fallback of the demo and the simulator, refused for real applicants.
DEMO_KEY: Final = b"dossier-audit simulator demo key (not secret)"
_PUBLIC_KEYS: Final = {
    DEMO_KEY: "the documented demo key",
    b"change-me-to-a-long-random-secret": "the placeholder of .env.example",
}
_NOISE: Final = re.compile(r"[\s.\-]")


class PseudonymKeyError(ValueError):
    """The pseudonym key is missing or too short to protect identity numbers."""


def check_key(key: bytes) -> bytes:
    if len(key) < _MIN_KEY_BYTES:
        raise PseudonymKeyError(
            f"the pseudonym key must be at least {_MIN_KEY_BYTES} bytes "
            "(set DOSSIER_PSEUDONYM_KEY to a long random secret)"
        )
    return key


def check_real_key(key: bytes) -> bytes:
    """``key``, if it may pseudonymise real applicants: long enough, and none of the keys printed in this repository."""
    public = _PUBLIC_KEYS.get(key.strip())
    if public:
        raise PseudonymKeyError(
            f"DOSSIER_PSEUDONYM_KEY is {public}, which anyone can read and which therefore hides no real applicant: "
            "set it to a long random secret of your own (only the demo and the simulator, whose people are made up, "
            "take the demo key)"
        )
    return check_key(key)


def normalise_identity(identity_number: str) -> str:
    """Identity numbers compare without spaces, dots or dashes, in upper case."""
    return _NOISE.sub("", identity_number).upper()


def applicant_ref(identity_number: str, key: bytes) -> str:
    """The 32-hex-digit pseudonym of an identity number under ``key``."""
    normalised = normalise_identity(identity_number)
    if not normalised:
        raise ValueError("an empty identity number has no pseudonym")
    digest = hmac.new(check_key(key), normalised.encode("utf-8"), hashlib.sha256).hexdigest()
    return digest[:32]
