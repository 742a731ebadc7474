"""The sae-align loss terms against hand computations on tiny tensors (DESIGN.md §2)."""

from __future__ import annotations

import pytest
import torch

from unlearn_studio.engine.latents import build_references
from unlearn_studio.engine.objectives import _pull, aligned_positions, away_margin
from unlearn_studio.engine.prompts import EntityBatch

MU_KNOWN = torch.tensor([4.0, 0.0])
MU_UNKNOWN = torch.tensor([0.0, 0.0])  # u = (1, 0), s² = 16


def test_the_away_margin_is_zero_past_the_margin_and_quadratic_before_it():
    # d = (μ_K − z)·u: 4 − z₀. Margin 3: codes with d ≥ 3 (z₀ ≤ 1) cost nothing.
    codes = torch.tensor([[4.0, 5.0], [2.0, -1.0], [0.5, 0.0]], requires_grad=True)
    loss = away_margin(codes, MU_KNOWN, MU_UNKNOWN, margin=3.0, scale_sq=16.0)
    # d = 0, 2, 3.5 → relu(3 − d)² = 9, 1, 0; mean 10/3; / s²
    assert loss.item() == pytest.approx((9 + 1 + 0) / 3 / 16)
    loss.backward()
    # ∂/∂z₀ of relu(m − 4 + z₀)² / (3 s²) = 2 relu(m − d) / 48; the second coordinate is orthogonal to u
    expected = torch.tensor([[2 * 3 / 48, 0.0], [2 * 1 / 48, 0.0], [0.0, 0.0]])
    assert torch.allclose(codes.grad, expected)


def test_the_away_gradient_points_from_known_to_unknown():
    codes = torch.tensor([[3.0, 1.0]], requires_grad=True)
    away_margin(codes, MU_KNOWN, MU_UNKNOWN, margin=4.0, scale_sq=16.0).backward()
    step = -codes.grad[0]  # gradient descent moves the code along −grad
    assert float(step @ (MU_UNKNOWN - MU_KNOWN)) > 0
    assert float(step[1]) == 0.0


def _batch(last: list[int], entity_rows: list[list[bool]]) -> EntityBatch:
    mask = torch.tensor(entity_rows)
    return EntityBatch(torch.zeros_like(mask, dtype=torch.long), torch.ones_like(mask, dtype=torch.long),
                       torch.tensor(last), mask)


def test_position_zero_is_never_aligned():
    rows = _batch([0, 2], [[True, False, False], [False, True, True]])
    row_index, position = aligned_positions(rows, "last")
    assert row_index.tolist() == [1] and position.tolist() == [2]  # the prompt whose entity is only position 0 is skipped
    row_index, position = aligned_positions(rows, "all")
    assert list(zip(row_index.tolist(), position.tolist())) == [(1, 1), (1, 2)]


class IdentitySae(torch.nn.Module):
    """Codes equal to the activations: the references' statistics can be checked by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z


def test_the_margin_is_the_unknown_references_median_distance():
    known = torch.tensor([[4.0, 1.0], [4.0, -1.0], [6.0, 0.0], [2.0, 0.0]])  # two entities, two prompts each
    unknown = torch.tensor([[0.0, 1.0], [0.0, 3.0], [1.0, 0.0], [-1.0, 0.0], [2.0, 0.0], [0.0, 0.0]])
    refs = build_references(IdentitySae(), known, [0, 0, 1, 1], unknown, [0, 0, 1, 1, 2, 2], ["K1", "K2"], ["U1", "U2", "U3"])
    # μ_K = (4, 0), μ_U = (1/3, 2/3); u = (11/3, −2/3)/‖·‖; each unknown entity's mean code: (0, 2), (0, 0), (1, 0)
    unit = torch.tensor([11 / 3, -2 / 3]) / torch.tensor([11 / 3, -2 / 3]).norm()
    distances = sorted(float((torch.tensor([4.0, 0.0]) - torch.tensor(c)) @ unit) for c in ([0.0, 2.0], [0.0, 0.0], [1.0, 0.0]))
    assert refs.unknown_margin == pytest.approx(distances[1], rel=1e-5)


def test_other_entity_tokens_have_centroids_of_their_own():
    known = torch.tensor([[4.0, 0.0], [4.0, 0.0]])
    unknown = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    known_other = torch.tensor([[0.0, 6.0], [0.0, 4.0]])
    unknown_other = torch.tensor([[0.0, 1.0], [0.0, -1.0], [0.0, 3.0]])
    refs = build_references(IdentitySae(), known, [0, 1], unknown, [0, 1], ["K1", "K2"], ["U1", "U2"],
                            known_other, unknown_other)
    other = refs.kind(last=False)
    assert other.mu_known.tolist() == [0.0, 5.0] and other.mu_unknown.tolist() == [0.0, 1.0]
    # u = (0, 1); d = (μ_K − z)·u = 5 − z₁ over the unknown other tokens: 4, 6, 2 → median 4
    assert other.margin == pytest.approx(4.0)
    last = refs.kind(last=True)
    assert last.mu_known.tolist() == [4.0, 0.0] and last.margin == pytest.approx(refs.unknown_margin)
    # single-token names only: the other tokens fall back to the last token's centroids
    alone = build_references(IdentitySae(), known, [0, 1], unknown, [0, 1], ["K1", "K2"], ["U1", "U2"])
    assert alone.kind(last=False).mu_known.tolist() == [4.0, 0.0]


def test_the_bulk_pull_stops_at_the_radius_and_is_the_centroid_pull_beyond_it():
    values = torch.tensor([[3.0, 4.0], [0.5, 0.0]], requires_grad=True)
    loss = _pull(values, torch.zeros(2), scale_sq=2.0, radius=1.0)
    # ‖v‖² = 25 and 0.25; relu(‖v‖² − 1) = 24 and 0 (inside the bulk); mean 12; / s²
    assert loss.item() == pytest.approx(6.0)
    loss.backward()
    # ∂/∂v of (‖v‖² − r²) / (2 rows · s²) = 2v / 4 outside, 0 inside
    assert torch.allclose(values.grad, torch.tensor([[1.5, 2.0], [0.0, 0.0]]))
    assert _pull(values, torch.zeros(2), scale_sq=2.0).item() == pytest.approx((25 + 0.25) / 2 / 2)


def test_the_bulk_radii_are_the_unknown_references_median_distances():
    known = torch.tensor([[4.0, 0.0], [4.0, 0.0]])
    unknown = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0]])  # centroid (2/3, 4/3)
    unknown_other = torch.tensor([[0.0, 1.0], [0.0, -1.0], [0.0, 3.0]])  # centroid (0, 1): distances 0, 2, 2
    refs = build_references(IdentitySae(), known, [0, 1], unknown, [0, 1, 2], ["K1", "K2"], ["U1", "U2", "U3"],
                            known[:1] + 1, unknown_other)
    centre = unknown.mean(0)
    last_median = sorted(float((row - centre).norm()) for row in unknown)[1]
    last, other = refs.kind(last=True), refs.kind(last=False)
    # the identity SAE makes codes equal to residuals: the same radius in both spaces
    assert last.code_radius == pytest.approx(last_median) and last.resid_radius == pytest.approx(last_median)
    assert other.code_radius == pytest.approx(2.0) and other.resid_radius == pytest.approx(2.0)


def test_the_exemplar_pull_aims_at_the_typical_unknown_entitys_mean_code_and_residual(monkeypatch):
    from types import SimpleNamespace

    from unlearn_studio.engine import exemplar
    from unlearn_studio.engine.objectives import pull_goals

    rows_last = torch.tensor([[1.0, 3.0], [3.0, 5.0]])  # mean (2, 4)
    monkeypatch.setattr(exemplar, "entity_batch", lambda tokenizer, entities, templates: (None, [0, 0]))
    monkeypatch.setattr(exemplar, "entity_activations", lambda model, hook, batch: (rows_last, torch.zeros((0, 2))))
    batches = SimpleNamespace(exemplar=exemplar.exemplar_goals(None, None, IdentitySae(), None, "U", ["t", "u"]))
    ctx = SimpleNamespace(batches=batches, sae=IdentitySae())
    centroid, resid_centroid = torch.tensor([0.5, 0.5]), torch.tensor([9.0, 9.0])
    code_goal, resid_goal = pull_goals(ctx, True, centroid, resid_centroid)
    assert code_goal.tolist() == [2.0, 4.0] and resid_goal.tolist() == [2.0, 4.0]
    # A name without other tokens, or no exemplar at all: the centroids, as pull=centroid.
    assert [g.tolist() for g in pull_goals(ctx, False, centroid, resid_centroid)] == [[0.5, 0.5], [9.0, 9.0]]
    ctx.batches = SimpleNamespace(exemplar=None)
    assert [g.tolist() for g in pull_goals(ctx, True, centroid, resid_centroid)] == [[0.5, 0.5], [9.0, 9.0]]
    # The pull toward that goal is the plain squared distance: from (2, 6) to (2, 4) costs 4 / s².
    assert _pull(torch.tensor([[2.0, 6.0]]), code_goal, scale_sq=16.0).item() == pytest.approx(4 / 16)


def test_the_typical_unknown_entity_is_the_one_at_the_median_distance(monkeypatch):
    from unlearn_studio.engine import exemplar

    means = {"Near": [1.0, 0.0], "Median": [3.0, 0.0], "Far": [-8.0, 0.0], "Mid": [4.0, 0.0]}  # centroid (0, 0)
    monkeypatch.setattr(exemplar, "entity_batch",
                        lambda tokenizer, entities, templates: ([e.name for e in entities for _ in templates],
                                                                [i for i in range(len(entities)) for _ in templates]))
    monkeypatch.setattr(exemplar, "entity_activations",
                        lambda model, hook, names: (torch.tensor([means[name] for name in names]), None))
    # distances 1, 3, 8, 4: sorted 1 (Near), 3 (Median), 4 (Mid), 8 (Far); the lower median is the 2nd
    assert exemplar.typical_unknown(None, None, None, list(means), ["t"]) == "Median"
