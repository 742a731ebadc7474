"""The Pareto benchmark's choice of each method's learning rate: the lowest forget within the retain budget."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from pareto import best_per_method, points  # noqa: E402


def _row(method: str, lr: float, target: str, forget: float, retain_after: float, retain_before: float = 0.80) -> dict:
    measures = {"forget_accuracy": forget, "retain_accuracy": retain_after, "neighbour_retain_accuracy": None,
                "perplexity": 30.0, "target_p_known": 0.1}
    return {"method": method, "lr": lr, "target": target, "steps": 60, "after": measures,
            "before": {**measures, "retain_accuracy": retain_before, "forget_accuracy": 0.9}}


def test_each_method_takes_its_lowest_forget_within_the_budget():
    rows = [_row("npo", 1e-5, "A", 0.50, 0.79), _row("npo", 1e-5, "B", 0.40, 0.79),   # −1 point, forget 0.45
            _row("npo", 3e-5, "A", 0.20, 0.78), _row("npo", 3e-5, "B", 0.30, 0.76),   # −3 points, forget 0.25
            _row("npo", 9e-5, "A", 0.00, 0.60), _row("npo", 9e-5, "B", 0.00, 0.70),   # −15 points: over budget
            _row("rmu", 1e-5, "A", 0.30, 0.70), _row("rmu", 3e-5, "A", 0.10, 0.60)]   # both over: the gentler one
    chosen = best_per_method(rows, budget=3.0)
    assert chosen["npo"]["lr"] == 3e-5 and abs(chosen["npo"]["forget_accuracy"] - 0.25) < 1e-9
    assert abs(chosen["npo"]["retain_drop_points"] + 3.0) < 1e-9
    assert chosen["rmu"]["lr"] == 1e-5
    assert {(p["method"], p["lr"]): p["targets"] for p in points(rows)}[("npo", 9e-5)] == 2


def test_a_learning_rate_left_unfinished_on_some_targets_is_not_chosen():
    rows = [_row("npo", 1e-5, "A", 0.50, 0.79), _row("npo", 1e-5, "B", 0.40, 0.79),
            _row("npo", 3e-5, "A", 0.00, 0.80)]  # the sweep was cut before npo 3e-5 ran on B
    assert best_per_method(rows, budget=3.0)["npo"]["lr"] == 1e-5
