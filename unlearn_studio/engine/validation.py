"""Checks of what a user typed, made before anything slow starts; the CLI and the window call the same ones.

Each check raises :class:`InvalidInput` (a UserError) with one line that names the problem and the fix, so both
front ends refuse the same inputs with the same words. The module imports no torch and no Qt at import time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import UserError, os_reason

DTYPE_NAMES = ("float32", "bfloat16", "float16")
MAX_NEW_TOKENS = 2048
MAX_PROMPT_CHARS = 32_000  # a coarse limit before the tokenizer is loaded; tokens are checked once it is
MAX_PROMPT_TOKENS = 4096  # longer prompts take minutes on a CPU: refuse rather than appear to hang
MAX_TARGETS = 50
MAX_FACTS = 400  # in all targets together: every fact is asked in several forms before and after a run
MAX_FACT_CHARS = 1000  # one prompt, paraphrase or answer
MAX_FACT_TOKENS = 512
_DEVICE = re.compile(r"(auto|cpu|mps|cuda)(:\d+)?")


class InvalidInput(UserError):
    """A setting or input that is refused before any work starts."""


# ---- devices and number types --------------------------------------------------------------------------------------

def check_device(name: str) -> str:
    """The device to use for ``name`` (auto: CUDA, then MPS, then CPU); refuses unknown or absent devices."""
    import torch

    text = (name or "auto").strip().lower()
    match = _DEVICE.fullmatch(text)
    if not match or (match.group(2) and match.group(1) != "cuda"):
        raise InvalidInput(f"unknown device {name!r}: choose auto, cpu, cuda, cuda:N (N = the GPU's number) or mps.")
    kind = match.group(1)
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if kind == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if mps else "cpu"
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise InvalidInput(f"device {name!r} was asked for but no CUDA GPU is available: choose 'cpu' or 'auto'.")
        index = int(match.group(2)[1:]) if match.group(2) else 0
        if index >= torch.cuda.device_count():
            raise InvalidInput(f"device {name!r} does not exist: this machine has {torch.cuda.device_count()} CUDA "
                               f"GPU(s), numbered from 0.")
    if kind == "mps" and not mps:
        raise InvalidInput("device 'mps' was asked for but Apple MPS is not available: choose 'cpu' or 'auto'.")
    return text


def check_dtype(dtype: str, device: str) -> None:
    """Refuse number types the device cannot run well (float16 on a CPU is very slow and overflows)."""
    if dtype not in DTYPE_NAMES:
        raise InvalidInput(f"unknown dtype {dtype!r}: choose one of {', '.join(DTYPE_NAMES)}.")
    if dtype == "float16" and check_device(device) == "cpu":
        raise InvalidInput("float16 on a CPU is very slow (CPUs have no half-precision arithmetic) and can overflow: "
                           "use bfloat16 or float32, or a GPU.")


def check_sae_source(sae: str | None, sae_id: str | None) -> None:
    """An SAE id names an SAE inside a sae-lens release: it needs the release."""
    if sae_id and not sae:
        raise InvalidInput(f"an SAE id ({sae_id!r}) needs the sae-lens release it belongs to: give --sae RELEASE "
                           "(e.g. gemma-scope-2b-pt-res-canonical), or leave out --sae-id to use an SAE folder.")


# ---- the output folder ---------------------------------------------------------------------------------------------

def check_output_folder(path: str | Path) -> Path:
    """A new (or empty) folder that can be created and written: tried with a test file, removed again."""
    folder = Path(path).expanduser()
    if folder.is_file():
        raise InvalidInput(f"the output folder {folder} is an existing file: give a new folder's path (runs never overwrite).")
    if folder.is_dir() and any(folder.iterdir()):
        raise InvalidInput(f"the output folder {folder} is not empty: give a new folder (runs never overwrite).")
    for parent in folder.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InvalidInput(f"cannot create the output folder {folder}: {parent} is a file, not a folder. "
                                   "Give a path inside a folder.")
            break
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    probe = folder / ".unlearn-studio-write-test"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        raise InvalidInput(f"cannot write the output folder {folder}: {os_reason(error)}. "
                           "Choose a folder you can write to (e.g. inside your home folder).") from error
    finally:
        for made in created:  # leave nothing behind: the run creates its folder when it starts
            try:
                made.rmdir()
            except OSError:
                break
    return folder


# ---- training settings (their ranges are declared once in engine/run_config.py) ----------------------------------

def layers_below_note(layers_below: int, hook_layer: int) -> str:
    """A note when more layers below were asked for than exist: the run trains layers 0…ℓ (clamped)."""
    if layers_below > hook_layer:
        return (f"layers below {layers_below} is more than the SAE's layer has below it ({hook_layer}): "
                f"the run trains layers 0–{hook_layer}.")
    return ""


# ---- targets and facts ---------------------------------------------------------------------------------------------

def check_target_name(name: str) -> str:
    """The cleaned name; refuses empty names, control characters, over-long names and names with no letter or digit."""
    from .entities import validate_target_name

    cleaned = validate_target_name(name)
    if not any(ch.isalnum() for ch in cleaned):
        raise InvalidInput(f"the target name {cleaned!r} has no letter or digit: type the entity's name, e.g. 'Marie Curie'.")
    return cleaned


def check_targets(entities: Sequence[Any], source: str = "the targets") -> None:
    """Limits on how much a run is asked to forget, so that measuring it cannot take hours without a word."""
    if len(entities) > MAX_TARGETS:
        raise InvalidInput(f"{source} hold {len(entities):,} entities: a run forgets at most {MAX_TARGETS}. "
                           "Split them over several runs.")
    total = sum(len(e.facts) for e in entities)
    if total > MAX_FACTS:
        raise InvalidInput(f"{source} hold {total:,} facts: a run takes at most {MAX_FACTS} (each is asked in several "
                           "forms before and after). Keep the few facts that matter most.")
    for entity in entities:
        check_target_name(entity.name)
        for number, fact in enumerate(entity.facts, start=1):
            for text in (fact.prompt, *fact.answers, *getattr(fact, "paraphrases", ()), getattr(fact, "question", "") or ""):
                if len(text) > MAX_FACT_CHARS:
                    raise InvalidInput(f"{source}: fact {number} of {entity.name!r} has a text of {len(text):,} "
                                       f"characters: at most {MAX_FACT_CHARS:,} are allowed. Shorten it.")


def check_facts_fit(entities: Sequence[Any], tokenizer: Any, context: int) -> None:
    """Every fact prompt fits the model's context (and the per-fact limit) in tokens."""
    limit = min(context, MAX_FACT_TOKENS)
    for entity in entities:
        for number, fact in enumerate(entity.facts, start=1):
            size = len(tokenizer(fact.prompt, add_special_tokens=False)["input_ids"])
            if size > limit:
                raise InvalidInput(f"fact {number} of {entity.name!r} is {size} tokens long: at most {limit} fit "
                                   "(the model's context or the per-fact limit). Shorten it.")


# ---- asking --------------------------------------------------------------------------------------------------------

def check_max_new_tokens(max_new_tokens: int) -> None:
    if not 1 <= max_new_tokens <= MAX_NEW_TOKENS:
        raise InvalidInput(f"max new tokens must be between 1 and {MAX_NEW_TOKENS}, not {max_new_tokens}.")


def check_prompt_text(prompt: str) -> None:
    """Before the model loads: not empty, not absurdly long."""
    if not prompt.strip():
        raise InvalidInput("the question is empty: type a prompt first.")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidInput(f"the prompt is {len(prompt):,} characters long: at most {MAX_PROMPT_CHARS:,} are allowed. "
                           "Shorten it.")


def context_length(model: Any, tokenizer: Any) -> int:
    """The most tokens the model reads at once: its config's positions, or the tokenizer's limit."""
    config = getattr(model, "config", None)
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    limits = [getattr(text_config, key, None) for key in ("max_position_embeddings", "n_positions")]
    limits.append(getattr(tokenizer, "model_max_length", None))
    usable = [int(v) for v in limits if isinstance(v, int) and 0 < v < 10**8]
    return min(usable) if usable else MAX_PROMPT_TOKENS
