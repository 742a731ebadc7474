"""Reference statistics checked against direct computations (sae-lens style: an independent reference)."""

from __future__ import annotations

import pytest
import torch

from unlearn_studio.engine.latents import References, build_references
from unlearn_studio.engine.probe import fit_probe
from unlearn_studio.engine.saes import load_sae
from unlearn_studio.errors import UserError


@pytest.fixture(scope="module")
def sae(tiny_sae_dir):
    return load_sae(tiny_sae_dir).sae


@pytest.fixture(scope="module")
def references(sae):
    torch.manual_seed(0)
    known = torch.randn(40, 64) + 1.5  # 10 entities × 4 prompts
    unknown = torch.randn(36, 64) - 1.5  # 9 entities × 4 prompts
    owners_k = [i // 4 for i in range(40)]
    owners_u = [i // 4 for i in range(36)]
    refs = build_references(sae, known, owners_k, unknown, owners_u, [f"k{i}" for i in range(10)], [f"u{i}" for i in range(9)])
    return refs, known, unknown


def test_means_and_scale_match_direct_computation(sae, references):
    refs, known, unknown = references
    with torch.no_grad():
        mu_k, mu_u = sae.encode(known).mean(0), sae.encode(unknown).mean(0)
    torch.testing.assert_close(refs.mu_known, mu_k)
    torch.testing.assert_close(refs.mu_unknown, mu_u)
    assert refs.scale_sq == pytest.approx(float((mu_k - mu_u).pow(2).sum()), rel=1e-5)
    torch.testing.assert_close(refs.resid_mu_known, known.mean(0))


def test_projection_axes(references):
    refs, _, _ = references
    direction = refs.mu_known - refs.mu_unknown
    torch.testing.assert_close(refs.projection.axis_x, direction / direction.norm())
    assert abs(float(refs.projection.axis_x @ refs.projection.axis_y)) < 1e-4
    assert float(refs.projection.axis_y.norm()) == pytest.approx(1.0, abs=1e-5)
    # μ_U sits at x = 0 and μ_K at x = ‖μ_K − μ_U‖
    points = refs.projection.project(torch.stack([refs.mu_unknown, refs.mu_known]))
    assert float(points[0, 0]) == pytest.approx(0.0, abs=1e-4)
    assert float(points[1, 0]) == pytest.approx(float(direction.norm()), rel=1e-4)
    assert refs.known_points.shape == (10, 2) and refs.unknown_points.shape == (9, 2)
    assert float(refs.known_points[:, 0].mean()) > float(refs.unknown_points[:, 0].mean())


def test_probe_separates_references_and_matches_its_formula(sae, references):
    refs, known, unknown = references
    assert refs.probe_train_accuracy >= 0.95
    with torch.no_grad():
        codes = sae.encode(known[:3])
    probe = refs.probe
    direct = torch.sigmoid(((codes - probe.mean) / probe.scale) @ probe.weight + probe.bias)
    torch.testing.assert_close(refs.p_known(codes), direct)


def test_unknown_percentile_is_rank_among_unknown_distances(sae, references):
    refs, _, unknown = references
    with torch.no_grad():
        codes = sae.encode(unknown)
    distances = (codes - refs.mu_unknown).norm(dim=-1)
    percentile = refs.unknown_percentile(codes)
    for d, p in zip(distances, percentile):
        assert float(p) == pytest.approx(100.0 * float((refs.unknown_distances < d).sum()) / len(distances), abs=1e-4)
    assert float(refs.unknown_percentile(refs.mu_known[None])[0]) >= 90.0


def test_separation_scores_are_firing_rate_differences(sae, references):
    refs, known, unknown = references
    with torch.no_grad():
        expected = (sae.encode(known) > 0).float().mean(0) - (sae.encode(unknown) > 0).float().mean(0)
    torch.testing.assert_close(refs.separation, expected)
    assert refs.separation[refs.top_known_latents[0]] == expected.max()
    assert refs.separation[refs.top_unknown_latents[0]] == expected.min()


def test_save_and_load_round_trip(references, tmp_path):
    refs, _, _ = references
    refs.save(tmp_path / "refs.safetensors")
    loaded = References.load(tmp_path / "refs.safetensors")
    assert loaded.known_names == refs.known_names and loaded.scale_sq == pytest.approx(refs.scale_sq)
    torch.testing.assert_close(loaded.projection.axis_y, refs.projection.axis_y)
    torch.testing.assert_close(loaded.probe.weight, refs.probe.weight)


def test_probe_fits_a_linearly_separable_problem():
    torch.manual_seed(1)
    features = torch.randn(200, 5)
    labels = (features[:, 0] + 0.5 * features[:, 1] > 0).float()
    assert fit_probe(features, labels).accuracy(features, labels) >= 0.97


def test_latent_profiles_match_a_direct_computation(sae, references):
    import numpy as np

    from unlearn_studio.engine.latent_stats import latent_profile, latent_profiles

    refs, known, unknown = references
    with torch.no_grad():
        known_codes, unknown_codes = sae.encode(known), sae.encode(unknown)
    profiles = latent_profiles(refs)
    assert [p.latent for p in profiles] == refs.top_known_latents + refs.top_unknown_latents
    assert [p.kind for p in profiles] == ["known"] * 8 + ["unknown"] * 8
    latent = refs.top_known_latents[0]
    profile = latent_profile(refs, latent, target="t", target_start={latent: 2.0}, target_now={latent: 0.0}, bins=10)
    k, u = known_codes[:, latent].numpy(), unknown_codes[:, latent].numpy()
    assert profile.known_fire_rate == pytest.approx(float((k > 0).mean()))
    assert profile.separation == pytest.approx(float((k > 0).mean() - (u > 0).mean()), abs=1e-6)
    edges = np.linspace(0.0, max(k.max(), u.max(), 2.0), 11)
    np.testing.assert_allclose(profile.bin_edges, edges, rtol=1e-5)
    assert profile.known_counts == np.histogram(k[k > 0], bins=edges)[0].tolist()
    assert profile.unknown_counts == np.histogram(u[u > 0], bins=edges)[0].tolist()
    means = {f"k{i}": float(k[i * 4:(i + 1) * 4].mean()) for i in range(10)}
    means.update({f"u{i}": float(u[i * 4:(i + 1) * 4].mean()) for i in range(9)})
    expected = [name for name, value in sorted(means.items(), key=lambda item: -item[1]) if value > 0][:8]
    assert [entity.name for entity in profile.top_entities] == expected
    assert (profile.target_start, profile.target_now) == (2.0, 0.0)
    with pytest.raises(UserError, match="not one of the top"):
        latent_profile(refs, next(i for i in range(sae.cfg.d_sae) if i not in set(refs.latent_ids.tolist())))


def test_references_round_trip_keeps_the_latent_activations(references, tmp_path):
    refs, _, _ = references
    refs.save(tmp_path / "refs.safetensors")
    loaded = References.load(tmp_path / "refs.safetensors")
    for name in ("latent_ids", "known_latent_acts", "unknown_latent_acts", "known_owners", "unknown_owners"):
        torch.testing.assert_close(getattr(loaded, name), getattr(refs, name))
