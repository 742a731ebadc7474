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
    encoded = tokenizer(text, return_offsets_mapping=True, add_special_tokens=True)
    ids = list(encoded["input_ids"])
    in_entity = [tok_end > start and tok_start < end and tok_end > tok_start for tok_start, tok_end in encoded["offset_mapping"]]
    if not any(in_entity):
        raise PromptError(f"the entity in {text!r} produced no tokens: check the name is not empty or only spaces.")
    return ids, in_entity


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
