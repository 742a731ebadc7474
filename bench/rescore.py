"""Re-score recorded result rows from the answers they hold, after a change to which checks count where.

    python bench/rescore.py bench/results/*.rows.jsonl bench/results/search/*.rows.jsonl

Every row of paper_table.py and pareto.py keeps each check's answers before and after (``facts``), so a
change to how checks are counted needs no new run. First each row's recorded retain and neighbour retain
are recomputed under the roles it was measured with: a row that does not reproduce them is refused. Then
the roles of today's engine are applied (fact_checks.about_targets: a check whose prompt or answer names a
target is ``linked``), and ``retain_accuracy``, ``retain_accuracy_by_form``, ``neighbour_retain_accuracy``
and ``linked_accuracy`` are rewritten before and after; each rescored row records ``rescored``. The files
are rewritten in place; rebuild the tables with ``--merge`` afterwards.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from common import ROOT  # noqa: F401 - puts the checkout on sys.path

from unlearn_studio.engine.entities import load_known_candidates
from unlearn_studio.engine.fact_checks import FactCheck, about_targets, headline

RESCORED = "linked checks apart (fact_checks.about_targets)"


def _scores(facts: list[dict], when: str) -> dict[str, float | None | dict[str, float]]:
    by_role_form: dict[tuple[str, str], list[bool]] = {}
    for fact in facts:
        by_role_form.setdefault((fact["role"], fact["form"]), []).append(bool(fact[f"{when}_correct"]))
    retain_by_form = {form: sum(v) / len(v) for (role, form), v in by_role_form.items() if role == "retain"}

    def share(role: str) -> float | None:
        values = [x for (r, _), v in by_role_form.items() if r == role for x in v]
        return sum(values) / len(values) if values else None

    return {"retain_accuracy": headline(retain_by_form), "retain_accuracy_by_form": retain_by_form,
            "neighbour_retain_accuracy": share("neighbour"), "linked_accuracy": share("linked")}


def _same(a: float | None, b: float | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and math.isclose(a, b, abs_tol=1e-9))


def rescore(row: dict, targets_by_name: dict) -> dict:
    """The row with today's roles and the measures they give (refused when its recorded values don't reproduce)."""
    names = row.get("targets") or [row["target"]]
    for when in ("before", "after"):
        recomputed = _scores(row["facts"], when)
        for key in ("retain_accuracy", "neighbour_retain_accuracy"):
            if row.get("rescored") is None and not _same(recomputed[key], row[when].get(key)):
                raise SystemExit(f"{row['setting']}/{row['method']}/{names}: the recorded {when} {key} "
                                 f"({row[when].get(key)}) is not what its answers give ({recomputed[key]})")
    targets = [targets_by_name[name] for name in names if name in targets_by_name]
    facts = []
    for fact in row["facts"]:
        measured_as = fact.get("measured_as", fact["role"])  # the role it was asked in
        if measured_as in ("retain", "neighbour"):
            check = FactCheck(fact["entity"], measured_as, fact["form"], fact["prompt"], tuple(fact["answers"]))
            fact = {**fact, "role": about_targets([check], targets)[0].role, "measured_as": measured_as}
        facts.append(fact)
    rescored = {**row, "facts": facts, "rescored": RESCORED}
    for when in ("before", "after"):
        rescored[when] = {**row[when], **_scores(facts, when)}
    return rescored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", nargs="+", help=".rows.jsonl files of paper_table.py or pareto.py")
    args = parser.parse_args()
    targets_by_name = {e.name: e for e in load_known_candidates()}
    for path in map(Path, args.rows):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line]
        if not all("facts" in row and "split" in row for row in rows):
            print(f"{path}: rows of the old protocol (no split, no fixed retain set), left as they are")
            continue
        new = [rescore(row, targets_by_name) for row in rows]
        path.write_text("".join(json.dumps(row) + "\n" for row in new))
        linked = sum(f["role"] == "linked" for row in new for f in row["facts"])
        print(f"{path}: {len(new)} rows rescored, {linked} linked checks set apart")


if __name__ == "__main__":
    main()
