"""Training an SAE with sae-lens on the offline corpus, with progress, cancel, activation replay and a safe save."""

from __future__ import annotations

import functools
import json
import logging
import os
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from ..jobs import ProgressCallback
from .config import TRAINING_FILENAME, SaeTrainingConfig, SaeTrainingError, TrainingCancelled
from .corpus import Corpus, build_corpus, tokenize_corpus
from .sae_lens_adapter import SaeLensRunner, check_sae_lens_version, check_saved_sae, installed_sae_lens_version

log = logging.getLogger(__name__)


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise TrainingCancelled("SAE training was cancelled")


class TrainingBatches:
    """The trainer's batches: sae-lens's activations, with progress, cancel and replay.

    Reports progress per training batch and honours cancel. With ``replay_after``
    set, the first ``replay_after`` activations come from ``activations`` (model
    forward passes, sae-lens's mixing buffer) and are kept in memory; later
    batches are drawn from them again in a fresh random order each epoch, so
    one forward pass serves several SAE steps (the model forward, not the SAE
    step, is what costs time on a CPU).
    """

    def __init__(self, activations: Iterator[torch.Tensor], *, n_steps: int, batch_size: int,
                 progress: ProgressCallback | None, cancel: threading.Event | None, span: tuple[float, float],
                 replay_after: int | None = None, seed: int = 0):
        self._activations = activations
        self._n_steps = max(1, n_steps)
        self._batch_size = batch_size
        self._progress = progress
        self._cancel = cancel
        self._span = span
        self._step = 0
        self._start = time.monotonic()
        self._last_report = 0.0
        self._replay_after = replay_after
        self._kept: list[torch.Tensor] = []
        self._n_kept = 0
        self._pool: torch.Tensor | None = None
        self._order: torch.Tensor | None = None
        self._position = 0
        self._generator = torch.Generator().manual_seed(seed)
        self.epochs = 0

    @property
    def n_unique(self) -> int:
        """How many distinct activations (forward-pass tokens) the batches came from."""
        return self._n_kept if self._pool is None else int(self._pool.shape[0])

    def __iter__(self) -> Iterator[torch.Tensor]:
        return self

    def __next__(self) -> torch.Tensor:
        _check_cancel(self._cancel)
        batch = self._next_batch()
        self._step += 1
        now = time.monotonic()
        if self._progress is not None and (now - self._last_report >= 1.0 or self._step >= self._n_steps):
            self._last_report = now
            done = min(1.0, self._step / self._n_steps)
            elapsed = now - self._start
            phase = "reading activations" if self._pool is None and self._replay_after is not None else "training"
            lo, hi = self._span
            self._progress(f"training SAE: step {self._step}/{self._n_steps}, {phase} ({elapsed:.0f} s)",
                           lo + (hi - lo) * done)
        return batch

    def _next_batch(self) -> torch.Tensor:
        if self._replay_after is None:
            return next(self._activations)
        if self._pool is None and self._n_kept < self._replay_after:
            batch = next(self._activations)
            self._kept.append(batch.detach().clone())
            self._n_kept += batch.shape[0]
            return batch
        if self._pool is None:
            self._pool = torch.cat(self._kept)
            self._kept = []
            self._order = None
        return self._replayed_batch(self._pool)

    def _replayed_batch(self, pool: torch.Tensor) -> torch.Tensor:
        if self._order is None or self._position + self._batch_size > self._order.shape[0]:
            self._order = torch.randperm(pool.shape[0], generator=self._generator)
            self._position = 0
            self.epochs += 1
        index = self._order[self._position : self._position + self._batch_size]
        self._position += self._batch_size
        return pool[index]


def _checked_paths(config: SaeTrainingConfig) -> tuple[Path, Path]:
    """The model folder and the output folder, refused with a clear message when they cannot be used."""
    if not config.output_dir:
        raise SaeTrainingError("no output folder given for the SAE")
    model_path = Path(config.model_path)
    if not (model_path / "config.json").is_file():
        raise SaeTrainingError(
            f"{model_path} is not a model folder (no config.json): convert or fetch the model first "
            "(unlearn-studio fetch-demo for the demo model)."
        )
    output = Path(config.output_dir).expanduser().resolve()
    if output.exists() and not output.is_dir():
        raise SaeTrainingError(f"the SAE output {output} is a file: choose a folder")
    if output.is_dir() and any(output.iterdir()) and not config.overwrite:
        raise SaeTrainingError(f"the SAE output folder {output} is not empty: choose a new folder (or overwrite)")
    return model_path, output


def _corpus_rows(config: SaeTrainingConfig, model_path: Path) -> tuple[Corpus, list[list[int]]]:
    """The corpus and its training split tokenised into rows of ``context_size``; at least one model batch."""
    from transformers import AutoTokenizer

    corpus = build_corpus(sources=config.corpus_sources, heldout_fraction=config.heldout_fraction)
    tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    rows = tokenize_corpus(tokenizer, corpus.train, config.context_size, seed=config.seed,
                           max_tokens=config.max_corpus_tokens)
    if len(rows) < config.store_batch_size_prompts:
        raise SaeTrainingError(
            f"the corpus gives {len(rows)} rows of {config.context_size} tokens, fewer than one model batch "
            f"({config.store_batch_size_prompts}): add text or lower context_size"
        )
    return corpus, rows


def _model_width(model_path: Path) -> int:
    from transformers import AutoConfig

    model_config = AutoConfig.from_pretrained(str(model_path))
    d_in = int(getattr(model_config, "hidden_size", 0) or getattr(model_config, "n_embd", 0))
    if not d_in:
        raise SaeTrainingError(f"cannot read the model width from {model_path / 'config.json'}")
    return d_in


def _check_buffer(config: SaeTrainingConfig) -> None:
    per_row = config.tokens_per_row
    if config.n_batches_in_buffer * per_row < config.train_batch_size_tokens:
        raise SaeTrainingError(
            f"the mixing buffer ({config.n_batches_in_buffer} x {per_row} tokens) is smaller than a training batch "
            f"({config.train_batch_size_tokens}): raise n_batches_in_buffer"
        )


def _reporter(progress: ProgressCallback | None) -> ProgressCallback:
    def report(message: str, fraction: float) -> None:
        log.info("%s", message)
        if progress is not None:
            progress(message, fraction)

    return report


def _model_fingerprint(model_path: Path) -> str:
    """The weights fingerprint that loading this model for unlearning gives (the loader computes it), so a later
    load can tell whether it has the model the SAE was trained on."""
    from ..models import load_model

    loaded = load_model(model_path, device="cpu")
    fingerprint = loaded.info.fingerprint
    del loaded  # free it before sae-lens loads its own copy
    return fingerprint


def _training_record(config: SaeTrainingConfig, model_fingerprint: str, corpus: Corpus, n_rows: int,
                     batches: TrainingBatches, train_seconds: float, started: float) -> dict[str, Any]:
    """What ``training.json`` says about the run."""
    return {
        "model_fingerprint": model_fingerprint,
        "config": config.to_dict(),
        "corpus": {**corpus.stats(), "train_rows": n_rows, "train_corpus_tokens": n_rows * config.context_size},
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.monotonic() - started, 1),
        "steps": config.n_steps,
        "distinct_activations": batches.n_unique,
        "replay_epochs": batches.epochs,
        "torch_threads": torch.get_num_threads(),
        "sae_lens_version": installed_sae_lens_version() or "unknown",
    }


def _write_sae_folder(run: SaeLensRunner, sae: Any, config: SaeTrainingConfig, output: Path, d_in: int,
                      record: Callable[[], dict[str, Any]], cancel: threading.Event | None) -> None:
    """Save into a temporary sibling folder, check it reads back, and only then move it to ``output``."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.tmp-", dir=output.parent))
    try:
        run.save(sae, tmp, model_name=config.model_name or config.model_path,
                 dataset_path="unlearn-studio offline corpus: " + "+".join(config.corpus_sources))
        (tmp / TRAINING_FILENAME).write_text(json.dumps(record(), indent=2))
        check_saved_sae(tmp, config.hook_name, d_in)
        _check_cancel(cancel)
        _install(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _install(tmp: Path, output: Path) -> None:
    """Move the finished folder ``tmp`` to ``output``, replacing an old one only once the new one is complete."""
    old = None
    if output.exists():
        old = output.with_name(f".{output.name}.old-{os.getpid()}-{int(time.time())}")
        output.rename(old)
    try:
        tmp.rename(output)
    except OSError:
        if old is not None:
            old.rename(output)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def train_sae(config: SaeTrainingConfig, progress: ProgressCallback | None = None,
              cancel: threading.Event | None = None) -> Path:
    """Train an SAE with sae-lens's ``LanguageModelSAETrainingRunner`` and save it to ``config.output_dir``.

    The corpus (:func:`.corpus.build_corpus`, training split only) is tokenised
    into an in-memory ``datasets.Dataset`` of ``context_size`` rows and given to
    the runner as ``override_dataset``; the model is loaded from the local folder
    ``config.model_path`` (``AutoModelForCausalLM``, fp32, no network); the
    forward pass stops at the hook. The first position of every row is skipped
    (``seqpos_slice=(1, None)``, it carries the attention-sink activation) and
    special tokens are excluded. With ``activation_tokens`` below
    ``training_tokens``, the first ``activation_tokens`` activations are kept in
    memory and replayed in fresh random orders for the remaining steps (see
    :class:`TrainingBatches`). No wandb, no checkpoints. The result is
    written to a temporary sibling folder and renamed into place: ``cfg.json``,
    ``sae_weights.safetensors`` (sae-lens format), ``runner_cfg.json`` (the
    sae-lens run settings) and ``training.json`` (the model's weights
    fingerprint, this config, corpus sizes, wall time). Returns the output folder.
    """
    check_sae_lens_version(installed_sae_lens_version())
    model_path, output = _checked_paths(config)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    report = _reporter(progress)
    started = time.monotonic()
    report("building the corpus", 0.0)
    corpus, rows = _corpus_rows(config, model_path)
    _check_cancel(cancel)
    d_in = _model_width(model_path)
    _check_buffer(config)
    report(f"fingerprinting {model_path.name}", 0.01)
    model_fingerprint = _model_fingerprint(model_path)
    _check_cancel(cancel)
    report(f"loading {model_path.name} for SAE training ({len(rows) * config.context_size} corpus tokens)", 0.02)
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    run = SaeLensRunner(config, d_in, rows)
    _check_cancel(cancel)
    batches = TrainingBatches(run.activations, n_steps=config.n_steps, batch_size=config.train_batch_size_tokens,
                              progress=progress, cancel=cancel, span=(0.05, 0.95),
                              replay_after=config.replay_after, seed=config.seed)
    train_started = time.monotonic()
    sae = run.train(batches)
    train_seconds = time.monotonic() - train_started
    _check_cancel(cancel)
    report("saving the SAE", 0.96)
    record = functools.partial(_training_record, config, model_fingerprint, corpus, len(rows), batches, train_seconds, started)
    _write_sae_folder(run, sae, config, output, d_in, record, cancel)
    report(f"SAE saved to {output} ({train_seconds:.0f} s of training)", 1.0)
    return output
