"""Greedy generation: batched completions for fact checks, and a token stream for the Ask panel."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import torch

from .validation import MAX_PROMPT_TOKENS, InvalidInput, check_max_new_tokens, check_prompt_text, context_length


PLAIN_QA_FORM = "Question: {question}\nAnswer:"
NO_CHAT_TEMPLATE_NOTE = ("this model has no chat template (a base model, such as gemma-2-2b): chat-form checks and "
                         "questions are asked in a plain 'Question: … Answer:' form instead, and labelled 'question-answer'.")


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def chat_form_label(tokenizer) -> str:
    """How chat-form prompts are really asked: ``chat`` (the model's template) or ``question-answer`` (no template)."""
    return "chat" if has_chat_template(tokenizer) else "question-answer"


def _chat_text(tokenizer, question: str) -> str:
    return tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True)


def format_prompt(tokenizer, prompt: str, chat: bool) -> str:
    """The text fed to the model: the prompt itself, or, when ``chat``, the chat template around it.

    A model without a chat template gets the plain :data:`PLAIN_QA_FORM` instead of a bare question.
    """
    if not chat:
        return prompt
    if has_chat_template(tokenizer):
        return _chat_text(tokenizer, prompt)
    return PLAIN_QA_FORM.format(question=prompt.strip())


def adds_special_tokens(tokenizer, chat: bool) -> bool:
    """A chat template writes its own special tokens (BOS included); every other text gets the tokenizer's."""
    return not (chat and has_chat_template(tokenizer))


@torch.no_grad()
def complete(model, tokenizer, prompts: Sequence[str], *, max_new_tokens: int = 8, chat: bool = False,
             batch_size: int = 32) -> list[str]:
    """Greedy continuations of ``prompts`` (left-padded batches), decoded without special tokens."""
    device = model.get_input_embeddings().weight.device
    texts = [format_prompt(tokenizer, prompt, chat) for prompt in prompts]
    outputs: list[str] = []
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        for start in range(0, len(texts), batch_size):
            chunk = texts[start:start + batch_size]
            encoded = tokenizer(chunk, return_tensors="pt", padding=True,
                                add_special_tokens=adds_special_tokens(tokenizer, chat)).to(device)
            generated = model.generate(**encoded, max_new_tokens=max_new_tokens, do_sample=False,
                                       pad_token_id=tokenizer.pad_token_id, top_p=None, top_k=None, temperature=None)
            new_tokens = generated[:, encoded["input_ids"].shape[1]:]
            outputs.extend(tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
    finally:
        tokenizer.padding_side = side
    return outputs


class _CallbackStreamer:
    """A transformers streamer that hands each decoded piece of text to a callback."""

    def __init__(self, tokenizer, on_text: Callable[[str], None], cancel: threading.Event | None) -> None:
        self.tokenizer = tokenizer
        self.on_text = on_text
        self.cancel = cancel
        self.prompt_seen = False
        self.tokens: list[int] = []
        self.emitted = ""

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:  # the first call carries the prompt
            self.prompt_seen = True
            return
        self.tokens.extend(value.flatten().tolist())
        text = self.tokenizer.decode(self.tokens, skip_special_tokens=True)
        if len(text) > len(self.emitted) and not text.endswith("\ufffd"):
            self.on_text(text[len(self.emitted):])
            self.emitted = text

    def end(self) -> None:
        pass


class _StopWhenCancelled:
    def __init__(self, cancel: threading.Event | None) -> None:
        self.cancel = cancel

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        stop = bool(self.cancel and self.cancel.is_set())
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


@torch.no_grad()
def stream_answer(model, tokenizer, prompt: str, on_text: Callable[[str], None], *, chat: bool = True,
                  max_new_tokens: int = 48, cancel: threading.Event | None = None) -> str:
    """Generate greedily, calling ``on_text`` with each new piece; returns the whole answer."""
    from transformers import StoppingCriteriaList


    check_prompt(prompt, tokenizer, model, max_new_tokens, chat=chat)
    device = model.get_input_embeddings().weight.device
    text = format_prompt(tokenizer, prompt, chat)
    encoded = tokenizer(text, return_tensors="pt", add_special_tokens=adds_special_tokens(tokenizer, chat)).to(device)
    streamer = _CallbackStreamer(tokenizer, on_text, cancel)
    model.generate(**encoded, max_new_tokens=max_new_tokens, do_sample=False, streamer=streamer,
                   pad_token_id=tokenizer.pad_token_id, top_p=None, top_k=None, temperature=None,
                   stopping_criteria=StoppingCriteriaList([_StopWhenCancelled(cancel)]))
    return streamer.emitted


def check_prompt(prompt: str, tokenizer: Any, model: Any, max_new_tokens: int, *, chat: bool = True) -> None:
    """The prompt (in the form fed to the model) and its answer fit the model's context and the prompt limit."""
    check_prompt_text(prompt)
    check_max_new_tokens(max_new_tokens)
    size = len(tokenizer(format_prompt(tokenizer, prompt, chat), add_special_tokens=not chat)["input_ids"])
    context = context_length(model, tokenizer)
    room = min(context - max_new_tokens, MAX_PROMPT_TOKENS)
    if size > room:
        raise InvalidInput(f"the prompt is {size:,} tokens long: at most {max(room, 0):,} fit (the model reads "
                           f"{context:,} tokens, {max_new_tokens} are kept for the answer, and prompts are limited "
                           f"to {MAX_PROMPT_TOKENS:,}). Shorten it, or ask for fewer new tokens.")
