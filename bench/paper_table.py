"""The paper's comparison on the demo model: every method on the same targets, before → after.

    python bench/paper_table.py                      # the default table (docs/results.md)
    python bench/paper_table.py --setting residual='{"objective": {"space": "code+residual"}}' --methods sae-align

Writes bench/results/paper_table.json and the markdown table (stdout, and --markdown FILE).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from unlearn_studio.engine.events import Failed, Finished  # noqa: E402
from unlearn_studio.engine.pipeline import ModelSpec, UnlearnRequest, load_session  # noqa: E402
from unlearn_studio.engine.methods import METHODS  # noqa: E402
from unlearn_studio.engine.run_config import TrainConfig  # noqa: E402

TARGETS = ["Eiffel Tower", "Harry Potter", "Sherlock Holmes", "Albert Einstein", "Barack Obama"]
KEYS = ["target_p_known", "target_unknown_fraction", "forget_accuracy", "entity_forget_accuracy", "retain_accuracy",
        "perplexity"]
LABELS = {"target_p_known": "P(known)", "target_unknown_fraction": "unknown fraction", "forget_accuracy": "forget acc.",
          "entity_forget_accuracy": "forget acc., entity-dependent", "retain_accuracy": "retain acc.",
          "perplexity": "perplexity"}


def mean_sd(values: list[float]) -> str:
    if not values:
        return "–"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {sd:.2f}"


def run_setting(session, name: str, method: str, overrides: dict, targets: list[str], steps: int, befores: dict,
                log: Path) -> list[dict]:
    rows = []
    for target in targets:
        session.reset()
        entities = session.resolve_targets([target])
        config = TrainConfig.from_dict({"method": method, "steps": steps, **{k: v for k, v in overrides.items()}})
        request = UnlearnRequest(targets=entities, config=config, before=befores.get(target))
        started = time.perf_counter()
        for event in session.unlearn(request):
            if isinstance(event, Failed):
                raise SystemExit(f"{name}/{target}: {event.error}\n{event.traceback_text}")
            if isinstance(event, Finished):
                report = event.result.report
                befores.setdefault(target, event.result.before)
                rows.append({"setting": name, "method": method, "target": target, "steps": report["steps"],
                             "stopped": report["stopped"], "seconds": round(time.perf_counter() - started, 1),
                             "before": report["before"], "after": report["after"],
                             "facts": report["fact_table"]})
                with open(log, "a") as handle:  # each row as it lands, so an interrupted table keeps its rows
                    handle.write(json.dumps(rows[-1]) + "\n")
                after = report["after"]
                print(f"{name:>14s} {target:>18s}: steps {report['steps']:3d}  P(known) {report['before']['target_p_known']:.2f}"
                      f" → {after['target_p_known']:.2f}  forget {report['before']['forget_accuracy']:.2f} → {after['forget_accuracy']:.2f}"
                      f" (entity-dependent {report['before']['entity_forget_accuracy']:.2f} → {after['entity_forget_accuracy']:.2f})"
                      f"  retain {report['before']['retain_accuracy']:.2f} → {after['retain_accuracy']:.2f}"
                      f"  ppl {report['before']['perplexity']:.1f} → {after['perplexity']:.1f}  ({rows[-1]['seconds']} s)", flush=True)
    session.reset()
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| setting | method | targets | " + " | ".join(LABELS[k] for k in KEYS) + " | retain Δ, points |",
             "|---|---|---|" + "---|" * (len(KEYS) + 1)]
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["setting"], row["method"]), []).append(row)
    for (setting, method), group in groups.items():
        cells = []
        for key in KEYS:
            before = [r["before"][key] for r in group if r["before"].get(key) is not None]
            after = [r["after"][key] for r in group if r["after"].get(key) is not None]
            cells.append(f"{mean_sd(before)} → {mean_sd(after)}")
        drop = statistics.mean(100 * (r["after"]["retain_accuracy"] - r["before"]["retain_accuracy"]) for r in group)
        lines.append(f"| {setting} | {method} | {len(group)} | " + " | ".join(cells) + f" | {drop:+.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--targets", nargs="+", default=TARGETS)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--setting", action="append", default=[],
                        help="NAME=JSON of TrainConfig overrides, tried with every method given (default: 'default={}')")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "paper_table.json"))
    parser.add_argument("--markdown", help="also write the table to this file")
    parser.add_argument("--merge", nargs="+", help="only build the table from these results files (.json or .jsonl), "
                                                   "and write their rows to --json")
    parser.add_argument("--only", nargs="+", help="with --merge: keep the rows of these settings")
    args = parser.parse_args()
    if args.merge:
        rows = []
        for path in args.merge:
            text = Path(path).read_text()
            rows += json.loads(text)["rows"] if path.endswith(".json") else [json.loads(line) for line in text.splitlines()]
        rows = [r for r in rows if not args.only or r["setting"] in args.only]
        order = {m: i for i, m in enumerate(METHODS)}
        rows.sort(key=lambda r: (r["setting"], order.get(r["method"], 99)))
        markdown = table(rows)
        print(markdown)
        Path(args.json).write_text(json.dumps({"merged_from": args.merge, "steps": args.steps, "rows": rows}, indent=1))
        if args.markdown:
            Path(args.markdown).write_text(markdown + "\n")
        return
    settings = [(s.split("=", 1)[0], json.loads(s.split("=", 1)[1])) for s in args.setting] or [("default", {})]
    session = load_session(ModelSpec())
    befores: dict = {}
    rows = []
    started = time.perf_counter()
    for name, overrides in settings:
        for method in args.methods:
            rows += run_setting(session, name, method, overrides, args.targets, args.steps, befores,
                                Path(args.json).with_suffix(".rows.jsonl"))
    markdown = table(rows)
    print(markdown)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"settings": dict(settings), "steps": args.steps, "seconds": round(time.perf_counter() - started),
                               "rows": rows}, indent=1))
    if args.markdown:
        Path(args.markdown).write_text(markdown + "\n")


if __name__ == "__main__":
    main()
