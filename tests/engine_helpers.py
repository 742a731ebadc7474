"""A tiny session for engine tests: random model + SAE, the shipped lists without known-ness checks."""

from __future__ import annotations

from unlearn_studio.engine.pipeline import ModelSpec, Session, UnlearnRequest, load_session
from unlearn_studio.engine.trainer import TrainConfig

REFERENCE_LIMIT = 24


def tiny_session(model_dir, sae_dir) -> Session:
    return load_session(ModelSpec(model=str(model_dir), sae=str(sae_dir), device="cpu"))


def tiny_request(session: Session, *, names=("Eiffel Tower",), run_dir=None, evaluate=False, **config) -> UnlearnRequest:
    settings = {"steps": 3, "lr": 1e-3, "early_stop": False, "retain_entities": 6} | config
    return UnlearnRequest(targets=session.resolve_targets(list(names)), config=TrainConfig(**settings), run_dir=run_dir,
                          evaluate=evaluate, verify_known=False, retain_eval_entities=4, reference_limit=REFERENCE_LIMIT)


def events_of(session: Session, request: UnlearnRequest, cancel=None) -> list:
    return list(session.unlearn(request, cancel))
