"""``unlearn-studio steer``: the answer with the entity's known-entity latents scaled, beside the plain answer."""

from __future__ import annotations

import argparse
import json

from .cli_common import add_model_arguments, open_session, progress_printer


def cmd_steer(args: argparse.Namespace) -> int:
    from .engine.steering import check_strength, steer

    check_strength(args.strength)  # a bad value fails before the model loads
    report = progress_printer(args.quiet)
    session = open_session(args, report)
    result = steer(session, args.entity, args.prompt, strength=args.strength, add_unknown=args.add_unknown,
                   chat=not args.completion, max_new_tokens=args.max_new_tokens, verify_known=not args.no_verify,
                   progress=report, cancel=args.cancel)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    kinds = "known- and unknown-entity" if result.add_unknown else "known-entity"
    print(f"{result.entity}: {kinds} latents at strength {result.strength:g}, edited at the tokens "
          f"{' '.join(repr(t) for t in result.tokens)}")
    for latent in result.latents:
        print(f"  latent {latent.latent:6d} ({latent.kind}, separation {latent.separation:+.2f}): "
              f"{latent.before:.3f} -> {latent.after:.3f}")
    print(f"unsteered: {result.original.strip()}")
    print(f"steered:   {result.steered.strip()}")
    return 0


def register_steer(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("steer", help="answer with the entity's known-entity latents scaled (are they causal?)",
                                 description="Scale the entity's top known-entity SAE latents at its tokens in the "
                                             "prompt and answer greedily with the original weights, beside the "
                                             "unsteered answer. No training.")
    add_model_arguments(parser)
    parser.add_argument("prompt", help="the prompt; it must name the entity")
    parser.add_argument("--entity", required=True, help="the entity whose latents are steered, as written in the prompt")
    parser.add_argument("--strength", type=float, default=-1.0,
                        help="scale the latents by 1 + STRENGTH: -1 turns them off (default), 0 leaves them, "
                             "below -1 pushes further")
    parser.add_argument("--add-unknown", action="store_true",
                        help="also raise the top unknown-entity latents by -STRENGTH times their mean on unknown entities")
    parser.add_argument("--completion", action="store_true", help="complete the raw text instead of asking in chat form")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--no-verify", action="store_true", help="use the shipped entity lists without checking known-ness")
    parser.add_argument("--json", action="store_true",
                        help='print {"original", "steered", "latents", "strength", ...} as JSON')
    parser.set_defaults(handler=cmd_steer)
