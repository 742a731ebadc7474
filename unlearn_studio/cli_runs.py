"""``unlearn-studio runs``: the run folders under the user data folder (and any given folder), newest first."""

from __future__ import annotations

import argparse
import json


def _pair(summary, key: str, fmt: str) -> str:  # noqa: ANN001 - a RunSummary
    before, after = summary.before.get(key), summary.after.get(key)
    if before is None and after is None:
        return "—"
    return f"{'—' if before is None else format(before, fmt)}→{'—' if after is None else format(after, fmt)}"


def cmd_runs(args: argparse.Namespace) -> int:
    from .engine.run_history import list_runs, runs_root

    roots = [runs_root(), *args.folders]
    summaries = list_runs(roots)
    if args.json:
        print(json.dumps([s.to_dict() for s in summaries], indent=2))
        return 0
    if not summaries:
        print(f"no runs under {', '.join(str(r) for r in roots)}")
        return 0
    print(f"{'date':19s}  {'method':11s} {'steps':>5s}  {'P(known)':>9s}  {'forget':>9s}  {'retain':>9s}  targets / folder")
    for s in summaries:
        print(f"{s.date:19s}  {s.method:11s} {s.steps:5d}  {_pair(s, 'target_p_known', '.2f'):>9s}  "
              f"{_pair(s, 'forget_accuracy', '.2f'):>9s}  {_pair(s, 'retain_accuracy', '.2f'):>9s}  "
              f"{', '.join(s.targets)}  {s.path}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    runs = commands.add_parser("runs", help="list past runs (the user data folder's runs/ and any folder given)")
    runs.add_argument("folders", nargs="*", help="more folders: a run folder, or a folder holding run folders")
    runs.add_argument("--json", action="store_true", help="print a JSON list of objects, one per run")
    runs.set_defaults(handler=cmd_runs)
