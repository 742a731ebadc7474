"""Write a tiny random Llama as a GGUF file (F32 tensors, GPT-2 style BPE vocabulary)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def write_tiny_llama_gguf(path: Path, *, width: int = 64, n_layers: int = 2, ffn: int = 128, heads: int = 4, kv_heads: int = 2) -> Path:
    import gguf

    from tests.tiny import make_tokenizer

    tokenizer = make_tokenizer(path.parent / "gguf-tokenizer")
    vocab = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    tokens = [token for token, _ in sorted(vocab["vocab"].items(), key=lambda item: item[1])]
    merges = [" ".join(m) if isinstance(m, list) else m for m in vocab["merges"]]
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny")
    writer.add_context_length(256)
    writer.add_embedding_length(width)
    writer.add_block_count(n_layers)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([1] * len(tokens))
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokenizer.bos_token_id)
    writer.add_eos_token_id(tokenizer.eos_token_id)
    rng = np.random.default_rng(0)
    head_dim = width // heads

    def tensor(name: str, *shape: int) -> None:
        writer.add_tensor(name, (rng.standard_normal(shape) * 0.02).astype(np.float32))

    tensor("token_embd.weight", len(tokens), width)
    writer.add_tensor("output_norm.weight", np.ones(width, dtype=np.float32))
    for layer in range(n_layers):
        tensor(f"blk.{layer}.attn_q.weight", width, width)
        tensor(f"blk.{layer}.attn_k.weight", kv_heads * head_dim, width)
        tensor(f"blk.{layer}.attn_v.weight", kv_heads * head_dim, width)
        tensor(f"blk.{layer}.attn_output.weight", width, width)
        tensor(f"blk.{layer}.ffn_gate.weight", ffn, width)
        tensor(f"blk.{layer}.ffn_up.weight", ffn, width)
        tensor(f"blk.{layer}.ffn_down.weight", width, ffn)
        writer.add_tensor(f"blk.{layer}.attn_norm.weight", np.ones(width, dtype=np.float32))
        writer.add_tensor(f"blk.{layer}.ffn_norm.weight", np.ones(width, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
