"""What a trained SAE is good for: reconstruction on held-out text, and known/unknown separation at entity names.

:func:`measure_sae_quality` records explained variance, L0 and dead latents on
held-out text, and how well the SAE's codes at the last token of an entity name
tell known from unknown entities (a logistic probe on held-out entities, and
the best single Ferrando-style latent).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .config import QUALITY_FILENAME
from .corpus import DOC_SEPARATOR, split_entities, tokenize_corpus


@torch.no_grad()
def heldout_activations(model, tokenizer, hook_name: str, texts: Sequence[str], *, context_size: int = 128,
                        max_tokens: int = 16_384, batch_size: int = 8, skip_first_position: bool = True) -> torch.Tensor:
    """Activations ``[n_tokens, width]`` at ``hook_name`` on held-out text, rowed as in training (first position skipped)."""
    from unlearn_studio.engine.hooks import capture_one, resolve_hook

    hook = resolve_hook(model, hook_name)
    device = next(model.parameters()).device
    rows = tokenize_corpus(tokenizer, texts, context_size, shuffle=False,
                           max_tokens=max_tokens + (context_size if skip_first_position else 0))
    if not rows:
        # shorter than one row: use the whole text as one row
        ids = tokenizer(DOC_SEPARATOR.join(texts), add_special_tokens=False)["input_ids"][:context_size]
        rows = [ids] if len(ids) > 1 else []
    if not rows:
        raise ValueError("no held-out text to measure on")
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    chunks = []
    for start in range(0, len(rows), batch_size):
        ids = torch.tensor(rows[start : start + batch_size], dtype=torch.long, device=device)
        acts = capture_one(model, hook, ids, torch.ones_like(ids))
        if skip_first_position:
            acts, ids = acts[:, 1:], ids[:, 1:]
        keep = ~torch.isin(ids, torch.tensor(sorted(special), dtype=torch.long, device=device)) if special else None
        acts = acts.reshape(-1, acts.shape[-1])
        if keep is not None:
            acts = acts[keep.reshape(-1)]
        chunks.append(acts.float().cpu())
    return torch.cat(chunks)[:max_tokens]


@torch.no_grad()
def reconstruction_stats(sae, activations: torch.Tensor, batch_size: int = 2048) -> dict[str, Any]:
    """Explained variance ``1 - Σ‖x - x̂‖² / Σ‖x - mean‖²``, mean L0 and never-firing latents on ``activations``."""
    x = activations.float()
    mean = x.mean(0, keepdim=True)
    sse = 0.0
    total = float((x - mean).pow(2).sum())
    l0_sum = 0.0
    fired = torch.zeros(sae.cfg.d_sae, dtype=torch.bool)
    for start in range(0, x.shape[0], batch_size):
        batch = x[start : start + batch_size]
        codes = sae.encode(batch.to(sae.W_enc.dtype)).float()
        recon = sae.decode(codes.to(sae.W_enc.dtype)).float()
        sse += float((batch - recon).pow(2).sum())
        active = codes > 0
        l0_sum += float(active.sum())
        fired |= active.any(0).cpu()
    n = x.shape[0]
    return {
        "explained_variance": 1.0 - sse / total if total > 0 else float("nan"),
        "mse_per_token": sse / n,
        "mean_l0": l0_sum / n,
        "dead_fraction": float((~fired).float().mean()),
        "dead_latents": int((~fired).sum()),
        "n_tokens": n,
    }


@torch.no_grad()
def entity_codes(model, tokenizer, sae, hook_name: str, entities: Sequence[Any], templates: Sequence[str],
                 *, batch_size: int = 32) -> torch.Tensor:
    """SAE codes ``[len(entities) * len(templates), d_sae]`` at the last token of the entity name."""
    from unlearn_studio.engine.entities import fill_template
    from unlearn_studio.engine.hooks import capture_one, resolve_hook
    from unlearn_studio.engine.prompts import encode_entity_prompts

    hook = resolve_hook(model, hook_name)
    device = next(model.parameters()).device
    prompts = [fill_template(template, entity.name) for entity in entities for template in templates]
    out = []
    for start in range(0, len(prompts), batch_size):
        batch = encode_entity_prompts(tokenizer, prompts[start : start + batch_size]).to(device)
        acts = capture_one(model, hook, batch.input_ids, batch.attention_mask)
        last = acts[torch.arange(acts.shape[0], device=device), batch.last_entity_pos]
        out.append(sae.encode(last.to(sae.W_enc.dtype)).float().cpu())
    return torch.cat(out) if out else torch.zeros((0, sae.cfg.d_sae))


def _fire_rates(codes: torch.Tensor) -> torch.Tensor:
    return (codes > 0).float().mean(0)


@torch.no_grad()
def separation_stats(known_train: torch.Tensor, unknown_train: torch.Tensor, known_test: torch.Tensor,
                     unknown_test: torch.Tensor) -> dict[str, Any]:
    """Probe accuracy on held-out entities and the best single known/unknown latents (chosen on train entities)."""
    from unlearn_studio.engine.probe import fit_probe

    features = torch.cat([known_train, unknown_train])
    labels = torch.cat([torch.ones(len(known_train)), torch.zeros(len(unknown_train))])
    probe = fit_probe(features, labels)
    test_features = torch.cat([known_test, unknown_test])
    test_labels = torch.cat([torch.ones(len(known_test)), torch.zeros(len(unknown_test))])
    score_train = _fire_rates(known_train) - _fire_rates(unknown_train)
    score_test = _fire_rates(known_test) - _fire_rates(unknown_test)
    known_latent = int(score_train.argmax())
    unknown_latent = int(score_train.argmin())
    return {
        "probe_accuracy_train": probe.accuracy(features, labels),
        "probe_accuracy_heldout": probe.accuracy(test_features, test_labels),
        "best_known_latent": known_latent,
        "best_known_latent_separation_train": float(score_train[known_latent]),
        "best_known_latent_separation_heldout": float(score_test[known_latent]),
        "best_unknown_latent": unknown_latent,
        "best_unknown_latent_separation_train": float(-score_train[unknown_latent]),
        "best_unknown_latent_separation_heldout": float(-score_test[unknown_latent]),
        "best_latent_separation_all_heldout": float(score_test.max()),
    }


def measure_sae_quality(model, tokenizer, sae, hook_name: str, held_out_texts: Sequence[str],
                        known_entities: Sequence[Any], unknown_entities: Sequence[Any], templates: Any,
                        *, output_dir: str | Path | None = None, max_heldout_tokens: int = 16_384,
                        context_size: int = 128, max_templates: int | None = None) -> dict[str, Any]:
    """Measure an SAE on held-out text and held-out entities; write ``quality.json`` to ``output_dir`` if given.

    * text: explained variance ``1 - Σ‖x - x̂‖² / Σ‖x - mean‖²`` over held-out
      tokens (rows of ``context_size`` as in training, first position and
      special tokens skipped), mean L0, and the fraction of latents that never
      fire there;
    * entities: SAE codes at the last entity token; known and unknown entities
      are each split in halves by entity (:func:`split_entities`, the same
      split :func:`.corpus.build_corpus` uses). A logistic probe is fitted on the
      training halves with the training templates and scored on the held-out
      halves with the held-out templates; the best single latent by Ferrando's
      score (fraction of known prompts where it fires − fraction of unknown
      prompts) is chosen on the training halves and scored on both.

    ``known_entities`` are taken as known as given (pass the model-verified
    list where one exists).
    """
    started = time.monotonic()
    acts = heldout_activations(model, tokenizer, hook_name, held_out_texts, context_size=context_size,
                               max_tokens=max_heldout_tokens)
    result: dict[str, Any] = {"hook_name": hook_name, "d_in": int(sae.cfg.d_in), "d_sae": int(sae.cfg.d_sae),
                              "architecture": sae.cfg.architecture(), "text": reconstruction_stats(sae, acts)}
    train_templates = list(templates.train if hasattr(templates, "train") else templates)
    heldout_templates = list(templates.eval if hasattr(templates, "eval") else templates)
    if max_templates is not None:
        train_templates, heldout_templates = train_templates[:max_templates], heldout_templates[:max_templates]
    known_train, known_test = split_entities(known_entities)
    unknown_train, unknown_test = split_entities(unknown_entities)
    if min(len(known_train), len(known_test), len(unknown_train), len(unknown_test)) == 0:
        raise ValueError("need at least two known and two unknown entities to measure separation")

    def codes(entities: Sequence[Any], templates_: Sequence[str]) -> torch.Tensor:
        return entity_codes(model, tokenizer, sae, hook_name, entities, templates_)

    separation = separation_stats(codes(known_train, train_templates), codes(unknown_train, train_templates),
                                  codes(known_test, heldout_templates), codes(unknown_test, heldout_templates))
    separation.update({
        "known_entities": {"train": len(known_train), "heldout": len(known_test)},
        "unknown_entities": {"train": len(unknown_train), "heldout": len(unknown_test)},
        "templates": {"train": len(train_templates), "heldout": len(heldout_templates)},
    })
    result["entities"] = separation
    result["seconds"] = round(time.monotonic() - started, 1)
    if output_dir is not None:
        write_quality(output_dir, result)
    return result


def write_quality(output_dir: str | Path, quality: dict[str, Any]) -> Path:
    """Write ``quality.json`` atomically into ``output_dir``."""
    path = Path(output_dir) / QUALITY_FILENAME
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(quality, indent=2) + "\n")
    os.replace(tmp, path)
    return path
