"""RLOO with trl: parameters, the reward-function adapter, and a tiny policy trained against a reward."""

import random

import pytest

from repro.training.rl import RLSpec, named_reward


def test_parameters_keep_whole_groups_and_a_baseline():
    kwargs = RLSpec(batch_size=8, num_generations=4).trl_kwargs()
    assert kwargs["num_generations"] == 4 and kwargs["beta"] == 0.05 and kwargs["temperature"] == 0.9
    assert "max_length" not in kwargs and kwargs["max_completion_length"] == 32
    with pytest.raises(ValueError, match="multiple of num_generations"):
        RLSpec(batch_size=6, num_generations=4)
    with pytest.raises(ValueError, match="leave-one-out"):
        RLSpec(num_generations=1)


def test_the_reward_adapter_checks_its_output():
    seen = []

    def reward(prompts, completions):
        seen.append((prompts, completions))
        return [len(c) for c in completions]

    function = named_reward("length", reward)
    assert function.__name__ == "length"
    assert function(prompts=["p", "q"], completions=["ab", "c"], completion_ids=None, log_extra=None) == [2.0, 1.0]
    assert seen == [(["p", "q"], ["ab", "c"])]
    with pytest.raises(ValueError, match="returned 1 values for 2 completions"):
        named_reward("bad", lambda p, c: [1.0])(prompts=["p", "q"], completions=["a", "b"])


@pytest.mark.slow
def test_rloo_trains_a_tiny_policy_against_a_reward(tmp_path):
    from repro.models import build_tokenizer, make_llama
    from repro.world import summaries as ws

    tokenizer = build_tokenizer(ws.summary_vocabulary())
    model = make_llama("XS", tokenizer, seed=0)
    calls = []

    def reward(prompts, completions):  # more words "and" is better: easy to learn, cheap to check
        calls.append(len(completions))
        return [c.split().count("and") for c in completions]

    from repro.training.rl import train_rloo

    params = RLSpec(max_steps=4, batch_size=8, num_generations=4, max_completion_length=8, logging_steps=1,
                    learning_rate=1e-3, seed=0)
    prompts = [ws.make_post(random.Random(i)).body for i in range(8)]
    result = train_rloo(model, tokenizer, prompts, reward, params, tmp_path / "rloo", reward_name="ands")
    assert result.steps == 4 and calls and all(n % 4 == 0 for n in calls)
    logged = [e for e in result.log_history if "reward" in e or "rewards/ands/mean" in e]
    assert logged, result.log_history[:2]


def test_the_kl_reference_is_a_frozen_copy_of_the_starting_policy(tmp_path):
    import torch

    from repro.models import build_tokenizer, make_llama
    from repro.training.rl import make_rloo_trainer

    tokenizer = build_tokenizer(["a", "b", "c"])
    model = make_llama("XS", tokenizer, seed=0)  # built in memory: trl alone could not find a reference
    with torch.no_grad():
        model.model.embed_tokens.weight.add_(1.0)  # as if trained since it was created
    trainer = make_rloo_trainer(model, tokenizer, ["a b", "b c"], lambda p, c: [0.0] * len(c),
                                RLSpec(max_steps=1, batch_size=4, num_generations=2), tmp_path)
    reference = trainer.ref_model
    assert reference is not None and reference is not trainer.model
    assert torch.equal(reference.model.embed_tokens.weight, model.model.embed_tokens.weight)


@pytest.mark.slow
def test_rloo_trains_the_same_policy_with_its_completions_from_the_decode_loop(tmp_path, monkeypatch):
    """trl samples with ``model.generate``; through `loop_generate` it gets the same completions token for
    token, so two trainings from the same start, one each way, log the same rewards and end with the same
    weights bit for bit."""
    import torch

    from repro.generation import decode
    from repro.models import build_tokenizer, make_llama
    from repro.training.rl import train_rloo
    from repro.world import summaries as ws

    tokenizer = build_tokenizer(ws.summary_vocabulary())
    prompts = [ws.make_post(random.Random(i)).body for i in range(8)]
    params = RLSpec(max_steps=3, batch_size=8, num_generations=4, max_completion_length=12, logging_steps=1,
                    learning_rate=1e-3, temperature=0.9, seed=0)
    looped = []
    monkeypatch.setattr(decode, "decode", lambda *a, _decode=decode.decode, **k: looped.append(1) or _decode(*a, **k))
    trained = {}
    for decode_loop in (False, True):
        model = make_llama("XS", tokenizer, seed=0, initializer_range=0.2)
        result = train_rloo(model, tokenizer, prompts, lambda p, c: [c.split().count("and") for c in c], params,
                            tmp_path / f"rloo-{decode_loop}", decode_loop=decode_loop)
        rewards = [e["reward"] for e in result.log_history if "reward" in e]
        trained[decode_loop] = (rewards, model.state_dict())
        assert "generate" not in vars(model)  # the model's own generate is back
    assert looped and len(trained[True][0]) == 3
    assert trained[True][0] == trained[False][0]
    assert all(torch.equal(trained[True][1][k], trained[False][1][k]) for k in trained[False][1])
