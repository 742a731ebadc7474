"""Steering: are the entity latents causal? (Ferrando et al. 2024: turning the known-entity latents down makes
the model treat a known entity as unknown.)

At the SAE's hook, on the prompt's entity tokens, the code ``z = encode(x)`` is edited into ``z'``: each top
known-entity latent is scaled by ``1 + strength`` (−1 turns it off, 0 leaves it, below −1 pushes it negative),
and with ``add_unknown`` each top unknown-entity latent ``j`` gets ``−strength · μ_U[j]`` more (its mean over
the unknown references; clamped at 0, as codes are). The residual becomes ``x' = x + decode(z') − decode(z)``:
the SAE's reconstruction error ``x − decode(z)`` stays, so for a linear decoder the change is exactly
``(z' − z) · W_dec``, along the chosen latents' decoder directions and nothing else.

Positions: every token of every mention of the entity in the prompt (never position 0, the attention sink
the SAE never saw). The latents were found at the last entity token, but attention can read the entity from
its earlier tokens too; a latent that is silent at a token is scaled from 0 to 0, so editing every entity
token is the complete edit without touching the rest of the prompt. Generated tokens are not edited: they
read the edited prompt through the attention cache.

Both answers, unsteered and steered, are greedy with the same weights (the session's original ones).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch

from ..errors import UserError
from .entities import validate_target_name
from .generation import format_prompt
from .hooks import HookPoint
from .jobs import ProgressCallback, check_cancel
from .latents import References


STRENGTH_LIMIT = 10.0
DEFAULT_STRENGTH = -1.0


@dataclass(frozen=True)
class SteeredLatent:
    latent: int
    kind: str  # known | unknown
    separation: float
    before: float  # mean activation over the edited positions, unsteered
    after: float  # the same, steered


@dataclass(frozen=True)
class SteeringResult:
    entity: str
    prompt: str
    strength: float
    add_unknown: bool
    chat: bool
    original: str  # the unsteered answer
    steered: str
    latents: list[SteeredLatent]
    positions: list[int]  # token positions edited (in the formatted prompt)
    tokens: list[str]  # those tokens' text

    def to_dict(self) -> dict:
        return asdict(self)


def check_strength(strength: float) -> float:
    value = float(strength)
    if not math.isfinite(value) or abs(value) > STRENGTH_LIMIT:
        raise UserError(f"the steering strength must be a number from {-STRENGTH_LIMIT:g} to {STRENGTH_LIMIT:g} "
                        f"(−1 turns the known-entity latents off, 0 leaves them), not {strength}.")
    return value


def edit_codes(codes: torch.Tensor, known: Sequence[int], unknown: Sequence[int], strength: float,
               unknown_amount: torch.Tensor | None) -> torch.Tensor:
    """``z'``: known latents scaled by ``1 + strength``; with ``unknown_amount`` (one value per unknown latent),
    unknown latents raised by ``−strength · unknown_amount``, clamped at 0."""
    edited = codes.clone()
    edited[..., list(known)] = codes[..., list(known)] * (1.0 + strength)
    if unknown_amount is not None:
        raised = codes[..., list(unknown)] - strength * unknown_amount.to(codes)
        edited[..., list(unknown)] = raised.clamp_min(0)
    return edited


def steered_activations(sae, acts: torch.Tensor, positions: torch.Tensor,
                        edit: Callable[[torch.Tensor], torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``x'`` for ``acts [batch, seq, width]``: ``x + decode(z') − decode(z)`` at ``positions``, ``x`` elsewhere.

    Returns ``x'`` and the codes before and after the edit at those positions."""
    sae_dtype = next(sae.parameters()).dtype
    chosen = acts[:, positions].to(sae_dtype)
    codes = sae.encode(chosen)
    edited = edit(codes)
    delta = sae.decode(edited) - sae.decode(codes)
    out = acts.clone()
    out[:, positions] = (chosen + delta).to(acts.dtype)
    return out, codes, edited


def _replace_first(value: object, tensor: torch.Tensor) -> object:
    if isinstance(value, torch.Tensor):
        return tensor
    return (tensor, *value[1:])


@contextmanager
def steering_hook(model, sae, hook: HookPoint, positions: Sequence[int], prompt_length: int,
                  edit: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[dict]:
    """Edit the hook's activation at ``positions`` in every forward pass over the whole prompt (the prefill).

    Yields a dict that receives the codes before and after the last edit (``"codes"``, ``"edited"``).
    Passes over single new tokens (the attention cache holds the prompt) pass through unchanged."""
    module = model.get_submodule(hook.module_path)
    index = torch.tensor(list(positions), dtype=torch.long)
    record: dict = {}

    def apply(acts: torch.Tensor) -> torch.Tensor | None:
        if acts.shape[1] != prompt_length:
            return None
        out, record["codes"], record["edited"] = steered_activations(sae, acts, index.to(acts.device), edit)
        return out

    if hook.side == "input":
        def pre_hook(_module, args, kwargs):  # noqa: ANN001, ANN202 - torch hook signature
            if args:
                out = apply(args[0])
                return None if out is None else ((out, *args[1:]), kwargs)
            out = apply(kwargs["hidden_states"])
            return None if out is None else (args, {**kwargs, "hidden_states": out})

        handle = module.register_forward_pre_hook(pre_hook, with_kwargs=True)
    else:
        def post_hook(_module, _args, output):  # noqa: ANN001, ANN202 - torch hook signature
            first = output if isinstance(output, torch.Tensor) else output[0]
            out = apply(first)
            return None if out is None else _replace_first(output, out)

        handle = module.register_forward_hook(post_hook)
    try:
        yield record
    finally:
        handle.remove()


def entity_positions(tokenizer, text: str, prompt: str, entity: str, *, add_special_tokens: bool) -> tuple[list[int], list[int]]:
    """Token ids of ``text`` (the formatted prompt) and the positions of the entity's tokens in its prompt part."""
    start = text.rfind(prompt)  # the user's text inside a chat template
    lowered, name = prompt.lower(), entity.lower()
    spans, at = [], lowered.find(name)
    while at >= 0:
        spans.append((start + at, start + at + len(name)))
        at = lowered.find(name, at + len(name))
    if not spans:
        raise UserError(f"the prompt does not mention {entity!r}: steering edits the entity's tokens, "
                        f"so write its name in the prompt (e.g. “Where is the {entity}?”).")
    encoded = tokenizer(text, return_offsets_mapping=True, add_special_tokens=add_special_tokens)
    positions = [index for index, (tok_start, tok_end) in enumerate(encoded["offset_mapping"])
                 if index > 0 and tok_end > tok_start and any(tok_end > s and tok_start < e for s, e in spans)]
    if not positions:
        raise UserError(f"{entity!r} is the very first token of the prompt, which is never edited (the model's "
                        "attention sink): put a word before the name.")
    return list(encoded["input_ids"]), positions


@torch.no_grad()
def _greedy(model, tokenizer, input_ids: list[int], max_new_tokens: int) -> str:
    device = next(model.parameters()).device
    ids = torch.tensor([input_ids], device=device)
    generated = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                               do_sample=False, pad_token_id=tokenizer.pad_token_id, top_p=None, top_k=None,
                               temperature=None)
    return tokenizer.decode(generated[0, ids.shape[1]:], skip_special_tokens=True)


def steer_answers(model, tokenizer, sae, hook: HookPoint, refs: References, entity: str, prompt: str, *,
                  strength: float = DEFAULT_STRENGTH, add_unknown: bool = False, chat: bool = True,
                  max_new_tokens: int = 32, progress: ProgressCallback | None = None,
                  cancel: threading.Event | None = None) -> SteeringResult:
    """The unsteered and the steered greedy answer to ``prompt`` with the model's current weights."""
    report = progress or (lambda message, fraction: None)
    strength = check_strength(strength)
    entity = validate_target_name(entity)
    if not prompt.strip():
        raise UserError("the prompt is empty: type a question that names the entity.")
    text = format_prompt(tokenizer, prompt, chat)
    input_ids, positions = entity_positions(tokenizer, text, prompt, entity, add_special_tokens=not chat)
    known, unknown = refs.top_known_latents, refs.top_unknown_latents
    amount = refs.mu_unknown[unknown] if add_unknown else None

    def edit(codes: torch.Tensor) -> torch.Tensor:
        return edit_codes(codes, known, unknown, strength, amount)

    check_cancel(cancel)
    report("answering without steering", 0.1)
    original = _greedy(model, tokenizer, input_ids, max_new_tokens)
    check_cancel(cancel)
    report(f"answering with the latents scaled by {1 + strength:g}", 0.55)
    with steering_hook(model, sae, hook, positions, len(input_ids), edit) as record:
        steered = _greedy(model, tokenizer, input_ids, max_new_tokens)
    check_cancel(cancel)
    before, after = record["codes"].float().mean(dim=(0, 1)).cpu(), record["edited"].float().mean(dim=(0, 1)).cpu()
    latents = [SteeredLatent(i, kind, float(refs.separation[i]), float(before[i]), float(after[i]))
               for kind, ids in (("known", known), ("unknown", unknown)) for i in ids
               if kind == "known" or add_unknown]
    report("done", 1.0)
    return SteeringResult(entity=entity, prompt=prompt, strength=strength, add_unknown=add_unknown, chat=chat,
                          original=original, steered=steered, latents=latents, positions=positions,
                          tokens=[tokenizer.decode([input_ids[p]]) for p in positions])


def steer(session, entity: str, prompt: str, *, strength: float = DEFAULT_STRENGTH, add_unknown: bool = False,
          chat: bool = True, max_new_tokens: int = 32, verify_known: bool = True, references: References | None = None,
          progress: ProgressCallback | None = None, cancel: threading.Event | None = None) -> SteeringResult:
    """:func:`steer_answers` on a Session: its references without ``entity`` (θ0) and its original weights."""
    report = progress or (lambda message, fraction: None)
    check_strength(strength)
    if references is None:
        references = session.prepare_references([validate_target_name(entity)], verify=verify_known, cancel=cancel,
                                                progress=lambda m, f: report(m, 0.5 * f))
    with session.original_weights():
        return steer_answers(session.model, session.tokenizer, session.sae.sae, session.hook, references, entity, prompt,
                             strength=strength, add_unknown=add_unknown, chat=chat, max_new_tokens=max_new_tokens,
                             cancel=cancel, progress=lambda m, f: report(m, 0.5 + 0.5 * f))

