"""Which of the lesser-known real entities the demo model knows, per type and split.

    python scripts/classify_lesser_known.py                  # the table of counts (≥ 2, 1, 0 facts answered)
    python scripts/classify_lesser_known.py --json out.json  # also every entity's count
    python scripts/classify_lesser_known.py --assign-split   # redraw the held-out third (seed 12) and rewrite the file

The file resources/entities/lesser_known.json is in the schema of known.json plus an optional
"split" ("knownness_holdout": never a reference, the held-out set of bench/knownness.py).  The
entity parser does not accept "split" yet, so the entries are read here with json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from unlearn_studio.engine.entities import Entity, Fact, without_copied_answers  # noqa: E402
from unlearn_studio.engine.knownness import classify_entities  # noqa: E402

DATA = ROOT / "resources" / "entities" / "lesser_known.json"
HOLDOUT = "knownness_holdout"
SEED = 12
TYPES = ("person", "place", "work", "organisation")


def read_entries(path: Path = DATA) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))


def to_entity(entry: dict) -> Entity:
    facts = tuple(Fact(f["prompt"], tuple(f["answers"]), f.get("question"), tuple(f.get("paraphrases", ())))
                  for f in entry["facts"])
    return without_copied_answers(Entity(entry["name"], entry["type"], facts))


def assign_split(entries: list[dict], seed: int = SEED) -> None:
    """Mark a third of each type as held out: random.Random(seed).sample over the names sorted, type by type."""
    rng = random.Random(seed)
    for etype in TYPES:
        names = sorted(e["name"] for e in entries if e["type"] == etype)
        chosen = set(rng.sample(names, round(len(names) / 3)))
        for entry in entries:
            if entry["type"] == etype:
                entry.pop("split", None)
                if entry["name"] in chosen:
                    entry["split"] = HOLDOUT


def count_table(entries: list[dict], correct: dict[str, int]) -> str:
    """Rows: type × split; columns: entities answering ≥ 2 facts (known), exactly 1, none."""
    lines = [f"{'type':<13} {'split':<10} {'n':>4} {'>=2':>5} {'1':>5} {'0':>5}"]
    groups: dict[tuple[str, str], Counter] = {}
    for entry in entries:
        split = "holdout" if entry.get("split") == HOLDOUT else "reference"
        n = correct[entry["name"]]
        bucket = ">=2" if n >= 2 else str(n)
        for key in ((entry["type"], split), (entry["type"], "all"), ("all", split), ("all", "all")):
            groups.setdefault(key, Counter())[bucket] += 1
    for etype in TYPES + ("all",):
        for split in ("reference", "holdout", "all"):
            c = groups.get((etype, split), Counter())
            lines.append(f"{etype:<13} {split:<10} {sum(c.values()):>4} {c['>=2']:>5} {c['1']:>5} {c['0']:>5}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assign-split", action="store_true", help=f"redraw the held-out third (seed {SEED}) and rewrite {DATA.name}")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", type=Path, help="write every entity's number of facts answered to this file")
    args = parser.parse_args(argv)

    entries = read_entries()
    if args.assign_split:
        assign_split(entries, args.seed)
        DATA.write_text(json.dumps(entries, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"{sum(e.get('split') == HOLDOUT for e in entries)} of {len(entries)} entries held out (seed {args.seed})")
        return 0

    from unlearn_studio.engine.demo import ensure_demo_model
    from unlearn_studio.engine.models import load_model

    loaded = load_model(ensure_demo_model(), device=args.device)
    started = time.perf_counter()
    def report(message: str, fraction: float) -> None:
        print(f"\r{message}", end="", file=sys.stderr, flush=True)

    statuses = classify_entities(loaded.model, loaded.tokenizer, [to_entity(e) for e in entries], [], progress=report)
    print(file=sys.stderr)
    seconds = time.perf_counter() - started
    correct = {s.name: s.correct for s in statuses}
    print(f"{len(entries)} entities, {sum(s.total for s in statuses)} fact prompts, asked in {seconds:.0f} s "
          f"on {next(loaded.model.parameters()).device}")
    print(count_table(entries, correct))
    if args.json:
        rows = [{"name": s.name, "type": s.type, "split": e.get("split", "reference"), "correct": s.correct,
                 "total": s.total} for s, e in zip(statuses, entries)]
        args.json.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
