"""Loading causal language models: a local folder, a hub id (cache first), or a GGUF file.

Safety rules (DESIGN.md §7): safetensors only unless the user opts in to pickle
checkpoints (then ``weights_only=True``), and no remote code unless trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import UserError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
PICKLE_WEIGHT_NAMES = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt", "model.pth")


class ModelLoadError(UserError):
    """A model could not be loaded; the message says why and what to do."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    source: str
    family: str
    n_layers: int
    d_model: int
    vocab_size: int
    n_params: int
    fingerprint: str
    device: str
    dtype: str
    attention: str = "default"  # the attention implementation transformers runs (eager, sdpa, …)
    attn_softcapping: float | None = None  # tanh cap on attention scores (Gemma 2: 50)
    final_softcapping: float | None = None  # tanh cap on the output logits (Gemma 2: 30); the logit lens applies it
    placement: str = ""  # the device, or how accelerate split the model across devices

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    info: ModelInfo


def pick_device(preference: str = "auto") -> torch.device:
    """CUDA, then MPS, then CPU for ``auto``; otherwise the named device, checked to exist."""
    from .validation import InvalidInput, check_device

    try:
        return torch.device(check_device(preference))
    except InvalidInput as error:
        raise ModelLoadError(str(error)) from None


def first_line(error: BaseException) -> str:
    """An error of another library as one short line: its type and the first line of its text."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    return f"{type(error).__name__}: {text[:300]}" if text else type(error).__name__


FINGERPRINT_CHUNK = 1 << 22  # elements moved to the CPU at a time: bounded extra memory for any tensor size


def weights_fingerprint(model: torch.nn.Module) -> str:
    """A short hash of the weights: names, shapes and a few values and sums of every tensor.

    Sums run in float64 on the CPU, one chunk at a time: no float64 copy on the device (MPS has no float64,
    and a 256k-vocabulary embedding would need gigabytes).
    """
    digest = hashlib.sha256()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            flat = tensor.detach().flatten()
            total = sum(float(flat[i:i + FINGERPRINT_CHUNK].to("cpu", torch.float64).sum())
                        for i in range(0, flat.numel(), FINGERPRINT_CHUNK))
            digest.update(f"{name}:{tuple(tensor.shape)}:{total:.6e}".encode())
            digest.update(flat[:16].float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def _looks_like_hub_id(source: str) -> bool:
    parts = source.split("/")
    return (
        len(parts) == 2
        and all(parts)
        and not source.startswith((".", "~", "/"))
        and not os.path.splitdrive(source)[0]
    )


def _check_model_folder(folder: Path, allow_pickle: bool, trust_remote_code: bool) -> None:
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ModelLoadError(
            f"{folder} is not a model folder: it has no config.json. A Hugging Face model folder holds "
            "config.json, the weights (model.safetensors or model-0000x-of-0000y.safetensors) and the tokenizer files."
        )
    try:
        config = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ModelLoadError(f"{config_path} is not valid JSON ({error}): restore the file or download the model again.") from error
    if config.get("auto_map") and not trust_remote_code:
        raise ModelLoadError(
            f"{folder} needs custom code from the model's authors (config.json has 'auto_map'). "
            "It is not run by default: turn on 'trust remote code' for this model only if you trust its source."
        )
    _check_model_type(config_path, config)
    has_safetensors = any(folder.glob("*.safetensors"))
    has_pickle = any((folder / name).exists() for name in PICKLE_WEIGHT_NAMES)
    if not has_safetensors and has_pickle and not allow_pickle:
        raise ModelLoadError(
            f"{folder} has its weights only in pickle form (pytorch_model.bin), which can run arbitrary code when loaded. "
            "Convert it to safetensors, or opt in explicitly (--allow-pickle / 'Allow pickle weights'); "
            "it is then loaded with weights_only=True."
        )
    if not has_safetensors and not has_pickle:
        raise ModelLoadError(
            f"{folder} has a config.json but no weights: expected model.safetensors (or sharded *.safetensors files)."
        )


def _check_model_type(config_path: Path, config: dict[str, Any]) -> None:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    model_type = config.get("model_type")
    if config.get("auto_map"):
        return
    if not model_type:
        raise ModelLoadError(f"{config_path} has no 'model_type': it is not a Hugging Face model config.")
    if model_type not in CONFIG_MAPPING:
        raise ModelLoadError(f"{config_path} names model type {model_type!r}, which this version of transformers does "
                             "not know: upgrade transformers (pip install -U transformers), or check the config.")


GGUF_MAGIC = b"GGUF"


def _check_gguf_file(path: Path) -> None:
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as error:
        raise ModelLoadError(f"cannot read {path}: {error.strerror or error}.") from error
    if magic != GGUF_MAGIC:
        raise ModelLoadError(f"{path} is not a GGUF model file (it does not start with 'GGUF'): "
                             "download it again, or give a model folder.")


def resolve_model_source(source: str, *, allow_network: bool | None = None) -> Path:
    """Turn a folder, a .gguf file or a hub id into a local path (hub: the cache first, then download)."""
    path = Path(source).expanduser()
    if path.exists():
        return path
    if not _looks_like_hub_id(source):
        raise ModelLoadError(
            f"model path {path} does not exist: give a folder that holds config.json and *.safetensors, "
            "a .gguf file, or a Hugging Face hub id such as HuggingFaceTB/SmolLM2-135M-Instruct."
        )
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken", "*.jinja"]
    try:
        return Path(snapshot_download(source, local_files_only=True, allow_patterns=patterns))
    except Exception:  # noqa: BLE001 - not in the cache: fall through to a download
        pass
    if allow_network is None:
        allow_network = os.environ.get("HF_HUB_OFFLINE", "0") not in ("1", "true", "yes")
    if not allow_network:
        raise ModelLoadError(
            f"{source} is not in the Hugging Face cache and the hub is offline (HF_HUB_OFFLINE is set): "
            "download it once with a network connection, or give a local folder."
        )
    try:
        return Path(snapshot_download(source, allow_patterns=patterns))
    except Exception as error:  # noqa: BLE001 - hub errors come in many types
        raise ModelLoadError(
            f"could not fetch {source} from the Hugging Face hub ({first_line(error)}). "
            "Check the id and your connection, log in for gated models (huggingface-cli login), or give a local folder."
        ) from error


def load_model(
    source: str | Path,
    *,
    device: str = "auto",
    dtype: str = "float32",
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
) -> LoadedModel:
    """Load a causal LM and its tokenizer, in eval mode with every parameter frozen."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    from .validation import InvalidInput, check_dtype

    try:
        check_dtype(dtype, device)
    except InvalidInput as error:
        raise ModelLoadError(str(error)) from None
    torch_device = pick_device(device)
    path = resolve_model_source(str(source))
    kwargs: dict[str, Any] = {"dtype": DTYPES[dtype], "trust_remote_code": trust_remote_code}
    if path.is_file():
        if path.suffix != ".gguf":
            raise ModelLoadError(
                f"{path} is a file but not a .gguf model: give the model's folder (with config.json) or a .gguf file."
            )
        _check_gguf_file(path)
        folder, kwargs["gguf_file"] = path.parent, path.name
    else:
        folder = path
        _check_model_folder(folder, allow_pickle, trust_remote_code)
        if not any(folder.glob("*.safetensors")):
            kwargs["use_safetensors"] = False
    tokenizer_kwargs = {k: v for k, v in kwargs.items() if k != "dtype"}
    kwargs.update(family_load_options(folder, {k: v for k, v in kwargs.items() if k in ("trust_remote_code", "gguf_file")}))
    size = None if "gguf_file" in kwargs else weights_bytes(folder, DTYPES[dtype])
    device_map = choose_device_map(size, torch_device)
    if device_map:
        kwargs["device_map"] = device_map
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), **tokenizer_kwargs)
        model = AutoModelForCausalLM.from_pretrained(str(folder), **kwargs)
    except ModelLoadError:
        raise
    except Exception as error:  # noqa: BLE001 - transformers raises many error types for bad files
        raise ModelLoadError(_explain_load_failure(path, error)) from error
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not device_map:
        model.to(torch_device)
    model.eval()
    model.requires_grad_(False)
    info = describe_model(model, name=_model_name(source, path), source=str(source))
    return LoadedModel(model=model, tokenizer=tokenizer, info=info)


def _text_config(config: Any) -> Any:
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def family_load_options(folder: Path, config_kwargs: dict[str, Any]) -> dict[str, Any]:
    """``from_pretrained`` options a family needs to compute what it was trained to compute.

    Gemma 2 soft-caps its attention scores (tanh, cap 50); only the eager attention applies the cap
    (SDPA ignores it), so any model whose config asks for attention soft-capping gets eager attention.
    """
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(folder), **config_kwargs)
    except Exception:  # noqa: BLE001 - an unreadable config fails, with its own message, in the model load
        return {}
    if getattr(config, "model_type", "") == "gemma2" or getattr(_text_config(config), "attn_logit_softcapping", None):
        return {"attn_implementation": "eager"}
    return {}


# A run needs room beside the weights (activations, float32 trainable weights and Adam's moments):
# a model whose weights take more than this share of the device's free memory is split across devices.
FIT_SHARE = 0.8


def weights_bytes(folder: Path, dtype: torch.dtype) -> int | None:
    """The size of the folder's weights once loaded in ``dtype``, read from the safetensors headers (None: unknown)."""
    from safetensors import safe_open

    files = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    if not files:
        return None
    count = 0
    try:
        for path in files:
            with safe_open(str(path), framework="pt") as handle:
                for key in handle.keys():
                    shape = handle.get_slice(key).get_shape()
                    count += int(torch.Size(shape).numel())
    except Exception:  # noqa: BLE001 - a broken file fails, with its own message, in the model load
        return None
    return count * torch.empty((), dtype=dtype).element_size()


def free_device_memory(device: torch.device) -> int | None:
    """Free bytes on a CUDA device; None for devices that cannot say (CPU memory is not checked)."""
    if device.type != "cuda":
        return None
    return int(torch.cuda.mem_get_info(device)[0])


def choose_device_map(size: int | None, device: torch.device) -> str | None:
    """``"auto"`` (accelerate spreads the layers over the GPUs, then the CPU) when the weights do not fit ``device``."""
    free = free_device_memory(device)
    if size is None or free is None or size <= FIT_SHARE * free:
        return None
    return "auto"


def describe_placement(model: torch.nn.Module) -> str:
    """The model's device, or how accelerate split it: ``split by accelerate: cuda:0 (20 modules), cpu (6 modules)``."""
    device_map = getattr(model, "hf_device_map", None) or {}
    devices = [str(d) if not isinstance(d, int) else f"cuda:{d}" for d in device_map.values()]
    if len(set(devices)) <= 1:
        return str(next(model.parameters()).device)
    counts = {d: devices.count(d) for d in dict.fromkeys(devices)}
    return "split by accelerate: " + ", ".join(f"{d} ({n} module{'s' * (n != 1)})" for d, n in counts.items())


def _model_name(source: str | Path, path: Path) -> str:
    text = str(source)
    if _looks_like_hub_id(text) and not Path(text).exists():
        return text
    return path.stem if path.is_file() else path.name


def _explain_load_failure(path: Path, error: Exception) -> str:
    text = first_line(error)
    if path.is_file():
        return f"could not read the GGUF model {path} ({text}): the file is damaged or not a model; download it again."
    folder = path
    for weights in sorted(folder.glob("*.safetensors")):
        try:
            from safetensors import safe_open

            with safe_open(str(weights), framework="pt") as handle:
                for key in list(handle.keys())[:1]:
                    handle.get_slice(key)
        except Exception:  # noqa: BLE001 - any failure here means this file is the broken one
            return f"the weights file {weights} is corrupt or truncated ({text}). Download or copy it again."
    return f"could not load the model in {folder} ({text}). Check that it is a complete causal language model folder."


def describe_model(model: torch.nn.Module, *, name: str, source: str) -> ModelInfo:
    config = model.config
    text_config = _text_config(config)
    parameter = next(model.parameters())
    return ModelInfo(
        name=name,
        source=source,
        family=str(getattr(config, "model_type", type(model).__name__)),
        n_layers=int(getattr(text_config, "num_hidden_layers", getattr(text_config, "n_layer", 0))),
        d_model=int(getattr(text_config, "hidden_size", getattr(text_config, "n_embd", 0))),
        vocab_size=int(getattr(text_config, "vocab_size", 0)),
        n_params=sum(p.numel() for p in model.parameters()),
        fingerprint=weights_fingerprint(model),
        device=str(parameter.device),
        dtype=str(parameter.dtype).removeprefix("torch."),
        attention=str(getattr(config, "_attn_implementation", None) or "default"),
        attn_softcapping=getattr(text_config, "attn_logit_softcapping", None),
        final_softcapping=getattr(text_config, "final_logit_softcapping", None),
        placement=describe_placement(model),
    )
