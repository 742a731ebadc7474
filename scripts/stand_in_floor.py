"""Stand-in rate of every shipped fact check, per form, with the demo model (issue 12, item 4).

A check gives its answer away when the model answers it for a fictitious stand-in too. For each
known.json entity of the chosen splits, every check of engine/fact_checks.py (each form the entity has
data for; reverse queries hold no name and are not asked) is asked with θ0 and with the entity's name
replaced by the six stand-ins of engine/stand_ins.py (pick_stand_ins). The goal: at most one stand-in in
six answers any check, and no accepted answer is made of the entity's own name ("China" → "Chinese",
engine/stand_ins.py's name_gives_answer: a stand-in would answer with its own name's form, which the check
does not accept, so these count as above the floor whatever the stand-ins say).

    PYTHONPATH=$PWD python scripts/stand_in_floor.py --out /tmp/floor.json [--only "Eiffel Tower" ...]
    PYTHONPATH=$PWD python scripts/stand_in_floor.py --reuse /tmp/floor.json --out /tmp/floor2.json   # after edits

Prints the checks above the floor and, per form, the share of checks above it, the mean stand-in rate
and the real entity's accuracy with θ0; writes every check to --out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

FLOOR = 1  # stand-ins out of six that may answer a check


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", nargs="+", default=["tune", "eval", "retain"])
    parser.add_argument("--only", nargs="+", help="entity names, whatever their split (default: every entity of --splits)")
    parser.add_argument("--forms", nargs="+", help="forms of engine/fact_checks.py (default: every one)")
    parser.add_argument("--out", type=Path, help="JSON file for every check's result")
    parser.add_argument("--reuse", type=Path, help="an earlier --out file: its checks (same entity, form, prompt and "
                        "answers) are copied, only new or rewritten ones are asked")
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from unlearn_studio.engine.demo import ensure_demo_model
    from unlearn_studio.engine.entities import (
        load_known_candidates,
        load_unknown_entities,
    )
    from unlearn_studio.engine.fact_checks import (
        FORMS,
        FactCheck,
        fact_checks,
        run_fact_checks,
    )
    from unlearn_studio.engine.stand_ins import name_gives_answer, pick_stand_ins, substitute

    torch.manual_seed(0)
    folder = ensure_demo_model()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    entities = [e for e in load_known_candidates() if (e.name in args.only if args.only else e.split in args.splits)]
    if not entities:
        print("no entity matches --splits/--only", file=sys.stderr)
        return 2
    stand_ins = pick_stand_ins(entities, load_unknown_entities())
    checks = fact_checks(entities, "forget", forms=args.forms or tuple(FORMS))
    earlier = {}
    if args.reuse:
        earlier = {(r["entity"], r["form"], r["prompt"], tuple(r["answers"])): r
                   for r in json.loads(args.reuse.read_text())["checks"]}
    reused = [earlier[key] for c in checks if (key := (c.entity, c.form, c.prompt, c.answers)) in earlier]
    checks = [c for c in checks if (c.entity, c.form, c.prompt, c.answers) not in earlier]
    if args.reuse:
        print(f"{len(reused)} checks copied from {args.reuse}, {len(checks)} asked")
    asked: list[tuple[int, FactCheck]] = []
    for index, check in enumerate(checks):
        for name in stand_ins[check.entity]:
            prompt = substitute(check.prompt, check.entity, name)
            if prompt is not None:
                asked.append((index, FactCheck(name, "stand-in", check.form, prompt, check.answers)))
    with torch.no_grad():
        real_results = {r.check: r.correct for r in run_fact_checks(model, tokenizer, checks)}
        hit_of = {r.check: r.correct for r in run_fact_checks(model, tokenizer, [c for _, c in asked])}
    real = [real_results[c] for c in checks]
    counts = [[0, 0] for _ in checks]
    for index, check in asked:
        counts[index][0] += hit_of[check]
        counts[index][1] += 1
    rows = reused + [{"entity": c.entity, "form": c.form, "prompt": c.prompt, "answers": list(c.answers),
                      "theta0_correct": ok, "stand_ins_correct": n, "stand_ins_asked": m}
                     for c, ok, (n, m) in zip(checks, real, counts)]
    for row in rows:
        row["name_gives_answer"] = name_gives_answer(FactCheck(row["entity"], "forget", row["form"], row["prompt"],
                                                               tuple(row["answers"])))
        if row["name_gives_answer"]:
            row["stand_ins_correct"] = row["stand_ins_asked"]
        if row["stand_ins_correct"] > FLOOR or row["name_gives_answer"]:
            why = "the name gives it" if row["name_gives_answer"] else f"{row['stand_ins_correct']}/{row['stand_ins_asked']}"
            print(f"ABOVE FLOOR ({why}) [{row['form']}] {row['entity']}: {row['prompt']!r} -> {row['answers']}")
    summary = {}
    for form in FORMS:
        mine = [r for r in rows if r["form"] == form]
        if mine:
            asked_total = sum(r["stand_ins_asked"] for r in mine)  # 0 for reverse queries: no name to replace
            summary[form] = {"checks": len(mine),
                             "above_floor": sum(r["stand_ins_correct"] > FLOOR or r["name_gives_answer"] for r in mine),
                             "stand_in_rate": sum(r["stand_ins_correct"] for r in mine) / asked_total if asked_total else None,
                             "theta0_accuracy": sum(r["theta0_correct"] for r in mine) / len(mine)}
    for form, s in summary.items():
        rate = "n/a" if s["stand_in_rate"] is None else f"{s['stand_in_rate']:.3f}"
        print(f"{form:16s} checks {s['checks']:4d}  above floor {s['above_floor']:3d}  "
              f"stand-in rate {rate}  θ0 accuracy {s['theta0_accuracy']:.3f}")
    if args.out:
        args.out.write_text(json.dumps({"summary": summary, "stand_ins": stand_ins, "checks": rows}, indent=1,
                                       ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
