"""Steering on the tiny random model, checked against direct computations; one demo check that it is causal."""

from __future__ import annotations

import json

import pytest
import torch

from tests.engine_helpers import REFERENCE_LIMIT, tiny_session
from unlearn_studio.engine.hooks import capture_one
from unlearn_studio.engine.steering import edit_codes, entity_positions, steer, steering_hook
from unlearn_studio.errors import UserError

PROMPT = "Tell me about the Eiffel Tower in Paris."


@pytest.fixture(scope="module")
def session(tiny_model_dir, tiny_sae_dir, tmp_path_factory):
    import os

    os.environ["UNLEARN_STUDIO_DATA"] = str(tmp_path_factory.mktemp("steer-data"))
    return tiny_session(tiny_model_dir, tiny_sae_dir)


@pytest.fixture(scope="module")
def refs(session):
    known, unknown = session.reference_entities(["Eiffel Tower"], verify=False, limit=REFERENCE_LIMIT)
    return session.references(known, unknown)


def _steer(session, refs, **options):
    settings = {"strength": -1.0, "chat": False, "max_new_tokens": 12, "references": refs} | options
    return steer(session, "Eiffel Tower", PROMPT, **settings)


def test_strength_zero_reproduces_the_unsteered_answer(session, refs):
    for add_unknown in (False, True):
        result = _steer(session, refs, strength=0.0, add_unknown=add_unknown)
        assert result.steered == result.original
        assert all(latent.after == latent.before for latent in result.latents)
    pushed = _steer(session, refs, strength=-3.0, add_unknown=True)
    assert any(latent.after != latent.before for latent in pushed.latents)


def test_positions_are_the_entity_tokens(session):
    ids, positions = entity_positions(session.tokenizer, PROMPT, PROMPT, "eiffel tower", add_special_tokens=True)
    encoded = session.tokenizer(PROMPT, return_offsets_mapping=True)
    start = PROMPT.index("Eiffel Tower")
    covered = [i for i, (a, b) in enumerate(encoded["offset_mapping"]) if b > start and a < start + len("Eiffel Tower")]
    assert ids == encoded["input_ids"] and positions == covered
    text = "".join(session.tokenizer.decode([ids[p]]) for p in positions)
    assert text.strip() == "Eiffel Tower"
    _, at_start = entity_positions(session.tokenizer, "Eiffel Tower facts", "Eiffel Tower facts", "Eiffel Tower",
                                   add_special_tokens=True)
    assert 0 not in at_start  # the attention sink is never edited


def test_the_hook_changes_activations_only_through_the_chosen_latents(session, refs):
    sae, hook = session.sae.sae, session.hook
    ids, positions = entity_positions(session.tokenizer, PROMPT, PROMPT, "Eiffel Tower", add_special_tokens=True)
    input_ids = torch.tensor([ids])
    known, unknown = refs.top_known_latents, refs.top_unknown_latents
    strength, amount = -2.0, refs.mu_unknown[unknown]
    with torch.no_grad():
        plain = capture_one(session.model, hook, input_ids)
        with steering_hook(session.model, sae, hook, positions, len(ids),
                           lambda z: edit_codes(z, known, unknown, strength, amount)):
            steered = capture_one(session.model, hook, input_ids)  # a later hook on the module sees x'
        # The direct computation: z' from z by hand, x' = x + (z' − z) · W_dec at the entity tokens only.
        codes = sae.encode(plain[0, positions])
        by_hand = codes.clone()
        by_hand[:, known] = codes[:, known] * (1 + strength)
        by_hand[:, unknown] = torch.clamp(codes[:, unknown] - strength * amount, min=0)
        expected = plain.clone()
        expected[0, positions] = plain[0, positions] + (by_hand - codes) @ sae.W_dec
    others = [p for p in range(len(ids)) if p not in positions]
    assert torch.equal(steered[0, others], plain[0, others])
    torch.testing.assert_close(steered, expected, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(steered, plain)
    # The change lies in the span of the chosen latents' decoder rows: no other latent's code moved, and the
    # chosen rows weighted by their code changes rebuild it (no least-squares solve, whose LAPACK path varies by CPU).
    chosen = known + unknown
    untouched = [latent for latent in range(sae.W_dec.shape[0]) if latent not in chosen]
    assert torch.equal(by_hand[:, untouched], codes[:, untouched])
    change = (steered - plain)[0, positions]
    torch.testing.assert_close((by_hand - codes)[:, chosen] @ sae.W_dec[chosen], change, rtol=1e-4, atol=1e-4)


def test_answers_use_the_original_weights(session, refs):
    before = _steer(session, refs)
    with torch.no_grad():
        for parameter in session.resettable_parameters().values():
            parameter.add_(0.5)
    try:
        assert session.is_modified()
        assert _steer(session, refs) == before
    finally:
        session.reset()


@pytest.mark.parametrize(("prompt", "strength", "needle"), [
    ("Where is Paris?", -1.0, "does not mention"),
    (PROMPT, float("nan"), "strength"),
    (PROMPT, 11.0, "strength"),
    ("   ", -1.0, "empty"),
])
def test_bad_input_gets_a_message(session, refs, prompt, strength, needle):
    with pytest.raises(UserError, match=needle):
        steer(session, "Eiffel Tower", prompt, strength=strength, chat=False, references=refs)


def test_chat_prompts_edit_the_entity_inside_the_template(session, refs):
    result = _steer(session, refs, chat=True)
    assert "".join(result.tokens).strip() == "Eiffel Tower"
    assert result.positions[0] > 3  # after the template's opening tokens


def test_cli_steer_json(tiny_model_dir, tiny_sae_dir, capsys):
    from unlearn_studio.cli import main

    code = main(["--quiet", "steer", "--model", str(tiny_model_dir), "--sae", str(tiny_sae_dir), "--device", "cpu",
                 "--entity", "Eiffel Tower", "--strength", "-1", "--no-verify", "--completion", "--max-new-tokens", "6",
                 "--json", PROMPT])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert {"original", "steered", "latents", "strength"} <= set(data)
    assert data["strength"] == -1.0
    assert len(data["latents"]) == 8 and all(latent["kind"] == "known" for latent in data["latents"])
    assert all(latent["after"] == pytest.approx(0.0) for latent in data["latents"])


def test_cli_steer_refuses_a_prompt_without_the_entity(tiny_model_dir, tiny_sae_dir, capsys):
    from unlearn_studio.cli import main

    code = main(["--quiet", "steer", "--model", str(tiny_model_dir), "--sae", str(tiny_sae_dir), "--device", "cpu",
                 "--entity", "Eiffel Tower", "--no-verify", "Where is Paris?"])
    assert code == 2
    assert "does not mention" in capsys.readouterr().err


@pytest.mark.demo
def test_pushing_the_known_latents_past_off_changes_a_known_entitys_answer(demo_model_dir):
    """Measured (chat, greedy): at −1 the Eiffel Tower answer stays "located in Paris, France, France."; at −2 it
    becomes "located in the Champ de l'Étoile, a historic landmark in Paris, France. ..."."""
    from unlearn_studio.engine.pipeline import ModelSpec, load_session

    demo = load_session(ModelSpec(model=str(demo_model_dir), device="cpu"))
    # Verified references, as a user gets them (known-ness comes from the shipped demo cache).
    refs = demo.prepare_references(["Eiffel Tower"], verify=True)
    answers = {strength: steer(demo, "Eiffel Tower", "Where is the Eiffel Tower?", strength=strength, max_new_tokens=24,
                               references=refs) for strength in (0.0, -2.0)}
    print(json.dumps({strength: [r.original, r.steered] for strength, r in answers.items()}))
    assert "Paris" in answers[0.0].original
    assert answers[0.0].steered == answers[0.0].original
    assert answers[-2.0].steered != answers[-2.0].original
