"""Run folders: ``config.json``, ``metrics.jsonl`` (flushed every step), ``report.json``, ``report.html``, ``model/``.

A crash or cancel leaves ``metrics.jsonl`` valid up to the last finished step.
Model saves go to a temporary folder renamed when complete, and never overwrite.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..errors import UserError
from .events import StepProgress


class SaveError(UserError):
    """A save that was refused or failed; nothing existing was changed."""


def new_folder_path(parent: Path, stem: str) -> Path:
    """``parent/stem``, or ``stem-2``, ``stem-3`` … when taken."""
    candidate, index = parent / stem, 2
    while candidate.exists():
        candidate, index = parent / f"{stem}-{index}", index + 1
    return candidate


def atomic_write_text(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)


def save_model_folder(model, tokenizer, destination: Path, *, protected: Path | None = None) -> Path:
    """Save weights (safetensors) and tokenizer into a NEW folder; a failed save leaves nothing behind."""
    destination = Path(destination).expanduser().resolve()
    if destination.exists():
        raise SaveError(f"{destination} already exists: choose a new folder name (saves never overwrite).")
    if protected is not None:
        guarded = Path(protected).expanduser().resolve()
        if destination == guarded or guarded in destination.parents:
            raise SaveError(f"{destination} is inside the loaded model's folder {guarded}: save somewhere else.")
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{destination.name}.partial-", dir=destination.parent))
    try:
        model.save_pretrained(str(partial), safe_serialization=True)
        tokenizer.save_pretrained(str(partial))
        partial.chmod(0o755)
        partial.rename(destination)
    except OSError as error:
        shutil.rmtree(partial, ignore_errors=True)
        raise SaveError(f"saving to {destination} failed ({error.strerror or error}); the partial save was removed. "
                        "Free some disk space or choose another folder.") from error
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return destination


class RunFolder:
    """Writes one run's folder as the run goes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if self.path.exists() and any(self.path.iterdir()):
            raise SaveError(f"the run folder {self.path} is not empty: choose a new folder (runs never overwrite).")
        self.path.mkdir(parents=True, exist_ok=True)
        self._metrics = open(self.path / "metrics.jsonl", "a", encoding="utf-8")

    def write_config(self, config: dict[str, Any]) -> None:
        atomic_write_text(self.path / "config.json", json.dumps(config, indent=2))

    def append_step(self, event: StepProgress) -> None:
        self._metrics.write(json.dumps(event.to_dict()) + "\n")
        self._metrics.flush()
        os.fsync(self._metrics.fileno())

    def write_report(self, report: dict[str, Any]) -> None:
        atomic_write_text(self.path / "report.json", json.dumps(report, indent=2))
        atomic_write_text(self.path / "report.html", render_report_html(report, read_metrics(self.path)))

    def close(self) -> None:
        if not self._metrics.closed:
            self._metrics.close()


def read_metrics(folder: Path) -> list[dict[str, Any]]:
    """The steps in ``metrics.jsonl``; a torn last line (a killed process) is ignored."""
    rows = []
    path = Path(folder) / "metrics.jsonl"
    if not path.exists():
        return rows
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


# ---- report.html: inline SVG, no scripts, readable offline -------------------------------------------------

COLOURS = ["#d62728", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


def _svg_frame(title: str, width: int = 420, height: int = 280) -> list[str]:
    return [f'<figure><figcaption>{html.escape(title)}</figcaption>',
            f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
            f'<rect width="{width}" height="{height}" fill="#fff" stroke="#ccc"/>']


def _scaler(values: list[float], lo_px: float, hi_px: float):  # noqa: ANN202 - a function
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    span = (hi - lo) or 1.0
    return lambda v: lo_px + (v - lo) / span * (hi_px - lo_px)


def _map_svg(report: dict[str, Any], steps: list[dict[str, Any]]) -> str:
    refs = report.get("reference_points", {})
    known, unknown = refs.get("known", []), refs.get("unknown", [])
    initial = report.get("initial", {})
    trajectories = {name: ([initial[name]["point"]] if name in initial else []) + [s["targets"][name]["point"] for s in steps if name in s["targets"]]
                    for name in report.get("targets", [])}
    xs = [p[0] for p in known + unknown] + [p[0] for t in trajectories.values() for p in t]
    ys = [p[1] for p in known + unknown] + [p[1] for t in trajectories.values() for p in t]
    sx, sy = _scaler(xs, 20, 400), _scaler(ys, 260, 20)
    out = _svg_frame("2-D map: x = direction μ_K − μ_U, y = first orthogonal principal component")
    out += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="#1f77b4" opacity="0.5"/>' for x, y in known]
    out += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="#2ca02c" opacity="0.5"/>' for x, y in unknown]
    for index, (name, points) in enumerate(trajectories.items()):
        colour = COLOURS[index % len(COLOURS)]
        if points:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
            out.append(f'<circle cx="{sx(points[-1][0]):.1f}" cy="{sy(points[-1][1]):.1f}" r="6" fill="{colour}"><title>{html.escape(name)}</title></circle>')
    out.append('<text x="24" y="16" font-size="11" fill="#1f77b4">● known</text><text x="90" y="16" font-size="11" fill="#2ca02c">● unknown</text>')
    return "\n".join(out + ["</svg></figure>"])


def _curves_svg(title: str, series: dict[str, list[float]], threshold: float | None = None) -> str:
    values = [v for s in series.values() for v in s] + ([threshold] if threshold is not None else [])
    longest = max((len(s) for s in series.values()), default=1)
    sx, sy = _scaler(list(range(1, longest + 1)), 30, 410), _scaler(values or [0, 1], 260, 20)
    out = _svg_frame(title)
    if threshold is not None:
        out.append(f'<line x1="30" x2="410" y1="{sy(threshold):.1f}" y2="{sy(threshold):.1f}" stroke="#999" stroke-dasharray="4"/>')
    for index, (name, ys) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        path = " ".join(f"{sx(i + 1):.1f},{sy(v):.1f}" for i, v in enumerate(ys))
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"><title>{html.escape(name)}</title></polyline>')
        out.append(f'<text x="34" y="{16 + 12 * index}" font-size="11" fill="{colour}">{html.escape(name)}</text>')
    return "\n".join(out + ["</svg></figure>"])


def _format(value: Any) -> str:
    if value is None:
        return "not measured"
    return f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))


def render_report_html(report: dict[str, Any], steps: list[dict[str, Any]]) -> str:
    before, after = report.get("before", {}), report.get("after", {})
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{_format(before.get(k))}</td><td>{_format(after.get(k))}</td></tr>"
                   for k in before)
    losses: dict[str, list[float]] = {}
    for step in steps:
        for name, value in step["losses"].items():
            losses.setdefault(name, []).append(value)
    p_known = {name: [s["targets"][name]["p_known"] for s in steps if name in s["targets"]] for name in report.get("targets", [])}
    facts = "".join(
        f"<tr><td>{html.escape(f['entity'])}</td><td>{html.escape(f['form'])}</td><td>{html.escape(f['prompt'])}</td>"
        f"<td>{html.escape(f['before'])}</td><td>{'✔' if f['before_correct'] else '✘'}</td>"
        f"<td>{html.escape(f['after'])}</td><td>{'✔' if f['after_correct'] else '✘'}</td></tr>"
        for f in report.get("fact_table", []))
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Unlearn Studio run: {html.escape(', '.join(report.get('targets', [])))}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1300px}} figure{{display:inline-block;margin:0 1em 1em 0}}
table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:3px 8px;font-size:13px}}</style></head><body>
<h1>Unlearning run: {html.escape(', '.join(report.get('targets', [])))}</h1>
<p>Method <b>{html.escape(str(report.get('method')))}</b>, {report.get('steps')} steps in {report.get('seconds', 0):.1f} s
({html.escape(str(report.get('stopped', '')))}). Model {html.escape(str(report.get('model', '')))}.</p>
{_map_svg(report, steps)}
{_curves_svg("P(known) of each target (held-out prompts); dashed: 0.5", p_known, 0.5)}
{_curves_svg("Loss terms per step", losses)}
<h2>Before and after</h2><table><tr><th>measure</th><th>before</th><th>after</th></tr>{rows}</table>
<h2>Facts</h2><table><tr><th>entity</th><th>form</th><th>prompt</th><th>before</th><th></th><th>after</th><th></th></tr>{facts}</table>
</body></html>"""
