"""Re-score recorded rows on the checks today's data still asks, and that no stand-in answers (issue 12, item 4).

    python bench/kept_checks.py bench/results/paper_table_eval_*.rows.jsonl --floor bench/results/stand_in_floor_eval.json

After facts that gave their answer away are rewritten or dropped, the rows measured before hold answers to
checks that no longer exist. This keeps, per row, only the forget and neighbour checks that today's
resources/entities/known.json still asks word for word (same entity, form, prompt and answers) and that at most
one fictitious stand-in in six answers (``--floor``: a scripts/stand_in_floor.py result) and whose answer is not made
of the entity's own name (engine/stand_ins.py's name_gives_answer), and recomputes from the
recorded answers the forget headline (mean over the forms no method trains on), the completion form and neighbour
retain, before and after. Every method's rows are cut the same way, so the comparison stays like with like; no
run is repeated. Prints a markdown table and writes --out.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import ROOT, read_rows
from paper_table import mean_sd

from unlearn_studio.engine.entities import load_known_candidates
from unlearn_studio.engine.fact_checks import fact_checks, headline
from unlearn_studio.engine.methods import METHODS
from unlearn_studio.engine.stand_ins import name_gives_answer

FLOOR = 1  # stand-ins out of six that may answer a kept check


def check_key(entity: str, form: str, prompt: str, answers) -> tuple:  # noqa: ANN001 - a list or a tuple
    return entity, form, prompt, tuple(answers)


def asked_today(floor: dict | None) -> set[tuple]:
    """Every check today's data asks (any role), less those more than FLOOR stand-ins answer or the name gives."""
    above = set()
    if floor:
        above = {check_key(r["entity"], r["form"], r["prompt"], r["answers"]) for r in floor["checks"]
                 if r.get("stand_ins_correct", 0) > FLOOR}
    return {check_key(c.entity, c.form, c.prompt, c.answers) for c in fact_checks(load_known_candidates(), "any")
            if not name_gives_answer(c)} - above


def measures(facts: list[dict], when: str) -> dict[str, float | None]:
    by_form: dict[str, list[bool]] = {}
    for fact in facts:
        if fact["role"] == "forget":
            by_form.setdefault(fact["form"], []).append(bool(fact[f"{when}_correct"]))
    forget_by_form = {form: sum(v) / len(v) for form, v in by_form.items()}
    neighbour = [bool(f[f"{when}_correct"]) for f in facts if f["role"] == "neighbour"]
    return {"forget_accuracy": headline(forget_by_form), "completion": forget_by_form.get("completion"),
            "neighbour_retain_accuracy": sum(neighbour) / len(neighbour) if neighbour else None}


def rescore(row: dict, kept: set[tuple]) -> dict:
    facts = [f for f in row["facts"] if f["role"] in ("forget", "neighbour")]
    chosen = [f for f in facts if check_key(f["entity"], f["form"], f["prompt"], f["answers"]) in kept]
    return {"method": row["method"], "lr": row["lr"], "setting": row["setting"], "target": row["target"],
            "checks_kept": len(chosen), "checks_recorded": len(facts),
            "before": measures(chosen, "before"), "after": measures(chosen, "after")}


def table(rescored: list[dict]) -> str:
    keys = {"forget_accuracy": "forget acc. (forms no method trains on)", "completion": "completion",
            "neighbour_retain_accuracy": "neighbour retain"}
    lines = ["| method | lr | setting | targets | checks kept | " + " | ".join(keys.values()) + " |",
             "|---|---|---|---|---|" + "---|" * len(keys)]
    groups: dict[tuple, list[dict]] = {}
    for row in rescored:
        groups.setdefault((row["method"], row["lr"], row["setting"]), []).append(row)
    order = {m: i for i, m in enumerate(METHODS)}
    for (method, lr, setting), group in sorted(groups.items(), key=lambda g: (order.get(g[0][0], 99), g[0][1] or 0)):
        cells = []
        for key in keys:
            before = [r["before"][key] for r in group if r["before"][key] is not None]
            after = [r["after"][key] for r in group if r["after"][key] is not None]
            cells.append(f"{mean_sd(before)} → {mean_sd(after)}")
        kept = f"{sum(r['checks_kept'] for r in group)} of {sum(r['checks_recorded'] for r in group)}"
        lines.append(f"| {method} | {lr:.0e} | {setting} | {len(group)} | {kept} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", nargs="+", help="result rows (.rows.jsonl or .json)")
    parser.add_argument("--floor", type=Path, help="a scripts/stand_in_floor.py result for today's data")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "kept_checks_eval.json")
    args = parser.parse_args()
    kept = asked_today(json.loads(args.floor.read_text()) if args.floor else None)
    rescored = [rescore(row, kept) for row in read_rows(args.rows)]
    markdown = table(rescored)
    print(markdown)
    args.out.write_text(json.dumps({"rows_from": args.rows, "floor": str(args.floor), "rows": rescored}, indent=1))


if __name__ == "__main__":
    main()
