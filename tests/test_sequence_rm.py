"""The path-given sequence reward model on a tiny random Llama classifier: shapes, determinism,
batching and padding invariance, pad = eos checkpoints, chat templates, keys and remote code."""

import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from transformers import LlamaForSequenceClassification

from repro.judges.sequence_rm import RewardModelError, SequenceRewardModel, output_scores
from repro.models import ModelNotFound, build_tokenizer, llama_config, save_model

WORDS = "the a cat dog sat ran on under mat rug is was why how big small red . ? ,".split()
PROMPTS = ["why is the cat on the mat ?", "how big is the dog ?", "the cat sat", "why ?", "a red rug ,"]
RESPONSES = ["the cat sat on the mat .", "the dog is big .", "a small red cat sat under the big rug , the dog ran .",
             "why", "the rug is red . the mat is red . the cat is small ."]


def tiny_classifier(tokenizer):
    config = llama_config("XXS", tokenizer, num_labels=1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = LlamaForSequenceClassification(config)
        torch.nn.init.normal_(model.score.weight, std=1.0)  # rewards of order 1, not 0.02
    return model.eval()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    tokenizer = build_tokenizer(WORDS)
    return save_model(tiny_classifier(tokenizer), tokenizer, tmp_path_factory.mktemp("rm") / "rm")


def test_scores_are_batched_deterministic_and_padding_free(checkpoint):
    rm = SequenceRewardModel(checkpoint, batch_size=16)
    scores = rm.score(PROMPTS, RESPONSES)
    assert scores.shape == (5,) and scores.dtype == float and np.isfinite(scores).all()
    assert np.array_equal(scores, SequenceRewardModel(checkpoint).score(PROMPTS, RESPONSES))  # a fresh load
    alone = np.array([rm.score([p], [r])[0] for p, r in zip(PROMPTS, RESPONSES)])
    np.testing.assert_allclose(scores, alone, atol=1e-5, rtol=0)
    np.testing.assert_allclose(SequenceRewardModel(checkpoint, batch_size=2).score(PROMPTS, RESPONSES), alone,
                               atol=1e-5, rtol=0)
    assert len({round(s, 6) for s in scores}) == 5
    other = rm.score([PROMPTS[0]] * 3, ["the cat sat on the mat .", "the dog ran .", "red"])
    assert len({round(s, 6) for s in other}) == 3 and other[0] == pytest.approx(scores[0], abs=1e-5)
    assert rm.score([], []).shape == (0,)


def test_a_chat_is_scored_at_its_last_token(checkpoint):
    rm = SequenceRewardModel(checkpoint)
    ids = rm.encode(PROMPTS[0], RESPONSES[0])
    messages = [{"role": "user", "content": PROMPTS[0]}, {"role": "assistant", "content": RESPONSES[0]}]
    rendered = rm.tokenizer.apply_chat_template(messages, tokenize=False)
    assert ids == rm.tokenizer(rendered, add_special_tokens=False)["input_ids"]
    assert rm.tokenizer.convert_ids_to_tokens(ids[-2:]) == [".", "</s>"]
    with torch.inference_mode():
        hidden = rm.model.model(input_ids=torch.tensor([ids])).last_hidden_state
        by_hand = rm.model.score(hidden[0, -1]).item()
    assert rm.score(PROMPTS[:1], RESPONSES[:1])[0] == pytest.approx(by_hand, abs=1e-5)


def test_a_checkpoint_whose_pad_token_is_eos_scores_the_same(checkpoint, tmp_path):
    # Llama 3 reward models often set pad = eos, and the chat template ends every turn with eos: a
    # classifier that looks for the pad id to find the last token would read the wrong position.
    tokenizer = build_tokenizer(WORDS)
    model = tiny_classifier(tokenizer)
    tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.eos_token_id
    eos_pad = save_model(model, tokenizer, tmp_path / "eos-pad")
    expected = SequenceRewardModel(checkpoint).score(PROMPTS, RESPONSES)
    rm = SequenceRewardModel(eos_pad, batch_size=16)
    np.testing.assert_allclose(rm.score(PROMPTS, RESPONSES), expected, atol=1e-5, rtol=0)
    assert rm.model.config.pad_token_id == tokenizer.eos_token_id  # restored after each batch


def test_a_tokenizer_without_chat_template_needs_plain_text(tmp_path):
    tokenizer = build_tokenizer(WORDS)
    tokenizer.chat_template = None
    path = save_model(tiny_classifier(tokenizer), tokenizer, tmp_path / "plain")
    with pytest.raises(RewardModelError, match="no chat template.*plain_text=True"):
        SequenceRewardModel(path).score(PROMPTS, RESPONSES)
    rm = SequenceRewardModel(path, plain_text=True)
    assert rm.tokenizer.decode(rm.encode("why ?", "the cat")) == "<s> why ? the cat"
    scores = rm.score(PROMPTS, RESPONSES)
    np.testing.assert_allclose(scores, [rm.score([p], [r])[0] for p, r in zip(PROMPTS, RESPONSES)], atol=1e-5)


def test_long_pairs_are_cut_and_counted(checkpoint, caplog):
    rm = SequenceRewardModel(checkpoint, max_length=6)
    with caplog.at_level(logging.WARNING, logger="repro.judges.sequence_rm"):
        scores = rm.score(PROMPTS, RESPONSES)
    assert np.isfinite(scores).all() and rm.truncated == 5 and "5 of 5 pairs" in caplog.text
    assert all(len(rm.encode(p, r)) == 6 for p, r in zip(PROMPTS, RESPONSES))


def test_keys_paths_and_remote_code(checkpoint, tmp_path, caplog):
    key = SequenceRewardModel(checkpoint).key()
    assert key["reward_model"] == str(checkpoint.resolve()) and "model.safetensors" in key["files"]
    assert key != SequenceRewardModel(checkpoint, max_length=64).key()
    hub = SequenceRewardModel("RLHFlow/ArmoRM-Llama3-8B-v0.1", trust_remote_code=True, dtype="bfloat16")
    assert hub.key() == {"reward_model": "RLHFlow/ArmoRM-Llama3-8B-v0.1", "max_length": None,
                         "plain_text": False, "dtype": "torch.bfloat16"}  # nothing loaded for a key
    with pytest.raises(ModelNotFound, match="does not exist"):
        SequenceRewardModel(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFound, match="no config.json"):
        SequenceRewardModel(tmp_path / "empty")
    with caplog.at_level(logging.WARNING, logger="repro.judges.sequence_rm"):
        SequenceRewardModel(checkpoint, trust_remote_code=True).load()
    assert "trust_remote_code=True" in caplog.text
    with pytest.raises(ValueError, match="2 prompts but 1 responses"):
        SequenceRewardModel(checkpoint).score(["a", "b"], ["c"])


def test_an_output_with_a_score_field_is_read_first():
    armo_like = SimpleNamespace(score=torch.tensor([[0.5], [-1.0]]), logits=torch.zeros(2, 19))
    assert output_scores(armo_like).tolist() == [0.5, -1.0]
    plain = SimpleNamespace(logits=torch.tensor([[2.0, 7.0], [3.0, 7.0]], dtype=torch.bfloat16))
    assert output_scores(plain).tolist() == [2.0, 3.0] and output_scores(plain).dtype == torch.float32
