"""Entities, facts and prompt templates (DESIGN.md §3).

Loads the shipped reference data under ``resources/`` (known candidates,
fictitious unknown entities, entity-prompt templates, generic text), parses
user facts files, validates target names and decides whether a model's
completion contains an expected answer.  No Qt imports here.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from rapidfuzz import fuzz

from ..errors import UserError
from .paths import resources_dir

__all__ = [
    "ENTITY_TYPES",
    "SPLITS",
    "HOLDOUT_SPLIT",
    "Fact",
    "ReverseQuery",
    "Entity",
    "Templates",
    "EntityDataError",
    "TargetNameError",
    "resources_dir",
    "load_known_candidates",
    "load_split",
    "neighbours_of",
    "load_unknown_entities",
    "load_templates",
    "load_facts_file",
    "validate_target_name",
    "answer_matches",
    "generic_text",
    "fill_template",
]

ENTITY_TYPES = ("person", "place", "work", "organisation", "other")
# DESIGN.md §8: settings may be chosen on "tune"; "eval" is never used for a choice; "retain" is the fixed
# retain-evaluation set. Entities without a split are references and the retain set a run trains on.
SPLITS = ("tune", "eval", "retain")
# The held-out part of resources/entities/lesser_known.json (bench/knownness.py): never a reference, never trained
# on, and not one of the evaluation splits above (it needs none of their per-form data).
HOLDOUT_SPLIT = "knownness_holdout"
_ENTRY_SPLITS = (*SPLITS, HOLDOUT_SPLIT)

PLACEHOLDER = "{entity}"
MAX_NAME_LENGTH = 200
FUZZY_MIN_LENGTH = 5
FUZZY_THRESHOLD = 90.0
FUZZY_HEAD_CHARS = 60

_ENTRY_KEYS = ("entity", "name", "type", "facts", "split", "reverse", "passage", "neighbours")
_FACT_KEYS = ("prompt", "answers", "question", "paraphrases", "fill_in_blank")
_REVERSE_KEYS = ("prompt", "answers")


@dataclass(frozen=True)
class Fact:
    """One fact: a completion prompt, acceptable answers, optional chat form."""

    prompt: str
    answers: tuple[str, ...]
    question: str | None = None
    paraphrases: tuple[str, ...] = ()
    fill_in_blank: str | None = None  # the entity's name mid-sentence, the answer at the end


@dataclass(frozen=True)
class ReverseQuery:
    """An attribute → entity query: correct when the completion names the entity (``answers``: its name, aliases)."""

    prompt: str
    answers: tuple[str, ...]


@dataclass(frozen=True)
class Entity:
    """A named entity with its type, facts and the evaluation data of DESIGN.md §4 and §8."""

    name: str
    type: str = "other"
    facts: tuple[Fact, ...] = ()
    split: str | None = None  # one of SPLITS or HOLDOUT_SPLIT; None: reference / retain-training pool
    reverse: tuple[ReverseQuery, ...] = ()
    passage: str | None = None  # neutral sentences about the entity holding none of its facts' answers
    neighbours: tuple[str, ...] = ()  # names of linked entities (they share an answer or appear in its facts)


@dataclass(frozen=True)
class Templates:
    """Entity-prompt templates, each containing ``{entity}`` exactly once, in three disjoint sets (DESIGN.md §8).

    ``train``: the loss; ``stop``: early stopping and live monitoring; ``eval``: measurements.
    """

    train: tuple[str, ...]
    stop: tuple[str, ...]
    eval: tuple[str, ...]


class EntityDataError(UserError, ValueError):
    """A facts/entities/templates file is unreadable or malformed.

    The message names the file, the line/column (JSON syntax errors) or the
    entry and key (schema errors), and what was expected.
    """


class TargetNameError(UserError, ValueError):
    """The target entity name typed by the user is not usable."""


# --------------------------------------------------------------------------
# resources


# --------------------------------------------------------------------------
# parsing


def _read_json(path: Path) -> Any:
    """Read a JSON file, turning every failure into an EntityDataError."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise EntityDataError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise EntityDataError(
            f"{path}: not UTF-8 text (byte {exc.start}): expected a UTF-8 JSON file"
        ) from None
    except OSError as exc:
        raise EntityDataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise EntityDataError(
            f"{path}: JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None


def _is_str_list(value: Any, allow_empty: bool) -> bool:
    return (
        isinstance(value, list)
        and (allow_empty or len(value) > 0)
        and all(isinstance(v, str) and v.strip() for v in value)
    )


def _optional_text(raw: dict, key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise EntityDataError(f"{where}: {key!r} must be a non-empty string or absent")
    return value.strip() if value else None


def _parse_fact(raw: Any, where: str) -> Fact:
    if not isinstance(raw, dict):
        raise EntityDataError(
            f"{where}: must be an object with 'prompt' and 'answers', got {type(raw).__name__}"
        )
    unknown = sorted(set(raw) - set(_FACT_KEYS))
    if unknown:
        raise EntityDataError(
            f"{where}: unknown key {unknown[0]!r} (expected keys: {', '.join(_FACT_KEYS)})"
        )
    prompt = raw.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise EntityDataError(f"{where}: 'prompt' must be a non-empty string")
    answers = raw.get("answers")
    if not _is_str_list(answers, allow_empty=False):
        raise EntityDataError(f"{where}: 'answers' must be a non-empty list of strings")
    question = _optional_text(raw, "question", where)
    fill_in_blank = _optional_text(raw, "fill_in_blank", where)
    paraphrases = raw.get("paraphrases", [])
    if paraphrases is None:
        paraphrases = []
    if not _is_str_list(paraphrases, allow_empty=True):
        raise EntityDataError(f"{where}: 'paraphrases' must be a list of non-empty strings")
    return Fact(
        prompt=prompt.strip(),
        answers=tuple(a.strip() for a in answers),
        question=question,
        paraphrases=tuple(p.strip() for p in paraphrases),
        fill_in_blank=fill_in_blank,
    )


def _parse_reverse(raw: Any, where: str) -> tuple[ReverseQuery, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise EntityDataError(f"{where}: 'reverse' must be a list of {{\"prompt\": ..., \"answers\": [...]}} objects")
    queries = []
    for i, item in enumerate(raw, start=1):
        here = f"{where}: reverse[{i}]"
        if not isinstance(item, dict):
            raise EntityDataError(f"{here}: must be an object with 'prompt' and 'answers', got {type(item).__name__}")
        unknown = sorted(set(item) - set(_REVERSE_KEYS))
        if unknown:
            raise EntityDataError(f"{here}: unknown key {unknown[0]!r} (expected keys: {', '.join(_REVERSE_KEYS)})")
        prompt = item.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise EntityDataError(f"{here}: 'prompt' must be a non-empty string")
        if not _is_str_list(item.get("answers"), allow_empty=False):
            raise EntityDataError(f"{here}: 'answers' must be a non-empty list of strings (the entity's name and aliases)")
        queries.append(ReverseQuery(prompt.strip(), tuple(a.strip() for a in item["answers"])))
    return tuple(queries)


def _parse_extras(raw: dict, where: str) -> dict[str, Any]:
    """The optional evaluation keys of an entry: split, reverse, passage, neighbours."""
    split = raw.get("split")
    if split is not None and split not in _ENTRY_SPLITS:
        raise EntityDataError(f"{where}: 'split' must be one of {', '.join(_ENTRY_SPLITS)} or absent, got {split!r}")
    neighbours = raw.get("neighbours", [])
    if neighbours is None:
        neighbours = []
    if not _is_str_list(neighbours, allow_empty=True):
        raise EntityDataError(f"{where}: 'neighbours' must be a list of entity names")
    return {"split": split, "reverse": _parse_reverse(raw.get("reverse"), where),
            "passage": _optional_text(raw, "passage", where),
            "neighbours": tuple(" ".join(n.split()) for n in neighbours)}


def _parse_entities(data: Any, path: Path) -> list[Entity]:
    """Validate the entity-list schema; entries are numbered from 1."""
    if not isinstance(data, list):
        raise EntityDataError(
            f"{path}: the top level must be a list of entities "
            f'([{{"entity": ..., "facts": [...]}}, ...]), got {type(data).__name__}'
        )
    if not data:
        raise EntityDataError(f"{path}: the list of entities is empty")
    entities: list[Entity] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(data, start=1):
        where = f"{path}: entry {index}"
        if not isinstance(raw, dict):
            raise EntityDataError(
                f"{where}: must be an object with 'entity' and 'facts', got {type(raw).__name__}"
            )
        unknown = sorted(set(raw) - set(_ENTRY_KEYS))
        if unknown:
            raise EntityDataError(
                f"{where}: unknown key {unknown[0]!r} (expected keys: entity (or name), type, facts, "
                "split, reverse, passage, neighbours)"
            )
        name = raw.get("entity", raw.get("name"))
        if not isinstance(name, str) or not name.strip():
            raise EntityDataError(f"{where}: 'entity' must be a non-empty string (the entity's name)")
        name = " ".join(name.split())
        where = f"{path}: entry {index} ({name!r})"
        key = name.casefold()
        if key in seen:
            raise EntityDataError(f"{where}: duplicate entity name (also entry {seen[key]})")
        seen[key] = index
        etype = raw.get("type", "other")
        if etype is None:
            etype = "other"
        if not isinstance(etype, str) or etype not in ENTITY_TYPES:
            raise EntityDataError(f"{where}: 'type' must be one of {', '.join(ENTITY_TYPES)}, got {etype!r}")
        facts_raw = raw.get("facts")
        if not isinstance(facts_raw, list) or not facts_raw:
            raise EntityDataError(f"{where}: 'facts' must be a non-empty list of fact objects")
        facts = tuple(
            _parse_fact(f, f"{where}: facts[{i}]") for i, f in enumerate(facts_raw, start=1)
        )
        entities.append(Entity(name=name, type=etype, facts=facts, **_parse_extras(raw, where)))
    return entities


def load_facts_file(path: str | Path) -> list[Entity]:
    """Load a user facts file (or a file in the shipped known.json schema).

    Format: ``[{"entity": "Marie Curie", "type": "person", "facts":
    [{"prompt": "...", "answers": ["..."], "question": "...", "paraphrases": [...],
    "fill_in_blank": "..."}]}]``; ``name`` may be used instead of ``entity``;
    everything but the name, the facts and their prompt and answers is optional,
    as are the entry keys ``split``, ``reverse`` (``[{"prompt": ..., "answers":
    [...]}]``), ``passage`` and ``neighbours``.  Raises EntityDataError naming the file and
    the line/column or the entry (numbered from 1) and key that is wrong.
    """
    p = Path(path)
    return _parse_entities(_read_json(p), p)


# --------------------------------------------------------------------------
# shipped data


def _check_shipped(entities: list[Entity], path: Path, min_facts: int = 2) -> None:
    names = {e.name for e in entities}
    for index, ent in enumerate(entities, start=1):
        where = f"{path}: entry {index} ({ent.name!r})"
        if len(ent.facts) < min_facts:
            raise EntityDataError(f"{where}: shipped entities need at least {min_facts} facts")
        for i, fact in enumerate(ent.facts, start=1):
            if fact.question is None:
                raise EntityDataError(f"{where}: facts[{i}]: 'question' is required in shipped data")
            if fact.prompt in fact.paraphrases:
                raise EntityDataError(f"{where}: facts[{i}]: a paraphrase repeats the prompt")
            if ent.split in SPLITS and fact.fill_in_blank is None:
                raise EntityDataError(f"{where}: facts[{i}]: 'fill_in_blank' is required for {ent.split} entities")
        if ent.split in SPLITS and (not ent.reverse or ent.passage is None):
            raise EntityDataError(f"{where}: {ent.split} entities need 'reverse' queries and a 'passage'")
        if ent.passage is not None:
            given = [a for f in without_copied_answers(ent).facts for a in f.answers if answer_matches(ent.passage, [a])]
            if given:
                raise EntityDataError(f"{where}: the passage contains the answer {given[0]!r}")
        if ent.split in ("tune", "eval") and len(ent.neighbours) < 2:
            raise EntityDataError(f"{where}: {ent.split} entities need at least 2 'neighbours'")
        for neighbour in ent.neighbours:
            if neighbour not in names or neighbour == ent.name:
                raise EntityDataError(f"{where}: neighbour {neighbour!r} is not another entry of this file")


def without_copied_answers(entity: Entity) -> Entity:
    """Drop answers that are part of the entity's own name (they test copying, not knowledge), and facts left empty.

    E.g. "The Eiffel Tower was designed by the engineer Gustave" → "Eiffel" is in the name itself.
    """
    name = _normalise(entity.name)
    facts = []
    for fact in entity.facts:
        answers = tuple(a for a in fact.answers if not re.search(rf"\b{re.escape(_normalise(a))}\b", name))
        if answers:
            facts.append(replace(fact, answers=answers))
    return replace(entity, facts=tuple(facts))


@lru_cache(maxsize=None)
def _shipped(kind: str) -> tuple[Entity, ...]:
    path = resources_dir() / "entities" / f"{kind}.json"
    entities = load_facts_file(path)
    _check_shipped(entities, path)
    return tuple(without_copied_answers(entity) for entity in entities)


@lru_cache(maxsize=None)
def _check_no_overlap() -> None:
    seen: dict[str, str] = {}
    for kind in ("known", "lesser_known", "unknown"):
        for ent in _shipped(kind):
            earlier = seen.get(ent.name.casefold())
            if earlier is not None:
                where = "a known candidate" if earlier == "known" else f"in {earlier}.json"
                raise EntityDataError(f"{resources_dir() / 'entities' / f'{kind}.json'}: {ent.name!r} is also {where}")
            seen[ent.name.casefold()] = kind


def load_known_candidates() -> list[Entity]:
    """Well-known candidate entities (resources/entities/known.json)."""
    _check_no_overlap()
    return list(_shipped("known"))


def load_lesser_known() -> list[Entity]:
    """Real entities of middling and low fame (resources/entities/lesser_known.json).

    Known-ness decides per model which side each falls on: those the model does not answer are the unknown
    references (real entities it does not know, as in Ferrando et al.); the ``knownness_holdout`` third never
    enters the references and is what bench/knownness.py measures the probe on.
    """
    _check_no_overlap()
    return list(_shipped("lesser_known"))


def load_split(split: str) -> list[Entity]:
    """The known candidates of one split of DESIGN.md §8 ("tune", "eval" or "retain")."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return [e for e in load_known_candidates() if e.split == split]


def neighbours_of(entity: Entity) -> list[Entity]:
    """The known candidates named in ``entity.neighbours``, in that order (names not shipped are skipped)."""
    by_name = {e.name: e for e in load_known_candidates()}
    return [by_name[name] for name in entity.neighbours if name in by_name]


def load_unknown_entities() -> list[Entity]:
    """Fictitious reference entities (resources/entities/unknown.json)."""
    _check_no_overlap()
    return list(_shipped("unknown"))


@lru_cache(maxsize=None)
def load_templates() -> Templates:
    """Train/stop/eval entity-prompt templates (resources/entities/templates.json)."""
    path = resources_dir() / "entities" / "templates.json"
    data = _read_json(path)
    keys = ("train", "stop", "eval")
    if not isinstance(data, dict):
        raise EntityDataError(f"{path}: the top level must be an object with 'train', 'stop' and 'eval'")
    unknown = sorted(set(data) - set(keys))
    if unknown:
        raise EntityDataError(f"{path}: unknown key {unknown[0]!r} (expected keys: {', '.join(keys)})")
    groups: dict[str, tuple[str, ...]] = {}
    for key in keys:
        items = data.get(key)
        if not _is_str_list(items, allow_empty=False):
            raise EntityDataError(f"{path}: {key!r} must be a non-empty list of strings")
        for i, tpl in enumerate(items, start=1):
            if tpl.count(PLACEHOLDER) != 1:
                raise EntityDataError(
                    f"{path}: {key}[{i}] {tpl!r}: must contain {PLACEHOLDER} exactly once"
                )
            if tpl.lstrip().startswith(PLACEHOLDER):  # DESIGN.md §2: on a model without BOS, position 0 is the sink
                raise EntityDataError(
                    f"{path}: {key}[{i}] {tpl!r}: put some text before {PLACEHOLDER}: on models without a BOS token "
                    "the first position is an attention sink, unlike every other position of the entity"
                )
        if len(set(items)) != len(items):
            raise EntityDataError(f"{path}: {key!r} contains duplicate templates")
        groups[key] = tuple(items)
    for i, first in enumerate(keys):
        for second in keys[i + 1:]:
            shared = set(groups[first]) & set(groups[second])
            if shared:
                raise EntityDataError(f"{path}: template {sorted(shared)[0]!r} is in both {first} and {second}")
    return Templates(**groups)


def generic_text(kind: str = "heldout") -> str:
    """Generic English prose: ``"heldout"`` (perplexity) or ``"retain"`` (retain loss)."""
    if kind not in ("heldout", "retain"):
        raise ValueError(f"generic text kind must be 'heldout' or 'retain', got {kind!r}")
    path = resources_dir() / "text" / f"generic_{kind}.txt"
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EntityDataError(f"{path}: cannot be read ({exc.strerror or exc})") from None


# --------------------------------------------------------------------------
# names, templates, answers


def validate_target_name(name: str) -> str:
    """Return the cleaned target name (trimmed, inner whitespace collapsed).

    Raises TargetNameError for an empty name, control characters (newlines,
    tabs, ...) or a name longer than MAX_NAME_LENGTH characters.
    """
    if not isinstance(name, str):
        raise TargetNameError(f"the target name must be text, got {type(name).__name__}")
    stripped = name.strip()
    if not stripped:
        raise TargetNameError("the target name is empty: type the name of an entity, e.g. 'Marie Curie'")
    for pos, ch in enumerate(stripped):
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            raise TargetNameError(
                f"the target name contains a control character ({ch!r}) at position {pos + 1}: "
                "type the name on one line, without tabs or special characters"
            )
    cleaned = " ".join(stripped.split())
    if len(cleaned) > MAX_NAME_LENGTH:
        raise TargetNameError(
            f"the target name is {len(cleaned)} characters long: at most {MAX_NAME_LENGTH} are allowed"
        )
    return cleaned


def fill_template(template: str, entity: str) -> tuple[str, int, int]:
    """Put ``entity`` into ``template``; return (text, start, end) of the entity span."""
    if template.count(PLACEHOLDER) != 1:
        raise ValueError(f"template {template!r} must contain {PLACEHOLDER} exactly once")
    start = template.index(PLACEHOLDER)
    text = template[:start] + entity + template[start + len(PLACEHOLDER):]
    return text, start, start + len(entity)


_NON_WORD = re.compile(r"[^\w]+|_+")


def _normalise(text: str) -> str:
    """Casefold, strip accents, turn punctuation into spaces, collapse whitespace."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    no_marks = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_NON_WORD.sub(" ", no_marks).split())


def _fuzzy_word_match(answer: str, head: str) -> bool:
    """True if some run of whole words in ``head`` is within the fuzzy threshold."""
    if fuzz.partial_ratio(answer, head) < FUZZY_THRESHOLD:
        return False
    words = head.split()
    n = len(answer.split())
    for size in {max(1, n - 1), n, n + 1}:
        for i in range(0, max(0, len(words) - size) + 1):
            window = " ".join(words[i:i + size])
            if window and fuzz.ratio(answer, window) >= FUZZY_THRESHOLD:
                return True
    return False


def answer_matches(completion: str, answers: Sequence[str]) -> bool:
    """Does ``completion`` contain one of ``answers``?

    Rule: both sides are normalised (case-folded, accents removed, punctuation
    turned into spaces, whitespace collapsed).  A match is either
    1. an exact whole-word occurrence of a normalised answer anywhere in the
       completion ("Paris" matches " Paris, France." but not " Parisian"), or
    2. for answers of at least 5 characters, a small spelling variant in the
       first 60 characters: ``fuzz.partial_ratio >= 90`` and some run of whole
       words there has ``fuzz.ratio >= 90`` with the answer ("Rowlings" and
       "Shakespear" match; "Parisian" for "Paris" and "Australia" for
       "Austria" do not).
    """
    comp = _normalise(completion)
    if not comp:
        return False
    padded = f" {comp} "
    head = _normalise(completion[: FUZZY_HEAD_CHARS + 20])[:FUZZY_HEAD_CHARS]
    for raw in answers:
        ans = _normalise(raw)
        if not ans:
            continue
        if f" {ans} " in padded:
            return True
        if len(ans) >= FUZZY_MIN_LENGTH and _fuzzy_word_match(ans, head):
            return True
    return False
