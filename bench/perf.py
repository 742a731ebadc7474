"""Performance benchmark on the demo model and SAE: ratios measured side by side in one process.

    python bench/perf.py            # prints a table, writes bench/results/perf.json

Keys (targets in docs/results.md): early_exit_speedup, align_vs_ga_step_ratio, reference_cache_speedup,
ui_latency_p95_ms, ui_latency_max_ms, plot_update_ms, peak_rss_gb, steps_per_second, first_start_ready_seconds.

    python bench/perf.py --only-first-start   # measure first_start_ready_seconds alone, merged into perf.json
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

TARGETS = {"early_exit_speedup": ">= 2.5", "align_vs_ga_step_ratio": "<= 0.6", "reference_cache_speedup": ">= 20",
           "ui_latency_p95_ms": "<= 50", "ui_latency_max_ms": "<= 200", "plot_update_ms": "<= 5",
           "peak_rss_gb": "<= 2.5", "steps_per_second": "report", "first_start_ready_seconds": "<= 20"}


def median_seconds(function, repeats: int = 5) -> float:
    function()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_early_exit(session) -> dict:
    import torch

    from unlearn_studio.engine.hooks import capture_one
    from unlearn_studio.engine.latents import entity_batch

    candidates, _, templates = session.entity_data()
    batch, _ = entity_batch(session.tokenizer, candidates[:8], templates.train[:4])
    ids, mask = batch.input_ids, batch.attention_mask
    with torch.no_grad():
        early = median_seconds(lambda: capture_one(session.model, session.hook, ids, mask))
        full = median_seconds(lambda: session.model(input_ids=ids, attention_mask=mask, output_hidden_states=True, use_cache=False))
    return {"early_exit_seconds": early, "full_forward_seconds": full, "early_exit_speedup": full / early}


def bench_steps(session) -> dict:
    """One sae-align step vs one gradient-ascent step on the same tokens and the same trainable parameters."""
    from dataclasses import replace

    import torch

    from unlearn_studio.engine.hooks import capture_one
    from unlearn_studio.engine.objectives import StepContext, TokenBatch, make_objective
    from unlearn_studio.engine.trainer import (TrainConfig, UnlearningPlan, prepare_batches, run_preservation,
                                               select_parameters)

    targets = session.resolve_targets(["Eiffel Tower"])
    known, unknown = session.reference_entities(["Eiffel Tower"])
    refs = session.references(known, unknown)
    config = TrainConfig()
    plan = UnlearningPlan(targets, known, session.entity_data()[2], refs)
    batches = prepare_batches(session.model, session.tokenizer, session.sae.sae, session.hook, plan, config)
    # The same tokens for both: the forget prompts, and one chunk of retain text that sae-align keeps in place.
    forget = batches.retain = batches.forget
    with torch.no_grad():
        batches.retain_original = capture_one(session.model, session.hook, forget.input_ids, forget.attention_mask).float()
    batches.retain_text = TokenBatch(*(t[:1] for t in (batches.retain_text.input_ids, batches.retain_text.attention_mask,
                                                     batches.retain_text.labels)))
    batches.retain_text_original = batches.retain_text_original[:1]
    width = max(forget.input_ids.shape[1], batches.retain_text.input_ids.shape[1])
    pad = session.tokenizer.pad_token_id
    ga_ids = torch.cat([torch.nn.functional.pad(forget.input_ids, (0, width - forget.input_ids.shape[1]), value=pad),
                        torch.nn.functional.pad(batches.retain_text.input_ids, (0, width - batches.retain_text.input_ids.shape[1]), value=pad)])
    ga_mask = torch.cat([torch.nn.functional.pad(forget.attention_mask, (0, width - forget.attention_mask.shape[1])),
                         torch.nn.functional.pad(batches.retain_text.attention_mask, (0, width - batches.retain_text.attention_mask.shape[1]))])
    batches.forget_facts = TokenBatch(ga_ids, ga_mask, ga_ids.masked_fill(ga_mask == 0, -100))
    parameters = select_parameters(session.model, session.hook, config)
    # As in a run: measured once, then part of every sae-align step.
    batches.preservation = run_preservation(session.model, session.tokenizer, session.hook, plan, config, parameters)
    ctx = StepContext(session.model, session.sae.sae, session.hook, refs, batches)
    results = {}
    for name in ("sae-align", "grad-ascent"):
        objective = make_objective(replace(config, method=name))
        optimiser = torch.optim.Adam(parameters, lr=1e-12)
        for parameter in parameters:
            parameter.requires_grad_(True)

        def step() -> None:
            optimiser.zero_grad(set_to_none=True)
            objective.losses(ctx)["total"].backward()
            optimiser.step()

        results[name] = median_seconds(step, repeats=5)
        for parameter in parameters:
            parameter.requires_grad_(False)
            parameter.grad = None
    session.reset()
    return {"align_step_seconds": results["sae-align"], "ga_step_seconds": results["grad-ascent"],
            "align_vs_ga_step_ratio": results["sae-align"] / results["grad-ascent"],
            "tokens_per_step": int(ga_mask.sum())}


def bench_reference_cache(session) -> dict:
    from unlearn_studio.engine.latents import References, compute_references, references_cache_key
    from unlearn_studio.engine.models import weights_fingerprint
    from unlearn_studio.engine.paths import cache_dir

    known, unknown = session.reference_entities(["Eiffel Tower"])
    templates = session.entity_data()[2].train
    started = time.perf_counter()
    refs = compute_references(session.model, session.tokenizer, session.sae.sae, session.hook, known, unknown, templates)
    computed = time.perf_counter() - started
    key = references_cache_key(session.original_fingerprint, weights_fingerprint(session.sae.sae), session.hook.name,
                               [e.name for e in known], [e.name for e in unknown], templates)
    path = cache_dir("references") / f"{key}.safetensors"
    refs.save(path)
    loaded = median_seconds(lambda: References.load(path))
    return {"references_compute_seconds": computed, "references_load_seconds": loaded,
            "reference_cache_speedup": computed / loaded, "reference_prompts": (len(known) + len(unknown)) * len(templates)}


def bench_gui_run(steps: int = 15) -> dict:
    """Event-loop lateness of the main window and plot update time during a demo run."""
    from bench.gui_latency import measure_gui_during_run

    return measure_gui_during_run(steps=steps)


def bench_peak_rss(steps: int = 60) -> dict:
    """A full demo run (defaults) in a child process: peak resident memory and steps per second."""
    out = Path(tempfile.mkdtemp()) / "run"
    command = [sys.executable, "-m", "unlearn_studio.cli", "--quiet", "unlearn", "--demo", "--target", "Eiffel Tower",
               "--steps", str(steps), "--out", str(out)]
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    report = json.loads((out / "report.json").read_text())
    return {"peak_rss_gb": peak_kb / 1024 / 1024, "full_run_seconds": wall, "run_steps": report["steps"],
            "steps_per_second": report["steps"] / report["train_seconds"], "run_stopped": report["stopped"]}


def measure_first_start_in_child() -> dict:
    """Program start on an empty user data folder until the map is drawn (bench/first_start.py)."""
    from bench.first_start import measure_first_start

    return measure_first_start()


def main() -> None:
    import argparse

    import torch

    from unlearn_studio.engine.pipeline import ModelSpec, load_session

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-full-run", action="store_true", help="skip the full demo run (peak RSS, steps/s)")
    parser.add_argument("--skip-gui", action="store_true", help="skip the window measurements")
    parser.add_argument("--only-first-start", action="store_true",
                        help="measure first_start_ready_seconds alone and merge it into perf.json")
    args = parser.parse_args()
    out = ROOT / "bench" / "results" / "perf.json"
    if args.only_first_start:
        from bench.first_start import measure_first_start

        results = json.loads(out.read_text()) if out.exists() else {}
        results.update(measure_first_start())
        out.write_text(json.dumps(results, indent=2))
        print(f"first_start_ready_seconds {results['first_start_ready_seconds']:.1f}  (target <= 20); written to {out}")
        return
    started = time.perf_counter()
    results: dict = {"torch_threads": torch.get_num_threads()}
    results.update(measure_first_start_in_child())  # first: nothing of this process is warm or cached
    if not args.skip_full_run:
        results.update(bench_peak_rss())  # first, so the child's peak is not mixed with this process
    session = load_session(ModelSpec())
    results.update(bench_early_exit(session))
    results.update(bench_reference_cache(session))
    results.update(bench_steps(session))
    del session
    if args.skip_gui:
        from bench.gui_latency import measure_plot_update
        from unlearn_studio.gui.app import create_app

        app = create_app([])  # noqa: F841 - the plots need a QApplication
        results["plot_update_ms"] = measure_plot_update()
    else:
        results.update(bench_gui_run())
    results["bench_seconds"] = time.perf_counter() - started
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"{'key':28s} {'value':>10s}  target")
    for key, target in TARGETS.items():
        value = f"{results[key]:10.3f}" if key in results else "   skipped"
        print(f"{key:28s} {value}  {target}")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
