"""The studio's engine parts on a tiny model: the shipped demo cache (and its key), suggested targets,
where a second run starts from, run history, and the CLI's ``runs`` and ``--facts`` selection."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from tests.engine_helpers import events_of, tiny_request, tiny_session
from unlearn_studio.cli import main
from unlearn_studio.engine import demo_cache
from unlearn_studio.engine.events import Finished
from unlearn_studio.engine.knownness import KNOWN, UNKNOWN, EntityStatus
from unlearn_studio.engine.run_history import INCOMPLETE, list_runs, load_run
from unlearn_studio.engine.suggestions import suggested_targets
from unlearn_studio.errors import UserError


@pytest.fixture(scope="module")
def session(tiny_model_dir, tiny_sae_dir):
    return tiny_session(tiny_model_dir, tiny_sae_dir)


def fake_statuses(session, known: int = 20, unknown: int = 20) -> list[EntityStatus]:
    """Pretend the model knows the first ``known`` reference candidates (no split; 3 facts right) and the retain
    split, and not the first ``unknown`` fictitious ones."""
    candidates, fictitious, _ = session.entity_data()
    references = [e.name for e in candidates if e.split is None][:known]
    rows = [EntityStatus(e.name, e.type, "candidate", 3, max(3, len(e.facts)),
                         KNOWN if e.name in references or e.split == "retain" else "excluded") for e in candidates]
    rows += [EntityStatus(e.name, e.type, "fictitious", 0, len(e.facts), UNKNOWN if i < unknown else "excluded")
             for i, e in enumerate(fictitious)]
    return rows


def ship(folder: Path, session, statuses, *, data_key: str | None = None, doctor: float | None = None):
    """Write a demo cache for ``session`` under ``folder``; ``doctor`` sets μ_K to a marker value."""
    session._statuses = statuses
    known, unknown = session.reference_entities([])
    refs = session.references(known, unknown)
    if doctor is not None:
        refs = type(refs)(**{**refs.__dict__, "mu_known": torch.full_like(refs.mu_known, doctor)})
    key = session.shipped_cache_key()
    if data_key is not None:
        key = demo_cache.CacheKey(key.model_fingerprint, key.sae_fingerprint, data_key)
    demo_cache.write_cache(folder, key, statuses, {session.references_key(known, unknown): refs})
    return known, unknown


def fresh(session):
    """The same loaded model with empty in-memory caches (a new start)."""
    session._statuses = None
    session._references = {}
    return session


def test_shipped_cache_is_used_only_when_its_key_matches(session, tmp_path, monkeypatch, isolated_data_dir):
    folder = tmp_path / "demo_cache"
    monkeypatch.setattr(demo_cache, "cache_folder", lambda: folder)
    statuses = fake_statuses(session)
    known, unknown = ship(folder, session, statuses, doctor=7.0)
    for path in (isolated_data_dir / "cache").rglob("*.safetensors"):
        path.unlink()  # only the shipped copy is left
    fresh(session)
    assert [s.status for s in session.cached_statuses()] == [s.status for s in statuses]
    assert torch.all(session.references(known, unknown).mu_known == 7.0)  # the shipped (doctored) statistics
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert size < 2_000_000

    # The entity data changed since the cache was built: the shipped files are ignored, silently.
    ship(folder, session, statuses, data_key="some-older-data", doctor=7.0)
    for path in (isolated_data_dir / "cache").rglob("*.safetensors"):
        path.unlink()
    fresh(session)
    assert session.cached_statuses() is None
    session._statuses = statuses  # as a classification would give
    assert not torch.all(session.references(known, unknown).mu_known == 7.0)  # computed, not the shipped copy
    (folder / "manifest.json").write_text("{damaged")
    fresh(session)
    assert session.cached_statuses() is None


def test_suggested_targets_one_per_type_above_the_thresholds():
    statuses = [EntityStatus("A", "person", "candidate", 4, 4, KNOWN), EntityStatus("B", "person", "candidate", 3, 3, KNOWN),
                EntityStatus("C", "place", "candidate", 2, 2, KNOWN), EntityStatus("D", "place", "candidate", 3, 4, KNOWN),
                EntityStatus("E", "work", "candidate", 4, 4, KNOWN), EntityStatus("F", "work", "candidate", 4, 4, "excluded"),
                EntityStatus("G", "organisation", "candidate", 3, 3, KNOWN),
                EntityStatus("H", "organisation", "lesser_known", 4, 4, KNOWN)]
    # G: outside the reference sample; H: a known reference, but not of the well-known list a walkthrough uses
    p_known = {"A": 0.95, "B": 0.99, "C": 0.99, "D": 0.91, "E": 0.89, "F": 0.99, "H": 0.99}
    found = suggested_targets(statuses, list(p_known), list(p_known.values()))
    assert [(s.name, s.type) for s in found] == [("B", "person"), ("D", "place")]
    assert found[0].p_known == pytest.approx(0.99) and (found[1].correct, found[1].total) == (3, 4)


def test_a_second_run_starts_from_the_original_weights_unless_told(session, tmp_path):
    session.reset()
    first = events_of(session, tiny_request(session, names=("Port Zenthia Lighthouse",), steps=3))
    first_report = next(e for e in first if isinstance(e, Finished)).result.report
    assert first_report["started_from"] == "original" and session.is_modified()
    run_dir = tmp_path / "continued"
    events = events_of(session, _request(session, "current", run_dir))
    continued = next(e for e in events if isinstance(e, Finished)).result.report
    assert continued["started_from"] == "current"
    assert json.loads((run_dir / "report.json").read_text())["started_from"] == "current"
    # Continuing starts where the first run ended; starting over starts where the first run started.
    name = "Port Zenthia Lighthouse"
    assert continued["initial"][name]["point"] != first_report["initial"][name]["point"]
    again = next(e for e in events_of(session, _request(session, "original", None)) if isinstance(e, Finished)).result.report
    assert again["started_from"] == "original"
    assert again["initial"][name]["point"] == pytest.approx(first_report["initial"][name]["point"], abs=1e-4)
    with pytest.raises(UserError):
        list(session._unlearn(_request(session, "somewhere", None), None))
    session.reset()


def _request(session, start_from: str, run_dir):
    request = tiny_request(session, names=("Port Zenthia Lighthouse",), steps=1, run_dir=run_dir)
    request.start_from = start_from
    return request


def make_runs(session, root: Path) -> list[Path]:
    """Two finished runs (one measured before/after) and one that was killed before its report."""
    session.reset()
    measured, plain, killed = root / "20260101-100000-sae-align", root / "20260101-110000-sae-align", root / "killed"
    for name, steps, folder, evaluate in (("Eiffel Tower", 2, measured, True), ("Port Zenthia Lighthouse", 3, plain, False)):
        last = events_of(session, tiny_request(session, names=(name,), steps=steps, run_dir=folder, evaluate=evaluate))[-1]
        assert isinstance(last, Finished), last
        session.reset()
    killed.mkdir()
    (killed / "config.json").write_text(json.dumps({"request": {"targets": ["X"], "config": {"method": "npo"}}}))
    lines = (plain / "metrics.jsonl").read_text().splitlines()
    (killed / "metrics.jsonl").write_text(lines[0] + "\n" + lines[1][:20])  # a torn last line
    return [measured, plain, killed]


@pytest.fixture(scope="module")
def made_runs(session, tmp_path_factory) -> list[Path]:
    return make_runs(session, tmp_path_factory.mktemp("made") / "runs")


def copy_runs(runs: list[Path], root: Path) -> list[Path]:
    """Copies of the made runs under ``root`` (the same folder names)."""
    root.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copytree(run, root / run.name)) for run in runs]


def test_run_history_reads_every_kind_of_run_folder(made_runs, tmp_path):
    measured, plain, killed = copy_runs(made_runs, tmp_path / "runs")
    (tmp_path / "runs" / "not-a-run").mkdir()
    summaries = {Path(s.path).name: s for s in list_runs([tmp_path / "runs"])}
    assert set(summaries) == {measured.name, plain.name, killed.name}
    report = json.loads((measured / "report.json").read_text())
    first = summaries[measured.name]
    assert (first.method, first.targets, first.steps, first.started_from) == ("sae-align", ["Eiffel Tower"], 2, "original")
    assert first.date == "2026-01-01 10:00:00"  # the folder's stamp, not when it was copied here
    assert first.before["target_p_known"] == report["before"]["target_p_known"]
    assert first.after["retain_accuracy"] == report["after"]["retain_accuracy"]
    second = summaries[plain.name]  # not measured: P(known) from the live curve (original weights → last step)
    metrics = [json.loads(line) for line in (plain / "metrics.jsonl").read_text().splitlines()]
    expected_after = metrics[-1]["targets"]["Port Zenthia Lighthouse"]["p_known"]
    assert second.after["target_p_known"] == pytest.approx(expected_after) and second.forget_measure is None
    third = summaries[killed.name]
    assert (third.stopped, third.method, third.targets, third.steps) == (INCOMPLETE, "npo", ["X"], 1)
    record = load_run(plain)
    steps, values = record.p_known_curves()["Port Zenthia Lighthouse"]
    assert steps == [0, 1, 2, 3] and values[-1] == pytest.approx(expected_after)
    assert len(record.trajectories()["Port Zenthia Lighthouse"]) == 4
    with pytest.raises(UserError, match="not a run folder"):
        load_run(tmp_path / "runs" / "not-a-run")
    assert [Path(s.path).name for s in list_runs([plain])] == [plain.name]  # a run folder given itself


def test_cli_runs_lists_runs_as_json(made_runs, tmp_path, isolated_data_dir, capsys):
    from unlearn_studio.engine.run_history import runs_root

    mine = copy_runs(made_runs, runs_root())
    other = copy_runs(made_runs[:1], tmp_path / "elsewhere")
    assert main(["runs", "--json", str(other[0])]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert isinstance(listed, list) and {row["path"] for row in listed} == {str(p) for p in [*mine, *other]}
    row = next(r for r in listed if r["path"] == str(mine[0]))
    assert row["method"] == "sae-align" and row["targets"] == ["Eiffel Tower"] and row["steps"] == 2
    assert set(row) >= {"date", "before", "after", "stopped", "started_from"}
    assert main(["runs"]) == 0
    table = capsys.readouterr().out
    assert "Eiffel Tower" in table and str(mine[1]) in table


FACTS = [{"entity": name, "type": "place", "facts": [{"prompt": f"{name} is in the city of", "answers": ["Paris"]}]}
         for name in ("Port Zenthia Lighthouse", "Velmora Quay", "Ostrava Gate")]


def _unlearn(tiny_model_dir, tiny_sae_dir, out: Path, facts: Path, *extra: str) -> list[str]:
    assert main(["--quiet", "unlearn", "--model", str(tiny_model_dir), "--sae", str(tiny_sae_dir), "--steps", "1",
                 "--no-verify", "--no-early-stop", "--facts", str(facts), "--out", str(out), *extra]) == 0
    return json.loads((out / "report.json").read_text())["targets"]


def test_cli_facts_file_supplies_facts_for_the_named_targets_only(tiny_model_dir, tiny_sae_dir, tmp_path, capsys):
    import argparse

    from unlearn_studio.cli_commands import facts_for_targets

    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps(FACTS))
    assert _unlearn(tiny_model_dir, tiny_sae_dir, tmp_path / "one", facts, "--target", "Velmora Quay") == ["Velmora Quay"]
    assert "using 1 of 3 entries (Velmora Quay); 2 other entries ignored" in capsys.readouterr().err
    everyone = sorted(e["entity"] for e in FACTS)
    for extra in ({"target": ["Velmora Quay"], "all_targets_in_file": True}, {"target": None}):
        args = argparse.Namespace(facts=str(facts), **{"all_targets_in_file": False, **extra})
        assert sorted(e.name for e in facts_for_targets(args)) == everyone
        assert "using 3 of 3 entries" in capsys.readouterr().err
    from unlearn_studio.cli import build_parser

    parsed = build_parser().parse_args(["unlearn", "--demo", "--target", "X", "--facts", str(facts), "--out", "o",
                                        "--all-targets-in-file"])
    assert parsed.all_targets_in_file is True
    args = argparse.Namespace(facts=str(facts), target=["Somewhere Else"], all_targets_in_file=False)
    assert facts_for_targets(args) == [] and "using 0 of 3 entries; 3 other" in capsys.readouterr().err


def test_the_data_key_follows_what_classification_asks_and_nothing_else(session):
    """Rewriting a check's question or paraphrase keeps the caches; a new completion prompt or answer does not."""
    from dataclasses import replace

    saved = session.entity_data()
    candidates, fictitious, templates = saved
    first = candidates[0]
    fact = first.facts[0]

    def key_with(fact_now) -> str:
        session._entity_data = ([replace(first, facts=(fact_now, *first.facts[1:])), *candidates[1:]], fictitious, templates)
        try:
            return session._data_key()
        finally:
            session._entity_data = saved

    key = session._data_key()
    assert key_with(replace(fact, question="A question no model was asked before?", paraphrases=("Another",))) == key
    assert key_with(replace(fact, prompt=fact.prompt + " (rewritten)")) != key
    assert key_with(replace(fact, answers=(*fact.answers, "a new alias"))) != key
