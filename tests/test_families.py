"""Four model families (Llama, Gemma 2, Qwen 2, GPT-2) with sae-lens SAEs of three architectures, end to end.

Every family runs: load, info, a 3-step run in float32 and in bfloat16 whose losses fall alike, the audit,
and save and reload. The family-specific paths get their own checks: Gemma 2's eager attention and soft-capped
logits, BOS on every text chunk, the plain question-answer form without a chat template, the first answer token
that carries text, slow tokenizers without offsets, and a model split by accelerate.
"""

from __future__ import annotations

import itertools
import json

import pytest
import torch

from tests.engine_helpers import events_of, tiny_request
from tests.tiny import FAMILIES, SAE_ARCHITECTURES, make_model_folder, make_sae_folder
from unlearn_studio.engine.audit import logit_lens, run_audit
from unlearn_studio.engine.events import Failed, Finished, StepProgress
from unlearn_studio.engine.models import load_model, weights_fingerprint
from unlearn_studio.engine.pipeline import ModelSpec, load_session
from unlearn_studio.engine.saes import check_sae_fits_model, load_sae

HF_HOOK = {"gpt2": "transformer.h"}  # the decoder blocks' module path; the others keep theirs at model.layers
# One run per family, covering every SAE architecture and both hook-name styles (Gemma 2 as with Gemma Scope).
RUNS = [("llama", "standard", "hf"), ("gemma2", "jumprelu", "tl"), ("qwen2", "topk", "tl"), ("gpt2", "topk", "hf")]
# Weights of a trained model's magnitude: at the toy init (0.02) a bfloat16 weight resolves an Adam step of 1e-4,
# at 0.1 most such steps round away unless the trainable weights are held in float32.
INIT_STD = 0.1


def hook_name(family: str, style: str, layer: int = 1) -> str:
    return f"blocks.{layer}.hook_resid_post" if style == "tl" else f"{HF_HOOK.get(family, 'model.layers')}.{layer}"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Toy matrices gain nothing from threads; on a busy machine they lose a lot (measured: 12× slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    return {family: make_model_folder(tmp_path_factory.mktemp(family), family, init_std=INIT_STD) for family in FAMILIES}


@pytest.fixture(scope="module")
def sae_dir(tmp_path_factory):
    made = {}

    def make(architecture: str, hook: str):
        key = (architecture, hook)
        if key not in made:
            made[key] = make_sae_folder(tmp_path_factory.mktemp("sae") / "sae", hook_name=hook, architecture=architecture)
        return made[key]

    return make


@pytest.fixture(scope="module")
def loaded(model_dirs):
    return {family: load_model(folder, device="cpu") for family, folder in model_dirs.items()}


@pytest.mark.parametrize("family", FAMILIES)
def test_every_sae_architecture_and_hook_style_fits_every_family(family, loaded, sae_dir):
    model = loaded[family]
    for architecture, style in itertools.product(SAE_ARCHITECTURES, ("tl", "hf")):
        sae = load_sae(sae_dir(architecture, hook_name(family, style)))
        hook, _ = check_sae_fits_model(sae, model.model, model.info)
        assert (sae.info.architecture, hook.layer) == (architecture, 1)
        assert hook.module_path == f"{HF_HOOK.get(family, 'model.layers')}.1" and hook.side == "output"
        codes = sae.encode(torch.randn(3, 64))
        assert codes.shape == (3, 128) and bool((codes == 0).any())  # sparse: some latents stay off


def test_info_reports_attention_and_soft_capping(model_dirs, sae_dir, capsys):
    from unlearn_studio.cli import main

    sae = sae_dir("jumprelu", "blocks.1.hook_resid_post")
    assert main(["--quiet", "info", "--model", str(model_dirs["gemma2"]), "--sae", str(sae), "--device", "cpu"]) == 0
    model = json.loads(capsys.readouterr().out)["model"]
    assert (model["attention"], model["attn_softcapping"], model["final_softcapping"]) == ("eager", 50.0, 0.5)
    assert model["placement"] == "cpu"
    llama = load_model(model_dirs["llama"], device="cpu").info
    assert llama.attention != "eager" and llama.attn_softcapping is None and llama.final_softcapping is None


def _run(model_dir, sae, dtype):
    session = load_session(ModelSpec(model=str(model_dir), sae=str(sae), device="cpu", dtype=dtype))
    request = tiny_request(session, lr=1e-4)  # the method's default learning rate: the one bfloat16 used to lose
    request.reference_limit = 4
    events = events_of(session, request)
    assert not [e for e in events if isinstance(e, Failed)], [e.error for e in events if isinstance(e, Failed)]
    losses = [e.losses["total"] for e in events if isinstance(e, StepProgress)]
    assert len(losses) == 3 and isinstance(events[-1], Finished)
    return session, losses


@pytest.mark.parametrize(("family", "architecture", "style"), RUNS)
def test_run_in_float32_and_bfloat16_audit_save_and_reload(family, architecture, style, model_dirs, sae_dir, tmp_path):
    sae = sae_dir(architecture, hook_name(family, style))
    drops = {}
    for dtype in ("float32", "bfloat16"):
        session, losses = _run(model_dirs[family], sae, dtype)
        drops[dtype] = losses[0] - losses[-1]
        assert session.loaded.info.dtype == dtype
        assert all(p.dtype == getattr(torch, dtype) for p in session.model.parameters())  # rounded back after the run
        assert session.is_modified()
        if dtype == "bfloat16":  # the audit once per family, in the precision with more to go wrong
            audit = run_audit(session, session.resolve_targets(["Eiffel Tower"]), reference_limit=4, relearn_steps=1,
                              verify_known=False)
            layers = session.loaded.info.n_layers + 1
            assert len(audit.current.lens_probability) == len(audit.current.probe_p_known) == layers
            assert audit.original.lens_probability != audit.current.lens_probability
            assert audit.relearned_forget_accuracy is not None
        saved = session.save_model(tmp_path / dtype)
        reloaded = load_model(saved, device="cpu", dtype=dtype)
        assert reloaded.info.fingerprint == weights_fingerprint(session.model) != session.original_fingerprint
    print(f"{family}: loss drop over 3 steps, float32 {drops['float32']:.4f}, bfloat16 {drops['bfloat16']:.4f}")
    assert drops["float32"] > 0
    assert drops["bfloat16"] >= 0.5 * drops["float32"], drops


def test_gemma2_lens_applies_the_final_soft_cap(loaded):
    model, tokenizer = loaded["gemma2"].model, loaded["gemma2"].tokenizer
    assert model.config._attn_implementation == "eager"
    prompt = "The Eiffel Tower is located in the city of"
    probability, _ = logit_lens(model, tokenizer, [prompt], ["Paris"])
    with torch.no_grad():
        logits = model(**tokenizer(prompt, return_tensors="pt")).logits[0, -1]  # the model soft-caps its own output
        hidden = model.model(**tokenizer(prompt, return_tensors="pt"), output_hidden_states=True).hidden_states[-1][0, -1]
    token = tokenizer.convert_tokens_to_ids("▁Paris")
    assert probability[-1] == pytest.approx(float(torch.softmax(logits, -1)[token]), rel=1e-4)
    uncapped = float(torch.softmax(model.lm_head(hidden), -1)[token])
    assert abs(uncapped - probability[-1]) > 0.2 * probability[-1]  # the cap matters here: a lens without it fails


def test_lens_asks_for_the_first_answer_token_that_carries_text(loaded):
    from unlearn_studio.engine.prompts import answer_lens_input

    tokenizer = loaded["gemma2"].tokenizer
    context, token = answer_lens_input(tokenizer, "The tower was finished in", "1889")
    # Gemma-style tokenizers split digits and give the space a token of its own: "▁", "1", "8", "8", "9".
    assert tokenizer.convert_ids_to_tokens([token]) == ["1"]
    assert tokenizer.convert_ids_to_tokens(context[-1:]) == ["▁"]
    assert context[:-1] == tokenizer("The tower was finished in")["input_ids"]


def test_text_chunks_start_with_bos_where_the_tokenizer_adds_one(loaded):
    from unlearn_studio.engine.entities import generic_text
    from unlearn_studio.engine.prompts import text_chunks
    from unlearn_studio.engine.trainer import _retain_text

    gemma = loaded["gemma2"].tokenizer
    chunks = text_chunks(gemma, generic_text("retain"), 16)
    assert len(chunks) > 2 and all(chunk[0] == gemma.bos_token_id for chunk in chunks)
    assert sum(chunk.count(gemma.bos_token_id) for chunk in chunks) == len(chunks)  # one each, never twice
    assert all(row[0] == gemma.bos_token_id for row in _retain_text(gemma, 3, 16).input_ids.tolist())
    qwen = loaded["qwen2"].tokenizer  # no BOS token: the chunks are the plain text's tokens
    chunks = text_chunks(qwen, "Paris is a city. " * 20, 16)
    assert list(itertools.chain(*chunks)) == qwen("Paris is a city. " * 20)["input_ids"]


def test_perplexity_gives_every_chunk_its_bos(loaded):
    from unlearn_studio.engine.evaluate import perplexity

    model, tokenizer = loaded["gemma2"].model, loaded["gemma2"].tokenizer
    seen = []
    handle = model.model.embed_tokens.register_forward_hook(lambda _m, args, _out: seen.append(args[0][0, 0].item()))
    try:
        perplexity(model, tokenizer, "The weather today is mild, with a chance of rain. " * 8, chunk=16)
    finally:
        handle.remove()
    assert len(seen) > 2 and set(seen) == {tokenizer.bos_token_id}


def test_no_chat_template_means_a_labelled_question_answer_form(model_dirs, sae_dir):
    from unlearn_studio.engine.generation import NO_CHAT_TEMPLATE_NOTE, format_prompt

    session = load_session(ModelSpec(model=str(model_dirs["gemma2"]), sae=str(sae_dir("jumprelu", "model.layers.1")),
                                     device="cpu"))
    assert format_prompt(session.tokenizer, "Where is the Eiffel Tower?", chat=True) == \
        "Question: Where is the Eiffel Tower?\nAnswer:"
    assert NO_CHAT_TEMPLATE_NOTE in session.describe()["warnings"]
    events = events_of(session, tiny_request(session, steps=1))
    report = events[-1].result.report
    assert report["chat_form"] == "question-answer" and NO_CHAT_TEMPLATE_NOTE in report["notes"]
    llama = load_model(model_dirs["llama"], device="cpu").tokenizer  # a chat template: used as it is
    assert format_prompt(llama, "Where?", chat=True).startswith("<|im_start|>user")


class CharTokenizer:
    """Stand-in for a slow tokenizer: one id per character, no ``offset_mapping``, ``is_fast`` false."""

    is_fast = False
    bos_token_id = None
    pad_token_id = 0
    model_max_length = 512

    def __call__(self, text, add_special_tokens=True, **kwargs):
        if "return_offsets_mapping" in kwargs:
            raise NotImplementedError("return_offset_mapping is not available when using Python tokenizers")
        return {"input_ids": [ord(c) for c in text]}


class EosTokenizer(CharTokenizer):
    """A slow tokenizer that ends every text with an EOS id: a text's head is then no prefix of the text."""

    def __call__(self, text, add_special_tokens=True, **kwargs):
        ids = super().__call__(text, add_special_tokens, **kwargs)["input_ids"]
        return {"input_ids": ids + [0] if add_special_tokens else ids}


class MergingTokenizer(CharTokenizer):
    """A slow tokenizer whose tokens cross the entity's end whatever the prefix: the search must give up."""

    def __call__(self, text, add_special_tokens=True, **kwargs):
        return {"input_ids": [hash(text) % 1000]}


def test_slow_tokenizers_find_the_entity_by_search_or_refuse():
    from unlearn_studio.engine.prompts import PromptError, encode_entity_prompts

    text = "Tell me about Port Aldermere, please."
    start = text.index("Port")
    for tokenizer, expected in ((CharTokenizer(), "Port Aldermere"), (EosTokenizer(), " Port Aldermere")):
        batch = encode_entity_prompts(tokenizer, [(text, start, start + len("Port Aldermere"))])
        chosen = [text[i] for i in range(len(text)) if batch.entity_mask[0, i]]
        assert "".join(chosen) == expected and int(batch.last_entity_pos[0]) == start + len("Port Aldermere") - 1
    with pytest.raises(PromptError, match="no character offsets.*fast tokenizer"):
        encode_entity_prompts(MergingTokenizer(), [(text, start, start + len("Port Aldermere"))])


def test_a_model_that_does_not_fit_is_split_by_accelerate(model_dirs, sae_dir, monkeypatch):
    from unlearn_studio.engine import models

    assert models.choose_device_map(10 * 2**30, torch.device("cpu")) is None  # the CPU is never split
    monkeypatch.setattr(models, "free_device_memory", lambda device: 8 * 2**30)
    assert models.choose_device_map(10 * 2**30, torch.device("cuda")) == "auto"
    assert models.choose_device_map(2 * 2**30, torch.device("cuda")) is None
    assert models.weights_bytes(model_dirs["llama"], torch.bfloat16) == \
        2 * load_model(model_dirs["llama"], device="cpu").info.n_params  # tied embeddings are stored once
    monkeypatch.setattr(models, "choose_device_map", lambda size, device: "auto")
    from transformers import AutoModelForCausalLM

    asked = []
    real_load = AutoModelForCausalLM.from_pretrained
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained",
                        lambda *args, **kwargs: asked.append(kwargs.get("device_map")) or real_load(*args, **kwargs))
    session = load_session(ModelSpec(model=str(model_dirs["llama"]), sae=str(sae_dir("standard", "model.layers.1")),
                                     device="cpu"))
    assert asked == ["auto"]  # placed by accelerate (here: all on the one CPU), not by .to()
    events = events_of(session, tiny_request(session, steps=2))
    assert isinstance(events[-1], Finished) and session.is_modified()
    session.model.hf_device_map = {"model.embed_tokens": 0, "model.layers.0": 0, "model.layers.1": 1, "lm_head": "cpu"}
    assert models.describe_placement(session.model) == \
        "split by accelerate: cuda:0 (2 modules), cuda:1 (1 module), cpu (1 module)"
