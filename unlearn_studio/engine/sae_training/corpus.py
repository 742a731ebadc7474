"""The SAE's training text, from sources every machine has offline, and its held-out split."""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import SaeTrainingError

log = logging.getLogger(__name__)

CORPUS_SOURCES = ("pydoc", "fortunes", "entities")
FORTUNES_DIR = Path("/usr/share/games/fortunes")
# Fortune files that are pictures made of characters, not prose.
FORTUNE_SKIP = frozenset({"art", "ascii-art"})
DOC_SEPARATOR = "\n\n"


@dataclass
class Corpus:
    """Training and held-out documents (plain texts) and how many came from each source."""

    train: list[str]
    heldout: list[str]
    sources: dict[str, int] = field(default_factory=dict)

    def add(self, source: str, docs: Sequence[str], heldout_fraction: float) -> None:
        """Add ``docs``, sending about ``heldout_fraction`` of them (by a hash of the text) to ``heldout``."""
        self.sources[source] = len(docs)
        for doc in docs:
            (self.heldout if _is_heldout(source, doc, heldout_fraction) else self.train).append(doc)

    def stats(self) -> dict[str, Any]:
        return {
            "train_documents": len(self.train),
            "heldout_documents": len(self.heldout),
            "train_chars": sum(len(t) for t in self.train),
            "heldout_chars": sum(len(t) for t in self.heldout),
            "documents_per_source": dict(self.sources),
        }


def _stable_fraction(key: str) -> float:
    """A number in [0, 1) fixed by ``key`` (so splits do not depend on order or on Python's hash seed)."""
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16) / 2**32


def _is_heldout(source: str, text: str, fraction: float) -> bool:
    return _stable_fraction(f"{source}\0{text}") < fraction


def split_entities(entities: Sequence[Any], heldout_fraction: float = 0.5) -> tuple[list[Any], list[Any]]:
    """Split entities into (train, held-out) by a hash of the name: the same split everywhere."""
    train, heldout = [], []
    for entity in entities:
        (heldout if _stable_fraction("entity\0" + entity.name.casefold()) < heldout_fraction else train).append(entity)
    return train, heldout


def pydoc_documents(max_chars: int = 1500) -> list[str]:
    """Python's bundled help topics (``pydoc_data.topics``), cut into paragraph groups of about ``max_chars``."""
    from pydoc_data.topics import topics

    docs: list[str] = []
    for name in sorted(topics):
        current: list[str] = []
        size = 0
        for paragraph in topics[name].split("\n\n"):
            paragraph = paragraph.strip("\n")
            if not paragraph.strip():
                continue
            current.append(paragraph)
            size += len(paragraph)
            if size >= max_chars:
                docs.append("\n\n".join(current))
                current, size = [], 0
        if current:
            docs.append("\n\n".join(current))
    return docs


def fortune_documents(folder: Path = FORTUNES_DIR) -> list[str]:
    """Debian's ``fortunes`` package (``%``-separated quotations, jokes, definitions), if installed."""
    if not folder.is_dir():
        return []
    docs: list[str] = []
    for path in sorted(folder.iterdir()):
        if path.suffix or path.name in FORTUNE_SKIP or not path.is_file() or path.is_symlink():
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for item in text.split("\n%\n"):
            item = item.strip("%\n").rstrip()
            if len(item.strip()) >= 20:
                docs.append(item)
    return docs


def entity_documents(known: Sequence[Any], unknown: Sequence[Any], templates: Sequence[str]) -> list[str]:
    """Every template filled with every name: sentences whose entity-name tokens the SAE must reconstruct."""
    from unlearn_studio.engine.entities import fill_template

    docs = []
    for entity in [*known, *unknown]:
        for template in templates:
            docs.append(fill_template(template, entity.name)[0])
    return docs


def build_corpus(
    *,
    sources: Sequence[str] = CORPUS_SOURCES,
    heldout_fraction: float = 0.1,
    known_entities: Sequence[Any] | None = None,
    unknown_entities: Sequence[Any] | None = None,
    templates: Any = None,
    fortunes_dir: Path = FORTUNES_DIR,
) -> Corpus:
    """The SAE's training text, from sources that exist offline, with a held-out split training never sees.

    Sources (chosen because they need no network and no dataset download):

    * ``pydoc``: Python's bundled help topics (``pydoc_data.topics``, about
      465k characters of technical English): on every machine that has Python.
    * ``fortunes``: Debian's ``fortunes`` package under /usr/share/games/fortunes
      (quotations, jokes, definitions: everyday English full of names), used
      when installed (``apt-get install fortunes``), skipped otherwise.
    * ``entities``: the shipped entity-prompt *training* templates filled with
      the *training half* (:func:`split_entities`) of the shipped known and
      unknown entities, so the SAE learns to reconstruct activations at entity
      names. The held-out half and the held-out templates stay unseen, for
      :func:`~unlearn_studio.engine.sae_training.quality.measure_sae_quality`.
      Skipped when the entity data is missing.

    Documents are split by a hash of their text: ``heldout_fraction`` of the
    pydoc and fortune documents go to ``Corpus.heldout``; entity sentences are
    training-only (the held-out entity measurement has its own split).
    """
    unknown_source = set(sources) - set(CORPUS_SOURCES)
    if unknown_source:
        raise ValueError(f"unknown corpus source(s) {sorted(unknown_source)}: use pydoc, fortunes, entities")
    corpus = Corpus([], [])
    if "pydoc" in sources:
        corpus.add("pydoc", pydoc_documents(), heldout_fraction)
    if "fortunes" in sources:
        docs = fortune_documents(fortunes_dir)
        if not docs:
            log.info("fortunes not installed at %s: corpus without them", fortunes_dir)
        corpus.add("fortunes", docs, heldout_fraction)
    if "entities" in sources:
        corpus.add("entities", _training_entity_documents(known_entities, unknown_entities, templates), 0.0)
    if not corpus.train:
        raise SaeTrainingError(f"the corpus is empty (sources {list(sources)}): enable pydoc or install fortunes")
    return corpus


def _training_entity_documents(known: Sequence[Any] | None, unknown: Sequence[Any] | None,
                               templates: Any) -> list[str]:
    """Entity sentences of the training halves and templates; the shipped entity data where none is given."""
    try:
        if known is None or unknown is None or templates is None:
            from unlearn_studio.engine import entities as ent

            known = ent.load_known_candidates() if known is None else known
            unknown = ent.load_unknown_entities() if unknown is None else unknown
            templates = ent.load_templates() if templates is None else templates
        known_train, _ = split_entities(known)
        unknown_train, _ = split_entities(unknown)
        train_templates = templates.train if hasattr(templates, "train") else list(templates)
        return entity_documents(known_train, unknown_train, train_templates)
    except (FileNotFoundError, ImportError, ValueError) as exc:
        # Missing data (a checkout without resources/entities) is skipped; broken shipped data is an error.
        if isinstance(exc, ValueError) and not _entity_files_missing():
            raise
        log.warning("entity data unavailable (%s): corpus without entity sentences", exc)
        return []


def _entity_files_missing() -> bool:
    try:
        from unlearn_studio.engine.paths import resources_dir

        folder = resources_dir() / "entities"
    except FileNotFoundError:
        return True
    return not all((folder / name).is_file() for name in ("known.json", "unknown.json", "templates.json"))


def tokenize_corpus(tokenizer, texts: Sequence[str], context_size: int, *, seed: int = 0,
                    max_tokens: int | None = None, shuffle: bool = True) -> list[list[int]]:
    """Shuffle documents, join them with blank lines, and cut the token stream into rows of ``context_size``.

    No special tokens are added (the demo tokenizer adds none either), so the
    SAE sees the same kind of sequences the entity prompts are.
    """
    order = list(range(len(texts)))
    if shuffle:
        random.Random(seed).shuffle(order)
    stream: list[int] = []
    limit = None if max_tokens is None else max_tokens + context_size
    batch = 256
    for start in range(0, len(order), batch):
        chunk = [texts[i] + DOC_SEPARATOR for i in order[start : start + batch]]
        for ids in tokenizer(chunk, add_special_tokens=False)["input_ids"]:
            stream.extend(ids)
        if limit is not None and len(stream) >= limit:
            break
    if max_tokens is not None:
        stream = stream[: max(max_tokens, context_size)]
    n_rows = len(stream) // context_size
    return [stream[i * context_size : (i + 1) * context_size] for i in range(n_rows)]
