"""Generation backends: the transformers backend on a tiny random model, and the vLLM guard."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from repro.generation import (
    GenerationSpec,
    Generator,
    HFGenerator,
    VLLMGenerator,
    encode_prompts,
    make_generator,
)
from repro.models import build_tokenizer, make_llama

VOCAB = "the a cat dog sat on mat box red is what how many add and list sort count then . , ?".split() + [
    str(n) for n in range(60)
]
PROMPTS = [
    "the cat sat on",
    [{"role": "user", "content": "add 3 and 4 ?"}],
    "what",
    [{"role": "system", "content": "count ."}, {"role": "user", "content": "how many cat and dog on the mat ?"}],
    "list 1 , 2 , 3 , 4 , 5 , 6 , 7 then",
    [{"role": "user", "content": "sort 9 2 ?"}],
]


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(VOCAB)


@pytest.fixture(scope="module")
def generator(tokenizer):
    # A larger init spread than the default, so that an untrained model's greedy outputs vary.
    model = make_llama("XS", tokenizer, seed=0, initializer_range=0.2)
    return HFGenerator(model, tokenizer, progress=False)


def test_greedy_batched_equals_one_at_a_time(generator):
    config = GenerationSpec(max_new_tokens=10, temperature=0, batch_size=4)
    batched = generator.generate(PROMPTS, config)
    single = [generator.generate([prompt], config)[0] for prompt in PROMPTS]
    assert batched == single
    assert len({texts[0] for texts in batched}) > 1  # not a degenerate model


def test_sampling_is_seeded(generator):
    config = GenerationSpec(max_new_tokens=10, temperature=1.0, top_p=0.95, n=2, seed=7, batch_size=4)
    state = torch.random.get_rng_state()
    first = generator.generate(PROMPTS, config)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG is untouched
    assert generator.generate(PROMPTS, config) == first
    other_seed = generator.generate(PROMPTS, GenerationSpec(max_new_tokens=10, n=2, seed=8, batch_size=4))
    assert other_seed != first


def test_n_samples_per_prompt(generator):
    sampled = generator.generate(PROMPTS, GenerationSpec(max_new_tokens=6, n=3, batch_size=5))
    assert [len(texts) for texts in sampled] == [3] * len(PROMPTS)
    assert all(isinstance(text, str) and text == text.strip() for texts in sampled for text in texts)
    assert any(len(set(texts)) > 1 for texts in sampled)
    greedy = generator.generate(PROMPTS[:2], GenerationSpec(max_new_tokens=6, temperature=0, n=3))
    assert all(len(texts) == 3 and len(set(texts)) == 1 for texts in greedy)
    assert generator.generate([], GenerationSpec()) == []


def sampled_the_plain_way(generator: HFGenerator) -> HFGenerator:
    """The same model and tokenizer, decoded by ``generate(num_return_sequences=n)`` (not `repro.generation.decode`)."""
    plain = HFGenerator(generator.model, generator.tokenizer, progress=False, decode_loop=False)
    assert generator._can_decode() and not plain._can_decode()
    return plain


@pytest.mark.parametrize("max_new_tokens", [1, 2, 12])
def test_the_decode_loop_samples_what_generate_samples_token_for_token(generator, max_new_tokens):
    assert generator._can_decode()
    for seed in (0, 1, 2):
        for n in (1, 3):
            config = GenerationSpec(max_new_tokens=max_new_tokens, temperature=0.9, top_p=0.9, n=n, seed=seed,
                                    batch_size=4)
            shared = generator.generate(PROMPTS, config)
            assert shared == sampled_the_plain_way(generator).generate(PROMPTS, config)
            assert n == 1 or any(len(set(texts)) > 1 for texts in shared)


def test_the_decode_loop_is_greedy_as_generate_is(generator):
    config = GenerationSpec(max_new_tokens=16, temperature=0, n=2, batch_size=4)
    assert generator.generate(PROMPTS, config) == sampled_the_plain_way(generator).generate(PROMPTS, config)


def ending_early(tokenizer, boost: float):
    """An untrained model whose end-of-sequence logit is raised by ``boost``: its samples end at many lengths."""
    model = make_llama("XS", tokenizer, seed=1, initializer_range=0.2)
    forward = model.forward

    def likely_to_end(*args, **kwargs):
        out = forward(*args, **kwargs)
        out.logits[..., tokenizer.eos_token_id] += boost
        return out

    model.forward = likely_to_end
    return model


@pytest.mark.parametrize("min_new_tokens", [None, 4])
def test_the_decode_loop_ends_and_pads_rows_as_generate_does(tokenizer, min_new_tokens):
    """With the end of sequence made likely, some samples end at their first token and some later; the
    decode loop pads them as generate does, and keeps the model's minimum length."""
    model = ending_early(tokenizer, 4.0)
    model.generation_config.min_new_tokens = min_new_tokens
    generator = HFGenerator(model, tokenizer, progress=False)
    config = GenerationSpec(max_new_tokens=10, temperature=1.0, n=4, seed=3, batch_size=3)
    shared = generator.generate(PROMPTS, config)
    assert shared == sampled_the_plain_way(generator).generate(PROMPTS, config)
    lengths = [len(text.split()) for texts in shared for text in texts]
    if min_new_tokens:  # no sample ends at its first token (words: special tokens are not decoded)
        assert 0 not in lengths
    else:
        assert 0 in lengths and max(lengths) > 1


@pytest.mark.parametrize("setting", [("min_p", 0.1), ("repetition_penalty", 1.2), ("no_repeat_ngram_size", 3),
                                     ("suppress_tokens", [5])])
def test_a_model_whose_config_samples_otherwise_is_decoded_by_generate(tokenizer, setting):
    model = make_llama("XS", tokenizer, seed=0)
    model.generation_config.min_new_tokens = 2  # handled by the loop
    assert HFGenerator(model, tokenizer)._can_decode()
    setattr(model.generation_config, *setting)
    assert not HFGenerator(model, tokenizer)._can_decode()


def test_a_model_of_another_architecture_is_decoded_by_generate(tokenizer):
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=1, n_head=2))
    generator = HFGenerator(model, tokenizer, progress=False)
    assert not generator._can_decode()
    sampled = generator.generate(PROMPTS[:2], GenerationSpec(max_new_tokens=3, n=2, batch_size=2))
    assert [len(texts) for texts in sampled] == [2, 2]


def test_completions_have_no_special_tokens(generator, tokenizer):
    for texts in generator.generate(PROMPTS, GenerationSpec(max_new_tokens=12, n=2)):
        for text in texts:
            assert not set(text.split()) & set(tokenizer.all_special_tokens)


def test_score_next_token_logprobs_matches_forward(generator, tokenizer):
    candidates = ["1", "2"]
    scores = generator.score_next_token_logprobs(PROMPTS, candidates)
    assert scores.shape == (len(PROMPTS), 2)
    ids = tokenizer.convert_tokens_to_ids(candidates)
    model = generator.model
    for row, prompt_ids in enumerate(encode_prompts(tokenizer, PROMPTS)):
        with torch.no_grad():
            logits = model(torch.tensor([prompt_ids])).logits[0, -1]
        expected = torch.log_softmax(logits, dim=-1)[ids].numpy()
        np.testing.assert_allclose(scores[row], expected, atol=1e-5)
    in_batches = generator.score_next_token_logprobs(PROMPTS, [ids[0], "2"], batch_size=4)
    np.testing.assert_allclose(in_batches, scores, atol=1e-5)
    with pytest.raises(ValueError, match="single token"):
        generator.score_next_token_logprobs(PROMPTS, ["1 2"])


def test_generation_config_validation():
    with pytest.raises(ValueError, match="top_p"):
        GenerationSpec(top_p=0)
    with pytest.raises(ValueError, match="n must"):
        GenerationSpec(n=0)
    assert GenerationSpec(temperature=0).greedy


def test_bad_prompt_is_named(generator):
    with pytest.raises(TypeError, match="prompt 1"):
        generator.generate(["the cat", [{"text": "no role"}]], GenerationSpec(max_new_tokens=2))


def test_factory(generator, tokenizer):
    made = make_generator("transformers", generator.model, tokenizer, progress=False)
    assert isinstance(made, HFGenerator) and isinstance(made, Generator)
    with pytest.raises(ValueError, match="transformers, vllm"):
        make_generator("tgi", generator.model, tokenizer)
    with pytest.raises(ValueError, match="tokenizer"):
        make_generator("transformers", generator.model)


def test_vllm_missing_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` fail, installed or not
    with pytest.raises(ImportError, match=r"pip install -e \.\[vllm\]"):
        VLLMGenerator("some/model")
    with pytest.raises(ImportError, match="vllm"):
        make_generator("vllm", "some/model")


def test_importing_generation_does_not_import_vllm():
    code = "import sys, repro, repro.generation; print('vllm' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_vllm_read_out_matches_the_transformers_backend(generator, tokenizer, tmp_path, monkeypatch):
    """The vLLM read-out (prompt + candidate, the candidate's prompt log-probability) against the
    transformers backend, with a stand-in for vLLM's engine (no GPU here) that runs the same model."""
    from types import SimpleNamespace

    from repro.models import save_model

    class FakeLLM:
        def __init__(self, model, **kwargs):
            self.requests = []

        def generate(self, requests, params, use_tqdm=False):
            assert params.prompt_logprobs == 0 and params.max_tokens == 1
            self.requests += requests
            outputs = []
            for request in requests:
                ids = request["prompt_token_ids"]
                with torch.inference_mode():
                    logits = generator.model(torch.tensor([ids[:-1]])).logits[0, -1]
                value = torch.log_softmax(logits.float(), -1)[ids[-1]].item()
                outputs.append(SimpleNamespace(prompt_logprobs=[None] * (len(ids) - 1) + [{ids[-1]: SimpleNamespace(logprob=value)}]))
            return outputs

    fake = SimpleNamespace(LLM=FakeLLM, SamplingParams=lambda **kw: SimpleNamespace(**kw))
    monkeypatch.setitem(sys.modules, "vllm", fake)
    save_model(generator.model, tokenizer, tmp_path / "model")
    engine = VLLMGenerator(tmp_path / "model", progress=False)
    expected = generator.score_next_token_logprobs(PROMPTS, ["1", "2", "cat"])
    got = engine.score_next_token_logprobs(PROMPTS, ["1", "2", "cat"])
    assert got.shape == (len(PROMPTS), 3) and np.allclose(got, expected, atol=1e-5)
    assert len(engine.llm.requests) == 3 * len(PROMPTS)
    assert engine.score_next_token_logprobs([], ["1"]).shape == (0, 1)


@pytest.mark.parametrize("temperature,top_p", [(0.7, 0.9), (1.0, 0.5), (0.3, 0.99), (1.3, 1.0)])
def test_temperature_top_p_keeps_what_transformers_warpers_keep(temperature, top_p):
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

    from repro.generation.hf import TemperatureTopP

    generator = torch.Generator().manual_seed(0)
    # peaked rows (nucleus inside the top k) and flat rows (nucleus far wider: the full-sort path)
    logits = torch.cat([torch.randn(64, 1500, generator=generator) * 6, torch.randn(64, 1500, generator=generator) * 0.1])
    ids = torch.zeros(len(logits), 1, dtype=torch.long)
    ours = TemperatureTopP(temperature, top_p, k=64)(ids, logits)
    theirs = TemperatureLogitsWarper(temperature)(ids, logits)
    if top_p < 1:
        theirs = TopPLogitsWarper(top_p)(ids, theirs)
    kept_ours, kept_theirs = torch.isfinite(ours), torch.isfinite(theirs)
    assert torch.equal(kept_ours, kept_theirs)
    assert torch.equal(ours[kept_ours], theirs[kept_theirs])
    if top_p < 1:  # both paths ran: some peaked rows kept few tokens, the flat rows kept many
        assert kept_ours[:64].sum(-1).min() < 64 <= kept_ours[64:].sum(-1).min()


def test_temperature_top_p_refuses_bad_settings():
    from repro.generation.hf import TemperatureTopP

    with pytest.raises(ValueError, match="top_p"):
        TemperatureTopP(0.7, 0.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_draw_races_the_rows_still_going_as_multinomial_draws_them_from_the_whole_batch(seed):
    from repro.generation.decode import draw

    generator = torch.Generator().manual_seed(seed)
    probs = torch.rand(40, 300, generator=generator) ** 4
    probs[:, ::7] = 0.0  # tokens a nucleus cut
    probs = probs / probs.sum(-1, keepdim=True)
    going = torch.sort(torch.randperm(40, generator=generator)[:23]).values
    torch.manual_seed(seed)
    expected = torch.multinomial(probs, num_samples=1).squeeze(1)[going]
    after_multinomial = torch.random.get_rng_state()
    torch.manual_seed(seed)
    assert torch.equal(draw(probs[going], going, 40), expected)
    assert torch.equal(torch.random.get_rng_state(), after_multinomial)  # the stream advanced as far


def test_retire_keeps_the_rows_still_going_and_fills_the_batch_up_to_the_floor():
    from repro.generation.decode import RETIRE_FLOOR, retire

    size = 4 * RETIRE_FLOOR
    going = torch.zeros(size, dtype=torch.bool)
    going[: 3 * RETIRE_FLOOR + 1] = True  # more than three quarters still going: the batch stays
    assert retire(going, size) is None
    going[3 * RETIRE_FLOOR :] = False  # three quarters: those rows stay
    assert torch.equal(retire(going, size), torch.arange(3 * RETIRE_FLOOR))
    going[:] = False
    going[[5, 70]] = True  # two rows going: finished rows fill the batch up to the floor, in order
    kept = retire(going, size)
    assert len(kept) == RETIRE_FLOOR and {5, 70} <= set(kept.tolist()) and torch.equal(kept, kept.sort().values)
    assert retire(going[:RETIRE_FLOOR], RETIRE_FLOOR) is None  # a batch at the floor never shrinks


def retirements(monkeypatch) -> list[int]:
    """Spy on the decode loop's `retire`: the sizes of the batches it shrank."""
    from repro.generation import decode

    shrunk, original = [], decode.retire

    def spy(going, size):
        kept = original(going, size)
        if kept is not None:
            shrunk.append(size)
        return kept

    monkeypatch.setattr(decode, "retire", spy)
    return shrunk


@pytest.mark.parametrize(("sampler", "greedy"), [("generate", False), ("generate", True), ("nucleus", False)])
def test_rows_that_end_retire_and_the_samples_stay_generates_token_for_token(tokenizer, monkeypatch, sampler, greedy):
    """Enough rows that the batch shrinks as they end (from 72 rows at most to the floor): every completion is
    still generate's token for token, sampled or greedy."""
    model = ending_early(tokenizer, 2.0)
    generator = HFGenerator(model, tokenizer, progress=False, sampler=sampler)
    shrunk = retirements(monkeypatch)
    config = GenerationSpec(max_new_tokens=16, temperature=0 if greedy else 1.0, top_p=1.0 if greedy else 0.9,
                            n=1 if greedy else 4, seed=5, batch_size=72 if greedy else 18)
    prompts = PROMPTS * (12 if greedy else 3)
    shared = generator.generate(prompts, config)
    assert shrunk, "no batch shrank: the test does not exercise retirement"
    if sampler == "generate":
        assert shared == sampled_the_plain_way(generator).generate(prompts, config)
    shrunk.clear()  # the nucleus sampler draws for the rows still going, so retiring the others changes nothing
    kept = HFGenerator(model, tokenizer, progress=False, retire_rows=False, sampler=sampler)
    assert kept.generate(prompts, config) == shared
    assert not shrunk
    lengths = {len(text.split()) for texts in shared for text in texts}
    assert len(lengths) > 3


def test_the_shipped_m0_samples_as_generate_does_with_its_rows_retiring(monkeypatch):
    """The studies' own base model, on the self-rewarding candidates' settings (N = 4, T 0.7, top-p 0.9):
    its completions end at many lengths, the batch shrinks, and the samples are generate's."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from repro import world
    from repro.runs.store import shipped_root

    path = next((shipped_root() / "pretrain-m0").glob("*/model"))
    model, tokenizer = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    generator = HFGenerator(model, tokenizer, progress=False)
    prompts = [[{"role": "user", "content": t.prompt}] for t in world.sample_tasks(32, seed=3, difficulty=(1, 2))]
    shrunk = retirements(monkeypatch)
    config = GenerationSpec(max_new_tokens=48, temperature=0.7, top_p=0.9, n=4, seed=0, batch_size=32)
    shared = generator.generate(prompts, config)
    assert shrunk
    assert shared == sampled_the_plain_way(generator).generate(prompts, config)


def test_loop_generate_returns_what_generate_returns_for_the_calls_it_takes(tokenizer, monkeypatch):
    """``model.generate(input_ids=, attention_mask=, generation_config=)`` as trl calls it: through the loop,
    the same prompt-and-completion ids as transformers' generate, under the caller's RNG; other calls go to
    generate."""
    from transformers import GenerationConfig

    from repro.generation import decode

    model = make_llama("XS", tokenizer, seed=1, initializer_range=0.2)
    texts = ["the cat sat on", "what", "list 1 , 2 , 3 then", "add 3 and 4 ?"] * 4
    batches = {"each row its own prompt": texts * 3, "four copies of each prompt, as trl asks": [
        text for text in texts for _ in range(4)]}
    took = []
    original = decode.decode
    monkeypatch.setattr(decode, "decode", lambda *a, **k: took.append(k["n"]) or original(*a, **k))
    for rows in batches.values():
        inputs = tokenizer.pad({"input_ids": [tokenizer(t)["input_ids"] for t in rows]}, padding_side="left",
                               return_tensors="pt")
        for settings in ({"do_sample": True, "temperature": 0.9, "top_k": 0, "top_p": 1.0, "repetition_penalty": 1.0},
                         {"do_sample": True, "temperature": 1.3, "top_k": 20, "top_p": 0.8},
                         {"do_sample": False}):
            config = GenerationConfig(max_new_tokens=12, pad_token_id=tokenizer.pad_token_id,
                                      eos_token_id=[tokenizer.eos_token_id], **settings)
            outputs = []
            for loop in (False, True):
                torch.manual_seed(4)
                with decode.loop_generate(model) if loop else torch.no_grad(), torch.no_grad():
                    outputs.append(model.generate(**inputs, generation_config=config))
            assert torch.equal(outputs[0], outputs[1]), settings
    assert took == [1] * 3 + [4] * 3  # the copies of a prompt shared its prefill
    refused = {"num_beams": 2, "repetition_penalty": 1.2, "min_p": 0.1, "min_new_tokens": 2, "max_new_tokens": None}
    for name, value in refused.items():
        config = GenerationConfig(**{"max_new_tokens": 4, "do_sample": True, "pad_token_id": 0, "eos_token_id": [1],
                                     name: value})
        assert not decode.takes_call(model, config, dict(inputs)), name
    config = GenerationConfig(max_new_tokens=4, do_sample=True, pad_token_id=0, eos_token_id=[1])
    assert decode.takes_call(model, config, dict(inputs))
    assert not decode.takes_call(model, config, {"input_ids": inputs["input_ids"]})  # generate makes up the mask


def test_repeated_rows_finds_consecutive_copies_of_each_prompt():
    from repro.generation.decode import repeated_rows

    prompts = torch.tensor([[0, 5, 6], [7, 8, 9], [0, 0, 4]])
    mask = (prompts != 0).long()
    assert repeated_rows(prompts.repeat_interleave(3, dim=0), mask.repeat_interleave(3, dim=0)) == 3
    assert repeated_rows(prompts, mask) == 1
    assert repeated_rows(prompts.repeat(2, 1), mask.repeat(2, 1)) == 1  # the same prompts, not in a row
    uneven = torch.cat([prompts[:1]] * 2 + [prompts[1:2]] * 3 + [prompts[2:]])  # 2, 3 and 1 copies
    assert repeated_rows(uneven, (uneven != 0).long()) == 1
    assert repeated_rows(prompts[:1].repeat(4, 1), mask[:1].repeat(4, 1)) == 4


def nucleus_distribution(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """The distribution transformers samples from after its temperature and top-p warpers."""
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

    scores = TopPLogitsWarper(top_p)(None, TemperatureLogitsWarper(temperature)(None, logits.clone()))
    return torch.softmax(scores, dim=-1)


def test_the_nucleus_sampler_draws_from_the_distribution_generate_samples_from():
    """Rows whose nucleus lies within the k most likely tokens and rows that reach past them (drawn from the
    sorted vocabulary): the frequencies of 20,000 draws per row match transformers' warped distribution, and no
    token outside a nucleus is ever drawn."""
    from repro.generation.decode import NucleusSampler

    generator = torch.Generator().manual_seed(0)
    logits = torch.stack([torch.randn(50, generator=generator) * 4,  # peaked: the nucleus is a few tokens
                          torch.randn(50, generator=generator) * 0.3,  # flat: the nucleus reaches past k
                          torch.randn(50, generator=generator)])
    draws = 20_000
    for temperature, top_p in ((0.7, 0.9), (1.0, 0.95), (1.3, 1.0)):
        expected = nucleus_distribution(logits, temperature, top_p)
        sampler = NucleusSampler(temperature, top_p, k=8)
        torch.manual_seed(1)
        tokens = sampler(logits.repeat_interleave(draws, dim=0)).view(3, draws)
        frequencies = torch.stack([torch.bincount(row, minlength=50) for row in tokens]).float() / draws
        assert (frequencies[expected == 0] == 0).all()
        assert (frequencies - expected).abs().max() < 0.015, (temperature, top_p)
    top = torch.softmax(logits / 0.7, dim=-1).topk(8).values.sum(-1)
    assert top[0] >= 0.9 > top[1]  # both paths ran: a row within the top 8, a row past it


def test_hfgenerator_with_the_nucleus_sampler_samples_the_same_distribution(tokenizer):
    """The first token of 3,000 samples of one prompt, with generate's draw and with the nucleus sampler: the
    same distribution (total variation under 0.05), from other random numbers; seeded like any sampling."""
    model = make_llama("XS", tokenizer, seed=0, initializer_range=0.2)
    config = GenerationSpec(max_new_tokens=1, temperature=0.7, top_p=0.9, n=3000, seed=0, batch_size=1)
    counts = {}
    for sampler in ("generate", "nucleus"):
        first = HFGenerator(model, tokenizer, progress=False, sampler=sampler).generate(PROMPTS[:1], config)[0]
        counts[sampler] = np.unique(first, return_counts=True)
    tokens = sorted(set(counts["generate"][0]) | set(counts["nucleus"][0]))
    share = {s: np.array([dict(zip(*counts[s])).get(t, 0) for t in tokens]) / 3000 for s in counts}
    assert 0.5 * np.abs(share["generate"] - share["nucleus"]).sum() < 0.05
    assert len(tokens) > 3
    nucleus = HFGenerator(model, tokenizer, progress=False, sampler="nucleus")
    longer = GenerationSpec(max_new_tokens=8, temperature=0.9, top_p=0.9, n=4, seed=3, batch_size=4)
    assert nucleus.generate(PROMPTS, longer) == nucleus.generate(PROMPTS, longer)
    assert nucleus.generate(PROMPTS, longer) != HFGenerator(model, tokenizer, progress=False).generate(PROMPTS, longer)


def test_a_model_the_decode_loop_does_not_take_is_sampled_by_generates_draw_under_the_nucleus_sampler(tokenizer):
    """The studies' default sampler must not refuse a model of another architecture (a user's checkpoint on the
    transformers backend): such a model, or any model with the loop switched off, gets generate's draw."""
    torch.manual_seed(0)
    other = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=1, n_head=2))
    sampled = GenerationSpec(max_new_tokens=6, temperature=0.9, top_p=0.9, n=3, seed=1, batch_size=4)
    for model, loop in ((other, True), (make_llama("XS", tokenizer, seed=0), False)):
        drawn = {sampler: HFGenerator(model, tokenizer, progress=False, decode_loop=loop, sampler=sampler).generate(
            PROMPTS, sampled) for sampler in ("nucleus", "generate")}
        assert drawn["nucleus"] == drawn["generate"] and len(drawn["nucleus"][0]) == 3


def test_the_nucleus_sampler_is_part_of_the_engines_key(tokenizer):
    from repro.generation.engine import DEFAULT_ENGINE, DEFAULT_SAMPLER, Engine

    with pytest.raises(ValueError, match="unknown sampler"):
        HFGenerator(make_llama("XS", tokenizer, seed=0), tokenizer, sampler="fast")
    assert Engine.of("transformers", sampler="nucleus").key() == {"backend": "transformers", "sampler": "nucleus"}
    assert Engine.of("transformers").key() == {"backend": "transformers"}  # the stages' keys as before
    # generate's draw, asked for by name, keeps the keys it always had; the default names its sampler
    assert Engine.of("transformers", sampler="generate").key() == {"backend": "transformers"}
    assert DEFAULT_ENGINE.key() == {"backend": "transformers", "sampler": DEFAULT_SAMPLER} and DEFAULT_SAMPLER == "nucleus"
