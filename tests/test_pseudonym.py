from __future__ import annotations

import pytest

from schemas.pseudonym import PseudonymKeyError, applicant_ref

KEY = b"0123456789abcdef-test-key"


def test_same_person_same_ref_whatever_the_formatting() -> None:
    assert applicant_ref("079 203 000 123", KEY) == applicant_ref("079203000123", KEY)
    assert len(applicant_ref("079203000123", KEY)) == 32


def test_ref_depends_on_key_and_hides_the_number() -> None:
    ref = applicant_ref("079203000123", KEY)
    assert ref != applicant_ref("079203000123", KEY + b"x")
    assert "079203000123" not in ref


def test_short_or_missing_key_refused() -> None:
    with pytest.raises(PseudonymKeyError, match="at least 16 bytes"):
        applicant_ref("079203000123", b"short")


def test_empty_identity_refused() -> None:
    with pytest.raises(ValueError, match="empty identity number"):
        applicant_ref(" - ", KEY)
