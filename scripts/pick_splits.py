"""Assign the tune/eval/retain splits of resources/entities/known.json (DESIGN.md §8), at random.

Eval and retain entities are drawn with a seeded random choice, per type, among the candidates the demo
model knows (the output of ``unlearn-studio classify --demo --all``), never by hand. Eval leaves out
every candidate linked to a tune target (one names the other in its facts or answers, like Paris and the
Eiffel Tower): settings chosen on tune must not have seen them.

    PYTHONPATH=$PWD python scripts/pick_splits.py /tmp/classify.json [--seed 12] [--write]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

TUNE = ("Eiffel Tower", "Harry Potter", "Sherlock Holmes", "Albert Einstein", "Barack Obama")
TYPES = ("person", "place", "work", "organisation")
EVAL_PER_TYPE = 7  # 28: above the 24 required, so a rewrite that costs one entity its known status leaves enough
RETAIN_PER_TYPE = 9  # 36 ≥ 32
KNOWN_FILE = Path(__file__).resolve().parents[1] / "resources" / "entities" / "known.json"


def _text_of(entry: dict) -> str:
    parts = [entry["name"]]
    for fact in entry["facts"]:
        parts += [fact["prompt"], *fact["answers"]]
    return " ".join(parts).casefold()


def _names(a: dict, b: dict) -> bool:
    return re.search(rf"(?<!\w){re.escape(a['name'].casefold())}(?!\w)", _text_of(b)) is not None


def linked(a: dict, b: dict) -> bool:
    """One entry's name occurs in the other's facts (prompts or answers), or one is the other's neighbour."""
    return (_names(a, b) or _names(b, a) or a["name"] in b.get("neighbours", ())
            or b["name"] in a.get("neighbours", ()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("classify_json", type=Path)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--write", action="store_true", help="write the splits into known.json")
    args = parser.parse_args(argv)

    statuses = json.loads(args.classify_json.read_text())["entities"]
    known = {s["name"] for s in statuses if s["reference"] == "candidate" and s["status"] == "known"}
    entries = json.loads(KNOWN_FILE.read_text(encoding="utf-8"))
    tune = [e for e in entries if e["name"] in TUNE]
    split: dict[str, str] = {e["name"]: "tune" for e in tune}
    for etype in TYPES:
        # Each name gets its own seeded random key, so one entity more or less known leaves the others' draws alone.
        pool = sorted((e["name"] for e in entries if e["type"] == etype and e["name"] in known and e["name"] not in split),
                      key=lambda name: random.Random(f"{args.seed}:{name}").random())
        eligible = [n for n in pool if not any(linked(next(x for x in entries if x["name"] == n), t) for t in tune)]
        for name in eligible[:EVAL_PER_TYPE]:
            split[name] = "eval"
        for name in [n for n in pool if n not in split][:RETAIN_PER_TYPE]:
            split[name] = "retain"
    for entry in entries:
        entry.pop("split", None)
        if entry["name"] in split:
            # "split" goes right after "type", before the facts, for readability.
            items = list(entry.items())
            entry.clear()
            entry.update(items[:2] + [("split", split[items[0][1]])] + items[2:])
    for kind in ("tune", "eval", "retain"):
        names = [n for n, s in split.items() if s == kind]
        print(f"{kind} ({len(names)}): {', '.join(names)}")
    if args.write:
        KNOWN_FILE.write_text(json.dumps(entries, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
