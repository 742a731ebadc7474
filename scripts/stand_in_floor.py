"""Stand-in rate of every shipped fact check, per form, with the demo model (issue 12, item 4).

A check gives its answer away when the model answers it for a fictitious stand-in too. For each
known.json entity of the chosen splits, every check (completion, paraphrase, chat, fill-in-the-blank,
the fact prompt after the entity's neutral passage) is asked with the entity's name replaced by the
six stand-ins of engine/stand_ins.py (pick_stand_ins), as context_answerable does. The goal: at most
one stand-in in six answers any check.

    PYTHONPATH=$PWD python scripts/stand_in_floor.py --out /tmp/floor.json [--only "Eiffel Tower" ...]

Prints the checks above the floor and, per form, the share of checks above it, the mean stand-in rate
and the real entity's accuracy with θ0; writes every check to --out.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

FORMS = {"completion": (8, False), "paraphrase": (8, False), "chat": (32, True),
         "fill_in_blank": (8, False), "passage": (8, False)}  # form -> (new tokens, chat template)
FLOOR = 1  # stand-ins out of six that may answer a check


@dataclass(frozen=True)
class Check:
    entity: str
    form: str
    prompt: str
    answers: tuple[str, ...]


def checks_of(entity) -> list[Check]:  # noqa: ANN001 - an entities.Entity
    checks = []
    for fact in entity.facts:
        add = lambda form, prompt: checks.append(Check(entity.name, form, prompt, fact.answers))  # noqa: E731
        add("completion", fact.prompt)
        for paraphrase in fact.paraphrases:
            add("paraphrase", paraphrase)
        if fact.question:
            add("chat", fact.question)
        if fact.fill_in_blank:
            add("fill_in_blank", fact.fill_in_blank)
        if entity.passage:
            add("passage", f"{entity.passage} {fact.prompt}")
    return checks


def ask(model, tokenizer, checks: list[Check]) -> list[bool]:  # noqa: ANN001
    from unlearn_studio.engine.entities import answer_matches
    from unlearn_studio.engine.generation import complete

    correct: dict[int, bool] = {}
    for form, (tokens, chat) in FORMS.items():
        rows = [i for i, c in enumerate(checks) if c.form == form]
        if rows:
            outputs = complete(model, tokenizer, [checks[i].prompt for i in rows], max_new_tokens=tokens, chat=chat,
                               batch_size=64)
            correct.update({i: answer_matches(out, checks[i].answers) for i, out in zip(rows, outputs)})
    return [correct[i] for i in range(len(checks))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", nargs="+", default=["tune", "eval", "retain"])
    parser.add_argument("--only", nargs="+", help="entity names, whatever their split (default: every entity of --splits)")
    parser.add_argument("--forms", nargs="+", choices=list(FORMS), default=list(FORMS))
    parser.add_argument("--out", type=Path, help="JSON file for every check's result")
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from unlearn_studio.engine.demo import ensure_demo_model
    from unlearn_studio.engine.entities import load_known_candidates, load_unknown_entities
    from unlearn_studio.engine.stand_ins import pick_stand_ins, substitute

    torch.manual_seed(0)
    folder = ensure_demo_model()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    entities = [e for e in load_known_candidates() if (e.name in args.only if args.only else e.split in args.splits)]
    if not entities:
        print("no entity matches --splits/--only", file=sys.stderr)
        return 2
    stand_ins = pick_stand_ins(entities, load_unknown_entities())
    checks = [c for e in entities for c in checks_of(e) if c.form in args.forms]
    asked: list[tuple[int, Check]] = []
    for index, check in enumerate(checks):
        for name in stand_ins[check.entity]:
            prompt = substitute(check.prompt, check.entity, name)
            if prompt is not None:
                asked.append((index, Check(name, check.form, prompt, check.answers)))
    with torch.no_grad():
        real = ask(model, tokenizer, checks)
        hits = ask(model, tokenizer, [c for _, c in asked])
    counts = [[0, 0] for _ in checks]
    for (index, _), hit in zip(asked, hits):
        counts[index][0] += hit
        counts[index][1] += 1
    rows = [{"entity": c.entity, "form": c.form, "prompt": c.prompt, "answers": list(c.answers),
             "theta0_correct": ok, "stand_ins_correct": n, "stand_ins_asked": m}
            for c, ok, (n, m) in zip(checks, real, counts)]
    for row in rows:
        if row["stand_ins_correct"] > FLOOR:
            print(f"ABOVE FLOOR {row['stand_ins_correct']}/{row['stand_ins_asked']} [{row['form']}] "
                  f"{row['entity']}: {row['prompt']!r} -> {row['answers']}")
    summary = {}
    for form in FORMS:
        mine = [r for r in rows if r["form"] == form]
        if mine:
            summary[form] = {"checks": len(mine),
                             "above_floor": sum(r["stand_ins_correct"] > FLOOR for r in mine),
                             "stand_in_rate": sum(r["stand_ins_correct"] for r in mine)
                             / max(1, sum(r["stand_ins_asked"] for r in mine)),
                             "theta0_accuracy": sum(r["theta0_correct"] for r in mine) / len(mine)}
    for form, s in summary.items():
        print(f"{form:14s} checks {s['checks']:4d}  above floor {s['above_floor']:3d}  "
              f"stand-in rate {s['stand_in_rate']:.3f}  θ0 accuracy {s['theta0_accuracy']:.3f}")
    if args.out:
        args.out.write_text(json.dumps({"summary": summary, "stand_ins": stand_ins, "checks": rows}, indent=1,
                                       ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
