"""Tokenizer, tiny Llama factory, save/load."""

import logging
import random

import pytest
import torch
from transformers import AutoModelForCausalLM

from repro.models import (
    SIZE_PRESETS,
    ModelNotFound,
    build_tokenizer,
    count_parameters,
    load_model,
    make_llama,
    save_model,
)

WORDS = "the a cat dog sat on mat box red is what how many add and list sort count then".split()
VOCAB = WORDS + [".", ",", "?", ":", "(", ")"] + [str(n) for n in range(120)]


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(VOCAB)


def world_like_texts(count=50, seed=0):
    """Lowercase, single-spaced, punctuation and numbers as separate tokens."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(VOCAB) for _ in range(rng.randint(1, 30))) for _ in range(count)]


def test_round_trip_is_exact(tokenizer):
    for text in ["what is 12 and 7 ?", "the cat sat on the mat , then 3 dog ( 119 ) .", *world_like_texts()]:
        ids = tokenizer(text)["input_ids"]
        assert ids[0] == tokenizer.bos_token_id
        assert len(ids) == len(text.split()) + 1  # one id per word
        assert tokenizer.unk_token_id not in ids
        assert tokenizer.decode(ids, skip_special_tokens=True) == text
        assert tokenizer.decode(ids[1:]) == text


def test_special_tokens_and_unknown_words(tokenizer):
    assert tokenizer.padding_side == "left"
    assert (tokenizer.pad_token, tokenizer.unk_token, tokenizer.bos_token, tokenizer.eos_token) == (
        "<pad>", "<unk>", "<s>", "</s>",
    )
    assert {"<|system|>", "<|user|>", "<|assistant|>"} <= set(tokenizer.all_special_tokens)
    assert tokenizer("the zebra")["input_ids"][-1] == tokenizer.unk_token_id
    assert len(tokenizer) == 7 + len(VOCAB)
    with pytest.raises(ValueError, match="whitespace"):
        build_tokenizer(["two words"])


def test_chat_template_prompt_is_prefix_of_conversation(tokenizer):
    conversations = [
        ([{"role": "user", "content": "add 3 and 4 ?"}], [{"role": "assistant", "content": "7 ."}]),
        (
            [
                {"role": "system", "content": "count ."},
                {"role": "user", "content": "how many dog ?"},
                {"role": "assistant", "content": "1 ."},
                {"role": "user", "content": "and cat ?"},
            ],
            [{"role": "assistant", "content": "2 , the cat ."}],
        ),
    ]
    for prompt, completion in conversations:
        rendered = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        assert rendered.startswith("<s>") and rendered.endswith("<|assistant|>")
        prompt_ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True)["input_ids"]
        full_ids = tokenizer.apply_chat_template(prompt + completion)["input_ids"]
        assert full_ids[: len(prompt_ids)] == prompt_ids
        tail = tokenizer.convert_ids_to_tokens(full_ids[len(prompt_ids) :])
        assert tail == completion[0]["content"].split() + ["</s>"]
        assert tokenizer.unk_token_id not in full_ids


def test_presets_are_ordered_and_tiny(tokenizer):
    counts = [count_parameters(make_llama(size, tokenizer, seed=0)) for size in SIZE_PRESETS]
    assert list(SIZE_PRESETS) == ["XXS", "XS", "S", "M", "L"]
    assert counts == sorted(counts) and len(set(counts)) == 5
    assert 50_000 < counts[0] and counts[-1] < 10_000_000


def test_make_llama_is_deterministic_per_seed(tokenizer):
    state = torch.random.get_rng_state()
    first, again, other = (make_llama("XS", tokenizer, seed=s) for s in (1, 1, 2))
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is untouched
    pairs = list(zip(first.state_dict().values(), again.state_dict().values()))
    assert all(torch.equal(a, b) for a, b in pairs)
    assert not torch.equal(first.model.embed_tokens.weight, other.model.embed_tokens.weight)
    assert first.lm_head.weight is first.model.embed_tokens.weight  # tied
    config = first.config
    assert (config.pad_token_id, config.bos_token_id, config.eos_token_id) == (
        tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id,
    )
    assert config.vocab_size == len(tokenizer) and config.max_position_embeddings == 256
    assert make_llama("XS", tokenizer, seed=0, max_position_embeddings=64).config.max_position_embeddings == 64
    with pytest.raises(ValueError, match="XXS, XS, S, M, L"):
        make_llama("XXL", tokenizer, seed=0)


def test_save_load_round_trip(tokenizer, tmp_path):
    model = make_llama("XS", tokenizer, seed=3)
    path = save_model(model, tokenizer, tmp_path / "model")
    assert (path / "model.safetensors").is_file() and not list(path.glob("*.bin"))
    loaded, loaded_tokenizer = load_model(path)
    text = "the cat sat on the mat ."
    inputs = torch.tensor([loaded_tokenizer(text)["input_ids"]])
    assert inputs.tolist()[0] == tokenizer(text)["input_ids"]
    with torch.no_grad():
        assert torch.equal(model(inputs).logits, loaded(inputs).logits)
    assert loaded_tokenizer.chat_template == tokenizer.chat_template
    assert loaded_tokenizer.padding_side == "left"
    assert not loaded.training


def test_missing_path_raises_model_not_found(tmp_path):
    missing = tmp_path / "no" / "such" / "model"
    with pytest.raises(ModelNotFound, match=str(missing)):
        load_model(missing)
    with pytest.raises(ModelNotFound, match="runs/x/model"):
        load_model("runs/x/model")
    with pytest.raises(ModelNotFound, match="no config.json"):
        load_model(tmp_path)
    assert issubclass(ModelNotFound, ValueError)


def test_trust_remote_code_only_when_asked(tokenizer, tmp_path, monkeypatch, caplog):
    path = save_model(make_llama("XS", tokenizer, seed=0), tokenizer, tmp_path / "model")
    calls = []
    original = AutoModelForCausalLM.from_pretrained

    def recording(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", recording)
    with caplog.at_level(logging.WARNING, logger="repro.models.io"):
        load_model(path)
        assert calls[-1]["trust_remote_code"] is False and calls[-1]["use_safetensors"] is True
        assert not caplog.records
        load_model(path, trust_remote_code=True, dtype="float32")
        assert calls[-1]["trust_remote_code"] is True and calls[-1]["dtype"] is torch.float32
        assert "trust_remote_code=True" in caplog.text
