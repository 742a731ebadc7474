"""Headless subcommands that run engine jobs: ``unlearn``, ``ask``, ``classify``, ``train-sae``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .cli_common import (add_model_arguments, add_setting_arguments, check_model_arguments, open_session,
                         progress_printer, settings_from_arguments)

EXIT_DIVERGED = 3  # a run diverged: the last good weights were restored (README: When something goes wrong)


def _fmt(value: Any) -> str:
    if value is None:
        return "not measured"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def print_before_after(report: dict[str, Any]) -> None:
    before, after = report.get("before", {}), report.get("after", {})
    print(f"{report['method']} on {', '.join(report['targets'])}: {report['steps']} steps, {report['seconds']:.1f} s ({report['stopped']})")
    print(f"{'measure (eval templates and forms)':36s} {'before':>12s} {'after':>12s}")
    for key, value in before.items():
        if isinstance(value, dict):  # per form, indented under its headline
            for form, accuracy in value.items():
                print(f"  {form:34s} {_fmt(accuracy):>12s} {_fmt(after.get(key, {}).get(form)):>12s}")
        else:
            print(f"{key:36s} {_fmt(value):>12s} {_fmt(after.get(key)):>12s}")
    if "run_dir" in report:
        print(f"run folder: {report['run_dir']}")


def facts_for_targets(args: argparse.Namespace) -> list:
    """The entries of ``--facts`` a run uses: those of the named ``--target``s, or every entry with
    ``--all-targets-in-file`` or when no target is named. Says on stderr how many it used."""
    from .engine.entities import load_facts_file

    if not args.facts:
        return []
    entries = load_facts_file(args.facts)
    named = {name.strip().lower() for name in args.target or []}
    if getattr(args, "all_targets_in_file", False) or not named:
        used = entries
    else:
        used = [entry for entry in entries if entry.name.lower() in named]
    left = len(entries) - len(used)
    tail = f"; {left} other entries ignored (--all-targets-in-file makes them targets too)" if left else ""
    print(f"facts file {args.facts}: using {len(used)} of {len(entries)} entries"
          f"{' (' + ', '.join(e.name for e in used) + ')' if used else ''}{tail}", file=sys.stderr)
    return used


def cmd_unlearn(args: argparse.Namespace) -> int:
    from .engine.events import Cancelled, Failed, Finished, Progress, StepProgress
    from .engine.pipeline import UnlearnRequest
    from .engine.run_config import TrainConfig

    from .engine.validation import (check_facts_fit, check_output_folder, check_target_name, check_targets,
                                    context_length, layers_below_note)

    # Everything that can be checked is checked before the model loads (seconds to minutes).
    config = settings_from_arguments(args, TrainConfig)
    out = check_output_folder(args.out)
    for name in args.target or []:
        check_target_name(name)
    extra = facts_for_targets(args)
    check_targets(extra, source=f"the facts file {args.facts}")
    session = open_session(args)
    note = layers_below_note(config.layers_below, session.hook.layer)
    if note:
        print(f"note: {note}", file=sys.stderr)
    targets = session.resolve_targets(args.target or [], extra)
    check_targets(targets)
    check_facts_fit(targets, session.tokenizer, context_length(session.model, session.tokenizer))
    request = UnlearnRequest(targets=targets, config=config, run_dir=out,
                             save_model=args.save_model, verify_known=not args.no_verify)
    # The slow one-off preparations run here with live progress; the run then finds them cached.
    session.prepare_references([t.name for t in request.targets], verify=request.verify_known,
                               limit=request.reference_limit, progress=progress_printer(args.quiet), cancel=args.cancel)
    for event in session.unlearn(request, args.cancel):
        if isinstance(event, Progress) and not args.quiet:
            print(f"[{event.fraction * 100:5.1f}%] {event.message}", file=sys.stderr, flush=True)
        elif isinstance(event, StepProgress) and not args.quiet:
            states = ", ".join(f"{name}: P(known) {s.p_known:.2f}" for name, s in event.targets.items())
            print(f"step {event.step}/{event.total}  loss {event.losses['total']:.4f}  {states}  drift {event.retain_drift:.4f}",
                  file=sys.stderr, flush=True)
        elif isinstance(event, Failed):
            if args.debug and event.traceback_text:
                print(event.traceback_text, file=sys.stderr)
            print(f"unlearn-studio: error: {event.error}", file=sys.stderr)
            return 2
        elif isinstance(event, Cancelled):
            print(f"unlearn-studio: cancelled after step {event.step}; the run folder keeps every finished step.", file=sys.stderr)
            return 130
        elif isinstance(event, Finished):
            print_before_after(event.result.report)
            if event.result.report.get("stopped") == "diverged":
                print(f"unlearn-studio: error: {event.result.report['error']}", file=sys.stderr)
                return EXIT_DIVERGED
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from .engine.demo import ensure_demo_model
    from .engine.generation import stream_answer
    from .engine.models import load_model

    from .engine.validation import check_max_new_tokens, check_prompt_text

    check_model_arguments(args)
    check_prompt_text(args.prompt)
    check_max_new_tokens(args.max_new_tokens)
    source = ensure_demo_model(progress_printer(args.quiet)) if args.demo else args.model
    loaded = load_model(source, device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code,
                        allow_pickle=args.allow_pickle)
    stream_answer(loaded.model, loaded.tokenizer, args.prompt, lambda text: print(text, end="", flush=True),
                  chat=not args.completion, max_new_tokens=args.max_new_tokens)
    print()
    return 0


def cmd_classify(args: argparse.Namespace) -> int:

    session = open_session(args)
    statuses = session.classify(progress=progress_printer(args.quiet), cancel=args.cancel)
    counts: dict[str, int] = {}
    for status in statuses:
        counts[f"{status.reference}:{status.status}"] = counts.get(f"{status.reference}:{status.status}", 0) + 1
    print(json.dumps({"counts": counts, "entities": [s.__dict__ for s in statuses]} if args.all else counts, indent=2))
    return 0


def cmd_train_sae(args: argparse.Namespace) -> int:
    from .engine.sae_training import train_demo_sae

    quality = train_demo_sae(Path(args.out), progress=progress_printer(args.quiet), cancel=args.cancel)
    print(json.dumps(quality, indent=2))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from .engine.audit import run_audit

    extra = facts_for_targets(args)
    session = open_session(args)
    targets = session.resolve_targets(args.target or [], extra)
    if args.unlearned:
        session.load_weights(args.unlearned)
    if not session.is_modified():
        print("warning: the audited weights equal the original ones: give --unlearned RUN/model to audit a run.", file=sys.stderr)
    result = run_audit(session, targets, relearn_steps=args.relearn_steps, verify_known=not args.no_verify,
                       progress=progress_printer(args.quiet), cancel=args.cancel)
    data = result.to_dict()
    if args.out:
        Path(args.out).write_text(json.dumps(data, indent=2))
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print_audit(data)
    return 0


def _row(values: list[float], fmt: str) -> str:
    return " ".join(format(v, fmt) for v in values)


def print_audit(data: dict[str, Any]) -> None:
    print(f"audit of {', '.join(data['targets'])}: layers {data['layers'][0]}–{data['layers'][-1]}")
    for label, key, fmt in (("probe P(known)", "probe_p_known", ".2f"), ("lens P(answer)", "lens_probability", ".2f"),
                            ("lens rank", "lens_rank", "5.0f")):
        for model in ("original", "current"):
            print(f"{label:15s} {model:9s} {_row(data[model][key], fmt)}")
    for model in ("original", "current"):
        forms = ", ".join(f"{k} {_fmt(v)}" for k, v in data[model]["accuracy_by_form"].items())
        print(f"fact accuracy {model:9s} {forms}")
    print(f"after {data['relearn_steps']} relearning steps on unrelated text: forget accuracy {_fmt(data['relearned_forget_accuracy'])}")
    print_audit_targets(data)


def _rank(summary: dict[str, float] | None) -> str:
    return "no facts" if summary is None else f"{summary['median']:.0f}/{summary['mean']:.1f}"


def print_audit_targets(data: dict[str, Any]) -> None:
    """Per target: last-layer lens rank (median/mean) and name fidelity, θ0 and now; forget accuracy after relearning."""
    per_target = data.get("per_target") or {}
    if not per_target:
        return
    width = max(12, *(len(name) for name in per_target)) + 2
    steps = data["relearn_steps"]
    print(f"\nper target: the logit-lens rank of the answers' first tokens at the last layer (median/mean, 0 = top),\n"
          f"the share of chat answers that write the name exactly, and the forget accuracy after {steps} relearning\n"
          f"steps over the forms no method trains on")
    columns = (("rank original", 15), ("rank current", 14), ("names original", 16), ("names current", 15), ("relearned", 14))
    print(f"{'target':{width}s}" + "".join(f"{label:>{size}s}" for label, size in columns))
    for name, target in per_target.items():
        ranks, names = target["lens_rank_last_layer"], target["name_fidelity"]
        cells = (_rank(ranks["original"]), _rank(ranks["current"]), _fmt(names["original"]), _fmt(names["current"]),
                 _fmt(target["relearned_forget_headline"]))
        print(f"{name:{width}s}" + "".join(f"{cell:>{size}s}" for cell, (_, size) in zip(cells, columns)))
    forms = list(dict.fromkeys(form for t in per_target.values() for form in t["relearned_forget_accuracy_by_form"]))
    if not forms:
        return
    print(f"\nforget accuracy per form after {steps} relearning steps on unrelated text")
    sizes = [max(len(form), 5) + 2 for form in forms]
    print(f"{'target':{width}s}" + "".join(f"{form:>{size}s}" for form, size in zip(forms, sizes)))
    for name, target in per_target.items():
        by_form = target["relearned_forget_accuracy_by_form"]
        print(f"{name:{width}s}" + "".join(f"{_fmt(by_form[form]) if form in by_form else '—':>{size}s}"
                                           for form, size in zip(forms, sizes)))


def register_commands(commands: argparse._SubParsersAction) -> None:
    from .engine.run_config import TrainConfig  # the objectives registry: no torch import at start-up

    unlearn = commands.add_parser("unlearn", help="run an unlearning job and write its run folder")
    add_model_arguments(unlearn)
    unlearn.add_argument("--target", action="append", help="an entity to forget (repeat for several)")
    unlearn.add_argument("--facts", help="a JSON facts file for the targets (see the README for its format)")
    unlearn.add_argument("--all-targets-in-file", action="store_true",
                         help="make every entity of --facts a target (by default only the named --target ones)")
    add_setting_arguments(unlearn, TrainConfig)
    unlearn.add_argument("--no-verify", action="store_true", help="use the shipped entity lists without checking known-ness")
    unlearn.add_argument("--save-model", action="store_true", help="save the unlearned model to OUT/model")
    unlearn.add_argument("--out", required=True, help="a new folder for the run")
    unlearn.set_defaults(handler=cmd_unlearn)

    ask = commands.add_parser("ask", help="answer a prompt with a model (an unlearned run's model/ folder too)")
    add_model_arguments(ask, sae=False)
    ask.add_argument("prompt")
    ask.add_argument("--completion", action="store_true", help="complete the raw text instead of asking in chat form")
    ask.add_argument("--max-new-tokens", type=int, default=48)
    ask.set_defaults(handler=cmd_ask)

    classify = commands.add_parser("classify", help="which reference entities the model knows (cached per model)")
    add_model_arguments(classify)
    classify.add_argument("--all", action="store_true", help="print every entity, not only the counts")
    classify.set_defaults(handler=cmd_classify)

    audit = commands.add_parser("audit", help="per-layer probe and logit-lens audit of an unlearned model vs the original")
    add_model_arguments(audit)
    audit.add_argument("--target", action="append", help="the entity to audit (repeat for several)")
    audit.add_argument("--facts", help="a JSON facts file for the targets")
    audit.add_argument("--all-targets-in-file", action="store_true",
                       help="audit every entity of --facts (by default only the named --target ones)")
    audit.add_argument("--unlearned", help="the unlearned model folder (a run's model/); --model is the original")
    audit.add_argument("--relearn-steps", type=int, default=10)
    audit.add_argument("--no-verify", action="store_true", help="use the shipped entity lists without checking known-ness")
    audit.add_argument("--json", action="store_true", help="print the audit as JSON")
    audit.add_argument("--out", help="also write the JSON to this file")
    audit.set_defaults(handler=cmd_audit)

    train_sae = commands.add_parser("train-sae", help="train the demo SAE with sae-lens and measure its quality")
    train_sae.add_argument("--out", default="resources/demo_sae", help="the folder to write (cfg.json, weights, quality.json)")
    train_sae.set_defaults(handler=cmd_train_sae)
