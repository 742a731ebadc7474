"""λ_preserve: each trained linear map's outputs on a sample of other inputs, held through their second moment."""

from __future__ import annotations

import pytest
import torch

from unlearn_studio.engine.preservation import HeldMap, moment_factor, second_moments

from engine_helpers import events_of, tiny_request, tiny_session


def _held(weight: torch.nn.Parameter, inputs: torch.Tensor) -> HeldMap:
    moment = inputs.T @ inputs / len(inputs)
    factor = moment_factor(moment)
    original = weight.detach().clone()
    return HeldMap(lambda: weight - original, factor, float((original @ factor).pow(2).sum()))


def test_the_term_is_the_mean_squared_output_change_on_the_sample_relative_to_the_original():
    torch.manual_seed(0)
    inputs = torch.randn(50, 4)
    weight = torch.nn.Parameter(torch.randn(3, 4))
    held = _held(weight, inputs)
    original = weight.detach().clone()
    with torch.no_grad():
        weight.add_(torch.randn(3, 4) * 0.1)
    by_hand = ((inputs @ (weight.detach() - original).T).pow(2).sum(1).mean()
               / (inputs @ original.T).pow(2).sum(1).mean())
    assert float(held.relative_change().detach()) == pytest.approx(float(by_hand), rel=1e-4)


def test_a_change_in_directions_the_sample_never_uses_is_free():
    inputs = torch.zeros(20, 4)
    inputs[:, :2] = torch.randn(20, 2)  # the sample spans the first two input directions only
    weight = torch.nn.Parameter(torch.randn(3, 4))
    held = _held(weight, inputs)
    with torch.no_grad():
        weight[:, 3] += 1.0
    assert float(held.relative_change().detach()) == pytest.approx(0.0, abs=1e-10)
    with torch.no_grad():
        weight[:, 0] += 1.0
    assert float(held.relative_change().detach()) > 0.01


def test_second_moments_skip_the_first_position_and_padding(tiny_model_dir, tiny_sae_dir):
    session = tiny_session(tiny_model_dir, tiny_sae_dir)
    model, hook = session.model, session.hook
    block = model.model.layers[hook.layer]
    seen = []
    handle = block.mlp.down_proj.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
    ids = torch.tensor([[1, 5, 6, 7], [1, 8, 9, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    moment = second_moments(model, hook, [block.mlp.down_proj], [(ids, mask)])[0]
    handle.remove()
    keys = torch.cat([seen[0][0, 1:], seen[0][1, 1:3]]).double()
    assert torch.allclose(moment.double(), keys.T @ keys / len(keys), atol=1e-5)


def test_a_run_reports_the_term_and_holds_the_layers_closer_with_more_weight(tiny_model_dir, tiny_sae_dir):
    session = tiny_session(tiny_model_dir, tiny_sae_dir)
    last = {}
    for weight in (1e-9, 1000.0):  # 1e-9: the term is measured but does not steer
        session.reset()
        steps = [e for e in events_of(session, tiny_request(session, steps=4, lambda_preserve=weight))
                 if type(e).__name__ == "StepProgress"]
        first = steps[0].losses
        assert first["preserve"] == pytest.approx(0.0, abs=1e-8)  # θ0 itself: nothing has changed yet
        assert first["total"] == pytest.approx(
            first["forget"] + first["retain"] + first.get("name", 0.0) + weight * first["preserve"], rel=1e-5)
        last[weight] = steps[-1].losses["preserve"]
    assert 0 < last[1000.0] < last[1e-9]
    session.reset()
    plain = [e for e in events_of(session, tiny_request(session, steps=1, lambda_preserve=0.0))
             if type(e).__name__ == "StepProgress"]
    assert "preserve" not in plain[0].losses


def test_lora_adapters_are_held_through_their_product(tiny_model_dir, tiny_sae_dir):
    session = tiny_session(tiny_model_dir, tiny_sae_dir)
    steps = [e for e in events_of(session, tiny_request(session, steps=3, trainable="lora", lambda_preserve=10.0))
             if type(e).__name__ == "StepProgress"]
    assert steps[0].losses["preserve"] == pytest.approx(0.0, abs=1e-10)  # B starts at zero: ΔW = s·B·A = 0
    assert steps[-1].losses["preserve"] > 0


def test_gpt2_conv1d_maps_are_held_like_linear_ones():
    from transformers.pytorch_utils import Conv1D

    from unlearn_studio.engine.preservation import trained_linear_maps

    torch.manual_seed(0)
    conv = Conv1D(3, 4)  # 4 inputs → 3 outputs, weight stored as [4, 3]
    model = torch.nn.Sequential(conv)
    (found,) = trained_linear_maps(model, [conv.weight])
    with torch.no_grad():
        conv.weight.add_(0.1)
    inputs = torch.randn(6, 4)
    outputs_change = conv(inputs) - (inputs @ found.original.T + conv.bias)
    assert torch.allclose(inputs @ found.change().T, outputs_change, atol=1e-6)
