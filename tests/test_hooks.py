"""Hook resolution per family, capture against output_hidden_states, and early exit."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from tests.tiny import make_model_folder
from unlearn_studio.engine.hooks import HookError, capture, capture_one, hook_width, resolve_hook

FAMILIES = ["llama", "mistral", "qwen2", "gemma2", "gpt2"]


@pytest.fixture(scope="module", params=FAMILIES)
def family_model(request, tmp_path_factory):
    folder = make_model_folder(tmp_path_factory.mktemp(request.param), request.param, n_layers=3)
    return AutoModelForCausalLM.from_pretrained(str(folder)).eval()


def _batch():
    return torch.tensor([[5, 17, 33, 40, 2], [7, 8, 9, 2, 2]]), torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])


def test_resid_post_and_pre_match_hidden_states(family_model):
    ids, mask = _batch()
    with torch.no_grad():
        hidden = family_model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        for layer in range(2):  # the last layer's hidden state is after the final norm in HF
            post = capture_one(family_model, resolve_hook(family_model, f"blocks.{layer}.hook_resid_post"), ids, mask)
            pre = capture_one(family_model, resolve_hook(family_model, f"blocks.{layer}.hook_resid_pre"), ids, mask)
            torch.testing.assert_close(post, hidden[layer + 1])
            torch.testing.assert_close(pre, hidden[layer])


def test_module_path_equals_tl_name(family_model):
    tl = resolve_hook(family_model, "blocks.1.hook_resid_post")
    hf = resolve_hook(family_model, tl.module_path)
    assert hf.layer == 1 and hf.side == "output"
    ids, mask = _batch()
    with torch.no_grad():
        torch.testing.assert_close(capture_one(family_model, tl, ids, mask), capture_one(family_model, hf, ids, mask))


@pytest.mark.parametrize("kind", ["mlp_out", "attn_out", "resid_mid"])
def test_sublayer_hooks_resolve_with_model_width(family_model, kind):
    hook = resolve_hook(family_model, f"blocks.1.hook_{kind}")
    assert hook.layer == 1
    assert hook_width(family_model, hook) == 64


def test_resid_mid_is_resid_pre_plus_attention(family_model):
    """resid_mid = resid_pre + attn_out for every family (Gemma 2's attn_out is post-norm)."""
    ids, mask = _batch()
    names = [f"blocks.1.hook_{k}" for k in ("resid_pre", "attn_out", "resid_mid")]
    with torch.no_grad():
        acts = capture(family_model, [resolve_hook(family_model, n) for n in names], ids, mask, early_exit=False)
    torch.testing.assert_close(acts[names[0]] + acts[names[1]], acts[names[2]], atol=1e-5, rtol=1e-4)


def test_early_exit_skips_later_layers(family_model):
    from unlearn_studio.engine.hooks import layer_container

    _, layers = layer_container(family_model)
    calls = []
    handle = layers[2].register_forward_hook(lambda *a: calls.append(1))
    ids, mask = _batch()
    try:
        with torch.no_grad():
            capture_one(family_model, resolve_hook(family_model, "blocks.1.hook_resid_post"), ids, mask)
            assert calls == []
            capture_one(family_model, resolve_hook(family_model, "blocks.1.hook_resid_post"), ids, mask, early_exit=False)
            assert calls == [1]
    finally:
        handle.remove()


def test_capture_keeps_gradients(family_model):
    hook = resolve_hook(family_model, "blocks.0.hook_resid_post")
    ids, mask = _batch()
    family_model.requires_grad_(True)
    try:
        capture_one(family_model, hook, ids, mask).pow(2).sum().backward()
        _, layers = __import__("unlearn_studio.engine.hooks", fromlist=["layer_container"]).layer_container(family_model)
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in layers[0].parameters())
        assert all(p.grad is None for p in layers[2].parameters())
    finally:
        family_model.zero_grad(set_to_none=True)
        family_model.requires_grad_(False)


@pytest.mark.parametrize("name,fragment", [
    ("blocks.7.hook_resid_post", "has 3 layers"),
    ("blocks.1.hook_z", "not a supported TransformerLens name"),
    ("model.nonexistent.9", "is not a module of this model"),
])
def test_bad_hook_names_are_explained(family_model, name, fragment):
    with pytest.raises(HookError, match=fragment):
        resolve_hook(family_model, name)
