"""Builders for tiny randomly initialised models, tokenizers and SAEs saved to temporary folders.

Each family gets a tokenizer shaped like its real one, so family-specific code paths run:
Llama and Qwen 2 byte-level BPE with a chat template (Qwen 2 without a BOS token), Gemma 2 a
SentencePiece-style tokenizer (``▁`` for spaces, digits split one by one) that adds ``<bos>``
and has no chat template (as the base ``gemma-2-2b``), GPT-2 byte-level BPE with neither.
"""

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
FAMILIES = ("llama", "gemma2", "qwen2", "gpt2")
SAE_ARCHITECTURES = ("standard", "topk", "jumprelu")
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def make_tokenizer(folder: Path, family: str = "llama"):
    """A tiny fast tokenizer (with offsets) shaped like ``family``'s real one, saved in ``folder``."""
    if family == "gemma2":
        tokenizer = _sentencepiece_style_tokenizer()
    else:
        tokenizer = _byte_level_tokenizer(family)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(folder))
    return tokenizer


def _byte_level_tokenizer(family: str):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(TOKENIZER_CORPUS * 4, trainer)
    if family == "gpt2":
        return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                       unk_token="<|endoftext|>")
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=None if family == "qwen2" else "<|im_start|>",
                                        eos_token="<|im_end|>", pad_token="<|im_end|>", unk_token="<|endoftext|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _sentencepiece_style_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Metaspace(prepend_scheme="never"),
                                                     pre_tokenizers.Digits(individual_digits=True)])
    backend.decoder = decoders.Metaspace(prepend_scheme="never")
    alphabet = sorted(set("".join(TOKENIZER_CORPUS).replace(" ", "▁")) | {"▁"})
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", "<bos>", "<eos>", "<unk>"], initial_alphabet=alphabet)
    backend.train_from_iterator(TOKENIZER_CORPUS * 4, trainer)
    backend.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                                   unk_token="<unk>")


def tiny_config(family: str, vocab_size: int, n_layers: int = 2, width: int = 64, init_std: float = 0.02):
    """A transformers config of the named family at toy size (weights drawn with standard deviation ``init_std``)."""
    import transformers

    common = dict(vocab_size=vocab_size, bos_token_id=1, eos_token_id=2, pad_token_id=2, initializer_range=init_std)
    if family == "gpt2":
        return transformers.GPT2Config(n_embd=width, n_layer=n_layers, n_head=4, n_positions=256, **common)
    classes = {
        "llama": transformers.LlamaConfig,
        "mistral": transformers.MistralConfig,
        "qwen2": transformers.Qwen2Config,
        "gemma2": transformers.Gemma2Config,
    }
    # Gemma 2's logit soft-cap is 30 at full size; at toy size the logits are small, so a small cap makes it bite.
    extra = {"head_dim": width // 4, "final_logit_softcapping": 0.5} if family == "gemma2" else {}
    return classes[family](hidden_size=width, intermediate_size=2 * width, num_hidden_layers=n_layers,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                           tie_word_embeddings=True, **extra, **common)


def make_model_folder(folder: Path, family: str = "llama", n_layers: int = 2, width: int = 64, seed: int = 0,
                      init_std: float = 0.02) -> Path:
    """Save a randomly initialised causal LM with a tiny tokenizer of its family to ``folder``."""
    from transformers import AutoModelForCausalLM

    tokenizer = make_tokenizer(folder, family)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(family, len(tokenizer), n_layers, width, init_std))
    model.save_pretrained(str(folder))
    return folder


def make_sae_folder(folder: Path, *, d_in: int = 64, d_sae: int = 128, k: int = 8, hook_name: str = "model.layers.1",
                    model_name: str = "tiny", seed: int = 0, architecture: str = "topk") -> Path:
    """Save a random SAE of ``architecture`` (standard, topk, jumprelu) in sae-lens's on-disk format."""
    from sae_lens import JumpReLUSAE, JumpReLUSAEConfig, StandardSAE, StandardSAEConfig, TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    torch.manual_seed(seed)
    metadata = SAEMetadata(hook_name=hook_name, model_name=model_name)
    if architecture == "topk":
        sae = TopKSAE(TopKSAEConfig(d_in=d_in, d_sae=d_sae, k=k, metadata=metadata))
    elif architecture == "standard":
        sae = StandardSAE(StandardSAEConfig(d_in=d_in, d_sae=d_sae, metadata=metadata))
    elif architecture == "jumprelu":
        sae = JumpReLUSAE(JumpReLUSAEConfig(d_in=d_in, d_sae=d_sae, metadata=metadata))
    else:
        raise ValueError(f"unknown SAE architecture {architecture!r}: choose one of {SAE_ARCHITECTURES}")
    with torch.no_grad():
        for name, parameter in sae.named_parameters():
            if name == "threshold":  # JumpReLU: a small positive threshold, so some latents fire and some do not
                parameter.fill_(0.05)
            else:
                parameter.normal_(0, 0.2)
    sae.save_model(str(folder))
    return folder
