"""Known-ness results and reference statistics shipped for the embedded demo (``resources/demo_cache/``).

They let a first start draw the 2-D map seconds after the model is loaded. They are used only when the
manifest's model fingerprint, SAE fingerprint and entity-data key all equal the loaded session's; anything
else (another model, an edited entity list, a missing or damaged file) is ignored silently, and the results
are computed and cached in the user data folder as usual. ``scripts/build_demo_cache.py`` rebuilds them.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from .knownness import EntityStatus
from .paths import resources_dir

FOLDER_NAME = "demo_cache"
MANIFEST = "manifest.json"
STATUSES = "knownness.json"
REFERENCES = "references"


@dataclass(frozen=True)
class CacheKey:
    """What shipped results are valid for."""

    model_fingerprint: str
    sae_fingerprint: str
    data_key: str


def cache_folder() -> Path:
    return resources_dir() / FOLDER_NAME


def _matching_folder(key: CacheKey, folder: Path | None = None) -> Path | None:
    folder = folder or cache_folder()
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or any(manifest.get(name) != value for name, value in asdict(key).items()):
        return None
    return folder


def shipped_statuses(key: CacheKey, folder: Path | None = None) -> list[EntityStatus] | None:
    """The shipped known-ness results, when they were measured on this model with this entity data."""
    found = _matching_folder(key, folder)
    if found is None:
        return None
    try:
        return [EntityStatus(**row) for row in json.loads((found / STATUSES).read_text())]
    except (OSError, ValueError, TypeError):
        return None


def shipped_references_file(key: CacheKey, references_key: str, folder: Path | None = None) -> Path | None:
    """The shipped reference statistics of ``references_key`` (see ``latents.references_cache_key``), if any."""
    found = _matching_folder(key, folder)
    if found is None:
        return None
    path = found / REFERENCES / f"{references_key}.safetensors"
    return path if path.is_file() else None


def write_cache(folder: Path, key: CacheKey, statuses: Sequence[EntityStatus], references: Mapping[str, object],
                notes: Mapping[str, object] | None = None) -> None:
    """Replace ``folder`` with a new cache: manifest, statuses and one safetensors per references key.

    ``references`` maps a references key to a ``latents.References``. Written to a temporary folder, then
    swapped in, so a failed build leaves the old cache in place.
    """
    folder = Path(folder)
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    (partial / REFERENCES).mkdir(parents=True)
    (partial / STATUSES).write_text(json.dumps([asdict(s) for s in statuses], indent=0))
    for references_key, refs in references.items():
        refs.save(partial / REFERENCES / f"{references_key}.safetensors")
    manifest = {**asdict(key), "references": sorted(references), **dict(notes or {})}
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    if folder.exists():
        shutil.rmtree(folder)
    partial.rename(folder)
