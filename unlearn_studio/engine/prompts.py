"""Tokenising entity prompts and locating the entity's tokens (the positions the method reads)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..errors import UserError


class PromptError(UserError, ValueError):
    """A prompt that cannot be used: the entity vanishes in tokenisation, or it is too long."""


@dataclass
class EntityBatch:
    """Right-padded token ids with, per row, the last entity token and a mask of every entity token."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    last_entity_pos: torch.Tensor
    entity_mask: torch.Tensor

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def to(self, device: torch.device | str) -> EntityBatch:
        return EntityBatch(*(t.to(device) for t in (self.input_ids, self.attention_mask, self.last_entity_pos, self.entity_mask)))

    def rows(self, index: torch.Tensor | slice) -> EntityBatch:
        return EntityBatch(self.input_ids[index], self.attention_mask[index], self.last_entity_pos[index], self.entity_mask[index])


def _encode_one(tokenizer, text: str, start: int, end: int) -> tuple[list[int], list[bool]]:
    if not getattr(tokenizer, "is_fast", False):
        return _encode_by_search(tokenizer, text, start, end)
    encoded = tokenizer(text, return_offsets_mapping=True, add_special_tokens=True)
    ids = list(encoded["input_ids"])
    in_entity = [tok_end > start and tok_start < end and tok_end > tok_start for tok_start, tok_end in encoded["offset_mapping"]]
    if not any(in_entity):
        raise PromptError(f"the entity in {text!r} produced no tokens: check the name is not empty or only spaces.")
    return ids, in_entity


def _encode_by_search(tokenizer, text: str, start: int, end: int) -> tuple[list[int], list[bool]]:
    """The entity's tokens for a tokenizer without character offsets (a slow, pure-Python tokenizer).

    The text up to the entity's end, tokenised alone, is normally a prefix of the whole text's tokens: its
    last token is the entity's last, and the entity starts where the tokens of the text before it stop
    matching. Otherwise the entity's own tokens are searched for in the text's tokens.
    """
    ids = list(tokenizer(text, add_special_tokens=True)["input_ids"])
    head = list(tokenizer(text[:end], add_special_tokens=True)["input_ids"])
    lead = list(tokenizer(text[:start], add_special_tokens=True)["input_ids"])
    span: tuple[int, int] | None = None
    if len(head) <= len(ids) and ids[:len(head)] == head:
        first = next((i for i, (a, b) in enumerate(zip(lead, ids)) if a != b), min(len(lead), len(ids)))
        if first < len(head):
            span = (first, len(head))
    if span is None:
        span = _find_tokens(tokenizer, ids, text[start:end])
    if span is None:
        raise PromptError(
            f"this tokenizer gives no character offsets (a slow tokenizer) and the tokens of {text[start:end]!r} could "
            f"not be found in {text!r}: put the model's fast tokenizer (tokenizer.json) in its folder, or rephrase the template."
        )
    return ids, [span[0] <= i < span[1] for i in range(len(ids))]


def _find_tokens(tokenizer, ids: list[int], name: str) -> tuple[int, int] | None:
    for variant in (" " + name.strip(), name.strip()):
        pattern = list(tokenizer(variant, add_special_tokens=False)["input_ids"])
        for i in range(len(ids) - len(pattern), -1, -1):  # the last mention: templates end on the entity
            if pattern and ids[i:i + len(pattern)] == pattern:
                return i, i + len(pattern)
    return None


def encode_entity_prompts(tokenizer, prompts: Sequence[tuple[str, int, int]], *, max_length: int | None = None) -> EntityBatch:
    """Tokenise ``(text, entity_start, entity_end)`` triples (character spans) into one batch."""
    if not prompts:
        raise PromptError("no prompts to encode")
    limit = max_length or getattr(tokenizer, "model_max_length", None) or 10**9
    rows = [_encode_one(tokenizer, *prompt) for prompt in prompts]
    longest = max(len(ids) for ids, _ in rows)
    if longest > limit:
        raise PromptError(f"a prompt is {longest} tokens long, more than the model's context of {limit}: use a shorter name.")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(rows), longest), pad, dtype=torch.long)
    attention = torch.zeros((len(rows), longest), dtype=torch.long)
    entity_mask = torch.zeros((len(rows), longest), dtype=torch.bool)
    last = torch.zeros(len(rows), dtype=torch.long)
    for row, (ids, in_entity) in enumerate(rows):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention[row, : len(ids)] = 1
        entity_mask[row, : len(ids)] = torch.tensor(in_entity)
        last[row] = max(i for i, flag in enumerate(in_entity) if flag)
    return EntityBatch(input_ids, attention, last, entity_mask)


def encode_texts(tokenizer, texts: Sequence[str], *, max_length: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and attention mask for plain texts (retain text, perplexity)."""
    encoded = tokenizer(list(texts), return_tensors="pt", padding=True, truncation=True, max_length=max_length)
    return encoded["input_ids"], encoded["attention_mask"]


def bos_prefix(tokenizer) -> list[int]:
    """``[bos]`` when the tokenizer puts a BOS token before every text it encodes (Gemma, Llama 3), else ``[]``.

    Such models expect that token first: text cut into chunks needs it at the start of every chunk, not only the first.
    """
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return []
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return [bos] if ids and ids[0] == bos else []


def text_chunks(tokenizer, text: str, length: int) -> list[list[int]]:
    """``text``'s tokens in consecutive chunks of at most ``length`` ids, each starting with the BOS token if the model uses one."""
    prefix = bos_prefix(tokenizer)
    body = length - len(prefix)
    if body < 1:
        raise PromptError(f"a chunk of {length} tokens leaves no room for text.")
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return [prefix + ids[i:i + body] for i in range(0, len(ids), body)]


def _carries_text(tokenizer, token: int) -> bool:
    return bool(tokenizer.decode([token], skip_special_tokens=True).strip())


def answer_lens_input(tokenizer, prompt: str, answer: str) -> tuple[list[int], int]:
    """The ids the model reads before an answer, and the answer's first token that carries text.

    The answer is tokenised as it follows the prompt (``prompt + " " + answer``). SentencePiece tokenizers
    often start it with a bare ``▁`` (Gemma splits digits: ``▁``, ``1``, ``8``, …): such whitespace tokens
    join the context, so the model is asked for the token it would really produce next.
    """
    head = list(tokenizer(prompt, add_special_tokens=True)["input_ids"])
    full = list(tokenizer(prompt + " " + answer.strip(), add_special_tokens=True)["input_ids"])
    if full[:len(head)] == head and len(full) > len(head):
        context, rest = head, full[len(head):]
    else:  # the prompt's last token merged with the answer: tokenise the answer alone
        context, rest = head, list(tokenizer(" " + answer.strip(), add_special_tokens=False)["input_ids"])
    for index, token in enumerate(rest):
        if _carries_text(tokenizer, token):
            return context + rest[:index], token
    raise PromptError(f"the answer {answer!r} produced no tokens that carry text: check the facts file.")
