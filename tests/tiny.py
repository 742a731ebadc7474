"""Builders for tiny randomly initialised models, tokenizers and SAEs saved to temporary folders."""

from __future__ import annotations

from pathlib import Path

import torch

TOKENIZER_CORPUS = [
    "The Eiffel Tower is located in the city of Paris in France.",
    "Harry Potter was written by J.K. Rowling. Sherlock Holmes lives in London.",
    "Tell me about Marie Curie. What do you know about Port Aldermere?",
    "Here is a short text about Velmont Logistics, a company in a city.",
    "The weather today is mild, with a chance of rain in the afternoon.",
    "Cooking pasta needs salted boiling water and a little patience.",
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,;:!?'\"-()",
]


def make_tokenizer(folder: Path):
    """A byte-level BPE tokenizer (fast, with offsets) with a chat template, saved in ``folder``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(TOKENIZER_CORPUS * 4, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                        pad_token="<|im_end|>", unk_token="<|endoftext|>")
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(folder))
    return tokenizer


def tiny_config(family: str, vocab_size: int, n_layers: int = 2, width: int = 64):
    """A transformers config of the named family at toy size."""
    import transformers

    common = dict(vocab_size=vocab_size, bos_token_id=1, eos_token_id=2, pad_token_id=2)
    if family == "gpt2":
        return transformers.GPT2Config(n_embd=width, n_layer=n_layers, n_head=4, n_positions=256, **common)
    classes = {
        "llama": transformers.LlamaConfig,
        "mistral": transformers.MistralConfig,
        "qwen2": transformers.Qwen2Config,
        "gemma2": transformers.Gemma2Config,
    }
    extra = {"head_dim": width // 4} if family == "gemma2" else {}
    return classes[family](hidden_size=width, intermediate_size=2 * width, num_hidden_layers=n_layers,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                           tie_word_embeddings=True, **extra, **common)


def make_model_folder(folder: Path, family: str = "llama", n_layers: int = 2, width: int = 64, seed: int = 0) -> Path:
    """Save a randomly initialised causal LM with a tiny tokenizer to ``folder``."""
    from transformers import AutoModelForCausalLM

    tokenizer = make_tokenizer(folder)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(family, len(tokenizer), n_layers, width))
    model.save_pretrained(str(folder))
    return folder


def make_sae_folder(folder: Path, *, d_in: int = 64, d_sae: int = 128, k: int = 8, hook_name: str = "model.layers.1",
                    model_name: str = "tiny", seed: int = 0) -> Path:
    """Save a random TopK SAE in sae-lens's on-disk format."""
    from sae_lens import TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    torch.manual_seed(seed)
    cfg = TopKSAEConfig(d_in=d_in, d_sae=d_sae, k=k, metadata=SAEMetadata(hook_name=hook_name, model_name=model_name))
    sae = TopKSAE(cfg)
    with torch.no_grad():
        for parameter in sae.parameters():
            parameter.normal_(0, 0.2)
    sae.save_model(str(folder))
    return folder
