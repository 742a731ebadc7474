"""What every subcommand shares: progress lines, the model arguments, and flags generated from a settings schema."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from .errors import UserError


def progress_printer(quiet: bool) -> Callable[[str, float], None]:
    def report(message: str, fraction: float) -> None:
        if not quiet:
            print(f"[{fraction * 100:5.1f}%] {message}", file=sys.stderr, flush=True)

    return report


def add_model_arguments(parser: argparse.ArgumentParser, *, sae: bool = True) -> None:
    parser.add_argument("--demo", action="store_true", help="use the embedded SmolLM2-135M-Instruct and the demo SAE")
    parser.add_argument("--model", help="a model folder, a .gguf file or a Hugging Face hub id")
    if sae:
        parser.add_argument("--sae", help="a sae-lens SAE folder, or a sae-lens release name (with --sae-id)")
        parser.add_argument("--sae-id", help="the SAE id inside a sae-lens release, e.g. layer_9/width_16k/canonical")
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, mps")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--trust-remote-code", action="store_true", help="run the model's own code (only for models you trust)")
    parser.add_argument("--allow-pickle", action="store_true", help="allow pickle checkpoints, loaded with weights_only=True")


def check_model_arguments(args: argparse.Namespace) -> None:
    """What can be checked before the model loads: a model to load, the device, the dtype on it, the SAE options."""
    from .engine.validation import check_device, check_dtype, check_sae_source

    if not args.demo and not args.model:
        raise UserError("give --demo or --model PATH_OR_ID (a model folder, a .gguf file or a hub id).")
    check_device(args.device)
    check_dtype(args.dtype, args.device)
    check_sae_source(getattr(args, "sae", None), getattr(args, "sae_id", None))


def model_options(args: argparse.Namespace):  # noqa: ANN201 - an engine ModelSpec
    from .engine.pipeline import ModelSpec

    check_model_arguments(args)
    return ModelSpec(
        model=None if args.demo else args.model,
        sae=getattr(args, "sae", None),
        sae_id=getattr(args, "sae_id", None),
        device=args.device,
        dtype=args.dtype,
        trust_remote_code=args.trust_remote_code,
        allow_pickle=args.allow_pickle,
    )


def open_session(args: argparse.Namespace, progress: Callable[[str, float], None] | None = None):  # noqa: ANN201 - a Session
    """Load the model and SAE the arguments name; the session's warnings (e.g. an SAE trained on another
    model) go to stderr, once, whatever the subcommand."""
    from .engine.pipeline import load_session

    session = load_session(model_options(args), progress=progress or progress_printer(args.quiet))
    for warning in session.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return session


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_setting_arguments(parser: argparse.ArgumentParser, settings_class: type) -> None:
    """One flag per declared setting of ``settings_class`` (an engine Settings dataclass); unset flags stay None."""
    group = parser.add_argument_group("run settings")
    for f in settings_class.schema():
        help_text = f"{f.spec.help} (default: {'the method' + chr(39) + 's own' if f.default is None else f.default}"
        help_text += f"; for {', '.join(f.spec.methods)})" if f.spec.methods else ")"
        options: dict[str, Any] = {"dest": f.name, "default": None, "help": help_text.replace("%", "%%")}
        if f.kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        else:
            options["type"] = f.kind
            if f.choices:
                options["choices"] = list(f.choices)
        group.add_argument(flag_name(f.name), **options)


def settings_from_arguments(args: argparse.Namespace, settings_class: type):  # noqa: ANN201 - a Settings instance
    """The settings the user gave as flags, over the defaults; a flag for another method is an error."""
    given = {f.name: getattr(args, f.name) for f in settings_class.schema() if getattr(args, f.name, None) is not None}
    settings = settings_class.from_dict(given)
    method = getattr(settings, "method", None)
    for f in settings_class.schema():
        if f.name in given and method is not None and not f.applies_to(method):
            raise UserError(f"{flag_name(f.name)} applies to {', '.join(f.spec.methods)} only, not to --method {method}.")
    return settings
