"""Prompt injection end to end: every attack gated or refused, no benign flow prompted."""

from __future__ import annotations

import pytest

from oxydra.testing import taint_scenarios as ts


@pytest.mark.parametrize("scenario", ts.ATTACKS, ids=lambda s: s.__name__)
async def test_injected_content_cannot_drive_a_high_impact_call(scenario: ts.Scenario) -> None:
    outcome = await ts.run(scenario)
    assert not outcome.harm, outcome
    assert outcome.gated, outcome
    if outcome.prompts:
        assert outcome.sources_shown, outcome


@pytest.mark.parametrize("scenario", ts.CONTROLS, ids=lambda s: s.__name__)
async def test_benign_flows_run_without_needless_prompts(scenario: ts.Scenario) -> None:
    outcome = await ts.run(scenario)
    assert outcome.passed, outcome


@pytest.mark.parametrize("scenario", ts.ATTACKS, ids=lambda s: s.__name__)
async def test_with_taint_policy_off_the_same_attack_does_harm(scenario: ts.Scenario) -> None:
    # The control that keeps the scenarios honest: unguarded, each payload really acts.
    outcome = await ts.run(scenario, mode="off")
    if scenario is ts.persona_write:
        # Persona files are operator-owned whatever the taint policy: a second layer refuses.
        assert not outcome.harm and outcome.refused, outcome
        return
    assert outcome.harm, outcome
