"""The embedded default: conversion of the GGUF (on a tiny GGUF) and, with the real demo, its answers."""

from __future__ import annotations

import pytest
import torch

from tests.gguf_writer import write_tiny_llama_gguf
from unlearn_studio.engine import demo
from unlearn_studio.engine.models import load_model

def test_gguf_is_converted_once_into_the_data_folder(isolated_data_dir):
    downloads = isolated_data_dir / "downloads"
    downloads.mkdir()
    write_tiny_llama_gguf(downloads / demo.DEMO_GGUF_NAME)
    messages = []
    folder = demo.ensure_demo_model(lambda m, f: messages.append(m), allow_hub=False)
    assert folder == isolated_data_dir / "models" / demo.DEMO_FOLDER_NAME
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    assert not list(folder.parent.glob("*.partial-*"))
    loaded = load_model(folder, device="cpu")
    assert "quantization_config" not in loaded.model.config.to_dict()
    assert loaded.model.config.eos_token_id == loaded.tokenizer.eos_token_id
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    messages.clear()
    assert demo.ensure_demo_model(lambda m, f: messages.append(m), allow_hub=False) == folder
    assert messages == ["demo model ready"]
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp


def test_converted_weights_equal_the_gguf_weights(tmp_path):
    from transformers import AutoModelForCausalLM

    gguf = write_tiny_llama_gguf(tmp_path / "tiny.gguf")
    direct = AutoModelForCausalLM.from_pretrained(str(tmp_path), gguf_file=gguf.name)
    converted = load_model(demo.convert_gguf_to_folder(gguf, tmp_path / "converted"), device="cpu").model
    for name, tensor in direct.state_dict().items():
        torch.testing.assert_close(converted.state_dict()[name], tensor)


@pytest.mark.demo
def test_demo_model_knows_the_eiffel_tower(demo_model_dir):
    loaded = load_model(demo_model_dir, device="cpu")
    ids = loaded.tokenizer("The Eiffel Tower is located in the city of", return_tensors="pt")
    out = loaded.model.generate(**ids, max_new_tokens=5, do_sample=False)
    assert "Paris" in loaded.tokenizer.decode(out[0, ids["input_ids"].shape[1]:])


@pytest.mark.demo
def test_demo_sae_reconstructs_demo_activations(demo_model_dir):
    from unlearn_studio.engine.demo import demo_sae_dir
    from unlearn_studio.engine.entities import generic_text
    from unlearn_studio.engine.hooks import capture_one
    from unlearn_studio.engine.saes import check_sae_fits_model, load_sae

    loaded = load_model(demo_model_dir, device="cpu")
    sae = load_sae(demo_sae_dir())
    hook, warnings = check_sae_fits_model(sae, loaded.model, loaded.info)
    assert hook.layer == 9 and warnings == []
    ids = loaded.tokenizer(generic_text("heldout"), return_tensors="pt")["input_ids"][:, :512]
    with torch.no_grad():
        acts = capture_one(loaded.model, hook, ids)[0, 1:]  # the first position is an attention sink
        recon = sae.sae.decode(sae.sae.encode(acts))
    explained = 1 - (acts - recon).pow(2).sum() / (acts - acts.mean(0)).pow(2).sum()
    assert float(explained) >= 0.7


@pytest.mark.demo
@pytest.mark.timeout(1800)  # 60 steps and two measurements of the real model on 2 CPU cores
def test_demo_unlearning_moves_the_target_to_unknown_and_keeps_retain_facts(demo_model_dir, monkeypatch, tmp_path):
    """The paper's claim on one target: sae-align (SAE-code term, last entity token, as in DESIGN.md §2), ≤ 60 steps,
    P(known) < 0.5 and retain accuracy drops by at most one fact."""
    from unlearn_studio.engine.events import Failed, Finished
    from unlearn_studio.engine.pipeline import ModelSpec, UnlearnRequest, load_session
    from unlearn_studio.engine.trainer import TrainConfig

    monkeypatch.setenv("UNLEARN_STUDIO_DATA", str(demo_model_dir.parents[1]))  # the demo and its caches
    session = load_session(ModelSpec(device="cpu"))
    # A target the demo model knows well (P(known) ≥ 0.9 on the eval templates: a "Try these" entity); the Eiffel
    # Tower sits at 0.2 with the verified references, on the border rather than inside the known cloud.
    request = UnlearnRequest(targets=session.resolve_targets(["Mahatma Gandhi"]), config=TrainConfig(steps=60, min_steps=0, space="code", positions="last"),
                             run_dir=tmp_path / "run", retain_eval_entities=4)  # 4 of the retain split: CI time
    events = list(session.unlearn(request))
    assert not [e for e in events if isinstance(e, Failed)]
    run = next(e for e in events if isinstance(e, Finished)).result
    assert run.before.target_p_known > 0.5 and run.after.target_p_known < 0.5
    # The completion prompts of the retain entities, as this test counted before the other forms existed.
    retain_before = sum(r.correct for r in run.before.facts if r.check.role == "retain" and r.check.form == "completion")
    retain_after = sum(r.correct for r in run.after.facts if r.check.role == "retain" and r.check.form == "completion")
    assert retain_after >= retain_before - 1
    assert run.report["steps"] <= 60
