"""Does P(known) predict knowledge? AUROC on real entities that never enter the references (issue 12, item 11).

    python bench/knownness.py            # the demo model; writes bench/results/knownness.json

The held-out set is the ``knownness_holdout`` third of resources/entities/lesser_known.json: real entities of
middling and low fame with ≥ 2 facts each, never references. Label: the model answers ≥ 2 of an entity's facts
(greedy, the known-ness check of DESIGN.md §3). Score: the probe's P(known) with θ0, mean over the *eval*
templates. Two probes side by side: the one the application uses (unknown references = real entities the model
does not answer) and one fitted against fictitious names only (what the unknown side used to be).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from common import ROOT

from unlearn_studio.engine.entities import HOLDOUT_SPLIT
from unlearn_studio.engine.knownness import MIN_CORRECT, UNKNOWN
from unlearn_studio.engine.target_state import measure_targets, prompt_batches

RESULTS = ROOT / "bench" / "results" / "knownness.json"
GOAL = 0.85


def auroc(scores: list[float], labels: list[bool]) -> float | None:
    """Probability that a random positive scores above a random negative (ties count half): Mann–Whitney U."""
    positives = [s for s, y in zip(scores, labels) if y]
    negatives = [s for s, y in zip(scores, labels) if not y]
    if not positives or not negatives:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def held_out_with_labels(session) -> tuple[list, list[bool]]:  # noqa: ANN001 - a pipeline Session
    """The known-ness hold-out (real entities never in the references) and whether the model answers ≥ 2 facts."""
    statuses = {s.name: s for s in session.classify()}
    held_out = [e for e in session.lesser_known() if e.split == HOLDOUT_SPLIT]
    return held_out, [statuses[e.name].correct >= MIN_CORRECT for e in held_out]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    from unlearn_studio.engine.pipeline import ModelSpec, load_session

    started = time.perf_counter()
    session = load_session(ModelSpec())
    statuses = {s.name: s for s in session.classify()}
    held_out, labels = held_out_with_labels(session)
    known, unknown = session.reference_entities([])
    fictitious = [e for e in session.entity_data()[1] if statuses[e.name].status == UNKNOWN][: len(unknown)]
    templates = session.entity_data()[2].eval
    batches = prompt_batches(session.tokenizer, held_out, templates)
    probes = {"real unknown references (the application's)": (known, unknown),
              "fictitious unknown references only": (known, fictitious)}
    rows = []
    for label, (k, u) in probes.items():
        refs = session.references(k, u)
        states = measure_targets(session.model, session.sae.sae, session.hook, refs, batches)
        scores = [states[e.name].p_known for e in held_out]
        value = auroc(scores, labels)
        rows.append({"probe": label, "known_references": len(k), "unknown_references": len(u),
                     "real_unknown_references": sum(statuses[e.name].reference == "lesser_known" for e in u),
                     "auroc": value, "mean_p_known_answered": statistics.mean(s for s, y in zip(scores, labels) if y),
                     "mean_p_known_not_answered": statistics.mean(s for s, y in zip(scores, labels) if not y),
                     "scores": {e.name: round(s, 4) for e, s in zip(held_out, scores)}})
    result = {"held_out": len(held_out), "answered": sum(labels), "goal": GOAL, "templates": "eval",
              "seconds": round(time.perf_counter() - started), "provenance": session.provenance(), "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"{len(held_out)} held-out real entities, {sum(labels)} answered (≥ {MIN_CORRECT} facts right)")
    print("| probe | K | U (real) | AUROC | mean P(known), answered | not answered |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['probe']} | {row['known_references']} | {row['unknown_references']} ({row['real_unknown_references']}) "
              f"| {row['auroc']:.3f} | {row['mean_p_known_answered']:.2f} | {row['mean_p_known_not_answered']:.2f} |")


if __name__ == "__main__":
    main()
