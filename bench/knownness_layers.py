"""Where does the model know an entity? Known-ness probes on the residual stream of every few layers (issue 12, item 11).

    python bench/knownness_layers.py      # the demo model; writes bench/results/knownness_layers.json

bench/knownness.py measures the application's probe (SAE codes at the SAE's layer). This asks whether another
layer would do better, before anyone trains a second SAE there: a logistic probe on the raw residual at the
entity's last token, per layer, fitted on the application's references (K vs the 80 real unknowns, *train*
templates), its L2 weight chosen by entity-grouped 5-fold cross-validation *within the references*, then scored on
the held-out real entities (*eval* templates) against "the model answers ≥ 2 facts". The layer a user should pick
is the one the cross-validation picks; the held-out AUROC of every layer is printed beside it for the record.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch
from common import ROOT
from knownness import auroc, held_out_with_labels

from unlearn_studio.engine.latents import entity_batch
from unlearn_studio.engine.probe import fit_probe

RESULTS = ROOT / "bench" / "results" / "knownness_layers.json"
L2_CHOICES = (1e-2, 10.0, 1000.0)
FOLDS = 5


def last_token_residuals(session, entities, templates, layers: list[int]) -> dict[int, list[torch.Tensor]]:
    """Per layer, per entity: the residual after that layer at the name's last token, one row per template."""
    batch, owners = entity_batch(session.tokenizer, entities, templates)
    pieces: dict[int, list[torch.Tensor]] = {layer: [] for layer in layers}
    for start in range(0, len(batch), 64):
        rows = batch.rows(slice(start, start + 64))
        with torch.no_grad():
            hidden = session.model(input_ids=rows.input_ids, attention_mask=rows.attention_mask,
                                   output_hidden_states=True).hidden_states
        index = torch.arange(len(rows))
        for layer in layers:
            pieces[layer].append(hidden[layer + 1][index, rows.last_entity_pos].float())
    owner = torch.tensor(owners)
    return {layer: [torch.cat(p)[owner == i] for i in range(len(entities))] for layer, p in pieces.items()}


def _fit(items: list[tuple[torch.Tensor, int]], l2: float):  # noqa: ANN202 - a LogisticProbe
    features = torch.cat([codes for codes, _ in items])
    labels = torch.cat([torch.full((len(codes),), float(label)) for codes, label in items])
    return fit_probe(features, labels, l2=l2)


def grouped_cv_auroc(items: list[tuple[torch.Tensor, int]], l2: float) -> float:
    """AUROC of entity-mean P(known) over 5 folds that never split an entity's prompts."""
    order = list(range(len(items)))
    random.Random(0).shuffle(order)
    scores, labels = [], []
    for fold in range(FOLDS):
        held = set(order[fold::FOLDS])
        probe = _fit([items[i] for i in order if i not in held], l2)
        for i in held:
            scores.append(float(probe.p_known(items[i][0]).mean()))
            labels.append(bool(items[i][1]))
    return auroc(scores, labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, nargs="+", default=[3, 6, 9, 12, 15, 18, 21, 24, 27, 29])
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    from unlearn_studio.engine.pipeline import ModelSpec, load_session

    started = time.perf_counter()
    session = load_session(ModelSpec())
    held_out, answered = held_out_with_labels(session)
    known, unknown = session.reference_entities([])
    templates = session.entity_data()[2]
    known_x = last_token_residuals(session, known, templates.train, args.layers)
    unknown_x = last_token_residuals(session, unknown, templates.train, args.layers)
    held_x = last_token_residuals(session, held_out, templates.eval, args.layers)
    rows = []
    for layer in args.layers:
        items = [(x, 1) for x in known_x[layer]] + [(x, 0) for x in unknown_x[layer]]
        cv = {l2: grouped_cv_auroc(items, l2) for l2 in L2_CHOICES}
        l2 = max(cv, key=cv.get)
        probe = _fit(items, l2)
        held = auroc([float(probe.p_known(x).mean()) for x in held_x[layer]], answered)
        rows.append({"layer": layer, "l2": l2, "cv_auroc": cv[l2], "held_out_auroc": held})
    chosen = max(rows, key=lambda r: r["cv_auroc"])
    result = {"held_out": len(held_out), "answered": sum(answered), "known_references": len(known),
              "unknown_references": len(unknown), "chosen_by_cv": chosen["layer"], "sae_layer": session.hook.layer,
              "seconds": round(time.perf_counter() - started), "provenance": session.provenance(), "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"{len(held_out)} held-out real entities, {sum(answered)} answered; the SAE sits after layer {session.hook.layer}")
    print("| layer | L2 (by CV) | CV AUROC (references) | held-out AUROC |")
    print("|---|---|---|---|")
    for row in rows:
        mark = " (chosen by CV)" if row is chosen else ""
        print(f"| {row['layer']}{mark} | {row['l2']:g} | {row['cv_auroc']:.3f} | {row['held_out_auroc']:.3f} |")


if __name__ == "__main__":
    main()
