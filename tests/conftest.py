"""Shared fixtures: an isolated data folder, tiny models and SAEs made on the fly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.tiny import make_model_folder, make_sae_folder  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own user data folder, so caches and settings never leak (or touch the real ones).

    Demo-model tests keep the real folder, where ``unlearn-studio fetch-demo`` put the model.
    """
    path = tmp_path_factory.mktemp("data")
    if os.environ.get("UNLEARN_STUDIO_REAL_DATA") != "1":
        monkeypatch.setenv("UNLEARN_STUDIO_DATA", str(path))
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama of width 64 with a tiny BPE tokenizer."""
    return make_model_folder(tmp_path_factory.mktemp("tiny-llama"), "llama")


@pytest.fixture(scope="session")
def tiny_sae_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TopK SAE (64 → 128) on the tiny Llama's ``model.layers.1``."""
    return make_sae_folder(tmp_path_factory.mktemp("tiny-sae") / "sae")


def _real_demo_dir() -> Path:
    from unlearn_studio.engine.demo import DEMO_FOLDER_NAME
    from unlearn_studio.engine.paths import user_data_dir

    return user_data_dir() / "models" / DEMO_FOLDER_NAME


REAL_DEMO_DIR = _real_demo_dir()  # resolved before any test isolates the data folder


@pytest.fixture(scope="session")
def demo_model_dir() -> Path:
    """The real converted demo model. CI (UNLEARN_STUDIO_REQUIRE_DEMO=1) fails rather than skips without it."""
    if not (REAL_DEMO_DIR / "model.safetensors").is_file():
        message = f"the demo model is not at {REAL_DEMO_DIR}: run `unlearn-studio fetch-demo`"
        if os.environ.get("UNLEARN_STUDIO_REQUIRE_DEMO") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return REAL_DEMO_DIR
