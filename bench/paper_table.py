"""The paper's comparison on the demo model: every method on the same targets, before → after.

    python bench/paper_table.py                               # every method at its default, on the eval split
    python bench/paper_table.py --from-pareto bench/results/pareto.json   # each at its best lr on tune, on eval
    python bench/paper_table.py --split tune --setting last='{"positions": "last"}' --methods sae-align
    python bench/paper_table.py --merge bench/results/paper_table.rows.jsonl   # rebuild the table from rows
    python bench/paper_table.py --methods sae-align --together --targets A B C D E   # five targets in one run

Writes bench/results/paper_table.json and the markdown table (stdout, and --markdown FILE). Every row says the
split it was measured on; the headline is the eval split, which no setting was ever chosen on (DESIGN.md §8).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from common import ROOT, SPLITS, add_retain_argument, append_row, read_rows, run_row, split_targets, summary_line

from unlearn_studio.engine.methods import METHODS
from unlearn_studio.engine.run_config import TrainConfig

KEYS = ["target_p_known", "target_unknown_percentile", "forget_accuracy", "stand_in_accuracy", "retain_accuracy",
        "neighbour_retain_accuracy", "linked_accuracy", "name_fidelity", "perplexity"]
LABELS = {"target_p_known": "P(known)", "target_unknown_percentile": "unknown percentile",
          "forget_accuracy": "forget acc.", "stand_in_accuracy": "stand-in floor", "retain_accuracy": "retain acc.",
          "neighbour_retain_accuracy": "neighbour retain", "linked_accuracy": "linked questions",
          "name_fidelity": "name fidelity", "perplexity": "perplexity"}


def mean_sd(values: list[float]) -> str:
    if not values:
        return "–"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {sd:.2f}"


def table(rows: list[dict]) -> str:
    lines = ["| split | setting | method | lr | targets | " + " | ".join(LABELS[k] for k in KEYS) + " | retain Δ, points |",
             "|---|---|---|---|---|" + "---|" * (len(KEYS) + 1)]
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row.get("split", "?"), row["setting"], row["method"], row.get("lr")), []).append(row)
    for (split, setting, method, lr), group in groups.items():
        cells = []
        for key in KEYS:
            before = [r["before"][key] for r in group if r["before"].get(key) is not None]
            after = [r["after"][key] for r in group if r["after"].get(key) is not None]
            cells.append(f"{mean_sd(before)} → {mean_sd(after)}")
        drops = [100 * (r["after"]["retain_accuracy"] - r["before"]["retain_accuracy"]) for r in group
                 if r["after"].get("retain_accuracy") is not None]
        drop = f"{statistics.mean(drops):+.1f}" if drops else "–"
        lr_text = "–" if lr is None else f"{lr:.0e}"
        lines.append(f"| {split} | {setting} | {method} | {lr_text} | {len(group)} | " + " | ".join(cells) + f" | {drop} |")
    return "\n".join(lines)


def retain_by_form(rows: list[dict]) -> str:
    """Per method and setting, the retain Δ in points of each form (mean over targets): a headline that holds
    can hide a form that falls (plain completion) behind one that rises (role play)."""
    forms = list(dict.fromkeys(f for r in rows for f in r["before"].get("retain_accuracy_by_form") or {}))
    lines = ["| setting | method | lr | targets | " + " | ".join(f.replace("_", " ") for f in forms) + " |",
             "|---|---|---|---|" + "---|" * len(forms)]
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        if row["before"].get("retain_accuracy_by_form") and row["after"].get("retain_accuracy_by_form"):
            groups.setdefault((row["setting"], row["method"], row.get("lr")), []).append(row)
    for (setting, method, lr), group in groups.items():
        cells = []
        for form in forms:
            drops = [100 * (r["after"]["retain_accuracy_by_form"][form] - r["before"]["retain_accuracy_by_form"][form])
                     for r in group if form in r["before"]["retain_accuracy_by_form"]]
            cells.append(f"{statistics.mean(drops):+.1f}" if drops else "–")
        lr_text = "–" if lr is None else f"{lr:.0e}"
        lines.append(f"| {setting} | {method} | {lr_text} | {len(group)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def settings_from_pareto(path: str) -> list[tuple[str, TrainConfig]]:
    from pareto import best_per_method

    sweep = json.loads(Path(path).read_text())
    rows = [{**r, "after": {k: r.get(k) for k in r["before"]}} for r in sweep if r.get("split") == "tune"]
    return [("best-on-tune", TrainConfig.from_dict(next(r["config"] for r in rows
                                                         if r["method"] == method and r["lr"] == point["lr"])))
            for method, point in sorted(best_per_method(rows).items())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--split", default="eval", choices=SPLITS)
    parser.add_argument("--targets", nargs="+", help="default: the split's entities the model knows")
    parser.add_argument("--together", action="store_true", help="unlearn all the targets in one run (one row)")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--audit", type=int, metavar="STEPS",
                        help="also audit each unlearned model (lens ranks, name fidelity, forget after STEPS relearning steps)")
    parser.add_argument("--setting", action="append", default=[],
                        help="NAME=JSON of run settings, tried with every method given (default: 'default={}')")
    parser.add_argument("--from-pareto", help="each method at its best learning rate of this sweep (tune split)")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "paper_table.json"))
    parser.add_argument("--markdown", help="also write the table to this file")
    parser.add_argument("--merge", nargs="+", help="only build the table from these results files (.json or .jsonl); "
                                                   "steps and settings come from their rows")
    parser.add_argument("--only", nargs="+", help="with --merge: keep the rows of these settings")
    parser.add_argument("--retain-forms", action="store_true", help="also print the retain Δ of each form")
    add_retain_argument(parser)
    args = parser.parse_args()
    out = Path(args.json)
    if args.merge:
        rows = [r for r in read_rows(args.merge) if not args.only or r["setting"] in args.only]
        order = {m: i for i, m in enumerate(METHODS)}
        rows.sort(key=lambda r: (r.get("split", ""), r["setting"], order.get(r["method"], 99), r.get("lr") or 0))
        markdown = table(rows) + ("\n\n" + retain_by_form(rows) if args.retain_forms else "")
        print(markdown)
        out.write_text(json.dumps({"merged_from": args.merge, "rows": rows}, indent=1))
        if args.markdown:
            Path(args.markdown).write_text(markdown + "\n")
        return
    if args.from_pareto:
        runs = [(name, config) for name, config in settings_from_pareto(args.from_pareto) if config.method in args.methods]
    else:
        named = [(s.split("=", 1)[0], json.loads(s.split("=", 1)[1])) for s in args.setting] or [("default", {})]
        runs = [(name, TrainConfig.from_dict({**overrides, "method": method, "steps": args.steps}))
                for name, overrides in named for method in args.methods]
    from unlearn_studio.engine.pipeline import ModelSpec, load_session

    session = load_session(ModelSpec())
    targets = args.targets or split_targets(session, args.split)
    befores: dict = {}
    rows = []
    started = time.perf_counter()
    log = out.with_suffix(".rows.jsonl")
    for name, config in runs:
        for target in [targets] if args.together else targets:
            rows.append(run_row(session, name, config, target, args.split, befores, args.retain_eval_entities, args.audit))
            append_row(log, rows[-1])
            print(summary_line(rows[-1]), flush=True)
    markdown = table(rows) + ("\n\n" + retain_by_form(rows) if args.retain_forms else "")
    print(markdown)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"split": args.split, "seconds": round(time.perf_counter() - started), "rows": rows}, indent=1))
    if args.markdown:
        Path(args.markdown).write_text(markdown + "\n")


if __name__ == "__main__":
    main()
