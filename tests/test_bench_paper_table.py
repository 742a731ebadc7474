"""bench/paper_table.py's retain-by-form table: a steady headline can hide a form that falls."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from paper_table import retain_by_form  # noqa: E402


def _row(method: str, target: str, before: dict, after: dict) -> dict:
    return {"setting": "s", "method": method, "lr": 1e-5, "target": target,
            "before": {"retain_accuracy_by_form": before}, "after": {"retain_accuracy_by_form": after}}


def test_each_form_gets_its_mean_change_in_points():
    rows = [_row("sae-align", "A", {"completion": 0.8, "role_play": 0.4}, {"completion": 0.7, "role_play": 0.7}),
            _row("sae-align", "B", {"completion": 0.8, "role_play": 0.4}, {"completion": 0.8, "role_play": 0.5}),
            _row("npo", "A", {"completion": 0.8, "role_play": 0.4}, {"completion": 0.8, "role_play": 0.4})]
    lines = retain_by_form(rows).splitlines()
    assert lines[0] == "| setting | method | lr | targets | completion | role play |"
    assert lines[2] == "| s | sae-align | 1e-05 | 2 | -5.0 | +20.0 |"
    assert lines[3] == "| s | npo | 1e-05 | 1 | +0.0 | +0.0 |"


def test_rows_without_forms_are_left_out():
    rows = [_row("sae-align", "A", {}, {}), _row("npo", "A", {"chat": 0.5}, {"chat": 0.25})]
    assert retain_by_form(rows).splitlines()[2:] == ["| s | npo | 1e-05 | 1 | -25.0 |"]
