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
