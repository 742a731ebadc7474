"""The settings that decide a trained SAE, the file names of its folder, and the errors of SAE training."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ...errors import UserError
from ..jobs import JobCancelled

DEMO_MODEL_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"
DEMO_HOOK = "model.layers.9"
WEIGHTS_FILENAME = "sae_weights.safetensors"
CFG_FILENAME = "cfg.json"
RUNNER_CFG_FILENAME = "runner_cfg.json"
QUALITY_FILENAME = "quality.json"
TRAINING_FILENAME = "training.json"


class TrainingCancelled(JobCancelled):
    """The cancel flag was set: training stopped and nothing was written."""


class SaeTrainingError(UserError, RuntimeError):
    """SAE training cannot start or did not produce a usable SAE; the message says why."""


class SaeLensVersionError(UserError):
    """The installed sae-lens is not one whose training internals the adapter knows."""


def default_demo_model_path() -> Path:
    """Where ``unlearn-studio fetch-demo`` converts the demo model (the user data folder)."""
    from unlearn_studio.engine.paths import user_data_dir

    return user_data_dir() / "models" / "SmolLM2-135M-Instruct"


@dataclass
class SaeTrainingConfig:
    """Everything that decides the trained SAE; the defaults are the shipped demo SAE's settings.

    ``training_tokens`` counts activations the SAE is trained on; every one
    costs a forward pass of the model up to the hook (the runner re-reads the
    corpus for further epochs when it runs out).
    """

    model_path: str = ""
    model_name: str | None = None  # recorded as metadata.model_name; default: model_path
    hook_name: str = DEMO_HOOK
    architecture: str = "topk"
    k: int = 64
    d_sae: int = 2048
    training_tokens: int = 1_536_000  # 3,000 steps of 512
    activation_tokens: int | None = 262_144  # distinct activations (forward passes); None: all fresh
    train_batch_size_tokens: int = 512
    lr: float = 5e-4
    lr_warm_up_steps: int = 50
    lr_scheduler_name: str = "cosineannealing"
    context_size: int = 128
    store_batch_size_prompts: int = 8
    n_batches_in_buffer: int = 32
    skip_first_position: bool = True
    aux_loss_coefficient: float = 1.0
    dead_feature_window: int = 250
    seed: int = 42
    output_dir: str = ""
    overwrite: bool = False
    heldout_fraction: float = 0.1
    corpus_sources: tuple[str, ...] = ("pydoc", "fortunes", "entities")
    max_corpus_tokens: int | None = None
    device: str = "cpu"
    num_threads: int | None = 2

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["corpus_sources"] = list(self.corpus_sources)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SaeTrainingConfig:
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        if "corpus_sources" in values:
            values["corpus_sources"] = tuple(values["corpus_sources"])
        return cls(**values)

    @property
    def n_steps(self) -> int:
        return self.training_tokens // self.train_batch_size_tokens

    @property
    def seqpos_slice(self) -> tuple[int | None, ...]:
        """The positions of each row the SAE trains on: all but the first (the attention sink) by default."""
        return (1, None) if self.skip_first_position else (None,)

    @property
    def tokens_per_row(self) -> int:
        return len(range(self.context_size)[slice(*self.seqpos_slice)])

    @property
    def replay_after(self) -> int | None:
        """How many activations to read before replaying them, or None when every batch is read fresh."""
        if self.activation_tokens and self.activation_tokens < self.training_tokens:
            return self.activation_tokens
        return None


def demo_config(output_dir: str | Path, model_path: str | Path | None = None, **overrides: Any) -> SaeTrainingConfig:
    """The shipped demo SAE's settings (SmolLM2-135M-Instruct, ``model.layers.9``)."""
    config = SaeTrainingConfig(
        model_path=str(model_path or default_demo_model_path()),
        model_name=DEMO_MODEL_NAME,
        output_dir=str(output_dir),
    )
    for key, value in overrides.items():
        if key not in SaeTrainingConfig.__dataclass_fields__:
            raise TypeError(f"SaeTrainingConfig has no setting {key!r}")
        setattr(config, key, value)
    return config
