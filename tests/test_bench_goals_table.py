"""bench/goals_table.py: issue 13's goals from recorded rows, with the name-given checks left out of one line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from goals_table import forget_without_name_given, goals_table  # noqa: E402


def _fact(prompt: str, answers: list[str], after: bool, form: str = "chat") -> dict:
    return {"entity": "China", "role": "forget", "form": form, "prompt": prompt, "answers": answers,
            "before_correct": True, "after_correct": after}


def _row(target: str, lens_mean: float, retain_after: float, facts: list[dict]) -> dict:
    measured = {"target_p_known": 0.01, "target_unknown_percentile": 40.0, "forget_accuracy": 0.5,
                "stand_in_accuracy": 0.02, "name_fidelity": 1.0, "name_fidelity_stand_ins": 0.8,
                "retain_accuracy": 0.70, "neighbour_retain_accuracy": 0.6, "perplexity": 28.5}
    return {"method": "sae-align", "setting": "default", "split": "eval", "target": target, "facts": facts,
            "provenance": {"commit": "abc"}, "before": {**measured, "perplexity": 27.72},
            "after": {**measured, "retain_accuracy": retain_after},
            "audit": {"per_target": {target: {"lens_rank_last_layer": {"current": {"mean": lens_mean}},
                                              "relearned_forget_headline": 0.05}}}}


def test_the_name_given_check_leaves_only_the_forget_line_it_belongs_to():
    facts = [_fact("What language is spoken in China?", ["Chinese", "Mandarin"], True),
             _fact("What is the capital of China?", ["Beijing"], False)]
    assert forget_without_name_given(_row("China", 30, 0.7, facts), "after") == 0.0
    assert forget_without_name_given(_row("China", 30, 0.7, facts), "before") == 1.0


def test_each_goal_is_judged_on_the_mean_or_on_every_target():
    rows = [_row("China", 500.0, 0.72, [_fact("What is the capital of China?", ["Beijing"], False)]),
            _row("Nike", 12.0, 0.64, [_fact("Where is Nike based?", ["Oregon"], True)])]
    lines = {line.split(" | ")[0].lstrip("| ").strip(): line for line in goals_table(rows).splitlines() if "|" in line}
    assert lines["last-layer lens rank of the answers (mean)"].endswith("| 500 | 12 | no |")  # Nike's 12 < 20
    assert lines["retain Δ, points"].endswith("| 2.0 | -6.0 | yes |")  # judged on the mean, −2.0 ≥ −3
    assert "-2.0 ± 5.7" in lines["retain Δ, points"]
    assert lines["perplexity ratio"].endswith("| 1.028 | 1.028 | no |")  # 28.5 / 27.72 > 1.02
    assert lines["name fidelity in chat"].endswith("| yes |")  # 1.0 ≥ the stand-ins' 0.8


def test_rows_without_an_audit_are_refused():
    with pytest.raises(SystemExit, match="audit"):
        goals_table([{"target": "China"}])


def test_a_target_measured_again_counts_once_with_its_later_row():
    earlier = _row("China", 500.0, 0.72, [_fact("What language is spoken in China?", ["Chinese"], True)])
    later = _row("China", 900.0, 0.72, [_fact("What is the largest city of China?", ["Shanghai"], False)])
    table = goals_table([earlier, _row("Nike", 40.0, 0.70, []), later])
    header = table.splitlines()[0]
    assert header.count("China") == 1 and "Nike" in header
    lens = next(line for line in table.splitlines() if line.startswith("| last-layer lens rank"))
    assert "| 900 |" in lens and "| 500 |" not in lens
