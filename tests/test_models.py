"""Model loading: folders, GGUF files, hub ids through the cache, and every refusal."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from unlearn_studio.engine.models import ModelLoadError, load_model, pick_device, resolve_model_source


def test_loads_folder_frozen_with_description(tiny_model_dir):
    loaded = load_model(tiny_model_dir, device="cpu")
    info = loaded.info
    assert (info.family, info.n_layers, info.d_model, info.device, info.dtype) == ("llama", 2, 64, "cpu", "float32")
    assert info.name == tiny_model_dir.name
    assert not any(p.requires_grad for p in loaded.model.parameters())
    assert loaded.tokenizer.pad_token is not None
    assert load_model(tiny_model_dir, device="cpu").info.fingerprint == info.fingerprint


def test_fingerprint_changes_with_weights(tiny_model_dir):
    from unlearn_studio.engine.models import weights_fingerprint

    loaded = load_model(tiny_model_dir, device="cpu")
    before = weights_fingerprint(loaded.model)
    with torch.no_grad():
        loaded.model.model.layers[0].mlp.up_proj.weight[0, 0] += 1.0
    assert weights_fingerprint(loaded.model) != before


def test_dtype_choice(tiny_model_dir):
    assert load_model(tiny_model_dir, device="cpu", dtype="bfloat16").info.dtype == "bfloat16"
    with pytest.raises(ModelLoadError, match="unknown dtype"):
        load_model(tiny_model_dir, dtype="int3")


def test_device_auto_picks_cpu_here_and_refuses_missing_cuda():
    assert pick_device("auto").type in {"cpu", "cuda", "mps"}
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="no CUDA GPU"):
            pick_device("cuda")


def test_missing_path_and_non_model_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "nowhere")
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model(tmp_path)


def test_corrupt_weights_name_the_file(tiny_model_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match="model.safetensors is corrupt or truncated"):
        load_model(broken)


def test_pickle_only_checkpoint_needs_opt_in(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, folder)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    (folder / "model.safetensors").unlink()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="pickle"):
        load_model(folder)
    loaded = load_model(folder, allow_pickle=True)
    torch.testing.assert_close(loaded.model.model.embed_tokens.weight, model.model.embed_tokens.weight)


def test_remote_code_refused_unless_trusted(tiny_model_dir, tmp_path):
    folder = tmp_path / "remote"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="trust remote code"):
        load_model(folder)


def test_hub_id_resolves_from_cache(tiny_model_dir, tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    snapshot = cache / "models--tiny--llama" / "snapshots" / "abc123"
    shutil.copytree(tiny_model_dir, snapshot)
    (cache / "models--tiny--llama" / "refs").mkdir()
    (cache / "models--tiny--llama" / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    assert resolve_model_source("tiny/llama") == snapshot
    loaded = load_model("tiny/llama", device="cpu")
    assert loaded.info.name == "tiny/llama" and loaded.info.n_layers == 2
    with pytest.raises(ModelLoadError, match="not in the Hugging Face cache"):
        resolve_model_source("tiny/absent", allow_network=False)


def test_gguf_file_is_loaded(tmp_path):
    """A tiny Llama written as GGUF (with the gguf package) loads through the same entry point."""
    from tests.gguf_writer import write_tiny_llama_gguf

    path = write_tiny_llama_gguf(tmp_path / "tiny.gguf")
    loaded = load_model(path, device="cpu")
    assert loaded.info.family == "llama" and loaded.info.d_model == 64
    assert loaded.info.name == "tiny"
