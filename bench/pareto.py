"""Fair baselines: every method swept over learning rates on the *tune* split, a forget-vs-retain Pareto plot.

    python bench/pareto.py                                   # all methods, 3 learning rates each, tune split
    python bench/pareto.py --methods rmu npo --lr-factors 0.3 1 3 --resume
    python bench/pareto.py --plot-only                       # redraw docs/img/pareto.png from the rows
    python bench/pareto.py --merge a.rows.jsonl b.rows.jsonl # rows of sweeps run side by side → pareto.json + plot

Each (method, learning rate, target) is one row of bench/results/pareto.json (a list), written as it lands.
The best learning rate of each method is the one with the lowest forget accuracy whose mean retain drop is
within the budget (3 points): `bench/paper_table.py --from-pareto` then measures exactly those on *eval*.
Same targets, same trainable parameters, same 60-step budget for every method (DESIGN.md §8).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from common import ROOT, SPLITS, add_retain_argument, append_row, read_rows, run_row, split_targets, summary_line

from unlearn_studio.engine.methods import METHODS
from unlearn_studio.engine.run_config import TrainConfig

RETAIN_BUDGET_POINTS = 3.0
RESULTS = ROOT / "bench" / "results" / "pareto.json"
PLOT = ROOT / "docs" / "img" / "pareto.png"
MEASURES = ("forget_accuracy", "retain_accuracy", "neighbour_retain_accuracy", "perplexity", "target_p_known")


def flat_row(row: dict) -> dict:
    """A row of pareto.json: the setting, the after-measures at the top, the before-measures and provenance."""
    return {**{k: row[k] for k in ("method", "lr", "steps", "split", "target")},
            **{m: row["after"].get(m) for m in MEASURES},
            "before": {m: row["before"].get(m) for m in MEASURES}, "retain_evaluation": row.get("retain_evaluation"),
            "config": row["config"], "provenance": row["provenance"]}


def points(rows: list[dict]) -> list[dict]:
    """One point per (method, lr): the means over targets of the after-values and of the retain drop."""
    groups: dict[tuple[str, float], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["method"], row["lr"]), []).append(row)
    result = []
    for (method, lr), group in sorted(groups.items()):
        point = {"method": method, "lr": lr, "targets": len(group), "steps": sorted({r["steps"] for r in group})}
        for key in MEASURES:
            values = [r["after"][key] for r in group if r["after"].get(key) is not None]
            point[key] = statistics.mean(values) if values else None
        drops = [100 * (r["after"]["retain_accuracy"] - r["before"]["retain_accuracy"]) for r in group
                 if r["after"].get("retain_accuracy") is not None]
        point["retain_drop_points"] = statistics.mean(drops) if drops else None
        result.append(point)
    return result


def comparable_points(rows: list[dict]) -> list[dict]:
    """The points measured on every target their method was run on: a cut sweep's stragglers are left out."""
    covered = {m: len({r["target"] for r in rows if r["method"] == m}) for m in {r["method"] for r in rows}}
    return [p for p in points(rows) if p["targets"] == covered[p["method"]] and p["forget_accuracy"] is not None]


def best_per_method(rows: list[dict], budget: float = RETAIN_BUDGET_POINTS) -> dict[str, dict]:
    """Each method's learning rate with the lowest forget accuracy among those within the retain budget
    (when none is, the one that loses least retain), chosen on the rows given (the tune split)."""
    best: dict[str, dict] = {}
    comparable = comparable_points(rows)
    for method in {p["method"] for p in comparable}:
        mine = [p for p in comparable if p["method"] == method]
        # "within": a drop of exactly the budget counts (floating point aside)
        within = [p for p in mine if p["retain_drop_points"] is not None and p["retain_drop_points"] >= -budget - 1e-9]
        if within:
            best[method] = min(within, key=lambda p: (p["forget_accuracy"], -p["retain_drop_points"]))
        elif mine:
            best[method] = max(mine, key=lambda p: p["retain_drop_points"] or -1e9)
    return best


def markdown(rows: list[dict]) -> str:
    """Every (method, lr) point as a table row: the means over targets, after the run."""
    lines = ["| method | lr | targets | forget acc. | retain Δ, points | neighbour retain | P(known) | perplexity |",
             "|---|---|---|---|---|---|---|---|"]

    def cell(value: float | None, digits: int = 2) -> str:
        return "–" if value is None else f"{value:.{digits}f}"

    order = {m: i for i, m in enumerate(METHODS)}
    for p in sorted(points(rows), key=lambda p: (order.get(p["method"], 99), p["lr"])):
        lines.append(f"| {p['method']} | {p['lr']:.1e} | {p['targets']} | {cell(p['forget_accuracy'])} | "
                     f"{cell(p['retain_drop_points'], 1)} | {cell(p['neighbour_retain_accuracy'])} | "
                     f"{cell(p['target_p_known'])} | {cell(p['perplexity'])} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    """Forget (x) against retain (y), one curve per method through its learning rates, the ideal corner marked."""
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import pyqtgraph as pg
    import pyqtgraph.exporters
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])  # noqa: F841 - the exporter needs one
    pg.setConfigOptions(antialias=True, background="w", foreground="k")
    widget = pg.PlotWidget()
    widget.resize(900, 620)
    item = widget.getPlotItem()
    item.setLabel("bottom", "forget accuracy after (forms no method trains on; lower is better)")
    item.setLabel("left", "retain accuracy after (fixed retain set; higher is better)")
    budget = rows[0]["config"]["steps"] if rows else "?"
    item.setTitle(f"Tune split, {budget}-step budget: each point one learning rate (mean over targets)")
    for side in ("bottom", "left"):
        item.getAxis(side).enableAutoSIPrefix(False)  # accuracies, not milli-units
    item.addLegend(offset=(-10, -10))  # bottom right: the points crowd the top (retain near its level before)
    item.showGrid(x=True, y=True, alpha=0.3)
    colours = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    for index, method in enumerate(METHODS):
        mine = sorted((p for p in comparable_points(rows) if p["method"] == method), key=lambda p: p["lr"])
        if mine:
            pen = pg.mkPen(colours[index % len(colours)], width=2)
            item.plot([p["forget_accuracy"] for p in mine], [p["retain_accuracy"] for p in mine], pen=pen, symbol="o",
                      symbolBrush=colours[index % len(colours)], symbolSize=9, name=method)
            for p in mine:
                label = pg.TextItem(f"{p['lr']:.0e}", color=colours[index % len(colours)], anchor=(0, 1))
                label.setPos(p["forget_accuracy"], p["retain_accuracy"])
                item.addItem(label)
    before = [r["before"]["retain_accuracy"] for r in rows if r["before"].get("retain_accuracy") is not None]
    if before:
        item.addLine(y=statistics.mean(before) - RETAIN_BUDGET_POINTS / 100,
                     pen=pg.mkPen("#888", style=pg.QtCore.Qt.PenStyle.DashLine))
    ideal = statistics.mean(before) if before else 1.0  # nothing left of the target, the rest as it was
    item.plot([0.0], [ideal], pen=None, symbol="star", symbolSize=18, symbolBrush="#f0c000",
              name="ideal: forget 0, retain as before (dashed: the 3-point retain budget)")
    item.setXRange(-0.05, 1.05, padding=0)
    lowest = min([p["retain_accuracy"] for p in points(rows) if p["retain_accuracy"] is not None] + before + [1.0])
    item.setYRange(max(0.0, lowest - 0.05), min(1.05, ideal + 0.05), padding=0)
    widget.show()
    app.processEvents()
    path.parent.mkdir(parents=True, exist_ok=True)
    exporter = pyqtgraph.exporters.ImageExporter(item)
    exporter.parameters()["width"] = 900
    exporter.export(str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--lr-factors", nargs="+", type=float, default=[1 / 3, 1.0, 3.0],
                        help="learning rates as multiples of each method's default")
    parser.add_argument("--split", default="tune", choices=SPLITS)
    parser.add_argument("--targets", nargs="+", help="default: the split's entities the model knows")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--plot", default=str(PLOT))
    parser.add_argument("--resume", action="store_true", help="keep the rows already in --out and skip them")
    parser.add_argument("--plot-only", action="store_true")
    parser.add_argument("--merge", nargs="+", metavar="ROWS", help="only combine these rows files (.jsonl) into --out")
    add_retain_argument(parser)
    args = parser.parse_args()
    out = Path(args.out)
    log = out.with_suffix(".rows.jsonl")
    rows = read_rows([str(log)]) if (args.resume or args.plot_only) and log.exists() else []
    if args.merge:
        rows = read_rows(args.merge)
    elif not args.plot_only:
        from unlearn_studio.engine.methods import METHODS as INFO
        from unlearn_studio.engine.pipeline import ModelSpec, load_session

        if not args.resume:
            log.unlink(missing_ok=True)
        session = load_session(ModelSpec())
        targets = args.targets or split_targets(session, args.split)
        done = {(r["method"], r["lr"], r["target"]) for r in rows}
        befores: dict = {}
        for factor in args.lr_factors:  # every method at one learning rate before the next: a cut sweep stays fair
            for method in args.methods:
                config = TrainConfig(method=method, steps=args.steps, lr=INFO[method].default_lr * factor)
                for target in targets:
                    if (method, config.learning_rate, target) in done:
                        continue
                    row = run_row(session, "sweep", config, target, args.split, befores, args.retain_eval_entities)
                    append_row(log, row)
                    rows.append(row)
                    print(summary_line(row), flush=True)
    out.write_text(json.dumps([flat_row(r) for r in rows], indent=1))
    print(markdown(rows))
    for method, point in sorted(best_per_method(rows).items()):
        print(f"best {method:>11s}: lr {point['lr']:.0e}  forget {point['forget_accuracy']:.2f}  "
              f"retain drop {point['retain_drop_points']:+.1f} points  ({point['targets']} targets)")
    if rows:
        plot(rows, Path(args.plot))


if __name__ == "__main__":
    main()
