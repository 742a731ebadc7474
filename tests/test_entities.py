"""Tests for unlearn_studio.engine.entities (shipped data and helpers)."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest
from rapidfuzz import fuzz

from unlearn_studio.engine import entities as ent
from unlearn_studio.engine.entities import (
    ENTITY_TYPES,
    Entity,
    EntityDataError,
    Fact,
    ReverseQuery,
    TargetNameError,
    answer_matches,
    fill_template,
    generic_text,
    load_facts_file,
    load_known_candidates,
    load_templates,
    load_unknown_entities,
    resources_dir,
    validate_target_name,
)

BENCHMARK_TARGETS = (
    "Eiffel Tower", "Harry Potter", "Sherlock Holmes", "Albert Einstein", "Barack Obama",
    "Mount Everest", "Microsoft", "William Shakespeare", "Statue of Liberty", "The Beatles",
    "Leonardo da Vinci", "Amazon River",
)


# ----------------------------------------------------------------- shipped data

def test_resources_dir_has_entity_files() -> None:
    root = resources_dir()
    for name in ("known.json", "unknown.json", "templates.json"):
        assert (root / "entities" / name).is_file()


@pytest.mark.parametrize("loader", [load_known_candidates, load_unknown_entities])
def test_shipped_counts_and_schema(loader) -> None:
    items = loader()
    assert len(items) >= 150
    for e in items:
        assert isinstance(e, Entity)
        assert e.name == e.name.strip() and e.name
        assert e.type in ENTITY_TYPES and e.type != "other"
        assert len(e.facts) >= 2, e.name
        for f in e.facts:
            assert isinstance(f, Fact)
            assert f.answers and all(a.strip() for a in f.answers)
            assert f.question
            assert len(f.paraphrases) >= 2, (e.name, f.prompt)
            assert f.prompt not in f.paraphrases
            assert len(set(f.paraphrases)) == len(f.paraphrases)
            for text in (f.prompt, f.question, *f.paraphrases):
                assert e.name in text, (e.name, text)


@pytest.mark.parametrize("loader", [load_known_candidates, load_unknown_entities])
def test_several_types_are_represented(loader) -> None:
    counts = {t: 0 for t in ENTITY_TYPES}
    for e in loader():
        counts[e.type] += 1
    for t in ("person", "place", "work", "organisation"):
        assert counts[t] >= 25, (t, counts)


def test_shipped_names_are_unique() -> None:
    for items in (load_known_candidates(), load_unknown_entities()):
        names = [e.name.casefold() for e in items]
        assert len(names) == len(set(names))


def test_known_and_unknown_do_not_overlap() -> None:
    known = {e.name.casefold() for e in load_known_candidates()}
    unknown = {e.name.casefold() for e in load_unknown_entities()}
    assert not known & unknown


def test_benchmark_targets_have_four_facts() -> None:
    by_name = {e.name: e for e in load_known_candidates()}
    for name in BENCHMARK_TARGETS:
        assert name in by_name, name
        assert len(by_name[name].facts) >= 4, name


def test_known_prompts_end_without_their_answer() -> None:
    """A completion prompt must not already contain the answer at its end."""
    for e in load_known_candidates():
        for f in e.facts:
            assert not f.prompt.endswith(tuple(f.answers)), f.prompt


def _template_words(template: str) -> str:
    return " ".join(re.sub(r"[^\w]+", " ", template.replace("{entity}", " ").lower()).split())


# ----------------------------------------------------------------- evaluation splits (DESIGN.md §8)

TUNE_TARGETS = ("Eiffel Tower", "Harry Potter", "Sherlock Holmes", "Albert Einstein", "Barack Obama")
MAIN_TYPES = ("person", "place", "work", "organisation")


def _split(name: str) -> list[Entity]:
    return [e for e in load_known_candidates() if e.split == name]


def _normalised(text: str) -> str:
    return f" {ent._normalise(text)} "


def _fact_text(entity: Entity) -> str:
    parts = []
    for fact in entity.facts:
        parts += [fact.prompt, fact.question or "", fact.fill_in_blank or "", *fact.paraphrases, *fact.answers]
    return _normalised(" ".join(parts))


def _linked(a: Entity, b: Entity) -> bool:
    """They share an answer, or one's name occurs in the other's facts."""
    answers = [{_normalised(x) for f in e.facts for x in f.answers} for e in (a, b)]
    return bool(answers[0] & answers[1]) or _normalised(a.name) in _fact_text(b) or _normalised(b.name) in _fact_text(a)


def test_splits_have_the_sizes_and_types_of_the_protocol() -> None:
    tune, evaluation, retain = _split("tune"), _split("eval"), _split("retain")
    assert set(TUNE_TARGETS) <= {e.name for e in tune} and len(tune) <= 10
    assert len(evaluation) >= 24 and len(retain) >= 32
    for chosen in (evaluation, retain):
        assert {e.type for e in chosen} >= set(MAIN_TYPES)
    assert ent.load_split("eval") == evaluation
    with pytest.raises(ValueError, match="split must be one of"):
        ent.load_split("heldout")


def test_eval_entities_are_not_linked_to_tune_entities() -> None:
    """Settings chosen on tune must not have seen an eval entity: neither names the other, none is a tune neighbour."""
    for target in _split("eval"):
        for tuned in _split("tune"):
            assert _normalised(tuned.name) not in _fact_text(target), (target.name, tuned.name)
            assert _normalised(target.name) not in _fact_text(tuned), (target.name, tuned.name)
            assert target.name not in tuned.neighbours
            # Near-duplicates: a shared name word (Michelle / Barack Obama), a tune answer naming the entity ("wizard").
            words = [set(_normalised(e.name).split()) for e in (target, tuned)]
            assert not {w for w in words[0] & words[1] if len(w) >= 4}, (target.name, tuned.name)
            answers = {a.strip() for f in tuned.facts for a in map(_normalised, f.answers)}
            assert not answers & words[0], (target.name, tuned.name)


@pytest.mark.parametrize("split", ["tune", "eval", "retain"])
def test_split_entities_have_data_for_every_form(split: str) -> None:
    for e in _split(split):
        name = _normalised(e.name)
        for f in e.facts:
            blank = f.fill_in_blank
            assert blank and e.name in blank and not blank.startswith(e.name), (e.name, blank)  # name mid-sentence
            assert not blank.endswith(f.answers), blank
            assert blank not in (f.prompt, *f.paraphrases)
        assert e.reverse, e.name
        for query in e.reverse:
            assert name not in _normalised(query.prompt), query.prompt  # the target is what is asked for
            assert e.name in query.answers, (e.name, query)
        assert e.passage and e.name in e.passage
        for f in e.facts:
            copied = ent.without_copied_answers(Entity(e.name, e.type, (f,))).facts
            assert not copied or not answer_matches(e.passage, copied[0].answers), (e.name, f.answers)


@pytest.mark.parametrize("split", ["tune", "eval"])
def test_neighbours_are_linked_entries_with_facts(split: str) -> None:
    by_name = {e.name: e for e in load_known_candidates()}
    for e in _split(split):
        assert len(e.neighbours) >= 2, e.name
        assert len(set(e.neighbours)) == len(e.neighbours) and e.name not in e.neighbours
        for neighbour in e.neighbours:
            assert neighbour in by_name and by_name[neighbour].facts, (e.name, neighbour)
            assert _linked(e, by_name[neighbour]), (e.name, neighbour)
        assert [n.name for n in ent.neighbours_of(e)] == list(e.neighbours)


@pytest.mark.demo
def test_the_demo_model_knows_the_eval_and_retain_entities(demo_model_dir) -> None:
    """≥ 24 eval and ≥ 32 retain entities answer ≥ 2 of their facts (the known test of engine/knownness.py)."""
    from unlearn_studio.engine.knownness import KNOWN, classify_entities
    from unlearn_studio.engine.models import load_model

    loaded = load_model(demo_model_dir, device="cpu")
    chosen = _split("eval") + _split("retain")
    statuses = {s.name: s.status for s in classify_entities(loaded.model, loaded.tokenizer, chosen, [])}
    known = {split: [e for e in _split(split) if statuses[e.name] == KNOWN] for split in ("eval", "retain")}
    assert len(known["eval"]) >= 24 and len(known["retain"]) >= 32, {k: len(v) for k, v in known.items()}
    for split, entities in known.items():
        assert {e.type for e in entities} >= set(MAIN_TYPES), split


def test_templates_valid_disjoint_and_not_near_duplicates() -> None:
    t = load_templates()
    assert len(t.train) >= 16 and len(t.stop) >= 8 and len(t.eval) >= 12
    sets = {"train": t.train, "stop": t.stop, "eval": t.eval}
    for tpl in t.train + t.stop + t.eval:
        assert tpl.count("{entity}") == 1, tpl
    for first, second in itertools.combinations(sets, 2):
        assert not set(sets[first]) & set(sets[second]), (first, second)
        for a in sets[first]:
            for b in sets[second]:
                wa, wb = _template_words(a), _template_words(b)
                # A reworded copy ("I have heard of X" / "Have you ever heard of X?") would leak across sets.
                assert fuzz.ratio(wa, wb) < 65 and fuzz.token_set_ratio(wa, wb) < 80, (a, b)


def test_generic_texts() -> None:
    heldout, retain = generic_text("heldout"), generic_text()
    assert heldout == retain  # default is "heldout"
    retain = generic_text("retain")
    assert heldout != retain
    for text in (heldout, retain):
        assert 1000 <= len(text.split()) <= 2500
    known = [e.name for e in load_known_candidates()]
    for text in (heldout, retain):
        for name in known:
            assert not re.search(r"(?<!\w)" + re.escape(name) + r"(?!\w)", text), name
    with pytest.raises(ValueError):
        generic_text("train")


# ----------------------------------------------------------------- facts files

def _write(tmp_path: Path, content: str, name: str = "facts.json") -> Path:
    p = tmp_path / name
    p.write_text(content, encoding="utf-8")
    return p


def test_load_facts_file_user_format(tmp_path: Path) -> None:
    p = _write(tmp_path, json.dumps([{
        "entity": "Marie Curie", "type": "person",
        "facts": [{"prompt": "Marie Curie is famous for her research on",
                   "answers": ["radioactivity", "radium"]}],
    }]))
    [e] = load_facts_file(p)
    assert e == Entity("Marie Curie", "person", (Fact(
        "Marie Curie is famous for her research on", ("radioactivity", "radium")),))


def test_load_facts_file_accepts_known_schema_and_defaults(tmp_path: Path) -> None:
    p = _write(tmp_path, json.dumps([{"name": "  Ada   Lovelace ", "facts": [
        {"prompt": "Ada Lovelace was a", "answers": ["mathematician"], "question": "Who was Ada Lovelace?",
         "paraphrases": ["Ada Lovelace worked as a"]}]}]))
    [e] = load_facts_file(str(p))
    assert e.name == "Ada Lovelace" and e.type == "other"
    assert e.facts[0].question == "Who was Ada Lovelace?"
    assert e.facts[0].paraphrases == ("Ada Lovelace worked as a",)


def test_load_shipped_file_through_user_loader() -> None:
    assert len(load_facts_file(resources_dir() / "entities" / "known.json")) >= 150


def test_load_facts_file_reads_the_evaluation_keys(tmp_path: Path) -> None:
    p = _write(tmp_path, json.dumps([{
        "entity": "Marie Curie", "type": "person", "split": "eval",
        "facts": [{"prompt": "Marie Curie researched", "answers": ["radium"],
                   "fill_in_blank": "In Paris, the scientist Marie Curie researched"}],
        "reverse": [{"prompt": "Radium was discovered by", "answers": ["Marie Curie", "Curie"]}],
        "passage": "Marie Curie was born in Warsaw.", "neighbours": ["Pierre  Curie"],
    }]))
    [e] = load_facts_file(p)
    assert e.split == "eval" and e.passage == "Marie Curie was born in Warsaw." and e.neighbours == ("Pierre Curie",)
    assert e.facts[0].fill_in_blank == "In Paris, the scientist Marie Curie researched"
    assert e.reverse == (ReverseQuery("Radium was discovered by", ("Marie Curie", "Curie")),)
    [plain] = load_facts_file(_write(tmp_path, json.dumps([{"entity": "X", "facts": [{"prompt": "X is", "answers": ["a"]}]}])))
    assert (plain.split, plain.reverse, plain.passage, plain.neighbours, plain.facts[0].fill_in_blank) == (None, (), None, (), None)


@pytest.mark.parametrize("extra, fragment", [
    ({"split": "test"}, "'split' must be one of tune, eval, retain"),
    ({"reverse": "Radium was discovered by"}, "'reverse' must be a list"),
    ({"reverse": [{"prompt": "Who?", "answer": ["X"]}]}, "reverse[1]: unknown key 'answer'"),
    ({"reverse": [{"prompt": "Who?", "answers": []}]}, "reverse[1]: 'answers' must be a non-empty list"),
    ({"passage": ""}, "'passage' must be a non-empty string"),
    ({"neighbours": "Y"}, "'neighbours' must be a list of entity names"),
    ({"facts": [{"prompt": "X is", "answers": ["a"], "fill_in_blank": 3}]}, "'fill_in_blank' must be a non-empty string"),
])
def test_evaluation_key_errors(tmp_path: Path, extra, fragment) -> None:
    p = _write(tmp_path, json.dumps([{"entity": "X", "facts": [{"prompt": "X is", "answers": ["a"]}], **extra}]))
    with pytest.raises(EntityDataError) as info:
        load_facts_file(p)
    assert fragment in str(info.value) and "entry 1" in str(info.value)


def test_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    p = _write(tmp_path, '[\n  {"entity": "Marie Curie",\n   "facts": [}\n]')
    with pytest.raises(EntityDataError) as info:
        load_facts_file(p)
    msg = str(info.value)
    assert str(p) in msg
    assert "line 3" in msg and "column 14" in msg


def test_missing_answers_names_entry_and_key(tmp_path: Path) -> None:
    p = _write(tmp_path, json.dumps([
        {"entity": "Isaac Newton", "facts": [{"prompt": "Isaac Newton was a", "answers": ["physicist"]}]},
        {"entity": "Marie Curie", "facts": [{"prompt": "Marie Curie was a"}]},
    ]))
    with pytest.raises(EntityDataError) as info:
        load_facts_file(p)
    msg = str(info.value)
    assert "facts.json" in msg and "entry 2" in msg and "'Marie Curie'" in msg
    assert "'answers' must be a non-empty list of strings" in msg


@pytest.mark.parametrize("answers", [[], "radium", [""], [1]])
def test_bad_answers_rejected(tmp_path: Path, answers) -> None:
    p = _write(tmp_path, json.dumps([{"entity": "X", "facts": [{"prompt": "X is", "answers": answers}]}]))
    with pytest.raises(EntityDataError, match="'answers'"):
        load_facts_file(p)


def test_non_list_top_level(tmp_path: Path) -> None:
    p = _write(tmp_path, json.dumps({"entity": "Marie Curie", "facts": []}))
    with pytest.raises(EntityDataError, match="top level must be a list"):
        load_facts_file(p)


@pytest.mark.parametrize("entry, fragment", [
    ({"facts": [{"prompt": "p", "answers": ["a"]}]}, "'entity'"),
    ({"entity": "X", "type": "animal", "facts": [{"prompt": "p", "answers": ["a"]}]}, "'type' must be one of"),
    ({"entity": "X", "facts": []}, "'facts' must be a non-empty list"),
    ({"entity": "X", "facts": [{"prompt": "", "answers": ["a"]}]}, "'prompt'"),
    ({"entity": "X", "facts": [{"prompt": "p", "answer": ["a"]}]}, "unknown key 'answer'"),
    ({"entity": "X", "facts": [{"prompt": "p", "answers": ["a"], "paraphrases": "q"}]}, "'paraphrases'"),
    ({"entity": "X", "facts": ["p"]}, "facts[1]"),
])
def test_schema_errors(tmp_path: Path, entry, fragment) -> None:
    p = _write(tmp_path, json.dumps([entry]))
    with pytest.raises(EntityDataError) as info:
        load_facts_file(p)
    assert fragment in str(info.value) and "entry 1" in str(info.value)


def test_empty_list_duplicates_missing_file(tmp_path: Path) -> None:
    with pytest.raises(EntityDataError, match="empty"):
        load_facts_file(_write(tmp_path, "[]"))
    dup = [{"entity": "X", "facts": [{"prompt": "X is", "answers": ["a"]}]}] * 2
    with pytest.raises(EntityDataError, match="duplicate"):
        load_facts_file(_write(tmp_path, json.dumps(dup)))
    with pytest.raises(EntityDataError, match="not found"):
        load_facts_file(tmp_path / "nope.json")


def _shipped_entry(name: str, **extra) -> dict:
    return {"name": name, "type": "person", "facts": [
        {"prompt": f"{name} {i}", "answers": ["x"], "question": f"{name}?", "paraphrases": [f"{name} a", f"{name} b"],
         "fill_in_blank": f"Then {name} {i}"} for i in range(2)], **extra}


@pytest.mark.parametrize("entry, fragment", [
    (_shipped_entry("A", split="retain", reverse=[{"prompt": "Who?", "answers": ["A"]}]), "need 'reverse' queries and a 'passage'"),
    (_shipped_entry("A", split="retain", passage="A once said x."), "need 'reverse' queries and a 'passage'"),
    (_shipped_entry("A", passage="A once said x."), "the passage contains the answer 'x'"),
    (_shipped_entry("A", split="eval", reverse=[{"prompt": "Who?", "answers": ["A"]}], passage="A is.",
                    neighbours=["B"]), "need at least 2 'neighbours'"),
    (_shipped_entry("A", neighbours=["C", "B"]), "neighbour 'C' is not another entry"),
])
def test_shipped_evaluation_data_is_checked(tmp_path: Path, monkeypatch, entry, fragment) -> None:
    (tmp_path / "entities").mkdir()
    (tmp_path / "entities" / "known.json").write_text(json.dumps([entry, _shipped_entry("B")]))
    monkeypatch.setattr(ent, "resources_dir", lambda: tmp_path)
    ent._shipped.cache_clear()
    try:
        with pytest.raises(EntityDataError, match=re.escape(fragment)):
            ent._shipped("known")
        fine = _shipped_entry("A", split="eval", reverse=[{"prompt": "Who?", "answers": ["A"]}], passage="A is.",
                              neighbours=["B", "C"])
        (tmp_path / "entities" / "known.json").write_text(json.dumps([fine, _shipped_entry("B"), _shipped_entry("C")]))
        ent._shipped.cache_clear()
        assert ent._shipped("known")[0].neighbours == ("B", "C")
    finally:
        ent._shipped.cache_clear()


def test_knownness_holdout_is_a_split_value_but_not_an_evaluation_split(tmp_path: Path, monkeypatch) -> None:
    """lesser_known.json marks its held-out third "knownness_holdout": accepted without the per-form data, never a split."""
    (tmp_path / "entities").mkdir()
    bare = {"name": "A", "type": "person", "split": ent.HOLDOUT_SPLIT,
            "facts": [{"prompt": f"A {i}", "answers": ["x"], "question": "A?"} for i in range(2)]}
    (tmp_path / "entities" / "known.json").write_text(json.dumps([bare, _shipped_entry("B")]))
    monkeypatch.setattr(ent, "resources_dir", lambda: tmp_path)
    ent._shipped.cache_clear()
    try:
        assert [e.split for e in ent._shipped("known")] == ["knownness_holdout", None]
    finally:
        ent._shipped.cache_clear()
    assert ent.HOLDOUT_SPLIT not in ent.SPLITS and ent.SPLITS == ("tune", "eval", "retain")
    with pytest.raises(ValueError, match="split must be one of tune, eval, retain,"):
        ent.load_split(ent.HOLDOUT_SPLIT)


def test_broken_shipped_resource_fails_loudly(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "entities").mkdir()
    good = [{"name": "A", "type": "person", "facts": [
        {"prompt": f"A {i}", "answers": ["x"], "question": "A?", "paraphrases": ["A a", "A b"]} for i in range(2)]}]
    (tmp_path / "entities" / "known.json").write_text(json.dumps(good))
    (tmp_path / "entities" / "unknown.json").write_text(json.dumps(good))
    (tmp_path / "entities" / "lesser_known.json").write_text(json.dumps([{**good[0], "name": "B"}]))
    (tmp_path / "entities" / "templates.json").write_text(
        json.dumps({"train": ["w {entity}", "x {entity}"], "stop": ["y {entity}"], "eval": ["w {entity}"]}))
    monkeypatch.setattr(ent, "resources_dir", lambda: tmp_path)
    for fn in (ent._shipped, ent._check_no_overlap, ent.load_templates):
        fn.cache_clear()
    try:
        with pytest.raises(EntityDataError, match="also a known candidate"):
            load_unknown_entities()
        with pytest.raises(EntityDataError, match="both train and eval"):
            load_templates()
        for templates, message in (
                ({"train": ["{entity} {entity}"], "stop": ["y {entity}"], "eval": ["z {entity}"]}, "exactly once"),
                ({"train": ["x {entity}"], "stop": ["x {entity}"], "eval": ["z {entity}"]}, "both train and stop"),
                ({"train": ["{entity} is"], "stop": ["y {entity}"], "eval": ["z {entity}"]}, "attention sink"),
                ({"train": ["x {entity}"], "heldout": ["y {entity}"], "eval": ["z {entity}"]}, "unknown key 'heldout'"),
                ({"train": ["x {entity}"], "eval": ["z {entity}"]}, "'stop' must be a non-empty list")):
            (tmp_path / "entities" / "templates.json").write_text(json.dumps(templates))
            load_templates.cache_clear()
            with pytest.raises(EntityDataError, match=message):
                load_templates()
    finally:
        for fn in (ent._shipped, ent._check_no_overlap, ent.load_templates):
            fn.cache_clear()


# ----------------------------------------------------------------- answer matching

@pytest.mark.parametrize("completion, answers", [
    (" Paris, France.", ["Paris"]),
    (" paris is the capital", ["Paris"]),
    (" J. K. Rowling.", ["J.K. Rowling", "Rowling"]),
    (" JK Rowling", ["J.K. Rowling", "JK Rowling"]),
    (" Rowling's books", ["Rowling"]),
    (" Rowlings, a British author", ["Rowling"]),      # fuzzy: one extra letter
    (" Shakespear wrote it", ["Shakespeare"]),         # fuzzy: one missing letter
    (" the famous Sherlok Holmes", ["Sherlock Holmes"]),
    (" Pele was", ["Pelé"]),                           # accents ignored
    ("\n\nthe   United\nStates of America", ["United States"]),
    (" 1889, for the World's Fair", ["1889"]),
])
def test_answer_matches_positive(completion: str, answers: list[str]) -> None:
    assert answer_matches(completion, answers)


@pytest.mark.parametrize("completion, answers", [
    (" Parisian cafes", ["Paris"]),
    (" Lyon, France", ["Paris"]),
    (" Australia", ["Austria"]),
    (" 18890 people", ["1889"]),
    ("", ["Paris"]),
    (" Paris", []),
    (" Paris", ["", "  "]),
    (" Rome", ["Romeo"]),
    (" The answer is not known. " + "x " * 40 + "Shakespear", ["Shakespeare"]),  # fuzzy only near the start
])
def test_answer_matches_negative(completion: str, answers: list[str]) -> None:
    assert not answer_matches(completion, answers)


def test_answer_matches_exact_anywhere() -> None:
    assert answer_matches("x " * 100 + "and finally Paris.", ["Paris"])


# ----------------------------------------------------------------- names and templates

def test_validate_target_name() -> None:
    assert validate_target_name("  Marie   Curie \n") == "Marie Curie"
    assert validate_target_name("Pelé") == "Pelé"
    for bad in ("", "   ", "\n\t"):
        with pytest.raises(TargetNameError, match="the target name is empty"):
            validate_target_name(bad)
    for bad in ("Marie\nCurie", "Marie\tCurie", "Marie\x00Curie", "Ma\u200brie"):
        with pytest.raises(TargetNameError, match="control character"):
            validate_target_name(bad)
    with pytest.raises(TargetNameError, match="at most"):
        validate_target_name("a" * 500)
    assert issubclass(TargetNameError, ValueError)


def test_fill_template_spans() -> None:
    text, start, end = fill_template("Tell me about {entity}.", "Marie Curie")
    assert text == "Tell me about Marie Curie." and text[start:end] == "Marie Curie"
    assert (start, end) == (14, 25)
    text, start, end = fill_template("{entity}", "X")
    assert (text, start, end) == ("X", 0, 1)
    text, start, end = fill_template("{x} {entity} }{", "A{b}")
    assert text == "{x} A{b} }{" and text[start:end] == "A{b}"
    templates = load_templates()
    for tpl in templates.train + templates.stop + templates.eval:
        text, start, end = fill_template(tpl, "Eiffel Tower")
        assert text[start:end] == "Eiffel Tower"
    for bad in ("no placeholder", "{entity} and {entity}"):
        with pytest.raises(ValueError):
            fill_template(bad, "X")
