"""Loading sparse autoencoders through sae-lens and checking that they fit the loaded model.

Every architecture sae-lens knows (standard, TopK, JumpReLU, gated, …) loads through
one path: a sae-lens folder (``cfg.json`` + ``sae_weights.safetensors``) or a
sae-lens release name with an SAE id (e.g. ``gemma-scope-2b-pt-res-canonical``,
``layer_9/width_16k/canonical``).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import UserError

from .hooks import HookError, HookPoint, hook_width, resolve_hook
from .models import ModelInfo, first_line
from .sae_training.config import TRAINING_FILENAME

SAE_CONFIG_FILE = "cfg.json"
SAE_WEIGHTS_FILE = "sae_weights.safetensors"


class SaeLoadError(UserError):
    """An SAE could not be loaded, or does not fit the model; the message says what to do."""


@dataclass(frozen=True)
class SaeInfo:
    source: str
    sae_id: str | None
    architecture: str
    d_in: int
    d_sae: int
    hook: str
    model_name: str | None
    model_fingerprint: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LoadedSae:
    sae: Any
    info: SaeInfo

    def encode(self, activations):  # noqa: ANN001, ANN201 - tensors in, tensors out
        return self.sae.encode(activations)


def load_sae(source: str | Path, sae_id: str | None = None, *, device: str = "cpu", dtype: str = "float32") -> LoadedSae:
    """Load an SAE from a sae-lens folder, or from a sae-lens release when ``sae_id`` is given."""
    from sae_lens import SAE

    source_text = str(source)
    folder = Path(source_text).expanduser()
    if sae_id is not None and folder.is_dir():
        raise SaeLoadError(f"{folder} is an SAE folder, but an SAE id ({sae_id!r}) was given too: an SAE id picks an SAE "
                           "inside a sae-lens release. Leave out the SAE id, or give the release's name.")
    if sae_id is None:
        _check_sae_folder(folder)
        extra = json.loads((folder / SAE_CONFIG_FILE).read_text())
        _check_sae_config(folder, extra)
        try:
            sae = SAE.load_from_disk(str(folder), device=device, dtype=dtype)
        except Exception as error:  # noqa: BLE001 - sae-lens raises many error types for bad files
            raise SaeLoadError(f"could not load the SAE in {folder} ({first_line(error)}). "
                               f"Check that {SAE_WEIGHTS_FILE} is complete and matches {SAE_CONFIG_FILE}.") from error
    else:
        _check_release(source_text, sae_id)
        try:
            sae = SAE.from_pretrained(source_text, sae_id, device=device, dtype=dtype)
        except Exception as error:  # noqa: BLE001 - hub and conversion errors come in many types
            raise SaeLoadError(
                f"could not load SAE {sae_id!r} of release {source_text!r} ({first_line(error)}). "
                "The first load downloads it from the Hugging Face hub: check your connection."
            ) from error
        extra = {}
    sae.eval()
    sae.requires_grad_(False)
    metadata = sae.cfg.metadata
    info = SaeInfo(
        source=source_text,
        sae_id=sae_id,
        architecture=str(sae.cfg.architecture()),
        d_in=int(sae.cfg.d_in),
        d_sae=int(sae.cfg.d_sae),
        hook=str(metadata.get("hook_name") or ""),
        model_name=metadata.get("model_name"),
        model_fingerprint=(extra.get("unlearn_studio", {}).get("model_fingerprint")
                           or (recorded_model_fingerprint(folder) if sae_id is None else None)),
    )
    if not info.hook:
        raise SaeLoadError(f"the SAE at {source_text} does not say which hook it was trained on (metadata.hook_name): add it to {SAE_CONFIG_FILE}.")
    return LoadedSae(sae=sae, info=info)


def recorded_model_fingerprint(folder: Path) -> str | None:
    """The weights fingerprint of the model the SAE in ``folder`` was trained on, as its ``training.json`` says.

    None when there is no record, it is unreadable or it has no fingerprint: that only means nothing to
    compare, never a failed load.
    """
    try:
        record = json.loads((folder / TRAINING_FILENAME).read_text())
    except (OSError, ValueError):
        return None
    fingerprint = record.get("model_fingerprint") if isinstance(record, dict) else None
    return fingerprint if isinstance(fingerprint, str) and fingerprint else None


def _check_sae_folder(folder: Path) -> None:
    if not folder.exists():
        raise SaeLoadError(f"SAE path {folder} does not exist: give a sae-lens folder ({SAE_CONFIG_FILE} + {SAE_WEIGHTS_FILE}) "
                           "or a sae-lens release name with an SAE id.")
    if not folder.is_dir():
        raise SaeLoadError(f"SAE path {folder} is a file: give the folder that holds {SAE_CONFIG_FILE} and {SAE_WEIGHTS_FILE}.")
    missing = [name for name in (SAE_CONFIG_FILE, SAE_WEIGHTS_FILE) if not (folder / name).is_file()]
    if missing:
        raise SaeLoadError(f"{folder} is not a sae-lens SAE folder: {', '.join(missing)} missing. "
                           f"A sae-lens folder holds {SAE_CONFIG_FILE} and {SAE_WEIGHTS_FILE}.")
    try:
        json.loads((folder / SAE_CONFIG_FILE).read_text())
    except json.JSONDecodeError as error:
        raise SaeLoadError(f"{folder / SAE_CONFIG_FILE} is not valid JSON (line {error.lineno}, column {error.colno}): {error.msg}.") from error


def _check_sae_config(folder: Path, config: dict[str, Any]) -> None:
    """The architecture is one sae-lens knows, and d_in / d_sae agree with the weights' shapes."""
    from safetensors import safe_open
    from sae_lens.registry import SAE_CLASS_REGISTRY

    config_path, weights_path = folder / SAE_CONFIG_FILE, folder / SAE_WEIGHTS_FILE
    architecture = config.get("architecture", "standard")
    if architecture not in SAE_CLASS_REGISTRY:
        raise SaeLoadError(f"{config_path} names the SAE architecture {architecture!r}, which sae-lens does not know: "
                           f"use one of {', '.join(sorted(SAE_CLASS_REGISTRY))}.")
    try:
        with safe_open(str(weights_path), framework="pt") as handle:
            shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except Exception as error:  # noqa: BLE001 - a damaged header raises several error types
        raise SaeLoadError(f"{weights_path} is not a readable safetensors file ({first_line(error)}): "
                           "copy or train the SAE again.") from error
    expected = {"W_enc": (config.get("d_in"), config.get("d_sae")), "W_dec": (config.get("d_sae"), config.get("d_in"))}
    for key, shape in expected.items():
        if key in shapes and None not in shape and shapes[key] != shape:
            raise SaeLoadError(f"{weights_path}: {key} has shape {shapes[key]}, but {config_path} says d_in = "
                               f"{config.get('d_in')} and d_sae = {config.get('d_sae')}: the config and the weights "
                               "belong to different SAEs.")


def _check_release(release: str, sae_id: str) -> None:
    from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory

    directory = get_pretrained_saes_directory()
    if release not in directory:
        if "/" in release:  # sae-lens also accepts a hub repo id directly
            return
        close = difflib.get_close_matches(release, list(directory), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise SaeLoadError(f"{release!r} is not a sae-lens release.{hint} The list is in sae-lens's pretrained_saes.yaml.")
    ids = directory[release].saes_map
    if sae_id not in ids:
        close = difflib.get_close_matches(sae_id, list(ids), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise SaeLoadError(f"release {release!r} has no SAE {sae_id!r}.{hint}")


def _short_model_name(name: str | None) -> str:
    return (name or "").rstrip("/").split("/")[-1].lower()


def check_sae_fits_model(sae: LoadedSae, model: nn.Module, model_info: ModelInfo, *,
                         trained_on: str | None = None) -> tuple[HookPoint, list[str]]:
    """Resolve the SAE's hook in ``model`` and check its width; returns the hook and warnings to show.

    Raises :class:`SaeLoadError` when the hook is missing or ``d_in`` differs from the hook's width.
    A different model name or weights fingerprint is only a warning: the user may accept it.
    ``trained_on`` says how to load the model the SAE was trained on (the warning names it).
    """
    try:
        hook = resolve_hook(model, sae.info.hook)
    except HookError as error:
        raise SaeLoadError(f"the SAE's hook does not fit this model: {error}") from error
    width = hook_width(model, hook)
    if width != sae.info.d_in:
        raise SaeLoadError(
            f"the SAE expects activations of width d_in = {sae.info.d_in}, but hook {sae.info.hook!r} of "
            f"{model_info.name} has width {width}: load the SAE made for this model (or this model's matching size)."
        )
    warnings = []
    if sae.info.model_name and _short_model_name(sae.info.model_name) != _short_model_name(model_info.name):
        warnings.append(f"this SAE was trained on {sae.info.model_name!r}, but the loaded model is {model_info.name!r}: "
                        "its latents may not mean what they should.")
    if sae.info.model_fingerprint and sae.info.model_fingerprint != model_info.fingerprint:
        warnings.append(_fingerprint_warning(sae.info, model_info.fingerprint, trained_on))
    return hook, warnings


def _fingerprint_warning(sae: SaeInfo, loaded_fingerprint: str, trained_on: str | None) -> str:
    model = trained_on or f"{sae.model_name or 'the model'} with weights fingerprint {sae.model_fingerprint}"
    return (f"this SAE was trained on another copy or version of the model (weights fingerprint {sae.model_fingerprint}; "
            f"the loaded model's is {loaded_fingerprint}: another conversion, precision or fine-tune): its latents "
            "may not mean what they should, so the known/unknown map and the unlearning may be off. "
            f"Load the model it was trained on ({model}), or an SAE trained on this model.")
