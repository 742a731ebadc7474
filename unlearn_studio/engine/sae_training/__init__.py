"""Training the demo SAE with sae-lens, offline, and measuring its quality (DESIGN.md §5).

No public SAE exists for SmolLM2-135M-Instruct, so the project trains its own:
a TopK SAE on the residual stream at the output of decoder layer 9
(``model.layers.9``), trained with sae-lens's ``LanguageModelSAETrainingRunner``
on a corpus that exists on every machine without a network, saved in sae-lens's
on-disk format (``cfg.json`` + ``sae_weights.safetensors``, loadable with
``sae_lens.SAE.load_from_disk``). The parts:

* :mod:`.config`: the settings (:class:`SaeTrainingConfig`, :func:`demo_config`) and the errors;
* :mod:`.corpus`: the offline corpus and its held-out split (:func:`build_corpus`);
* :mod:`.runner`: training (:func:`train_sae`), over :mod:`.sae_lens_adapter`, the one
  module that touches sae-lens's training internals and checks its version;
* :mod:`.quality`: what the SAE is good for (:func:`measure_sae_quality`);
* :mod:`.demo_sae`: the demo SAE end to end (:func:`train_demo_sae`).

No Qt here; long work reports through ``progress(message, fraction)`` and stops
when ``cancel`` is set (raising :class:`TrainingCancelled`).
"""

from .config import (
    CFG_FILENAME,
    DEMO_HOOK,
    DEMO_MODEL_NAME,
    QUALITY_FILENAME,
    RUNNER_CFG_FILENAME,
    TRAINING_FILENAME,
    WEIGHTS_FILENAME,
    SaeLensVersionError,
    SaeTrainingConfig,
    SaeTrainingError,
    TrainingCancelled,
    default_demo_model_path,
    demo_config,
)
from .corpus import (
    CORPUS_SOURCES,
    Corpus,
    build_corpus,
    entity_documents,
    fortune_documents,
    pydoc_documents,
    split_entities,
    tokenize_corpus,
)
from .demo_sae import train_demo_sae
from .quality import (
    entity_codes,
    heldout_activations,
    measure_sae_quality,
    reconstruction_stats,
    separation_stats,
    write_quality,
)
from .runner import train_sae
from .sae_lens_adapter import SUPPORTED_SAE_LENS, check_sae_lens_version, installed_sae_lens_version

__all__ = [
    "CFG_FILENAME", "CORPUS_SOURCES", "DEMO_HOOK", "DEMO_MODEL_NAME", "QUALITY_FILENAME", "RUNNER_CFG_FILENAME",
    "SUPPORTED_SAE_LENS", "TRAINING_FILENAME", "WEIGHTS_FILENAME", "Corpus", "SaeLensVersionError",
    "SaeTrainingConfig", "SaeTrainingError", "TrainingCancelled", "build_corpus", "check_sae_lens_version",
    "default_demo_model_path", "demo_config", "entity_codes", "entity_documents", "fortune_documents",
    "heldout_activations", "installed_sae_lens_version", "measure_sae_quality", "pydoc_documents",
    "reconstruction_stats", "separation_stats", "split_entities", "tokenize_corpus", "train_demo_sae",
    "train_sae", "write_quality",
]
