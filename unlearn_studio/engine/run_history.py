"""Past runs read back from their folders (``config.json``, ``metrics.jsonl``, ``report.json``), without a model.

Qt- and torch-free: the window's *Runs* panel and ``unlearn-studio runs`` both list and open runs with it.
A folder is a run when it holds ``report.json`` or ``config.json``; a run without a report (killed, or still
going) is listed as incomplete with the steps its ``metrics.jsonl`` kept.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from .paths import user_data_dir
from .runs import read_metrics

HEADLINE = ("target_p_known", "forget_accuracy", "entity_forget_accuracy", "retain_accuracy", "perplexity")
INCOMPLETE = "incomplete"


def runs_root() -> Path:
    """Where the window writes its runs: ``runs/`` in the user data folder."""
    return user_data_dir() / "runs"


@dataclass(frozen=True)
class RunSummary:
    """One row of the run list: what ran, on what, and its headline measures before and after."""

    path: str
    date: str  # local time the run started, "YYYY-MM-DD HH:MM:SS"
    method: str
    targets: list[str]
    steps: int
    stopped: str  # the trainer's reason, "cancelled", or "incomplete" (no report.json)
    started_from: str | None  # original | current; None for runs made before it was recorded
    model: str
    before: dict[str, float | None] = field(default_factory=dict)
    after: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def forget_measure(self) -> float | None:
        """The forget side of the forget-vs-retain plane: entity-dependent forget accuracy, else forget accuracy."""
        for key in ("entity_forget_accuracy", "forget_accuracy"):
            if self.after.get(key) is not None:
                return self.after[key]
        return None

    @property
    def label(self) -> str:
        return f"{Path(self.path).name}: {self.method} on {', '.join(self.targets)}"


@dataclass
class RunRecord:
    """Everything a finished (or interrupted) run left behind, as plain data for the plots and the fact table."""

    summary: RunSummary
    report: dict[str, Any]
    steps: list[dict[str, Any]]

    def p_known_curves(self) -> dict[str, tuple[list[int], list[float]]]:
        """Per target: the steps (0 = the original weights) and its P(known) on held-out prompts."""
        return _p_known_curves(self.report, self.steps)

    def trajectories(self) -> dict[str, list[tuple[float, float]]]:
        """Per target: its point on the run's 2-D map, from the original weights to the last step."""
        return {name: [(float(s["point"][0]), float(s["point"][1])) for _, s in states]
                for name, states in _target_states(self.report, self.steps).items()}


def _target_states(report: dict[str, Any], steps: list[dict[str, Any]]) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """Per target, (step, state) pairs: the original weights' state (step 0), then one per logged step."""
    states: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for name, state in (report.get("initial") or {}).items():
        states.setdefault(name, []).append((0, state))
    for row in steps:
        for name, state in row.get("targets", {}).items():
            states.setdefault(name, []).append((int(row["step"]), state))
    return states


def _p_known_curves(report: dict[str, Any], steps: list[dict[str, Any]]) -> dict[str, tuple[list[int], list[float]]]:
    return {name: ([step for step, _ in states], [float(s["p_known"]) for _, s in states])
            for name, states in _target_states(report, steps).items()}


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_run_folder(folder: Path) -> bool:
    return (folder / "report.json").is_file() or (folder / "config.json").is_file()


def _started_at(folder: Path) -> str:
    """The stamp of the window's folder names (YYYYmmdd-HHMMSS-method), else when config.json was written."""
    stamp = re.match(r"(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})", folder.name)
    if stamp:
        year, month, day, hour, minute, second = stamp.groups()
        return f"{year}-{month}-{day} {hour}:{minute}:{second}"
    for name in ("config.json", "metrics.jsonl", "report.json"):
        path = folder / name
        if path.is_file():
            return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(path.stat().st_mtime))
    return ""


def _headline(measures: dict[str, Any] | None) -> dict[str, float | None]:
    measures = measures or {}
    return {key: measures.get(key) for key in HEADLINE if key in measures}


def summarise(folder: Path, report: dict[str, Any] | None, steps: list[dict[str, Any]]) -> RunSummary:
    config = _read_json(folder / "config.json") or {}
    request = config.get("request", {})
    source = report or {}
    targets = source.get("targets") or request.get("targets") or []
    method = source.get("method") or request.get("config", {}).get("method") or "?"
    before, after = _headline(source.get("before")), _headline(source.get("after"))
    curves = _p_known_curves(source, steps)
    if curves and "target_p_known" not in before:  # not measured before/after: the live P(known) of the targets
        firsts = [values[0] for _, values in curves.values() if values]
        lasts = [values[-1] for _, values in curves.values() if values]
        if firsts:
            before["target_p_known"], after["target_p_known"] = sum(firsts) / len(firsts), sum(lasts) / len(lasts)
    model = source.get("model") or config.get("session", {}).get("model", {}).get("name") or ""
    return RunSummary(path=str(folder), date=_started_at(folder), method=str(method), targets=list(targets),
                      steps=int(source.get("steps", len(steps))), stopped=str(source.get("stopped", INCOMPLETE)),
                      started_from=source.get("started_from"), model=str(model), before=before, after=after)


def load_run(folder: str | Path) -> RunRecord:
    """Read one run folder; a folder that is not a run is a clear error."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise UserError(f"{path} is not a folder: give a run folder (it holds report.json and metrics.jsonl).")
    if not is_run_folder(path):
        raise UserError(f"{path} is not a run folder: it has neither report.json nor config.json. "
                        "Give a folder written by a run (the window's runs/ folder, or unlearn --out).")
    report = _read_json(path / "report.json")
    if (path / "report.json").is_file() and report is None:
        raise UserError(f"{path / 'report.json'} is damaged (not a JSON object): the run's metrics.jsonl may still be read.")
    steps = read_metrics(path)
    return RunRecord(summarise(path, report, steps), report or {}, steps)


def run_folders(roots: Iterable[str | Path]) -> list[Path]:
    """Each root that is a run folder itself, and the run folders directly inside the others."""
    found: list[Path] = []
    for root in roots:
        path = Path(root).expanduser()
        if not path.is_dir():
            continue
        candidates = [path] if is_run_folder(path) else sorted(p for p in path.iterdir() if p.is_dir())
        found += [p for p in candidates if is_run_folder(p) and p.resolve() not in {f.resolve() for f in found}]
    return found


def list_runs(roots: Sequence[str | Path] | None = None) -> list[RunSummary]:
    """Every readable run under ``roots`` (default: the user data folder's runs/), newest first."""
    summaries = []
    for folder in run_folders(roots if roots is not None else [runs_root()]):
        report = _read_json(folder / "report.json")
        if (folder / "report.json").is_file() and report is None:
            continue  # a damaged report: left out of the list (opening it says why)
        summaries.append(summarise(folder, report, read_metrics(folder)))
    return sorted(summaries, key=lambda s: (s.date, s.path), reverse=True)
