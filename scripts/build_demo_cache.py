"""Rebuild resources/demo_cache/: the demo model's known-ness results and reference statistics.

    PYTHONPATH=. OMP_NUM_THREADS=1 python scripts/build_demo_cache.py [--map-only]

Rerun it whenever resources/entities/ (or the demo SAE) changes: the shipped files are keyed by the demo
model's and SAE's fingerprints and the entity-data key, and a key that no longer matches is ignored (the
program then computes everything on first use, as for any other model). It ships the references of the map
(no target) and of a run on each *Try these* target, so that walkthrough starts at once too.
Known-ness and reference statistics are taken from the user data folder's cache when they were measured on the
same data (an interrupted build loses nothing it finished). On a busy machine one torch thread is much faster
than two competing ones (OMP_NUM_THREADS=1); ``--map-only`` ships the map's references alone.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--map-only", action="store_true", help="ship the map's references, not the Try-these runs'")
    args = parser.parse_args()
    from unlearn_studio.engine.demo_cache import cache_folder, write_cache
    from unlearn_studio.engine.pipeline import ModelSpec, load_session
    from unlearn_studio.engine.suggestions import suggested_targets

    def report(message: str, fraction: float) -> None:
        print(f"[{fraction * 100:5.1f}%] {message}", file=sys.stderr, flush=True)

    started = time.perf_counter()
    session = load_session(ModelSpec(), progress=report)
    statuses = session.classify(progress=lambda m, f: report(f"known-ness: {m}", f))
    references = {}
    known, unknown = session.reference_entities([])
    references[session.references_key(known, unknown)] = map_refs = session.references(
        known, unknown, progress=lambda m, f: report(f"map references: {m}", f))
    suggestions = suggested_targets(statuses, map_refs.known_names, map_refs.known_entity_p_known.tolist())
    for suggestion in [] if args.map_only else suggestions:
        known, unknown = session.reference_entities([suggestion.name])
        references[session.references_key(known, unknown)] = session.references(
            known, unknown, progress=lambda m, f, name=suggestion.name: report(f"references without {name}: {m}", f))
    folder = cache_folder()
    write_cache(folder, session.shipped_cache_key(), statuses, references,
                notes={"model": session.loaded.info.name, "hook": session.hook.name,
                       "suggested_targets": [s.name for s in suggestions]})
    size = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
    print(f"wrote {folder} ({size / 1024:.0f} KiB, {len(references)} reference sets; suggested: "
          f"{', '.join(s.name for s in suggestions)}) in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
