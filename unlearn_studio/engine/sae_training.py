"""Training the demo SAE with sae-lens, offline, and measuring its quality (DESIGN.md §5).

No public SAE exists for SmolLM2-135M-Instruct, so the project trains its own:
a TopK SAE on the residual stream at the output of decoder layer 9
(``model.layers.9``), trained with sae-lens's ``LanguageModelSAETrainingRunner``
on a corpus that exists on every machine without a network (see
:func:`build_corpus`), saved in sae-lens's on-disk format (``cfg.json`` +
``sae_weights.safetensors``, loadable with ``sae_lens.SAE.load_from_disk``).

:func:`measure_sae_quality` records what the SAE is good for: explained
variance, L0 and dead latents on held-out text, and how well its codes at the
last token of an entity name tell known from unknown entities (a logistic
probe on held-out entities, and the best single Ferrando-style latent).

No Qt here; long work reports through ``progress(message, fraction)`` and stops
when ``cancel`` is set (raising :class:`TrainingCancelled`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]

DEMO_MODEL_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"
DEMO_HOOK = "model.layers.9"
FORTUNES_DIR = Path("/usr/share/games/fortunes")
# Fortune files that are pictures made of characters, not prose.
FORTUNE_SKIP = frozenset({"art", "ascii-art"})
DOC_SEPARATOR = "\n\n"
WEIGHTS_FILENAME = "sae_weights.safetensors"
CFG_FILENAME = "cfg.json"
QUALITY_FILENAME = "quality.json"
TRAINING_FILENAME = "training.json"


class TrainingCancelled(Exception):
    """The cancel flag was set: training stopped and nothing was written."""


class SaeTrainingError(RuntimeError):
    """SAE training cannot start or did not produce a usable SAE; the message says why."""


def default_demo_model_path() -> Path:
    """Where ``unlearn-studio fetch-demo`` converts the demo model (the user data folder)."""
    from unlearn_studio.engine.paths import user_data_dir

    return user_data_dir() / "models" / "SmolLM2-135M-Instruct"


# --------------------------------------------------------------------------
# configuration


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


def demo_config(output_dir: str | Path, model_path: str | Path | None = None, **overrides: Any) -> SaeTrainingConfig:
    """The shipped demo SAE's settings (SmolLM2-135M-Instruct, ``model.layers.9``)."""
    config = SaeTrainingConfig(
        model_path=str(model_path or default_demo_model_path()),
        model_name=DEMO_MODEL_NAME,
        output_dir=str(output_dir),
    )
    for key, value in overrides.items():
        if not hasattr(config, key):
            raise TypeError(f"SaeTrainingConfig has no setting {key!r}")
        setattr(config, key, value)
    return config


# --------------------------------------------------------------------------
# corpus


@dataclass
class Corpus:
    """Training and held-out documents (plain texts) and how many came from each source."""

    train: list[str]
    heldout: list[str]
    sources: dict[str, int] = field(default_factory=dict)

    def stats(self) -> dict[str, Any]:
        return {
            "train_documents": len(self.train),
            "heldout_documents": len(self.heldout),
            "train_chars": sum(len(t) for t in self.train),
            "heldout_chars": sum(len(t) for t in self.heldout),
            "documents_per_source": dict(self.sources),
        }


def _stable_fraction(key: str) -> float:
    """A number in [0, 1) fixed by ``key`` (so splits do not depend on order or on Python's hash seed)."""
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16) / 2**32


def _is_heldout(source: str, text: str, fraction: float) -> bool:
    return _stable_fraction(f"{source}\0{text}") < fraction


def split_entities(entities: Sequence[Any], heldout_fraction: float = 0.5) -> tuple[list[Any], list[Any]]:
    """Split entities into (train, held-out) by a hash of the name: the same split everywhere."""
    train, heldout = [], []
    for entity in entities:
        (heldout if _stable_fraction("entity\0" + entity.name.casefold()) < heldout_fraction else train).append(entity)
    return train, heldout


def pydoc_documents(max_chars: int = 1500) -> list[str]:
    """Python's bundled help topics (``pydoc_data.topics``), cut into paragraph groups of about ``max_chars``."""
    from pydoc_data.topics import topics

    docs: list[str] = []
    for name in sorted(topics):
        current: list[str] = []
        size = 0
        for paragraph in topics[name].split("\n\n"):
            paragraph = paragraph.strip("\n")
            if not paragraph.strip():
                continue
            current.append(paragraph)
            size += len(paragraph)
            if size >= max_chars:
                docs.append("\n\n".join(current))
                current, size = [], 0
        if current:
            docs.append("\n\n".join(current))
    return docs


def fortune_documents(folder: Path = FORTUNES_DIR) -> list[str]:
    """Debian's ``fortunes`` package (``%``-separated quotations, jokes, definitions), if installed."""
    if not folder.is_dir():
        return []
    docs: list[str] = []
    for path in sorted(folder.iterdir()):
        if path.suffix or path.name in FORTUNE_SKIP or not path.is_file() or path.is_symlink():
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for item in text.split("\n%\n"):
            item = item.strip("%\n").rstrip()
            if len(item.strip()) >= 20:
                docs.append(item)
    return docs


def entity_documents(known: Sequence[Any], unknown: Sequence[Any], templates: Sequence[str]) -> list[str]:
    """Every template filled with every name: sentences whose entity-name tokens the SAE must reconstruct."""
    from unlearn_studio.engine.entities import fill_template

    docs = []
    for entity in [*known, *unknown]:
        for template in templates:
            docs.append(fill_template(template, entity.name)[0])
    return docs


def build_corpus(
    *,
    sources: Sequence[str] = ("pydoc", "fortunes", "entities"),
    heldout_fraction: float = 0.1,
    known_entities: Sequence[Any] | None = None,
    unknown_entities: Sequence[Any] | None = None,
    templates: Any = None,
    fortunes_dir: Path = FORTUNES_DIR,
) -> Corpus:
    """The SAE's training text, from sources that exist offline, with a held-out split training never sees.

    Sources (chosen because they need no network and no dataset download):

    * ``pydoc``: Python's bundled help topics (``pydoc_data.topics``, about
      465k characters of technical English): on every machine that has Python.
    * ``fortunes``: Debian's ``fortunes`` package under /usr/share/games/fortunes
      (quotations, jokes, definitions: everyday English full of names), used
      when installed (``apt-get install fortunes``), skipped otherwise.
    * ``entities``: the shipped entity-prompt *training* templates filled with
      the *training half* (:func:`split_entities`) of the shipped known and
      unknown entities, so the SAE learns to reconstruct activations at entity
      names. The held-out half and the held-out templates stay unseen, for
      :func:`measure_sae_quality`. Skipped when the entity data is missing.

    Documents are split by a hash of their text: ``heldout_fraction`` of the
    pydoc and fortune documents go to ``Corpus.heldout``; entity sentences are
    training-only (the held-out entity measurement has its own split).
    """
    unknown_source = set(sources) - {"pydoc", "fortunes", "entities"}
    if unknown_source:
        raise ValueError(f"unknown corpus source(s) {sorted(unknown_source)}: use pydoc, fortunes, entities")
    train: list[str] = []
    heldout: list[str] = []
    counts: dict[str, int] = {}

    def add(source: str, docs: list[str], splittable: bool = True) -> None:
        counts[source] = len(docs)
        for doc in docs:
            (heldout if splittable and _is_heldout(source, doc, heldout_fraction) else train).append(doc)

    if "pydoc" in sources:
        add("pydoc", pydoc_documents())
    if "fortunes" in sources:
        docs = fortune_documents(fortunes_dir)
        if not docs:
            log.info("fortunes not installed at %s: corpus without them", fortunes_dir)
        add("fortunes", docs)
    if "entities" in sources:
        try:
            if known_entities is None or unknown_entities is None or templates is None:
                from unlearn_studio.engine import entities as ent

                known_entities = ent.load_known_candidates() if known_entities is None else known_entities
                unknown_entities = ent.load_unknown_entities() if unknown_entities is None else unknown_entities
                templates = ent.load_templates() if templates is None else templates
            known_train, _ = split_entities(known_entities)
            unknown_train, _ = split_entities(unknown_entities)
            train_templates = templates.train if hasattr(templates, "train") else list(templates)
            add("entities", entity_documents(known_train, unknown_train, train_templates), splittable=False)
        except (FileNotFoundError, ImportError, ValueError) as exc:
            # Missing data (a checkout without resources/entities) is skipped; broken shipped data is an error.
            if isinstance(exc, ValueError) and not _entity_files_missing():
                raise
            log.warning("entity data unavailable (%s): corpus without entity sentences", exc)
            counts["entities"] = 0
    if not train:
        raise SaeTrainingError(f"the corpus is empty (sources {list(sources)}): enable pydoc or install fortunes")
    return Corpus(train, heldout, counts)


def _entity_files_missing() -> bool:
    try:
        from unlearn_studio.engine.paths import resources_dir

        folder = resources_dir() / "entities"
    except FileNotFoundError:
        return True
    return not all((folder / name).is_file() for name in ("known.json", "unknown.json", "templates.json"))


def tokenize_corpus(tokenizer, texts: Sequence[str], context_size: int, *, seed: int = 0,
                    max_tokens: int | None = None, shuffle: bool = True) -> list[list[int]]:
    """Shuffle documents, join them with blank lines, and cut the token stream into rows of ``context_size``.

    No special tokens are added (the demo tokenizer adds none either), so the
    SAE sees the same kind of sequences the entity prompts are.
    """
    order = list(range(len(texts)))
    if shuffle:
        random.Random(seed).shuffle(order)
    stream: list[int] = []
    limit = None if max_tokens is None else max_tokens + context_size
    batch = 256
    for start in range(0, len(order), batch):
        chunk = [texts[i] + DOC_SEPARATOR for i in order[start : start + batch]]
        for ids in tokenizer(chunk, add_special_tokens=False)["input_ids"]:
            stream.extend(ids)
        if limit is not None and len(stream) >= limit:
            break
    if max_tokens is not None:
        stream = stream[: max(max_tokens, context_size)]
    n_rows = len(stream) // context_size
    return [stream[i * context_size : (i + 1) * context_size] for i in range(n_rows)]


# --------------------------------------------------------------------------
# training


class _ProgressStore:
    """Wraps sae-lens's activations store as the trainer's data provider.

    Reports progress per training batch and honours cancel. With ``replay_after``
    set, the first ``replay_after`` activations come from the store (model
    forward passes, sae-lens's mixing buffer) and are kept in memory; later
    batches are drawn from them again in a fresh random order each epoch, so
    one forward pass serves several SAE steps (the model forward, not the SAE
    step, is what costs time on a CPU).
    """

    def __init__(self, store: Any, n_steps: int, progress: Progress | None, cancel: threading.Event | None,
                 span: tuple[float, float], *, replay_after: int | None = None, seed: int = 0):
        self._store = store
        self._n_steps = max(1, n_steps)
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
        return self._n_kept if self._pool is None else int(self._pool.shape[0])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def __iter__(self) -> Iterator[torch.Tensor]:
        return self

    def _next_batch(self) -> torch.Tensor:
        if self._replay_after is None:
            return next(self._store)
        if self._pool is None and self._n_kept < self._replay_after:
            batch = next(self._store)
            self._kept.append(batch.detach().clone())
            self._n_kept += batch.shape[0]
            return batch
        if self._pool is None:
            self._pool = torch.cat(self._kept)
            self._kept = []
            self._order = None
        size = self._kept_batch_size
        if self._order is None or self._position + size > self._order.shape[0]:
            self._order = torch.randperm(self._pool.shape[0], generator=self._generator)
            self._position = 0
            self.epochs += 1
        index = self._order[self._position : self._position + size]
        self._position += size
        return self._pool[index]

    @property
    def _kept_batch_size(self) -> int:
        return int(self._store.train_batch_size_tokens)

    def __next__(self) -> torch.Tensor:
        if self._cancel is not None and self._cancel.is_set():
            raise TrainingCancelled("SAE training was cancelled")
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


def _runner_class():
    from sae_lens import LanguageModelSAETrainingRunner

    class _Runner(LanguageModelSAETrainingRunner):
        """sae-lens's runner without its SIGINT/SIGTERM handlers (they only work on the main thread, and the GUI
        trains on a worker thread) and without interruption checkpoints."""

        def run_trainer_with_interruption_handling(self, trainer):  # type: ignore[override]
            return trainer.fit()

    return _Runner


def _runner_config(config: SaeTrainingConfig, d_in: int):
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
        seqpos_slice=(1, None) if config.skip_first_position else (None,),
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


def _check_output_dir(output: Path, overwrite: bool) -> None:
    if output.exists() and not output.is_dir():
        raise SaeTrainingError(f"the SAE output {output} is a file: choose a folder")
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        raise SaeTrainingError(f"the SAE output folder {output} is not empty: choose a new folder (or overwrite)")


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


def train_sae(config: SaeTrainingConfig, progress: Progress | None = None,
              cancel: threading.Event | None = None) -> Path:
    """Train an SAE with sae-lens's ``LanguageModelSAETrainingRunner`` and save it to ``config.output_dir``.

    The corpus (:func:`build_corpus`, training split only) is tokenised into an
    in-memory ``datasets.Dataset`` of ``context_size`` rows and given to the
    runner as ``override_dataset``; the model is loaded from the local folder
    ``config.model_path`` (``AutoModelForCausalLM``, fp32, no network); the
    forward pass stops at the hook. The first position of every row is skipped
    (``seqpos_slice=(1, None)``, it carries the attention-sink activation) and
    special tokens are excluded. With ``activation_tokens`` below
    ``training_tokens``, the first ``activation_tokens`` activations are kept in
    memory and replayed in fresh random orders for the remaining steps (see
    :class:`_ProgressStore`). No wandb, no checkpoints. The result is
    written to a temporary sibling folder and renamed into place: ``cfg.json``,
    ``sae_weights.safetensors`` (sae-lens format), ``runner_cfg.json`` (the
    sae-lens run settings) and ``training.json`` (this config, corpus sizes,
    wall time). Returns the output folder.
    """
    from datasets import Dataset
    from sae_lens import SAE
    from transformers import AutoConfig, AutoTokenizer

    if not config.output_dir:
        raise SaeTrainingError("no output folder given for the SAE")
    model_path = Path(config.model_path)
    if not (model_path / "config.json").is_file():
        raise SaeTrainingError(
            f"{model_path} is not a model folder (no config.json): convert or fetch the model first "
            "(unlearn-studio fetch-demo for the demo model)."
        )
    output = Path(config.output_dir).expanduser().resolve()
    _check_output_dir(output, config.overwrite)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)

    def report(message: str, fraction: float) -> None:
        log.info("%s", message)
        if progress is not None:
            progress(message, fraction)

    def check_cancel() -> None:
        if cancel is not None and cancel.is_set():
            raise TrainingCancelled("SAE training was cancelled")

    started = time.monotonic()
    report("building the corpus", 0.0)
    corpus = build_corpus(sources=config.corpus_sources, heldout_fraction=config.heldout_fraction)
    tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    rows = tokenize_corpus(tokenizer, corpus.train, config.context_size, seed=config.seed,
                           max_tokens=config.max_corpus_tokens)
    if len(rows) < config.store_batch_size_prompts:
        raise SaeTrainingError(
            f"the corpus gives {len(rows)} rows of {config.context_size} tokens, fewer than one model batch "
            f"({config.store_batch_size_prompts}): add text or lower context_size"
        )
    check_cancel()
    model_config = AutoConfig.from_pretrained(str(model_path))
    d_in = int(getattr(model_config, "hidden_size", 0) or getattr(model_config, "n_embd", 0))
    if not d_in:
        raise SaeTrainingError(f"cannot read the model width from {model_path / 'config.json'}")

    runner_cfg = _runner_config(config, d_in)
    per_row = len(range(config.context_size)[slice(*runner_cfg.seqpos_slice)])
    if config.n_batches_in_buffer * per_row < config.train_batch_size_tokens:
        raise SaeTrainingError(
            f"the mixing buffer ({config.n_batches_in_buffer} x {per_row} tokens) is smaller than a training batch "
            f"({config.train_batch_size_tokens}): raise n_batches_in_buffer"
        )
    dataset = Dataset.from_dict({"input_ids": rows})
    report(f"loading {model_path.name} for SAE training ({len(rows) * config.context_size} corpus tokens)", 0.02)
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*override.*")
        warnings.filterwarnings("ignore", message=".*fewer samples.*")
        runner = _runner_class()(runner_cfg, override_dataset=dataset)
    check_cancel()
    replay = config.activation_tokens if config.activation_tokens and config.activation_tokens < config.training_tokens else None
    store = _ProgressStore(runner.activations_store, config.n_steps, progress, cancel, (0.05, 0.95),
                           replay_after=replay, seed=config.seed)
    runner.activations_store = store

    train_started = time.monotonic()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*exhausted.*")
        sae = runner.run()
    train_seconds = time.monotonic() - train_started
    check_cancel()

    report("saving the SAE", 0.96)
    sae.cfg.metadata.model_name = config.model_name or config.model_path
    sae.cfg.metadata.dataset_path = "unlearn-studio offline corpus: " + "+".join(config.corpus_sources)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.tmp-", dir=output.parent))
    try:
        sae.save_inference_model(str(tmp))
        runner_dict = runner.cfg.to_dict()
        (tmp / "runner_cfg.json").write_text(json.dumps(runner_dict, indent=2, default=str))
        info = {
            "config": config.to_dict(),
            "corpus": {**corpus.stats(), "train_rows": len(rows), "train_corpus_tokens": len(rows) * config.context_size},
            "train_seconds": round(train_seconds, 1),
            "total_seconds": round(time.monotonic() - started, 1),
            "steps": config.n_steps,
            "distinct_activations": store.n_unique,
            "replay_epochs": store.epochs,
            "torch_threads": torch.get_num_threads(),
            "sae_lens_version": _sae_lens_version(),
        }
        (tmp / TRAINING_FILENAME).write_text(json.dumps(info, indent=2))
        loaded = SAE.load_from_disk(str(tmp), device="cpu")
        if loaded.cfg.metadata.hook_name != config.hook_name or loaded.cfg.d_in != d_in:
            raise SaeTrainingError(
                f"the saved SAE reads back with hook {loaded.cfg.metadata.hook_name!r}, d_in {loaded.cfg.d_in}; "
                f"expected {config.hook_name!r}, {d_in}"
            )
        check_cancel()
        _install(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report(f"SAE saved to {output} ({train_seconds:.0f} s of training)", 1.0)
    return output


def _sae_lens_version() -> str:
    try:
        from sae_lens import __version__

        return str(__version__)
    except ImportError:  # pragma: no cover
        return "unknown"


# --------------------------------------------------------------------------
# quality


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
      split :func:`build_corpus` uses). A logistic probe is fitted on the
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


# --------------------------------------------------------------------------
# the demo SAE, end to end


def train_demo_sae(output_dir: str | Path, progress: Progress | None = None, cancel: threading.Event | None = None,
                   *, model_path: str | Path | None = None, **overrides: Any) -> dict[str, Any]:
    """Train the demo SAE with the shipped settings, measure it, write ``quality.json``; return the quality dict."""
    from sae_lens import SAE

    from unlearn_studio.engine import entities as ent
    from unlearn_studio.engine.models import load_model

    config = demo_config(output_dir, model_path, **overrides)
    started = time.monotonic()
    folder = train_sae(config, progress=progress, cancel=cancel)
    if progress is not None:
        progress("measuring the SAE", 0.97)
    loaded = load_model(config.model_path)
    model = loaded.model.eval()
    sae = SAE.load_from_disk(str(folder), device="cpu")
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
