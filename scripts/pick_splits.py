"""Assign the tune/eval/retain splits of resources/entities/known.json (DESIGN.md §8), at random.

Eval and retain entities are drawn with a seeded random choice, per type, among the candidates the demo
model knows (the output of ``unlearn-studio classify --demo --all``), never by hand. Eval leaves out
every candidate linked to a tune target (one names the other in its facts or answers, like Paris and the
Eiffel Tower, or a word of their names is shared, like Michelle and Barack Obama): settings chosen on tune
must not have seen them. A type with too few known candidates leaves places that are filled, in turn, from
the other types' remaining known candidates (in the same seeded order); the script says so.

    PYTHONPATH=$PWD python scripts/pick_splits.py /tmp/classify.json [--seed 12] [--write]
"""

from __future__ import annotations

import argparse
import json
import math
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


def _name_words(entry: dict) -> set[str]:
    return {w for w in re.findall(r"\w+", entry["name"].casefold()) if len(w) >= 4}


def _answer_words(entry: dict) -> set[str]:
    return {answer.casefold() for fact in entry["facts"] for answer in fact["answers"]}


# Linked in what they are, though neither's facts name the other: kept out of eval by hand, the draw stays random.
CONCEPTUAL_LINKS = {"White House": "Barack Obama lived and worked there for eight years"}


def linked(a: dict, b: dict) -> bool:
    """One entry's name occurs in the other's facts (prompts or answers), one is the other's neighbour, their
    names share a word (near-duplicates such as "Michelle Obama" and "Barack Obama"), one's answer is a word of
    the other's name ("wizard" of Harry Potter, The Wizard of Oz), or CONCEPTUAL_LINKS holds one of them."""
    return (_names(a, b) or _names(b, a) or a["name"] in b.get("neighbours", ())
            or b["name"] in a.get("neighbours", ()) or bool(_name_words(a) & _name_words(b))
            or bool(_answer_words(a) & _name_words(b)) or bool(_answer_words(b) & _name_words(a))
            or a["name"] in CONCEPTUAL_LINKS or b["name"] in CONCEPTUAL_LINKS)


def _fill_shortfall(split: dict[str, str], kind: str, missing: int, pools: dict[str, list[str]]) -> list[str]:
    """Give ``missing`` more entities to ``kind``, taking the next of each other type's pool in turn."""
    taken = []
    while missing and any(pools.values()):
        for etype in TYPES:
            if missing and pools[etype]:
                name = pools[etype].pop(0)
                split[name] = kind
                taken.append(f"{name} ({etype})")
                missing -= 1
    return taken


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
    eval_pools: dict[str, list[str]] = {}
    retain_pools: dict[str, list[str]] = {}
    short = {"eval": 0, "retain": 0}
    for etype in TYPES:
        # Each name gets its own seeded random key, so one entity more or less known leaves the others' draws alone.
        pool = sorted((e["name"] for e in entries if e["type"] == etype and e["name"] in known and e["name"] not in split),
                      key=lambda name: random.Random(f"{args.seed}:{name}").random())
        eligible = [n for n in pool if not any(linked(next(x for x in entries if x["name"] == n), t) for t in tune)]
        # A type too small for both splits shares its pool between them in their proportion (eval first, rounded
        # up): both still hold every type.
        wanted = EVAL_PER_TYPE if len(pool) >= EVAL_PER_TYPE + RETAIN_PER_TYPE else \
            math.ceil(len(pool) * EVAL_PER_TYPE / (EVAL_PER_TYPE + RETAIN_PER_TYPE))
        for name in eligible[:wanted]:
            split[name] = "eval"
        for name in [n for n in pool if n not in split][:RETAIN_PER_TYPE]:
            split[name] = "retain"
        eval_pools[etype] = [n for n in eligible if n not in split]
        short["eval"] += EVAL_PER_TYPE - sum(split.get(n) == "eval" for n in pool)
        short["retain"] += RETAIN_PER_TYPE - sum(split.get(n) == "retain" for n in pool)
        retain_pools[etype] = [n for n in pool if n not in split]
    for kind, pools in (("eval", eval_pools), ("retain", retain_pools)):
        if short[kind]:
            taken = _fill_shortfall(split, kind, short[kind], pools)
            for etype in TYPES:  # what eval took is no longer free for retain
                retain_pools[etype] = [n for n in retain_pools[etype] if n not in split]
            print(f"{kind}: {short[kind]} places left by types with too few known candidates, filled with "
                  f"{', '.join(taken) or 'nothing'}" + ("" if len(taken) == short[kind] else " (not enough known candidates)"))
    for entry in entries:
        entry.pop("split", None)
        if entry["name"] in split:
            # "split" goes right after "type", before the facts, for readability.
            items = list(entry.items())
            entry.clear()
            entry.update(items[:2] + [("split", split[items[0][1]])] + items[2:])
    for kind in ("tune", "eval", "retain"):
        names = [n for n, s in split.items() if s == kind]
        by_type = {t: sum(next(e for e in entries if e["name"] == n)["type"] == t for n in names) for t in TYPES}
        print(f"{kind} ({len(names)}; {', '.join(f'{t} {c}' for t, c in by_type.items())}): {', '.join(names)}")
    if args.write:
        KNOWN_FILE.write_text(json.dumps(entries, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
