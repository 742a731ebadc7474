"""Issue 13's goals table, from recorded single-target rows that carry an audit (paper_table.py --audit).

    python bench/goals_table.py bench/results/eval_s8_default_*.rows.jsonl

One column per measure of the goals table: the mean ± sd over the rows' targets, each target's value, and whether
the goal is met (on every target where the goal says so). Forget is also given on the checks whose answer is not
made of the target's name (engine/stand_ins.py's name_gives_answer), re-scored from the recorded answers; the lens
ranks and the relearned forget come from the audit as recorded (over every check). Prints markdown; no run is made.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from common import read_rows
from kept_checks import measures

from unlearn_studio.engine.fact_checks import FactCheck
from unlearn_studio.engine.stand_ins import name_gives_answer


def forget_without_name_given(row: dict, when: str) -> float | None:
    """The forget headline on the row's recorded forget checks, less those the target's name answers."""
    kept = [f for f in row["facts"]
            if not name_gives_answer(FactCheck(f["entity"], f["role"], f["form"], f["prompt"], tuple(f["answers"])))]
    return measures(kept, when)["forget_accuracy"]


def _points(row: dict, key: str) -> float | None:
    """after − before in points; None when the row did not measure it (a target without neighbours)."""
    before, after = row["before"].get(key), row["after"].get(key)
    return None if before is None or after is None else 100 * (after - before)


def _audit(row: dict) -> dict:
    return row["audit"]["per_target"][row["target"]]


@dataclass(frozen=True)
class Goal:
    label: str
    goal: str
    value: Callable[[dict], float | None]
    met: Callable[[float, list[dict]], bool] | None  # (the mean, the rows), or each target's value when every_target
    every_target: bool = False
    digits: int = 2


GOALS = [
    Goal("P(known), eval templates", "≤ 0.1", lambda r: r["after"]["target_p_known"], lambda v, _: v <= 0.1),
    Goal("unknown percentile (median)", "25–75", lambda r: r["after"]["target_unknown_percentile"],
         lambda v, _: 25 <= v <= 75, digits=0),
    Goal("forget acc., forms no method trains on", "≤ 0.10", lambda r: r["after"]["forget_accuracy"],
         lambda v, _: v <= 0.10),
    Goal("  the same, less checks the name answers", "≤ 0.10", lambda r: forget_without_name_given(r, "after"),
         lambda v, _: v <= 0.10),
    Goal("  stand-in floor (θ0, fictitious names)", "–", lambda r: r["before"]["stand_in_accuracy"], None),
    Goal("last-layer lens rank of the answers (mean)", "≥ 20 on every target",
         lambda r: _audit(r)["lens_rank_last_layer"]["current"]["mean"], lambda v, _: v >= 20, every_target=True, digits=0),
    Goal("forget acc. after 10 relearning steps", "≤ 0.10", lambda r: _audit(r)["relearned_forget_headline"],
         lambda v, _: v <= 0.10),
    Goal("name fidelity in chat", "≥ the stand-ins' rate", lambda r: r["after"]["name_fidelity"],
         lambda v, rows: v >= statistics.mean(r["before"]["name_fidelity_stand_ins"] for r in rows)),
    Goal("  stand-ins' name fidelity (θ0)", "–", lambda r: r["before"]["name_fidelity_stand_ins"], None),
    Goal("retain Δ, points", "≥ −3", lambda r: _points(r, "retain_accuracy"), lambda v, _: v >= -3, digits=1),
    Goal("neighbour retain Δ, points", "≥ −10", lambda r: _points(r, "neighbour_retain_accuracy"),
         lambda v, _: v >= -10, digits=1),
    Goal("perplexity ratio", "≤ 1.02", lambda r: r["after"]["perplexity"] / r["before"]["perplexity"],
         lambda v, _: v <= 1.02, digits=3),
]


def _fmt(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def goals_table(rows: list[dict]) -> str:
    rows = [r for r in rows if r.get("audit") and isinstance(r.get("target"), str)]
    # A target measured again with the same method and setting (its checks rewritten) counts once: the later row.
    rows = list({(r["target"], r["method"], r["setting"]): r for r in rows}.values())
    if not rows:
        raise SystemExit("no single-target row with an audit (run paper_table.py with --audit)")
    targets = [r["target"] for r in rows]
    lines = ["| measure | goal | mean ± sd | " + " | ".join(targets) + " | met |",
             "|---|---|---|" + "---|" * len(targets) + "---|"]
    for goal in GOALS:
        values = [goal.value(r) for r in rows]
        known = [v for v in values if v is not None]
        spread = statistics.stdev(known) if len(known) > 1 else 0.0
        summary = "–" if not known else f"{_fmt(statistics.mean(known), goal.digits)} ± {_fmt(spread, goal.digits)}"
        if goal.met is None or not known:
            met = ""
        elif goal.every_target:
            met = "yes" if all(goal.met(v, rows) for v in known) else "no"
        else:
            met = "yes" if goal.met(statistics.mean(known), rows) else "no"
        lines.append(f"| {goal.label} | {goal.goal} | {summary} | "
                     + " | ".join(_fmt(v, goal.digits) for v in values) + f" | {met} |")
    settings = sorted({(r["method"], r["setting"], r["split"], r["provenance"]["commit"]) for r in rows})
    lines.append("")
    lines.append("Rows: " + "; ".join(f"{m} `{s}` on {sp} at {c}" for m, s, sp, c in settings) + ".")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="+", help="result rows (.rows.jsonl or .json) with an audit")
    print(goals_table(read_rows(parser.parse_args().rows)))


if __name__ == "__main__":
    main()
