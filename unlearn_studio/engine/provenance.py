"""Where a result comes from: the package version, the git commit, and the model's and SAE's fingerprints."""

from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path

from .. import __version__


@lru_cache(maxsize=1)
def git_commit() -> str:
    """The checkout's commit (with ``+dirty`` when it has uncommitted changes), or "unknown" outside a checkout."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}+dirty" if dirty else commit or "unknown"


def provenance(model_fingerprint: str, sae_fingerprint: str) -> dict[str, str]:
    return {"version": __version__, "commit": git_commit(), "model_fingerprint": model_fingerprint,
            "sae_fingerprint": sae_fingerprint}
