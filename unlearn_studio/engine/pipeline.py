"""The engine's facade: one loaded model + SAE (a :class:`Session`) and the jobs that run on it.

Both front ends (the CLI and the GUI's workers) go through this module only.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import UserError
from .demo import demo_sae_dir, ensure_demo_model
from .demo_cache import CacheKey, shipped_references_file, shipped_statuses
from .entities import (Entity, Templates, generic_text, load_known_candidates, load_lesser_known, load_templates,
                       load_unknown_entities)
from .evaluate import Evaluation, evaluate, perplexity
from .events import Cancelled as CancelledEvent
from .events import Event, Failed, Finished, InitialState, Progress, Started, StepProgress
from .generation import NO_CHAT_TEMPLATE_NOTE, chat_form_label, has_chat_template, stream_answer
from .hooks import HookPoint, layer_container
from .knownness import KNOWN, UNKNOWN, EntityStatus, classify_entities, load_cached, save_cached
from .jobs import JobCancelled, ProgressCallback
from .latents import References, compute_references, references_cache_key
from .models import LoadedModel, load_model, weights_fingerprint
from .provenance import provenance as make_provenance
from .paths import cache_dir
from .runs import RunFolder, save_model_folder
from .saes import LoadedSae, check_sae_fits_model, load_sae
from .fact_checks import check_key
from .stand_ins import name_gives_answer, pick_stand_ins
from .weights import WeightsSnapshot
from .trainer import TrainConfig, TrainResult, UnlearningPlan, train
from .validation import check_target_name

MIN_RETAIN_EVALUATION = 5
MIN_REAL_UNKNOWN = 20  # fewer real entities the model does not know than this: fictitious names make up U
SANE_PERPLEXITY_RATIO = 2.0  # a diverged run's restored weights are saved only within this of θ0's perplexity
START_FROM = ("original", "current")
# The demo SAE was trained on the converted GGUF, not on the hub's copy of SmolLM2 (their weights differ).
DEMO_SAE_MODEL = "the demo model, converted from the shipped GGUF: --demo in the CLI, Demo in the window"
OUT_OF_MEMORY = ("out of memory: lower the number of trainable layers or the retain set, load the model in bfloat16 "
                 "(half the memory; the trained weights are held in float32 during a run, so it learns as in float32), "
                 "or choose another device or a smaller model.")


def _by_type_in_turn(entities: Sequence[Entity]) -> list[Entity]:
    """One entity of each type in turn (file order within a type): a shorter prefix still covers every type."""
    queues: dict[str, list[Entity]] = {}
    for entity in entities:
        queues.setdefault(entity.type, []).append(entity)
    ordered: list[Entity] = []
    while any(queues.values()):
        for queue in queues.values():
            if queue:
                ordered.append(queue.pop(0))
    return ordered


@dataclass
class UnlearnRequest:
    """One unlearning run: targets, training settings and what to do around the training."""

    targets: list[Entity]
    config: TrainConfig = field(default_factory=TrainConfig)
    run_dir: Path | None = None
    evaluate: bool = True
    save_model: bool = False
    verify_known: bool = True
    retain_eval_entities: int | None = None  # at most this many of the retain split (None: all of them)
    reference_limit: int = 80  # at most this many known and this many unknown references
    before: Evaluation | None = None  # a measurement of θ0 already made for these targets (benchmarks reuse it)
    start_from: str = "original"  # original: put θ0 back first when the weights are modified | current: continue

    def describe(self) -> dict[str, Any]:
        return {"targets": [t.name for t in self.targets], "config": self.config.to_dict(), "evaluate": self.evaluate,
                "save_model": self.save_model, "verify_known": self.verify_known, "start_from": self.start_from}


@dataclass
class RunReport:
    report: dict[str, Any]
    before: Evaluation | None
    after: Evaluation | None
    result: TrainResult


def _fact_table(before: Evaluation, after: Evaluation) -> list[dict[str, Any]]:
    rates = before.floor.rates if before.floor else {}
    rows = []
    for old, new in zip(before.facts, after.facts):
        rows.append({"entity": old.check.entity, "role": old.check.role, "form": old.check.form, "prompt": old.check.prompt,
                     "answers": list(old.check.answers), "before": old.completion, "before_correct": old.correct,
                     "after": new.completion, "after_correct": new.correct,
                     "stand_in_rate": rates.get(check_key(old.check)), "name_gives_answer": name_gives_answer(old.check)})
    return rows


@dataclass(frozen=True)
class ModelSpec:
    """What to load. ``model=None`` means the embedded demo model; ``sae=None`` the demo SAE."""

    model: str | None = None
    sae: str | None = None
    sae_id: str | None = None
    device: str = "auto"
    dtype: str = "float32"
    trust_remote_code: bool = False
    allow_pickle: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Session:
    """A loaded model with its SAE, the hook they meet at, and a frozen copy of θ0 for reset."""

    def __init__(self, loaded: LoadedModel, sae: LoadedSae, hook: HookPoint, warnings: list[str], spec: ModelSpec) -> None:
        self.loaded = loaded
        self.sae = sae
        self.hook = hook
        self.warnings = warnings
        self.spec = spec
        # θ0 for every block at or below the hook: the only weights unlearning may change.
        self._original = WeightsSnapshot(self.resettable_parameters())
        self._entity_data: tuple[list[Entity], list[Entity], Templates] | None = None
        self._lesser_known: list[Entity] | None = None
        self._statuses: list[EntityStatus] | None = None
        self._references: dict[str, References] = {}
        self._sae_fingerprint: str | None = None
        self._theta0_answers: dict = {}  # FactCheck -> FactResult: the fixed retain set is asked of θ0 once per session

    @property
    def model(self) -> torch.nn.Module:
        return self.loaded.model

    @property
    def tokenizer(self) -> Any:
        return self.loaded.tokenizer

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def resettable_parameters(self) -> dict[str, torch.nn.Parameter]:
        prefix, _ = layer_container(self.model)
        names = tuple(f"{prefix}.{layer}." for layer in range(self.hook.layer + 1))
        return {name: p for name, p in self.model.named_parameters() if name.startswith(names)}

    def is_modified(self) -> bool:
        return not self._original.matches()

    def reset(self) -> None:
        """Put the original weights θ0 back."""
        self._original.restore()

    def original_weights(self):  # noqa: ANN201 - a context manager
        """Temporarily swap θ0 in (to answer 'before'), then put the current weights back."""
        return self._original.swapped_in()

    # ---- entity data, known-ness and references ---------------------------------------------------------

    def entity_data(self) -> tuple[list[Entity], list[Entity], Templates]:
        """The shipped candidates (well known), fictitious entities and templates."""
        if self._entity_data is None:
            self._entity_data = (load_known_candidates(), load_unknown_entities(), load_templates())
        return self._entity_data

    def lesser_known(self) -> list[Entity]:
        """The real, less famous entities: unknown references where this model does not answer them."""
        if self._lesser_known is None:
            self._lesser_known = load_lesser_known()
        return self._lesser_known

    def _data_key(self) -> str:
        """What cached known-ness was measured on: every entity's name, type, split and completion facts.

        Classification asks the completion prompts only, so rewriting another form of a check (a question,
        a paraphrase, a passage) keeps the caches; reference statistics have keys of their own.
        """
        candidates, fictitious, _ = self.entity_data()
        payload = [[[e.name, e.type, e.split, [[f.prompt, list(f.answers)] for f in e.facts]] for e in group]
                   for group in (candidates, self.lesser_known(), fictitious)]
        digest = hashlib.sha256(b"classification-inputs-1")  # bump when the loaders change what facts mean
        digest.update(json.dumps(payload).encode())
        return digest.hexdigest()[:12]

    @property
    def original_fingerprint(self) -> str:
        return self.loaded.info.fingerprint

    @property
    def sae_fingerprint(self) -> str:
        if self._sae_fingerprint is None:
            self._sae_fingerprint = weights_fingerprint(self.sae.sae)
        return self._sae_fingerprint

    def provenance(self) -> dict[str, str]:
        """Version, commit and fingerprints, for every report and benchmark row."""
        return make_provenance(self.original_fingerprint, self.sae_fingerprint)

    def shipped_cache_key(self) -> CacheKey:
        """What results shipped under resources/demo_cache/ must have been measured on to be used here."""
        return CacheKey(self.original_fingerprint, self.sae_fingerprint, self._data_key())

    def cached_statuses(self) -> list[EntityStatus] | None:
        if self._statuses is None:
            self._statuses = (load_cached(self.original_fingerprint, self._data_key())
                              or shipped_statuses(self.shipped_cache_key()))
        return self._statuses

    def classify(self, progress: ProgressCallback | None = None, cancel: threading.Event | None = None) -> list[EntityStatus]:
        """Which candidates θ0 knows (cached per model); always measured with the original weights."""
        cached = self.cached_statuses()
        if cached is not None:
            return cached
        candidates, fictitious, _ = self.entity_data()
        with self.original_weights():
            statuses = classify_entities(self.model, self.tokenizer, candidates, fictitious, self.lesser_known(),
                                         progress=progress, cancel=cancel)
        save_cached(self.original_fingerprint, self._data_key(), statuses)
        self._statuses = statuses
        return statuses

    def _known_filter(self, verify: bool):  # noqa: ANN202 - a predicate on entities
        if not verify:
            return lambda entity: True
        status = {s.name: s.status for s in self.classify()}
        return lambda entity: status.get(entity.name) == KNOWN

    def reference_entities(self, exclude: Sequence[str] = (), *, verify: bool = True,
                           limit: int = 80, seed: int = 0) -> tuple[list[Entity], list[Entity]]:
        """K and U: verified known / unknown entities (or the shipped lists as they are when ``verify`` is off).

        K: the candidates without a split and the lesser-known entities this model knows (tune, eval and retain
        splits and the known-ness hold-out are never references). U: real lesser-known entities it does not
        answer (Ferrando et al.); fictitious names only make up the number when fewer than MIN_REAL_UNKNOWN are.
        """
        candidates, fictitious, _ = self.entity_data()
        excluded = {name.lower() for name in exclude}
        pool = [e for e in self.lesser_known() if e.split is None]
        if verify:
            status = {s.name: s.status for s in self.classify()}
            known = [e for e in [*candidates, *pool] if e.split is None and status.get(e.name) == KNOWN]
            unknown = [e for e in pool if status.get(e.name) == UNKNOWN]
            if len(unknown) < MIN_REAL_UNKNOWN:
                unknown += [e for e in fictitious if status.get(e.name) == UNKNOWN]
        else:
            known, unknown = [e for e in candidates if e.split is None], list(fictitious)
        known = [e for e in known if e.name.lower() not in excluded]
        unknown = [e for e in unknown if e.name.lower() not in excluded]
        rng = random.Random(seed)
        if len(known) > limit:
            known = sorted(rng.sample(known, limit), key=lambda e: e.name)
        if len(unknown) > limit:
            unknown = sorted(rng.sample(unknown, limit), key=lambda e: e.name)
        if not known or not unknown:
            raise UserError(f"the model knows {len(known)} of the candidate entities and leaves {len(unknown)} "
                            "real or fictitious ones unanswered; both reference sets need at least one entity. "
                            "Use a larger model, or turn off 'verify known-ness' to use the lists as they are.")
        return known, unknown

    def retain_evaluation_set(self, *, verify: bool = True, limit: int | None = None) -> list[Entity]:
        """The fixed retain set (DESIGN.md §8): the retain split's entities this model knows, the same for every run."""
        candidates = self.entity_data()[0]
        is_known = self._known_filter(verify)
        chosen = [e for e in candidates if e.split == "retain" and is_known(e)]
        total = sum(e.split == "retain" for e in candidates)
        if len(chosen) < MIN_RETAIN_EVALUATION:
            raise UserError(f"the model knows {len(chosen)} of the {total} entities of the retain set; at least "
                            f"{MIN_RETAIN_EVALUATION} are needed to measure what a run keeps apart from what it trains "
                            "on. Use a larger model, or turn off 'verify known-ness'.")
        return _by_type_in_turn(chosen)[:limit] if limit is not None else chosen

    def neighbours(self, targets: Sequence[Entity], *, verify: bool = True) -> list[Entity]:
        """Entities linked to the targets (listed as their ``neighbours``) that this model knows, targets left out."""
        candidates = {e.name.lower(): e for e in self.entity_data()[0]}
        names = {t.name.lower() for t in targets}
        is_known = self._known_filter(verify)
        linked = [candidates[n.lower()] for t in targets for n in t.neighbours if n.lower() in candidates]
        unique = {e.name: e for e in linked if e.name.lower() not in names and is_known(e)}
        return sorted(unique.values(), key=lambda e: e.name)

    def references(self, known: Sequence[Entity], unknown: Sequence[Entity], *, progress: ProgressCallback | None = None,
                   cancel: threading.Event | None = None) -> References:
        """θ0's reference statistics for these sets, from the disk cache when it has them."""
        templates = self.entity_data()[2].train
        key = self.references_key(known, unknown)
        path = cache_dir("references") / f"{key}.safetensors"
        if key in self._references:
            return self._references[key]
        if path.exists():
            try:
                self._references[key] = References.load(path)
                return self._references[key]
            except Exception:  # noqa: BLE001 - a damaged cache entry is recomputed
                path.unlink(missing_ok=True)
        shipped = shipped_references_file(self.shipped_cache_key(), key)
        if shipped is not None:
            try:
                self._references[key] = References.load(shipped)
                return self._references[key]
            except Exception:  # noqa: BLE001 - a damaged shipped file is ignored: computed as for any model
                pass
        with self.original_weights():
            refs = compute_references(self.model, self.tokenizer, self.sae.sae, self.hook, known, unknown, templates,
                                      progress=progress, cancel=cancel)
        refs.save(path)
        self._references[key] = refs
        return refs

    def references_key(self, known: Sequence[Entity], unknown: Sequence[Entity]) -> str:
        return references_cache_key(self.original_fingerprint, self.sae_fingerprint, self.hook.name,
                                    [e.name for e in known], [e.name for e in unknown], self.entity_data()[2].train)

    def prepare_references(self, exclude: Sequence[str] = (), *, verify: bool = True, limit: int = 80,
                           progress: ProgressCallback | None = None, cancel: threading.Event | None = None) -> References:
        """Known-ness (when verified), then θ0's reference statistics without ``exclude``: every front end's first step.

        Each phase reports its own 0–100 % (minutes the first time per model, then cached).
        """
        report = progress or (lambda message, fraction: None)
        if verify:
            self.classify(progress=lambda m, f: report(f"known-ness: {m}", f), cancel=cancel)
        known, unknown = self.reference_entities(exclude, verify=verify, limit=limit)
        return self.references(known, unknown, cancel=cancel, progress=lambda m, f: report(f"references: {m}", f))

    def resolve_targets(self, names: Sequence[str], extra: Sequence[Entity] = ()) -> list[Entity]:
        """Typed names to entities: a listed candidate brings its facts; ``extra`` (a facts file) adds or overrides."""
        candidates, fictitious, _ = self.entity_data()
        listed = {e.name.lower(): e for e in [*candidates, *self.lesser_known(), *fictitious]}
        given = {e.name.lower(): e for e in extra}
        targets: list[Entity] = []
        for raw in [*names, *[e.name for e in extra if e.name.lower() not in {n.lower().strip() for n in names}]]:
            name = check_target_name(raw)
            ids = self.tokenizer(name, add_special_tokens=False)["input_ids"]
            limit = getattr(self.tokenizer, "model_max_length", 10**9) or 10**9
            if len(ids) > min(limit, 512):
                raise UserError(f"the target name is {len(ids)} tokens long: a name must fit in a prompt (at most 512 tokens).")
            entity = given.get(name.lower()) or listed.get(name.lower()) or Entity(name=name)
            if entity.name.lower() not in {t.name.lower() for t in targets}:
                targets.append(entity)
        if not targets:
            raise UserError("no target given: type the name of the entity to forget.")
        return targets

    # ---- the unlearning job -------------------------------------------------------------------------------

    def unlearn(self, request: UnlearnRequest, cancel: threading.Event | None = None) -> Iterator[Event]:
        """The whole run as a job: references, before, train, after, run folder. Never raises; errors are events."""
        try:
            yield from self._unlearn(request, cancel)
        except JobCancelled:
            yield CancelledEvent()
        except UserError as error:
            yield Failed(str(error), traceback.format_exc(), user_error=True)
        except torch.OutOfMemoryError:
            yield Failed(OUT_OF_MEMORY, traceback.format_exc())
        except MemoryError:
            yield Failed(OUT_OF_MEMORY, traceback.format_exc())
        except Exception as error:  # noqa: BLE001 - every failure reaches the user as an event
            yield Failed(f"{type(error).__name__}: {error}", traceback.format_exc(), user_error=False)

    def _unlearn(self, request: UnlearnRequest, cancel: threading.Event | None) -> Iterator[Event]:
        started = time.perf_counter()
        config = request.config
        config.validate()
        if request.start_from not in START_FROM:
            raise UserError(f"start_from must be one of {', '.join(START_FROM)}, not {request.start_from!r}.")
        yield Started("unlearn", config.steps)
        if request.start_from == "original" and self.is_modified():
            self.reset()
        started_from = "current" if self.is_modified() else "original"
        targets = request.targets
        notes: list[str] = []
        candidates = {e.name.lower() for e in [*self.entity_data()[0], *self.entity_data()[1], *self.lesser_known()]}
        for target in targets:
            if target.name.lower() in candidates:
                notes.append(f"{target.name} is a reference entity: it was taken out of the references for this run.")
            if not target.facts:
                notes.append(f"{target.name} has no facts: the run uses known-ness alone and forget accuracy is not measured.")
        if not has_chat_template(self.tokenizer):
            notes.append(NO_CHAT_TEMPLATE_NOTE)
        for note in notes:
            yield Progress(note, 0.0)
        yield Progress("checking which entities the model knows", 0.01)
        progress_events: list[Progress] = []
        known, unknown = self.reference_entities([t.name for t in targets], verify=request.verify_known,
                                                limit=request.reference_limit)
        yield Progress("reference statistics", 0.03)
        refs = self.references(known, unknown, cancel=cancel,
                               progress=lambda m, f: progress_events.append(Progress(m, 0.03 + 0.1 * f)))
        yield from progress_events
        templates = self.entity_data()[2]
        retain_eval = (self.retain_evaluation_set(verify=request.verify_known, limit=request.retain_eval_entities)
                       if request.evaluate else [])
        neighbours = self.neighbours(targets, verify=request.verify_known)
        # What is measured is never trained on: the retain split is no reference, and the neighbours are left out.
        linked = {e.name for e in neighbours}
        retain_train = [e for e in known if e.name not in linked]
        plan = UnlearningPlan(targets=list(targets), retain=retain_train, templates=templates, references=refs)
        folder = RunFolder(request.run_dir) if request.run_dir else None
        try:
            report: dict[str, Any] = {
                "method": config.method, "targets": [t.name for t in targets], "model": self.loaded.info.name,
                "sae": self.sae.info.source, "hook": self.hook.name, "config": config.to_dict(), "notes": notes,
                "started_from": started_from,
                "top_latents": {"known": refs.top_known_latents, "unknown": refs.top_unknown_latents},
                "chat_form": chat_form_label(self.tokenizer),
                "references": {"known": len(known), "unknown": len(unknown), "probe_train_accuracy": refs.probe_train_accuracy},
                "templates": {"train": list(templates.train), "stop": list(templates.stop), "eval": list(templates.eval)},
                "retain_evaluation": [e.name for e in retain_eval], "neighbours": [e.name for e in neighbours],
                "provenance": self.provenance(),
                "reference_points": {"known": refs.known_points.tolist(), "unknown": refs.unknown_points.tolist(),
                                     "known_names": refs.known_names, "unknown_names": refs.unknown_names},
            }
            if folder:
                folder.write_config({"request": request.describe(), "session": self.describe()})
            before = request.before
            if request.evaluate and before is None:
                yield Progress("measuring the model before unlearning", 0.15)
                before = evaluate(self.model, self.tokenizer, self.sae.sae, self.hook, refs, targets, retain_eval, templates,
                                  neighbours=neighbours, cancel=cancel,
                                  stand_ins=pick_stand_ins(targets, self.entity_data()[1]),
                                  asked=None if self.is_modified() else self._theta0_answers)
            result: TrainResult | None = None
            for event in train(self.model, self.tokenizer, self.sae.sae, self.hook, plan, config, cancel):
                if isinstance(event, StepProgress) and folder:
                    folder.append_step(event)
                if isinstance(event, InitialState):
                    report["initial"] = {name: asdict(state) for name, state in event.targets.items()}
                if isinstance(event, Finished):
                    result = event.result
                    continue
                yield event
            assert result is not None
            if result.stopped == "cancelled":
                report.update(steps=result.steps_done, seconds=time.perf_counter() - started, stopped="cancelled",
                              status="cancelled")
                if folder:
                    folder.write_report(report)
                yield CancelledEvent(result.steps_done, {"run_dir": str(folder.path) if folder else None})
                return
            after = None
            if request.evaluate:
                yield Progress("measuring the model after unlearning", 0.95)
                after = evaluate(self.model, self.tokenizer, self.sae.sae, self.hook, refs, targets, retain_eval, templates,
                                 neighbours=neighbours, cancel=cancel, floor=before.floor if before else None)
            report.update(steps=result.steps_done, seconds=round(time.perf_counter() - started, 2),
                          train_seconds=round(result.seconds, 2), stopped=result.stopped, message=result.message,
                          status="diverged" if result.stopped == "diverged" else "finished")
            if before and after:
                report["before"], report["after"] = before.summary(), after.summary()
                report["per_target"] = {"before": before.per_target, "after": after.per_target}
                report["fact_table"] = _fact_table(before, after)
            save = request.save_model
            if result.stopped == "diverged":
                report["error"] = result.message
                if save or (before and after):  # measured anyway, or needed before a save
                    yield Progress("checking the restored weights", 0.97)
                    report["sanity"] = self._restored_weights_check(result, before, after)
                    save = save and report["sanity"]["passed"]
                if request.save_model and not save:
                    report["model_not_saved"] = report["sanity"]["reason"]
                    report["error"] += f" No model was saved: {report['model_not_saved']}."
            if folder:
                if save:
                    save_model_folder(self.model, self.tokenizer, folder.path / "model", protected=self.model_folder)
                    report["model_dir"] = str(folder.path / "model")
                    if result.stopped == "diverged":
                        report["error"] += f" The restored weights passed the check and were saved to {report['model_dir']}."
                folder.write_report(report)
                report["run_dir"] = str(folder.path)
            yield Finished(RunReport(report=report, before=before, after=after, result=result))
        finally:
            if folder:
                folder.close()

    def _restored_weights_check(self, result: TrainResult, before: Evaluation | None,
                                after: Evaluation | None) -> dict[str, Any]:
        """After a diverged run: may the restored weights be saved? Only real progress with a sane perplexity."""
        if before is not None and after is not None:
            original, restored = before.perplexity, after.perplexity
        else:
            text = generic_text("heldout")
            restored = perplexity(self.model, self.tokenizer, text)
            with self.original_weights():
                original = perplexity(self.model, self.tokenizer, text)
        sane = math.isfinite(restored) and restored <= SANE_PERPLEXITY_RATIO * original
        if result.steps_done == 0:
            reason = "no step was kept: the restored weights are the starting ones, so there is nothing to save"
        elif not sane:
            reason = (f"the restored weights' perplexity {restored:.1f} is more than {SANE_PERPLEXITY_RATIO:g}× the "
                      f"original {original:.1f}")
        else:
            reason = ""
        return {"perplexity_original": original, "perplexity_restored": restored, "steps_kept": result.steps_done,
                "passed": not reason, "reason": reason}

    # ---- asking and saving ----------------------------------------------------------------------------------

    def ask(self, prompt: str, on_text: Callable[[str], None], *, original: bool = False, chat: bool = True,
            max_new_tokens: int = 48, cancel: threading.Event | None = None) -> str:
        """Answer ``prompt`` greedily with the current (or the original) weights, streaming the text."""
        if not prompt.strip():
            raise UserError("the question is empty: type a prompt first.")
        if original:
            with self.original_weights():
                return stream_answer(self.model, self.tokenizer, prompt, on_text, chat=chat, max_new_tokens=max_new_tokens, cancel=cancel)
        return stream_answer(self.model, self.tokenizer, prompt, on_text, chat=chat, max_new_tokens=max_new_tokens, cancel=cancel)

    def load_weights(self, folder: str | Path) -> None:
        """Put a saved copy's weights (e.g. a run's ``model/``) into this session; θ0 stays the original.

        Only weights at or below the hook may differ, as they do after any run of this tool.
        """
        from safetensors.torch import load_file

        files = sorted(Path(folder).expanduser().glob("*.safetensors"))
        if not files:
            raise UserError(f"{folder} has no *.safetensors weights: give an unlearned model folder (a run's model/).")
        state: dict[str, torch.Tensor] = {}
        for path in files:
            state.update(load_file(str(path)))
        resettable = self.resettable_parameters()
        current = dict(self.model.named_parameters())
        for name, parameter in current.items():
            if name not in state:
                continue
            if state[name].shape != parameter.shape:
                raise UserError(f"{folder} is not a copy of the loaded model: {name} has shape {tuple(state[name].shape)}, "
                                f"expected {tuple(parameter.shape)}.")
            if name not in resettable and not torch.equal(state[name].to(parameter), parameter.detach()):
                raise UserError(f"{folder} differs from the loaded model above the SAE's layer ({name}): "
                                "it is not an unlearned copy of this model with this SAE.")
        with torch.no_grad():
            for name, parameter in resettable.items():
                if name in state:
                    parameter.copy_(state[name].to(parameter))

    @property
    def model_folder(self) -> Path | None:
        path = Path(self.loaded.info.source).expanduser()
        return path if path.exists() else None

    def save_model(self, destination: Path) -> Path:
        """Save the current weights to a new folder (never over the loaded model)."""
        return save_model_folder(self.model, self.tokenizer, destination, protected=self.model_folder)

    def describe(self) -> dict[str, Any]:
        model = self.loaded.info.to_dict()
        sae = self.sae.info.to_dict()
        sae["hook_layer"] = self.hook.layer
        sae["hook_module"] = self.hook.module_path
        return {"model": model, "sae": sae, "warnings": list(self.warnings)}


def load_session(spec: ModelSpec, progress: ProgressCallback | None = None) -> Session:
    """Load the model and SAE of ``spec`` and check that they fit together."""
    report = progress or (lambda message, fraction: None)
    if spec.model is None:
        report("finding the embedded demo model", 0.0)
        model_source: str | Path = ensure_demo_model(lambda m, f: report(m, 0.6 * f))
    else:
        model_source = spec.model
    report(f"loading the model from {model_source}", 0.6)
    loaded = load_model(model_source, device=spec.device, dtype=spec.dtype,
                        trust_remote_code=spec.trust_remote_code, allow_pickle=spec.allow_pickle)
    report("loading the SAE", 0.85)
    sae_source = spec.sae if spec.sae is not None else demo_sae_dir()
    parameter = next(loaded.model.parameters())
    sae = load_sae(sae_source, spec.sae_id, device=str(parameter.device), dtype=loaded.info.dtype)
    trained_on = DEMO_SAE_MODEL if spec.sae is None else None
    hook, warnings = check_sae_fits_model(sae, loaded.model, loaded.info, trained_on=trained_on)
    if not has_chat_template(loaded.tokenizer):
        warnings.append(NO_CHAT_TEMPLATE_NOTE)
    report("ready", 1.0)
    return Session(loaded, sae, hook, warnings, spec)
