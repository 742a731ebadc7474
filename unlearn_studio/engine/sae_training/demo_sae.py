"""The demo SAE, end to end: train it with the shipped settings, then measure it."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from ..jobs import ProgressCallback
from .config import TRAINING_FILENAME, demo_config
from .corpus import build_corpus
from .quality import measure_sae_quality, write_quality
from .runner import train_sae
from .sae_lens_adapter import load_sae


def train_demo_sae(output_dir: str | Path, progress: ProgressCallback | None = None, cancel: threading.Event | None = None,
                   *, model_path: str | Path | None = None, **overrides: Any) -> dict[str, Any]:
    """Train the demo SAE with the shipped settings, measure it, write ``quality.json``; return the quality dict."""
    from unlearn_studio.engine import entities as ent
    from unlearn_studio.engine.models import load_model

    config = demo_config(output_dir, model_path, **overrides)
    started = time.monotonic()
    folder = train_sae(config, progress=progress, cancel=cancel)
    if progress is not None:
        progress("measuring the SAE", 0.97)
    loaded = load_model(config.model_path)
    model = loaded.model.eval()
    sae = load_sae(folder)
    corpus = build_corpus(sources=config.corpus_sources, heldout_fraction=config.heldout_fraction)
    quality = measure_sae_quality(model, loaded.tokenizer, sae, config.hook_name, corpus.heldout,
                                  ent.load_known_candidates(), ent.load_unknown_entities(), ent.load_templates(),
                                  context_size=config.context_size)
    training = json.loads((folder / TRAINING_FILENAME).read_text())
    quality["training"] = {"train_seconds": training["train_seconds"], "steps": training["steps"],
                           "training_tokens": config.training_tokens, "k": config.k, "d_sae": config.d_sae}
    quality["model_name"] = config.model_name
    quality["total_seconds"] = round(time.monotonic() - started, 1)
    write_quality(folder, quality)
    if progress is not None:
        progress("demo SAE done", 1.0)
    return quality
