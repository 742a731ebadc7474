"""Choosing the retain entities: at random, or the targets' nearest neighbours in SAE space."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from tests.engine_helpers import tiny_session
from unlearn_studio.engine.retain_choice import choose_retain, last_token_codes, nearest_to_targets


def test_nearest_ranks_by_cosine_similarity_to_the_closest_target():
    targets = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    candidates = torch.tensor([[0.0, 1.0, 0.0],    # orthogonal to both: cos 0
                               [2.0, 2.0, 0.0],    # cos 0.71 to the first target
                               [0.0, 0.1, 5.0],    # cos 0.9998 to the second
                               [-1.0, 0.0, 0.0]])  # opposite the first: cos −1 (0 to the second)
    assert nearest_to_targets(targets, candidates, 3) == [2, 1, 0]
    assert nearest_to_targets(targets, candidates, 10) == [2, 1, 0, 3]


@pytest.fixture(scope="module")
def session(tiny_model_dir, tiny_sae_dir):
    return tiny_session(tiny_model_dir, tiny_sae_dir)


def test_nearest_holds_the_entity_whose_code_is_the_targets(session):
    """A pool entity with the target's own name has the target's code: "nearest" must hold it first."""
    target = session.resolve_targets(["Eiffel Tower"])[0]
    known, _ = session.reference_entities(["Eiffel Tower"], verify=False, limit=24)
    twin = replace(known[-1], name=target.name)
    pool = [*known[:-1], twin]
    templates = list(session.entity_data()[2].train[:2])
    chosen = choose_retain(session.model, session.tokenizer, session.sae.sae, session.hook, [target], pool, templates,
                           4, "nearest", seed=0)
    assert len(chosen) == 4 and chosen[0] is twin
    codes = last_token_codes(session.model, session.tokenizer, session.sae.sae, session.hook,
                             [e.name for e in chosen], templates)
    similarity = torch.nn.functional.cosine_similarity(codes, codes[:1])
    assert similarity[0] == pytest.approx(1.0) and bool((similarity[1:] <= similarity[0] + 1e-6).all())


def test_random_is_a_seeded_sample_and_an_unknown_choice_is_refused(session):
    target = session.resolve_targets(["Eiffel Tower"])[0]
    known, _ = session.reference_entities(["Eiffel Tower"], verify=False, limit=24)
    args = (session.model, session.tokenizer, session.sae.sae, session.hook, [target], known, ["Subject: {entity}"], 5)
    first, again = choose_retain(*args, "random", seed=3), choose_retain(*args, "random", seed=3)
    assert first == again and len({e.name for e in first}) == 5
    with pytest.raises(ValueError, match="unknown retain choice"):
        choose_retain(*args, "closest", seed=3)
