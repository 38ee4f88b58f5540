"""The findings machinery: the check registry (studies/checks.yaml), rules, tags and verdicts."""

from __future__ import annotations

import math

import pytest
import reproduce
from findings import SECTIONS
from findings.core import REGISTRY, TAGS, Measured, checks, load_registry, parse_rule, tally, verdict


def test_every_study_declares_its_checks_and_every_declaration_has_a_study():
    assert set(REGISTRY) == set(SECTIONS)
    assert set(SECTIONS) <= set(reproduce.STUDIES)  # the others (pretraining) only feed them
    for study, entries in REGISTRY.items():
        assert entries, study
        for cid, spec in entries.items():
            assert spec["tag"] in TAGS, (study, cid)
            assert spec["tolerance"] >= 0, (study, cid)


@pytest.mark.parametrize("rule, yes, no", [(">= 0.8", [0.8, 1.0], [0.79]), ("> 0", [1e-9], [0.0, -1.0]),
                                           ("<= 1e-3", [1e-3, -5.0], [0.0011]), ("< 2", [1.9], [2.0]),
                                           ("abs <= 0.25", [-0.25, 0.1], [-0.26, 0.3]),
                                           ("in [0.75, 1.25]", [0.75, 1.0, 1.25], [0.7, 1.3])])
def test_rules(rule, yes, no):
    holds = parse_rule(rule)
    assert all(holds(v) for v in yes) and not any(holds(v) for v in no)


def test_an_unreadable_rule_or_tag_is_refused(tmp_path):
    with pytest.raises(ValueError, match="cannot read the rule"):
        parse_rule("about 1")
    bad = tmp_path / "checks.yaml"
    bad.write_text("s:\n  c: {tag: finding, claim: x, holds_if: '>= 1', tolerance: 0}\n")
    with pytest.raises(ValueError, match="tag 'finding'"):
        load_registry(bad)


def test_checks_join_values_with_declarations_and_refuse_strays():
    study = "delay_learning"
    values = {"delay_learning_theory": Measured(0.9, n="4"), "delay_learning_helps": float("nan")}
    cs = checks(study, values)
    assert [c.id for c in cs] == list(REGISTRY[study])
    assert cs[0].holds is True and cs[0].tag == "new"
    assert cs[1].holds is None and math.isnan(cs[1].value)  # not measurable, counts neither way
    with pytest.raises(ValueError, match="not declared"):
        checks(study, {**values, "made_up": 1.0})
    with pytest.raises(ValueError, match="not computed"):
        checks(study, {"delay_learning_theory": 0.9})


def test_verdicts_rest_on_replication_and_new_checks_and_sanity_failures_are_flagged():
    cs = checks("inertia_gamma_sweep", {"inertia_gamma1_static": 0.0, "inertia_gamma1_worse": 1.0,
                                        "inertia_lag_matches_theory": float("nan")})
    assert tally(cs) == {"sanity": (1, 1, 0), "replication": (0, 1, 0), "new": (0, 0, 1)}
    assert verdict(cs).startswith("**does not hold**")
    broken = checks("inertia_gamma_sweep", {"inertia_gamma1_static": 0.5, "inertia_gamma1_worse": 2.0,
                                            "inertia_lag_matches_theory": 0.1})
    text = verdict(broken)
    assert text.startswith("**holds**") and "sanity check failed (inertia_gamma1_static)" in text
