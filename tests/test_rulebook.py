"""The rulebook is complete, consistent and what the simulator injects."""

from __future__ import annotations

from producers.simulator.kinds import DEFAULT_RATES, INJECTED
from schemas.rulebook import ON_TIME_2_1, RULE_IDS, RULES, TERMS, default_params, get_rule


def test_every_rule_of_domain_md_and_the_integrity_rules_are_there() -> None:
    assert RULE_IDS == (*(f"R{i}" for i in range(1, 22)), "INTEGRITY-SEQ", "INTEGRITY-HASH")


def test_every_rule_is_fully_described() -> None:
    for rule in RULES.values():
        assert rule.title and rule.legal_basis and rule.predicate and rule.evidence, rule.id
        assert rule.expressible in ("full", "partial", "none")
        assert bool(rule.not_expressed) == (rule.expressible != "full"), rule.id
        assert rule.version >= 1


def test_parameter_names_are_unique_and_documented() -> None:
    names = [p.name for r in RULES.values() for p in r.params]
    assert len(names) == len(set(names))
    assert default_params()["supplement_deadline_wd"] == 3
    assert default_params()["backdate_threshold_minutes"] == 60
    assert get_rule("r5").param("supplement_deadline_wd").unit == "working days"


def test_the_simulator_injects_every_rule_and_has_a_default_rate_for_each() -> None:
    assert set(INJECTED) == set(RULE_IDS) - {"R10"} | {"R10"}
    assert set(DEFAULT_RATES) == set(INJECTED)
    assert all(RULES[r].injected for r in RULE_IDS)


def test_terms_used_by_predicates_are_defined() -> None:
    for term in ("wt(a, b)", "R", "D", "T", "E", "pause_wt", "late", "step", "step closers", "as_of"):
        assert term in TERMS
    assert "more than one SupplementRequested" in ON_TIME_2_1
