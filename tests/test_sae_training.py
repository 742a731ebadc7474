"""SAE training with sae-lens on a tiny random Llama, and the quality measurements."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch

from unlearn_studio.engine import sae_training as st
from unlearn_studio.engine.entities import Entity, Templates
from unlearn_studio.engine.models import load_model
from unlearn_studio.engine.sae_training import runner as sae_runner
from unlearn_studio.errors import UserError

HOOK = "model.layers.0"  # the output of layer 0 is hidden_states[1], so tests can check it independently

KNOWN = [Entity(name) for name in ("Marie Curie", "Eiffel Tower", "Harry Potter", "Sherlock Holmes", "Paris",
                                   "London", "France", "Rowling")]
UNKNOWN = [Entity(name) for name in ("Port Aldermere", "Velmont Logistics", "Tessa Brannock", "Orvin Dale",
                                     "Quillan Marsh", "Hadley Crest", "Brisco Vane", "Ellery Thorn")]
TEMPLATES = Templates(train=("Tell me about {entity}.", "Here is a short text about {entity}, a name."),
                      stop=("Notes on {entity}",), eval=("What do you know about {entity}?", "{entity} is"))
HELDOUT_TEXT = [
    "The weather today is mild, with a chance of rain in the afternoon in the city.",
    "Cooking pasta needs salted boiling water and a little patience, said the cook in Paris.",
    "Harry Potter was written by J.K. Rowling. Sherlock Holmes lives in London, in a flat.",
] * 6


def tiny_config(model_dir: Path, output: Path, **overrides) -> st.SaeTrainingConfig:
    values = dict(model_path=str(model_dir), model_name="tiny-llama", hook_name=HOOK, k=8, d_sae=128,
                  training_tokens=256 * 12, train_batch_size_tokens=256, context_size=32,
                  store_batch_size_prompts=4, n_batches_in_buffer=16, lr=1e-3, lr_warm_up_steps=2,
                  dead_feature_window=5, corpus_sources=("pydoc",), max_corpus_tokens=6000, output_dir=str(output),
                  activation_tokens=256 * 5)
    values.update(overrides)
    return st.SaeTrainingConfig(**values)


@pytest.fixture(scope="module")
def trained(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, float]]]:
    output = tmp_path_factory.mktemp("sae-train") / "sae"
    events: list[tuple[str, float]] = []
    folder = st.train_sae(tiny_config(tiny_model_dir, output), progress=lambda m, f: events.append((m, f)))
    return folder, events


def test_train_sae_saves_a_loadable_sae_lens_folder(trained, tiny_model_dir: Path) -> None:
    from sae_lens import SAE

    folder, events = trained
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["cfg.json", "runner_cfg.json", "sae_weights.safetensors", "training.json"]
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")], "temporary folder left behind"
    sae = SAE.load_from_disk(str(folder), device="cpu")
    assert sae.cfg.d_in == 64 and sae.cfg.d_sae == 128 and sae.cfg.architecture() == "topk"
    assert sae.cfg.metadata.hook_name == HOOK
    assert sae.cfg.metadata.model_name == "tiny-llama"
    assert tuple(sae.cfg.metadata.seqpos_slice) == (1, None)
    cfg = json.loads((folder / "cfg.json").read_text())
    assert cfg["k"] == 8
    training = json.loads((folder / "training.json").read_text())
    assert training["steps"] == 12 and training["config"]["hook_name"] == HOOK
    # the fingerprint a later load of this model compares with (a mismatch warns)
    assert training["model_fingerprint"] == load_model(tiny_model_dir).info.fingerprint
    # 5 batches from forward passes, then 7 replayed from them (3 epochs of 5, the last one partial)
    assert training["distinct_activations"] == 256 * 5 and training["replay_epochs"] == 2
    # progress went from start to end, monotonically
    fractions = [f for _, f in events]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert any("step 12/12" in m for m, _ in events)


def test_training_moves_the_weights(trained) -> None:
    """The SAE reconstructs its layer better than a fresh one of the same shape."""
    from sae_lens import SAE, TopKSAE, TopKSAEConfig

    folder, _ = trained
    sae = SAE.load_from_disk(str(folder), device="cpu")
    loaded = load_model(json.loads((folder / "training.json").read_text())["config"]["model_path"])
    acts = st.heldout_activations(loaded.model, loaded.tokenizer, HOOK, HELDOUT_TEXT, context_size=32)
    torch.manual_seed(0)
    fresh = TopKSAE(TopKSAEConfig(d_in=64, d_sae=128, k=8))
    trained_ev = st.reconstruction_stats(sae, acts)["explained_variance"]
    fresh_ev = st.reconstruction_stats(fresh, acts)["explained_variance"]
    assert trained_ev > fresh_ev + 0.1


def direct_explained_variance(model, tokenizer, sae, texts, context_size: int) -> tuple[float, float]:
    """EV and L0 the plain way: hidden_states from the model, sae(x) forward, first position dropped."""
    stream: list[int] = []
    for text in texts:
        stream += tokenizer(text + "\n\n", add_special_tokens=False)["input_ids"]
    n_rows = len(stream) // context_size
    ids = torch.tensor(stream[: n_rows * context_size]).view(n_rows, context_size)
    with torch.no_grad():
        hidden = model(input_ids=ids, output_hidden_states=True).hidden_states[1][:, 1:].reshape(-1, 64).double()
        recon = sae(hidden.float()).double()
        codes = sae.encode(hidden.float())
    ev = 1 - ((hidden - recon) ** 2).sum() / ((hidden - hidden.mean(0)) ** 2).sum()
    return float(ev), float((codes > 0).sum(-1).double().mean())


def test_measure_sae_quality_matches_a_direct_computation(trained, tmp_path: Path) -> None:
    from sae_lens import SAE

    folder, _ = trained
    model_path = json.loads((folder / "training.json").read_text())["config"]["model_path"]
    loaded = load_model(model_path)
    sae = SAE.load_from_disk(str(folder), device="cpu")
    quality = st.measure_sae_quality(loaded.model, loaded.tokenizer, sae, HOOK, HELDOUT_TEXT, KNOWN, UNKNOWN,
                                     TEMPLATES, output_dir=tmp_path, context_size=32)
    text = quality["text"]
    ev, l0 = direct_explained_variance(loaded.model, loaded.tokenizer, sae, HELDOUT_TEXT, 32)
    assert text["explained_variance"] == pytest.approx(ev, abs=1e-4)
    assert text["mean_l0"] == pytest.approx(l0, abs=1e-6)
    assert 0 < text["mean_l0"] <= 8
    assert 0.0 <= text["dead_fraction"] <= 1.0
    assert text["dead_latents"] == round(text["dead_fraction"] * 128)
    ents = quality["entities"]
    assert 0.0 <= ents["probe_accuracy_heldout"] <= 1.0
    assert -1.0 <= ents["best_known_latent_separation_heldout"] <= 1.0
    assert 0 <= ents["best_known_latent"] < 128
    halves = ents["known_entities"]
    assert halves["train"] + halves["heldout"] == len(KNOWN) and min(halves.values()) > 0
    assert json.loads((tmp_path / "quality.json").read_text()) == json.loads(json.dumps(quality))


def test_separation_stats_finds_a_planted_latent() -> None:
    torch.manual_seed(0)
    base = lambda n: torch.rand(n, 32) * (torch.rand(n, 32) < 0.3)  # noqa: E731
    known_train, unknown_train, known_test, unknown_test = base(40), base(40), base(30), base(30)
    for codes in (known_train, known_test):
        codes[:, 7] = 1.0 + torch.rand(len(codes))
    for codes in (unknown_train, unknown_test):
        codes[:, 7] = 0.0
    stats = st.separation_stats(known_train, unknown_train, known_test, unknown_test)
    assert stats["best_known_latent"] == 7
    assert stats["best_known_latent_separation_heldout"] == pytest.approx(1.0)
    assert stats["probe_accuracy_heldout"] == 1.0


def test_cancel_stops_training_and_writes_nothing(tiny_model_dir: Path, tmp_path: Path) -> None:
    cancel = threading.Event()

    def progress(message: str, fraction: float) -> None:
        if "step" in message:
            cancel.set()

    output = tmp_path / "sae"
    with pytest.raises(st.TrainingCancelled):
        st.train_sae(tiny_config(tiny_model_dir, output, training_tokens=256 * 200), progress=progress, cancel=cancel)
    assert not output.exists()
    assert list(tmp_path.iterdir()) == []


def test_refuses_a_non_empty_output_folder_and_a_missing_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "sae"
    output.mkdir()
    (output / "keep.txt").write_text("user file")
    with pytest.raises(st.SaeTrainingError, match="not empty"):
        st.train_sae(tiny_config(tiny_model_dir, output))
    assert (output / "keep.txt").read_text() == "user file"
    with pytest.raises(st.SaeTrainingError, match="not a model folder"):
        st.train_sae(tiny_config(tmp_path / "nowhere", tmp_path / "other"))


def test_build_corpus_keeps_a_disjoint_heldout_split(tmp_path: Path) -> None:
    fortunes = tmp_path / "fortunes"
    fortunes.mkdir()
    (fortunes / "wisdom").write_text("\n%\n".join(f"Fortune number {i} says something wise today." for i in range(200)))
    (fortunes / "wisdom.dat").write_bytes(b"\x00\x01")
    corpus = st.build_corpus(sources=("pydoc", "fortunes", "entities"), heldout_fraction=0.2,
                             known_entities=KNOWN, unknown_entities=UNKNOWN, templates=TEMPLATES,
                             fortunes_dir=fortunes)
    assert corpus.sources["fortunes"] == 200 and corpus.sources["pydoc"] > 50
    assert not set(corpus.train) & set(corpus.heldout)
    assert 0.1 < len(corpus.heldout) / (corpus.sources["pydoc"] + corpus.sources["fortunes"]) < 0.3
    again = st.build_corpus(sources=("pydoc", "fortunes", "entities"), heldout_fraction=0.2,
                            known_entities=KNOWN, unknown_entities=UNKNOWN, templates=TEMPLATES,
                            fortunes_dir=fortunes)
    assert again.train == corpus.train and again.heldout == corpus.heldout
    # entity sentences: training templates and the training half of the entities only
    known_train, known_test = st.split_entities(KNOWN)
    entity_docs = [t for t in corpus.train if any(e.name in t for e in KNOWN + UNKNOWN)]
    assert entity_docs
    assert not any(e.name in t for t in entity_docs for e in known_test)
    assert not any("What do you know" in t for t in corpus.train + corpus.heldout)


def test_tokenize_corpus_rows_and_limit(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    rows = st.tokenize_corpus(tokenizer, HELDOUT_TEXT, 16, max_tokens=100)
    assert rows and all(len(r) == 16 for r in rows) and len(rows) == 6


@pytest.mark.parametrize("installed", ["6.53.9", "7.0.0", "5.10.1", "not-a-version"])
def test_an_unsupported_sae_lens_is_a_user_error_naming_both_versions(installed: str) -> None:
    with pytest.raises(UserError) as raised:
        st.check_sae_lens_version(installed)
    message = str(raised.value)
    assert f"sae-lens {installed} is installed" in message and st.SUPPORTED_SAE_LENS in message
    assert "pip install" in message


def test_a_missing_sae_lens_says_so_and_supported_versions_pass() -> None:
    with pytest.raises(st.SaeLensVersionError, match="not installed"):
        st.check_sae_lens_version(None)
    for supported in ("6.54.0", "6.54.12", "6.60.1rc2", st.installed_sae_lens_version()):
        st.check_sae_lens_version(supported)


def test_train_sae_refuses_an_unsupported_sae_lens_before_any_work(
        tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from unlearn_studio.cli import main

    monkeypatch.setattr(sae_runner, "installed_sae_lens_version", lambda: "7.1.0")
    events: list[str] = []
    with pytest.raises(st.SaeLensVersionError, match=r"sae-lens 7\.1\.0 is installed.*>=6\.54,<7"):
        st.train_sae(tiny_config(tiny_model_dir, tmp_path / "sae"), progress=lambda m, f: events.append(m))
    assert events == [] and list(tmp_path.iterdir()) == []
    # the CLI prints it as one error line, not a traceback
    assert main(["train-sae", "--out", str(tmp_path / "demo-sae")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("unlearn-studio: error: sae-lens 7.1.0 is installed") and "\n" not in err
    assert list(tmp_path.iterdir()) == []
