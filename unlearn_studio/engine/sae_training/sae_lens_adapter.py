"""The one place that touches sae-lens's training internals.

SAE training relies on parts of sae-lens that are not a stable public API: the
fields of ``LanguageModelSAERunnerConfig``, ``sae_lens.registry``, the runner's
``run_trainer_with_interruption_handling`` and ``activations_store``, and the
trainer's ``data_provider``. They are all used here and nowhere else, so a
sae-lens release that renames one breaks this module only; and
:func:`check_sae_lens_version` refuses, before any work, a version this adapter
was not checked against, naming the installed and the supported versions.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from .config import RUNNER_CFG_FILENAME, SaeLensVersionError, SaeTrainingConfig, SaeTrainingError

# Checked with sae-lens 6.54.12. Older 6.x releases lack runner-config fields passed below
# (n_batches_for_norm_estimate is not in 6.18); a 7.x release may change the internals above.
SUPPORTED_SAE_LENS = ">=6.54,<7"
_LOWEST_SUPPORTED = (6, 54)
_FIRST_UNSUPPORTED = (7,)
_PIP_COMMAND = f"pip install 'sae-lens{SUPPORTED_SAE_LENS}'"


def installed_sae_lens_version() -> str | None:
    """The version of the installed sae-lens distribution, or None when it is not installed."""
    try:
        return importlib.metadata.version("sae-lens")
    except importlib.metadata.PackageNotFoundError:
        return None


def _release(version: str) -> tuple[int, ...]:
    """The leading numbers of a version string: ``"6.54.12rc1"`` gives ``(6, 54, 12)``."""
    match = re.match(r"\d+(?:\.\d+)*", version.strip())
    return tuple(int(part) for part in match.group().split(".")) if match else ()


def check_sae_lens_version(installed: str | None) -> None:
    """Raise :class:`SaeLensVersionError` unless ``installed`` is a sae-lens version this adapter supports."""
    if installed is None:
        raise SaeLensVersionError(f"SAE training needs sae-lens {SUPPORTED_SAE_LENS}, which is not installed: "
                                  f"{_PIP_COMMAND}.")
    if not _LOWEST_SUPPORTED <= _release(installed) < _FIRST_UNSUPPORTED:
        raise SaeLensVersionError(
            f"sae-lens {installed} is installed, but SAE training supports sae-lens {SUPPORTED_SAE_LENS} only "
            f"(it drives sae-lens's training runner, whose internals change between releases): {_PIP_COMMAND}."
        )


def runner_config(config: SaeTrainingConfig, d_in: int) -> Any:
    """The ``LanguageModelSAERunnerConfig`` of ``config``: a local model, an in-memory corpus, no wandb, no checkpoints."""
    from sae_lens import LanguageModelSAERunnerConfig, LoggingConfig
    from sae_lens.registry import get_sae_training_class

    _, sae_cfg_class = get_sae_training_class(config.architecture)
    sae_kwargs: dict[str, Any] = dict(d_in=d_in, d_sae=config.d_sae, device=config.device, dtype="float32",
                                      normalize_activations="none")
    if config.architecture in ("topk", "batchtopk"):
        sae_kwargs.update(k=config.k, aux_loss_coefficient=config.aux_loss_coefficient)
    return LanguageModelSAERunnerConfig(
        sae=sae_cfg_class(**sae_kwargs),
        model_name=config.model_path,
        model_class_name="AutoModelForCausalLM",
        model_from_pretrained_kwargs={},
        hook_name=config.hook_name,
        dataset_path="in-memory:unlearn-studio-sae-corpus",
        is_dataset_tokenized=True,
        streaming=False,
        context_size=config.context_size,
        prepend_bos=False,
        seqpos_slice=config.seqpos_slice,
        exclude_special_tokens=True,
        training_tokens=config.training_tokens,
        train_batch_size_tokens=config.train_batch_size_tokens,
        store_batch_size_prompts=config.store_batch_size_prompts,
        n_batches_in_buffer=config.n_batches_in_buffer,
        lr=config.lr,
        lr_warm_up_steps=config.lr_warm_up_steps,
        lr_scheduler_name=config.lr_scheduler_name,
        lr_decay_steps=0,
        dead_feature_window=config.dead_feature_window,
        feature_sampling_window=max(config.dead_feature_window, 500),
        n_batches_for_norm_estimate=10,
        device=config.device,
        seed=config.seed,
        dtype="float32",
        logger=LoggingConfig(log_to_wandb=False),
        n_checkpoints=0,
        checkpoint_path=None,
        save_final_checkpoint=False,
        output_path=None,
        verbose=False,
    )


@functools.cache
def _runner_class() -> type:
    from sae_lens import LanguageModelSAETrainingRunner

    class _Runner(LanguageModelSAETrainingRunner):
        """sae-lens's runner, training on the batches it is given, without its SIGINT/SIGTERM handlers (they only
        work on the main thread, and the GUI trains on a worker thread) and without interruption checkpoints."""

        batches: Iterator[torch.Tensor] | None = None

        def run_trainer_with_interruption_handling(self, trainer):  # type: ignore[override]
            if self.batches is not None:
                trainer.data_provider = self.batches
            return trainer.fit()

    return _Runner


class SaeLensRunner:
    """sae-lens's ``LanguageModelSAETrainingRunner`` on an in-memory corpus, behind the few calls training needs.

    Constructing it loads the model (``AutoModelForCausalLM`` from the local
    folder, forward pass stopped at the hook) and initialises the SAE, so seed
    the random generators first.
    """

    def __init__(self, config: SaeTrainingConfig, d_in: int, rows: list[list[int]]):
        from datasets import Dataset

        dataset = Dataset.from_dict({"input_ids": rows})
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*override.*")
            warnings.filterwarnings("ignore", message=".*fewer samples.*")
            self._runner = _runner_class()(runner_config(config, d_in), override_dataset=dataset)

    @property
    def activations(self) -> Iterator[torch.Tensor]:
        """Batches of ``train_batch_size_tokens`` activations from model forward passes (sae-lens's mixing buffer)."""
        return self._runner.activations_store

    def train(self, batches: Iterator[torch.Tensor]) -> Any:
        """Train the SAE on ``batches`` (instead of :attr:`activations` directly) and return it."""
        self._runner.batches = batches
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*exhausted.*")
            return self._runner.run()

    def save(self, sae: Any, folder: Path, *, model_name: str, dataset_path: str) -> None:
        """Write ``sae`` in sae-lens's inference format, and the run's sae-lens settings, into ``folder``."""
        sae.cfg.metadata.model_name = model_name
        sae.cfg.metadata.dataset_path = dataset_path
        sae.save_inference_model(str(folder))
        runner_dict = self._runner.cfg.to_dict()
        (folder / RUNNER_CFG_FILENAME).write_text(json.dumps(runner_dict, indent=2, default=str))


def load_sae(folder: str | Path) -> Any:
    """A saved SAE, on the CPU."""
    from sae_lens import SAE

    return SAE.load_from_disk(str(folder), device="cpu")


def check_saved_sae(folder: Path, hook_name: str, d_in: int) -> None:
    """Read the SAE in ``folder`` back and check it reads the expected hook and width."""
    loaded = load_sae(folder)
    if loaded.cfg.metadata.hook_name != hook_name or loaded.cfg.d_in != d_in:
        raise SaeTrainingError(
            f"the saved SAE reads back with hook {loaded.cfg.metadata.hook_name!r}, d_in {loaded.cfg.d_in}; "
            f"expected {hook_name!r}, {d_in}"
        )
