"""What the result benchmarks share: the demo session, the targets of a split, and one run as one result row.

Every row records the split it was measured on, the whole setting, and the provenance (version, commit, model and
SAE fingerprints), so a table can be rebuilt from rows alone (DESIGN.md §8).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from unlearn_studio.engine.audit import run_audit  # noqa: E402
from unlearn_studio.engine.events import Failed, Finished  # noqa: E402
from unlearn_studio.engine.pipeline import Session, UnlearnRequest  # noqa: E402
from unlearn_studio.engine.run_config import TrainConfig  # noqa: E402

SPLITS = ("tune", "eval")


def add_retain_argument(parser) -> None:  # noqa: ANN001 - an argparse parser
    parser.add_argument("--retain-eval-entities", type=int, metavar="N",
                        help="measure retain on the first N entities of the fixed retain set (default: all of them)")


def split_targets(session: Session, split: str) -> list[str]:
    """The candidates of ``split`` that the loaded model knows (known-ness is cached per model)."""
    status = {s.name: s.status for s in session.classify()}
    return [e.name for e in session.entity_data()[0] if e.split == split and status.get(e.name) == "known"]


def run_row(session: Session, setting: str, config: TrainConfig, target: str | list[str], split: str, befores: dict,
            retain_eval_entities: int | None = None, audit_relearn_steps: int | None = None) -> dict[str, Any]:
    """Reset, unlearn ``target`` (one name, or several in one run) with ``config``, measure before (cached per
    target) and after: one row.

    ``retain_eval_entities`` measures retain on the first that many of the fixed retain set (the same for every
    method and target), where the whole set does not fit the time; the row lists which. ``audit_relearn_steps``
    also audits the unlearned weights (`unlearn-studio audit`: logit-lens ranks, name fidelity, forget accuracy
    after that many relearning steps) before the reset, into the row's ``audit``.
    """
    names = [target] if isinstance(target, str) else list(target)
    target = ", ".join(names)
    session.reset()
    entities = session.resolve_targets(names)
    request = UnlearnRequest(targets=entities, config=config, before=befores.get(target),
                             retain_eval_entities=retain_eval_entities)
    started = time.perf_counter()
    for event in session.unlearn(request):
        if isinstance(event, Failed):
            raise SystemExit(f"{setting}/{target}: {event.error}\n{event.traceback_text}")
        if isinstance(event, Finished):
            report = event.result.report
            befores.setdefault(target, event.result.before)
            audit = None
            if audit_relearn_steps is not None:
                audit = run_audit(session, entities, relearn_steps=audit_relearn_steps).to_dict()
            session.reset()
            return {"setting": setting, "method": config.method, "lr": config.learning_rate, "steps": report["steps"],
                    "split": split, "target": target, "targets": names, "stopped": report["stopped"],
                    "seconds": round(time.perf_counter() - started, 1), "config": config.to_dict(),
                    "before": report["before"], "after": report["after"], "facts": report["fact_table"],
                    "retain_evaluation": report["retain_evaluation"], "neighbours": report["neighbours"],
                    "provenance": report["provenance"], **({"audit": audit} if audit else {})}
    raise SystemExit(f"{setting}/{target}: the run ended without a result")


def read_rows(paths: list[str]) -> list[dict]:
    rows: list[dict] = []
    for path in paths:
        text = Path(path).read_text()
        rows += json.loads(text)["rows"] if path.endswith(".json") else [json.loads(line) for line in text.splitlines() if line]
    return rows


def append_row(path: Path, row: dict) -> None:
    """Each row as it lands, so an interrupted sweep keeps what it measured (and --resume skips it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        handle.write(json.dumps(row) + "\n")


def summary_line(row: dict) -> str:
    b, a = row["before"], row["after"]

    def pair(key: str) -> str:
        return f"{b.get(key) if b.get(key) is None else round(b[key], 2)} → {a.get(key) if a.get(key) is None else round(a[key], 2)}"

    return (f"{row['setting']:>14s} {row['method']:>11s} lr {row['lr']:.0e} {row['target']:>20s}: steps {row['steps']:3d}"
            f"  P(known) {pair('target_p_known')}  forget {pair('forget_accuracy')}  retain {pair('retain_accuracy')}"
            f"  neighbours {pair('neighbour_retain_accuracy')}  ppl {pair('perplexity')}  ({row['seconds']} s)")
