"""The application state (acconeer-style ``AppModel``): owns the session and jobs, emits ``sig_*`` signals.

Views are thin widgets that call the model's methods and render from its
signals. High-rate training data has its own signal (``sig_step``), separate from
state changes (``sig_state``). The engine is imported lazily, inside jobs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from .workers import Job, JobManager, drain_events

# Job names shown in the status bar.
LOAD, CLASSIFY, REFERENCES, RUN, AUDIT, ASK, SAVE, RESET = ("load", "classify", "references", "run", "audit", "ask",
                                                            "save", "reset")
STEER = "steer"
MAP = "map"  # known-ness and θ0's references right after a load, for the 2-D map and the Try-these list
JOB_LABELS = {LOAD: "Loading the model and SAE", CLASSIFY: "Classifying known-ness",
              REFERENCES: "Computing the reference statistics", RUN: "Unlearning", AUDIT: "Auditing the targets",
              ASK: "Answering", SAVE: "Saving the model", RESET: "Resetting the model",
              MAP: "Preparing the 2-D map of known and unknown entities", STEER: "Steering"}
AUDIT_REFERENCE_LIMIT = 40
AUDIT_RELEARN_STEPS = 10


@dataclass(frozen=True)
class ReferencesReady:
    """The θ0 reference map of a run, sent before its first step."""

    known_points: list[list[float]]
    unknown_points: list[list[float]]
    known_names: list[str]
    unknown_names: list[str]
    top_known_latents: list[int]
    top_unknown_latents: list[int]
    targets: list[str]
    references: object = None  # the engine References themselves (the latent dashboard reads them)


@dataclass(frozen=True)
class MapReady:
    """The map job's result: θ0's reference map (no target yet) and the suggested targets (engine Suggestions)."""

    references: ReferencesReady
    suggestions: list


@dataclass(frozen=True)
class StatusesReady:
    """Known-ness statuses measured inside a longer job (a run or an audit): the table can show them at once."""

    statuses: list


@dataclass(frozen=True)
class ReferencePKnown:
    """The probe's P(known) of each reference entity (θ0, mean over its prompts), from a References."""

    p_known: dict[str, float]


@dataclass(frozen=True)
class AskPiece:
    which: str  # original | current
    text: str
    done: bool = False


@dataclass
class Target:
    name: str
    type: str = "other"
    facts: tuple = ()  # engine Facts, when typed in or loaded from a file
    listed: bool = False  # one of the shipped reference entities

    @property
    def label(self) -> str:
        if self.facts:
            facts = f"{len(self.facts)} facts"
        else:
            facts = "shipped facts" if self.listed else "no facts"
        return f"{self.name}  ({self.type}, {facts})"


@dataclass
class EntityRow:
    name: str
    type: str
    reference: str  # candidate | fictitious
    facts: int
    status: str = ""  # known | unknown | excluded | "" (not classified)
    correct: int | None = None
    p_known: float | None = None  # the probe's P(known) with θ0, once references that hold it are computed


class AppModel(QObject):
    """State holder and job launcher. Every job is a :class:`Job`; at most one touches the session at a time."""

    sig_state = Signal()  # busy / loaded / modified / targets changed
    sig_progress = Signal(str, str, float)  # job, message, fraction
    sig_loaded = Signal(dict)  # Session.describe()
    sig_entities = Signal(list)  # list[EntityRow]
    sig_targets = Signal(list)  # list[Target]
    sig_run_started = Signal(object)  # ReferencesReady
    sig_map = Signal(object)  # MapReady: the reference map of the loaded model, before any run
    sig_initial = Signal(object)  # InitialState: the targets before the first step
    sig_step = Signal(object)  # StepProgress (high rate)
    sig_run_ended = Signal(str, object)  # finished | cancelled | failed, report dict / details
    sig_ask = Signal(object)  # AskPiece
    sig_audit = Signal(object)  # an engine AuditResult
    sig_sae_warnings = Signal(list)  # after a load: the SAE may not fit the model (the user decides)
    sig_unloaded = Signal()
    sig_saved = Signal(str)
    sig_error = Signal(str, str, str)  # title, message, details (traceback)
    sig_message = Signal(str)  # one line for the status bar
    sig_steered = Signal(object)  # an engine SteeringResult
    sig_references = Signal()  # self.references changed (a run started)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.jobs = JobManager(self)
        self.jobs.sig_changed.connect(self.sig_state)
        self.session = None
        self.description: dict | None = None
        self.entities: list[EntityRow] = []
        self.targets: list[Target] = []
        self.busy: str | None = None
        self.modified = False
        self.last_report: dict | None = None
        self.last_audit = None  # an engine AuditResult
        self.last_run_dir: str | None = None
        self.run_started_at: float | None = None
        self.suggestions: list = []  # engine Suggestions of the Try-these list
        self.auto_map = True  # prepare the 2-D map right after a load (when the SAE fits the model)
        self.map_verify = True  # the map's references are verified known / unknown entities (the window's check box)
        self.references = None  # the last run's engine References
        self.target_start: dict = {}  # target name -> engine TargetState with θ0
        self.target_now: dict = {}  # target name -> TargetState at the last step
        self._job: Job | None = None
        self._queued: Job | None = None  # a job asked for while the map was being prepared: it runs next
        self._map_after_load = False

    # ---- job plumbing -----------------------------------------------------------------------------------
    def _start(self, name: str, fn) -> Job | None:  # noqa: ANN001
        # While the background map is prepared, any other job stops it and runs next (a run computes what it needs).
        preempt = self.busy == MAP and name != MAP and self._job is not None and self._queued is None
        if self.busy is not None and not preempt:
            self.sig_message.emit(f"{JOB_LABELS[self.busy]}: wait for it to finish or stop it first.")
            return None
        job = Job(name, fn, self)
        job.sig_progress.connect(self._on_progress)
        job.sig_event.connect(self._on_event)
        job.sig_result.connect(self._on_result)
        job.sig_failed.connect(self._on_failed)
        job.sig_cancelled.connect(self._on_cancelled)
        job.finished.connect(self._on_job_finished)
        if preempt:
            self._job.cancel.set()
            self._queued = job
            self.sig_message.emit(f"{JOB_LABELS[name]}: the 2-D map is left for later…")
        else:
            self._launch(job)
        return job

    def _launch(self, job: Job) -> None:
        self.busy = job.name
        self._job = job
        self.sig_state.emit()
        self.sig_message.emit(f"{JOB_LABELS[job.name]}…")
        self.jobs.start(job)

    def _current(self) -> str:
        job = self.sender()
        return job.name if isinstance(job, Job) else (self.busy or "")

    def _on_job_finished(self) -> None:
        job = self.sender()
        if job is self._job:
            self._job = None
            self.busy = None
            # Started in the same turn, so nobody sees the window idle in between.
            if self._queued is not None:
                queued, self._queued = self._queued, None
                self._launch(queued)
            elif self._map_after_load:
                self._map_after_load = False
                self.prepare_map()
            self.sig_state.emit()

    def _on_progress(self, message: str, fraction: float) -> None:
        self.sig_progress.emit(self._current(), message, fraction)

    def _on_event(self, event: object) -> None:
        from ..engine.events import InitialState, Progress, StepProgress

        if isinstance(event, StepProgress):
            self.modified = True
            self.target_now.update(event.targets)
            self.sig_step.emit(event)
        elif isinstance(event, Progress):
            self.sig_progress.emit(self._current(), event.message, event.fraction)
        elif isinstance(event, InitialState):
            self.target_start, self.target_now = dict(event.targets), dict(event.targets)
            self.sig_initial.emit(event)
        elif isinstance(event, ReferencesReady):
            if event.references is not None:
                self.references, self.target_start, self.target_now = event.references, {}, {}
                self.sig_references.emit()
            self.sig_run_started.emit(event)
        elif isinstance(event, StatusesReady):
            self._set_statuses(event.statuses)
        elif isinstance(event, ReferencePKnown):
            self._set_reference_p_known(event.p_known)
        elif isinstance(event, AskPiece):
            self.sig_ask.emit(event)

    def _on_result(self, result: object) -> None:
        name = self._current()
        handler = getattr(self, f"_done_{name}", None)
        if handler:
            handler(result)

    def _on_failed(self, message: str, details: str, user_error: bool) -> None:
        name = self._current()
        title = f"{JOB_LABELS.get(name, 'The job')} failed"
        self.sig_message.emit(f"{title}: {message}")
        if name == MAP:  # nobody asked for it: a status line, no dialog (a run says the same when started)
            return
        if name == RUN:
            self.sig_run_ended.emit("failed", {"error": message})
        if name == ASK:
            self.sig_ask.emit(AskPiece("current", "", done=True))
        self.sig_error.emit(title, message, details)

    def _on_cancelled(self, details: object) -> None:
        name = self._current()
        if name == RUN:
            info = details if isinstance(details, dict) else {}
            self.last_run_dir = info.get("run_dir") or self.last_run_dir
            step = info.get("step")
            self.sig_message.emit(f"Run stopped after step {step}." if step is not None else "Run stopped.")
            self.sig_run_ended.emit("cancelled", info)
        elif name == MAP:
            self.sig_message.emit("The 2-D map was not prepared (stopped); a run or Compute references draws it.")
        else:
            self.sig_message.emit(f"{JOB_LABELS.get(name, 'Job')} cancelled.")
            if name == ASK:
                self.sig_ask.emit(AskPiece("current", "", done=True))

    def stop(self) -> None:
        """Cancel the current job (a run stops within one step)."""
        if self._job is not None:
            if self._queued is not None:  # Stop also drops the job that was waiting for the map
                self._queued.deleteLater()
                self._queued = None
            self._job.cancel.set()
            self.sig_message.emit(f"Stopping: {JOB_LABELS.get(self._job.name, '')}…")

    def shutdown(self, timeout_ms: int = 20000) -> bool:
        return self.jobs.shutdown(timeout_ms)

    # ---- load -------------------------------------------------------------------------------------------
    def load(self, model: str | None, sae: str | None, sae_id: str | None = None, device: str = "auto",
             dtype: str = "float32", trust_remote_code: bool = False) -> Job | None:
        spec_args = dict(model=model or None, sae=sae or None, sae_id=sae_id or None, device=device or "auto",
                         dtype=dtype, trust_remote_code=trust_remote_code)

        def fn(job: Job) -> dict:
            from ..engine.pipeline import ModelSpec, load_session

            session = load_session(ModelSpec(**spec_args), progress=job.progress)
            job.progress("reading the entity lists", 0.97)
            candidates, fictitious, _ = session.entity_data()
            statuses = {s.name: s for s in (session.cached_statuses() or [])}
            rows = [EntityRow(e.name, e.type, ref, len(e.facts)) for ref, group in
                    (("candidate", candidates), ("lesser_known", session.lesser_known()), ("fictitious", fictitious))
                    for e in group]
            for row in rows:
                if row.name in statuses:
                    row.status, row.correct = statuses[row.name].status, statuses[row.name].correct
            return {"session": session, "description": session.describe(), "rows": rows}

        return self._start(LOAD, fn)

    def _done_load(self, result: dict) -> None:
        self.session = result["session"]
        self.description = result["description"]
        self.entities = result["rows"]
        self.modified = False
        self.last_report = None
        model = self.description["model"]
        self.sig_message.emit(f"Loaded {model.get('name')} ({model.get('n_layers')} layers, width {model.get('d_model')}).")
        self.sig_loaded.emit(self.description)
        self.sig_entities.emit(self.entities)
        self.suggestions = []
        self.sig_state.emit()
        if self.description.get("warnings"):
            self.sig_sae_warnings.emit(list(self.description["warnings"]))  # the map waits for the user's answer
        elif self.auto_map:
            self._map_after_load = True

    def unload(self) -> None:
        """Forget the loaded model and SAE (e.g. the user refused an SAE made for another model)."""
        if self.busy is not None:
            self.sig_message.emit(f"{JOB_LABELS[self.busy]}: wait for it to finish or stop it first.")
            return
        self.session = None
        self.description = None
        self.entities = []
        self.modified = False
        self.last_report = None
        self.last_audit = None
        self.sig_entities.emit([])
        self.sig_message.emit("Unloaded the model and the SAE.")
        self.sig_unloaded.emit()
        self.sig_state.emit()

    # ---- entities and targets ------------------------------------------------------------------------------
    def classify(self) -> Job | None:
        if self.session is None:
            self.sig_message.emit("Load a model first.")
            return None
        session = self.session

        def fn(job: Job) -> list:
            return session.classify(progress=job.progress, cancel=job.cancel)

        return self._start(CLASSIFY, fn)

    def _done_classify(self, statuses: list) -> None:
        self._set_statuses(statuses)
        known = sum(1 for s in statuses if s.status == "known")
        unknown = sum(1 for s in statuses if s.status == "unknown")
        self.sig_message.emit(f"Known-ness: {known} known, {unknown} unknown, "
                              f"{len(statuses) - known - unknown} excluded.")

    def _set_statuses(self, statuses: list) -> None:
        by_name = {s.name: s for s in statuses}
        for row in self.entities:
            if row.name in by_name:
                row.status, row.correct = by_name[row.name].status, by_name[row.name].correct
        self.sig_entities.emit(self.entities)

    def _set_reference_p_known(self, p_known: dict[str, float]) -> None:
        for row in self.entities:
            row.p_known = p_known.get(row.name)
        self.sig_entities.emit(self.entities)

    def compute_references(self, verify_known: bool = True) -> Job | None:
        """θ0's reference statistics (the run's K and U, minus the current targets): fills the table's P(known)."""
        if self.session is None:
            self.sig_message.emit("Load a model first.")
            return None
        session = self.session
        exclude = [t.name for t in self.targets]

        def fn(job: Job) -> int:
            _prepare_references(job, session, exclude, verify_known)
            return len(exclude)

        return self._start(REFERENCES, fn)

    def prepare_map(self) -> Job | None:
        """Known-ness and θ0's references with no target excluded (shipped for the demo, so seconds): the 2-D map,
        the table's P(known) and the Try-these list, before any run."""
        if self.session is None:
            return None
        session, verify = self.session, self.map_verify

        def fn(job: Job) -> MapReady:
            from ..engine.suggestions import suggested_targets

            refs = _prepare_references(job, session, [], verify)
            statuses = session.cached_statuses() or []
            suggestions = suggested_targets(statuses, refs.known_names, refs.known_entity_p_known.reshape(-1).tolist())
            return MapReady(_references_ready(refs, []), suggestions)

        return self._start(MAP, fn)

    def _done_map(self, ready: MapReady) -> None:
        self.suggestions = list(ready.suggestions)
        refs = ready.references
        if refs.references is not None and self.references is None:  # the latent dashboard can open before any run
            self.references = refs.references
            self.sig_references.emit()
        self.sig_message.emit(f"2-D map ready: {len(refs.known_names)} known and {len(refs.unknown_names)} unknown "
                              "reference entities.")
        self.sig_map.emit(ready)

    def _done_references(self, _excluded: int) -> None:
        shown = sum(1 for row in self.entities if row.p_known is not None)
        self.sig_message.emit(f"Reference statistics ready: P(known) for {shown} reference entities.")

    def add_target(self, name: str, type_: str = "other", facts: tuple = ()) -> bool:
        from ..engine.validation import check_target_name  # light: no torch

        try:
            clean = check_target_name(name)
        except Exception as error:  # noqa: BLE001 - a TargetNameError (UserError)
            self.sig_error.emit("Target not added", str(error), "")
            return False
        listed = next((row for row in self.entities if row.name.lower() == clean.lower()), None)
        if any(t.name.lower() == clean.lower() for t in self.targets):
            self.sig_message.emit(f"{clean} is already a target.")
            return False
        if listed is not None and not facts:
            target = Target(listed.name, listed.type, (), listed=True)
        else:
            target = Target(clean, type_ or "other", tuple(facts), listed=listed is not None)
        self.targets.append(target)
        self.sig_targets.emit(list(self.targets))
        self.sig_state.emit()
        return True

    def read_facts_file(self, path: str) -> list | None:
        """The entries (engine Entities) of a facts file; None, with an error dialog, when it cannot be read."""
        from ..engine.entities import load_facts_file

        try:
            return load_facts_file(path)
        except Exception as error:  # noqa: BLE001 - EntityDataError names file, line and column
            self.sig_error.emit("Facts file not loaded", str(error), "")
            return None

    def add_facts_file(self, path: str, names: list[str] | None = None) -> int:
        """Add the entries of a facts file as targets with their facts: those named in ``names``, or all."""
        entities = self.read_facts_file(path)
        if entities is None:
            return 0
        if names is not None:
            chosen = {name.lower() for name in names}
            entities = [e for e in entities if e.name.lower() in chosen]
        added = 0
        for entity in entities:
            self.targets = [t for t in self.targets if t.name.lower() != entity.name.lower()]
            self.targets.append(Target(entity.name, entity.type, tuple(entity.facts),
                                       listed=any(r.name.lower() == entity.name.lower() for r in self.entities)))
            added += 1
        self.sig_message.emit(f"Added {added} target(s) with facts from {Path(path).name}.")
        self.sig_targets.emit(list(self.targets))
        self.sig_state.emit()
        return added

    def remove_target(self, name: str) -> None:
        self.targets = [t for t in self.targets if t.name != name]
        self.sig_targets.emit(list(self.targets))
        self.sig_state.emit()

    def clear_targets(self) -> None:
        self.targets = []
        self.sig_targets.emit([])
        self.sig_state.emit()

    # ---- run ----------------------------------------------------------------------------------------------
    def start_run(self, config, *, evaluate: bool = True, verify_known: bool = True,  # noqa: ANN001
                  start_from: str = "original") -> Job | None:
        """Start unlearning the targets with ``config`` (an engine TrainConfig, already validated); ``start_from``
        "original" puts θ0 back first when the weights are modified, "current" continues from them."""
        if self.session is None:
            self.sig_message.emit("Load a model first.")
            return None
        if not self.targets:
            self.sig_error.emit("No target", "Add at least one target entity: double-click one in the table, "
                                "or type a name and press Add.", "")
            return None
        if self.busy is not None:
            self.sig_message.emit(f"{JOB_LABELS[self.busy]}: wait for it to finish or stop it first.")
            return None
        session = self.session
        targets = list(self.targets)
        run_dir = self._checked_run(config)
        if run_dir is None:
            return None

        def fn(job: Job) -> dict:
            from ..engine.pipeline import UnlearnRequest

            entities = _resolve(session, targets)
            refs = _prepare_references(job, session, [t.name for t in entities], verify_known)
            job.emit_event(_references_ready(refs, [t.name for t in entities]))
            request = UnlearnRequest(entities, config=config, run_dir=run_dir, evaluate=evaluate,
                                     verify_known=verify_known, start_from=start_from)
            result = drain_events(job, session.unlearn(request, job.cancel))
            report = dict(result.report)
            report.setdefault("run_dir", str(run_dir))
            return report

        self.run_started_at = time.monotonic()
        return self._start(RUN, fn)

    def _checked_run(self, config) -> Path | None:  # noqa: ANN001 - an engine TrainConfig
        """The run's checks, the same as the CLI's (engine/validation.py), made before the job starts; its folder."""
        from ..engine.paths import user_data_dir
        from ..engine.runs import new_folder_path
        from ..engine.validation import check_facts_fit, check_output_folder, check_targets, context_length, layers_below_note
        from ..errors import UserError

        session = self.session
        try:
            config.validate()
            check_targets(self.targets)
            check_facts_fit(self.targets, session.tokenizer, context_length(session.model, session.tokenizer))
            stem = time.strftime("%Y%m%d-%H%M%S-") + config.method
            run_dir = check_output_folder(new_folder_path(user_data_dir() / "runs", stem))
        except UserError as error:
            self.sig_error.emit("Run not started", str(error), "")
            return None
        note = layers_below_note(config.layers_below, session.hook.layer)
        if note:
            self.sig_message.emit(note[0].upper() + note[1:])
        return run_dir

    def _done_run(self, report: dict) -> None:
        self.last_report = report
        self.last_run_dir = report.get("run_dir")
        if report.get("stopped") == "diverged":  # an error, never "finished": the last good weights are back
            message = report.get("error", "the run diverged.")
            self.sig_message.emit(f"Unlearning diverged: {message}")
            self.sig_run_ended.emit("failed", report)
            self.sig_error.emit("Unlearning diverged", message, "")
            return
        self.sig_message.emit(f"Run finished after {report.get('steps')} steps ({report.get('stopped')}); "
                              f"report in {self.last_run_dir}.")
        self.sig_run_ended.emit("finished", report)

    def reset(self) -> Job | None:
        if self.session is None:
            return None
        session = self.session

        def fn(job: Job) -> bool:
            session.reset()
            return session.is_modified()

        return self._start(RESET, fn)

    def _done_reset(self, still_modified: bool) -> None:
        self.modified = bool(still_modified)
        self.sig_message.emit("The model is back to its original weights.")
        self.sig_state.emit()

    # ---- audit ----------------------------------------------------------------------------------------------
    def audit(self, verify_known: bool = True) -> Job | None:
        """The forgetting audit of the current targets: per-layer probe and logit lens, θ0 vs now; relearning check."""
        if self.session is None:
            self.sig_message.emit("Load a model first.")
            return None
        if not self.targets:
            self.sig_error.emit("No target", "Add the target entities to audit first (the ones you unlearned).", "")
            return None
        session = self.session
        targets = list(self.targets)

        def fn(job: Job):  # noqa: ANN202 - an engine AuditResult
            from ..engine.audit import run_audit

            entities = _resolve(session, targets)
            if verify_known:
                _classify_in_job(job, session, 0.3)
                start = 0.3
            else:
                start = 0.0
            return run_audit(session, entities, reference_limit=AUDIT_REFERENCE_LIMIT, relearn_steps=AUDIT_RELEARN_STEPS,
                             verify_known=verify_known, cancel=job.cancel,
                             progress=lambda m, f: job.progress(m, start + (1 - start) * f))

        return self._start(AUDIT, fn)

    def _done_audit(self, result) -> None:  # noqa: ANN001 - an engine AuditResult
        self.last_audit = result
        relearned = result.relearned_forget_accuracy
        tail = "" if relearned is None else f"; after {result.relearn_steps} relearning steps forget accuracy {relearned:.0%}"
        self.sig_message.emit(f"Audit of {', '.join(result.targets)} done ({len(result.layers)} layers{tail}).")
        self.sig_audit.emit(result)

    # ---- steering and the latent dashboard ------------------------------------------------------------------------
    def steer(self, entity: str, prompt: str, strength: float, *, add_unknown: bool = False, chat: bool = True,
              max_new_tokens: int = 32, verify_known: bool = True) -> Job | None:
        """Answer ``prompt`` with the original weights, unsteered and with ``entity``'s known-entity latents scaled."""
        if self.session is None:
            self.sig_message.emit("Load a model first.")
            return None
        session = self.session

        def fn(job: Job):  # noqa: ANN202 - an engine SteeringResult
            from ..engine.entities import validate_target_name
            from ..engine.steering import check_strength, steer

            check_strength(strength)
            refs = _prepare_references(job, session, [validate_target_name(entity)], verify_known)
            return steer(session, entity, prompt, strength=strength, add_unknown=add_unknown, chat=chat,
                         max_new_tokens=max_new_tokens, references=refs, progress=job.progress, cancel=job.cancel)

        return self._start(STEER, fn)

    def _done_steer(self, result) -> None:  # noqa: ANN001 - an engine SteeringResult
        self.sig_message.emit(f"Steered {result.entity} at strength {result.strength:g}: "
                              f"{'the same answer' if result.steered == result.original else 'a different answer'}.")
        self.sig_steered.emit(result)

    def latent_profiles(self, target: str | None = None) -> list:
        """The dashboard's statistics of the last run's top latents (engine LatentProfiles), with ``target``'s markers."""
        if self.references is None:
            return []
        from ..engine.latent_stats import latent_profiles, target_latent_values

        return latent_profiles(self.references, target=target or None,
                               target_start=target_latent_values(self.references, self.target_start.get(target)),
                               target_now=target_latent_values(self.references, self.target_now.get(target)))

    # ---- ask and save -------------------------------------------------------------------------------------------
    def ask(self, prompt: str, chat: bool = True, max_new_tokens: int = 48) -> Job | None:
        if self.session is None:
            self.sig_message.emit("Load a model first.")
            return None
        if self.busy is not None:
            self.sig_message.emit(f"{JOB_LABELS[self.busy]}: wait for it to finish or stop it first.")
            return None
        from ..engine.generation import check_prompt
        from ..errors import UserError

        session = self.session
        try:  # the CLI's check, with its words: not empty, and it fits the model's context with the answer
            check_prompt(prompt, session.tokenizer, session.model, max_new_tokens, chat=chat)
        except UserError as error:
            self.sig_error.emit("Question not asked", str(error), "")
            return None

        def fn(job: Job) -> bool:
            for which, original in (("original", True), ("current", False)):
                session.ask(prompt, lambda text, which=which: job.emit_event(AskPiece(which, text)), original=original,
                            chat=chat, max_new_tokens=max_new_tokens, cancel=job.cancel)
                job.emit_event(AskPiece(which, "", done=True))
                if job.cancel.is_set():
                    return False
            return True

        return self._start(ASK, fn)

    def _done_ask(self, _ok: bool) -> None:
        self.sig_message.emit("Answered with the original and the current weights.")

    def save_model(self, folder: str) -> Job | None:
        if self.session is None:
            return None
        session = self.session

        def fn(job: Job) -> str:
            job.progress(f"saving to {folder}", 0.1)
            return str(session.save_model(Path(folder)))

        return self._start(SAVE, fn)

    def _done_save(self, path: str) -> None:
        self.sig_message.emit(f"Saved the model to {path}.")
        self.sig_saved.emit(path)


# ---- helpers that run inside jobs (worker thread; no widgets) -------------------------------------------------------
def _resolve(session, targets: list[Target]) -> list:  # noqa: ANN001 - a Session; engine Entities
    """The GUI's targets as engine entities, as a run resolves them (typed facts override the shipped ones)."""
    from ..engine.entities import Entity

    extra = [Entity(t.name, t.type, t.facts) for t in targets if t.facts or not t.listed]
    return session.resolve_targets([t.name for t in targets if t.listed and not t.facts], extra)


def _references_ready(refs, targets: list[str]) -> ReferencesReady:  # noqa: ANN001 - engine References
    return ReferencesReady(refs.known_points.tolist(), refs.unknown_points.tolist(), list(refs.known_names),
                           list(refs.unknown_names), list(refs.top_known_latents), list(refs.top_unknown_latents),
                           list(targets), refs)


def _classify_in_job(job: Job, session, share: float) -> None:  # noqa: ANN001 - a Session
    """Known-ness with progress (minutes on the demo the first time, then cached); the table is told the result."""
    cached = session.cached_statuses() is not None
    statuses = session.classify(progress=lambda m, f: job.progress(f"known-ness: {m}", share * f), cancel=job.cancel)
    if not cached:
        job.emit_event(StatusesReady(list(statuses)))


def _prepare_references(job: Job, session, exclude: list[str], verify: bool):  # noqa: ANN001, ANN202
    """Known-ness (when verified) then θ0's reference statistics, each phase with its own 0–100 % progress.

    Tells the entity table each reference entity's P(known); returns the References.
    """
    if verify:  # first, so the table shows the statuses even when too few entities are known for references
        _classify_in_job(job, session, 1.0)
    refs = session.prepare_references(exclude, verify=verify, progress=job.progress, cancel=job.cancel)
    values = getattr(refs, "known_entity_p_known", None), getattr(refs, "unknown_entity_p_known", None)
    if values[0] is not None and values[1] is not None:
        p_known = dict(zip(refs.known_names, (float(v) for v in values[0].reshape(-1).tolist())))
        p_known.update(zip(refs.unknown_names, (float(v) for v in values[1].reshape(-1).tolist())))
        job.emit_event(ReferencePKnown(p_known))
    return refs
