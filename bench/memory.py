"""Memory across repeated runs: 20 unlearning runs in one process (Reset + Start, as in the GUI).

    python bench/memory.py [--runs 20] [--steps 10]

Prints the resident memory after each run and the growth after the second run; writes bench/results/memory.json.
Target (issue 5): growth ≤ 10 % after the second run.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from unlearn_studio.engine.events import Failed  # noqa: E402
from unlearn_studio.engine.pipeline import ModelSpec, UnlearnRequest, load_session  # noqa: E402
from unlearn_studio.engine.trainer import TrainConfig  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    process = psutil.Process()
    session = load_session(ModelSpec())
    targets = session.resolve_targets(["Eiffel Tower"])
    rss = []
    started = time.perf_counter()
    for run in range(1, args.runs + 1):
        session.reset()
        request = UnlearnRequest(targets=targets, config=TrainConfig(steps=args.steps, early_stop=False), evaluate=False)
        for event in session.unlearn(request):
            if isinstance(event, Failed):
                raise SystemExit(event.error)
        gc.collect()
        rss.append(process.memory_info().rss / 2**30)
        print(f"run {run:2d}: RSS {rss[-1]:.3f} GB", flush=True)
    growth = (max(rss[2:]) - rss[1]) / rss[1] if len(rss) > 2 else 0.0
    result = {"runs": args.runs, "steps_per_run": args.steps, "rss_gb": rss, "rss_after_second_gb": rss[1],
              "max_rss_after_gb": max(rss[1:]), "growth_after_second_run": growth, "seconds": time.perf_counter() - started}
    out = ROOT / "bench" / "results" / "memory.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"growth after the second run: {growth * 100:.1f} % (target ≤ 10 %); written to {out}")


if __name__ == "__main__":
    main()
