"""Where Unlearn Studio keeps its files: the user data folder and the shipped resources."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "unlearn-studio"
DATA_DIR_ENV = "UNLEARN_STUDIO_DATA"


def user_data_dir() -> Path:
    """The per-user data folder (models, caches, runs); ``$UNLEARN_STUDIO_DATA`` overrides it."""
    override = os.environ.get(DATA_DIR_ENV)
    path = Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    return _make_folder(path)


def _make_folder(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        from ..errors import UserError, os_reason

        raise UserError(f"cannot create Unlearn Studio's data folder {path}: {os_reason(error)}. "
                        f"Set {DATA_DIR_ENV} to a folder you can write to.") from error
    return path


def cache_dir(kind: str) -> Path:
    """A named cache folder inside the data folder (e.g. ``references``, ``knownness``)."""
    return _make_folder(user_data_dir() / "cache" / kind)


def resources_dir() -> Path:
    """The shipped ``resources/`` folder, in a checkout or inside an installed wheel."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[2] / "resources", here.parents[1] / "resources"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        "Unlearn Studio's resources folder is missing: reinstall the package (pip install unlearn-studio)."
    )
