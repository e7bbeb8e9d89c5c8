"""Preference optimisation wrappers over trl (DPO, SPPO, SimPO, ORPO), on a tiny model and synthetic pairs."""

import copy
import random

import pytest
import torch

from repro.models import build_tokenizer, make_llama
from repro.training import (
    PreferenceSpec,
    make_preference_trainer,
    preference_config,
    preference_dataset,
    train_preference,
)
from repro.training.common import run_trainer

VOCAB = "the a cat dog sat ran on mat big small . add and is ?".split() + [str(n) for n in range(100)]
REWARD_METRICS = ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies")


def records(count, seed=0):
    """Sums: the chosen completion is right, the rejected one is off by 1 to 5."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        a, b = rng.randrange(20), rng.randrange(20)
        pairs.append(
            {
                "prompt": [{"role": "user", "content": f"add {a} and {b} ?"}],
                "chosen": [{"role": "assistant", "content": f"{a + b} ."}],
                "rejected": [{"role": "assistant", "content": f"{a + b + rng.randint(1, 5)} ."}],
            }
        )
    return pairs


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(VOCAB)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from a second thread, and on a busy machine its spin-waits cost up to 50x."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def completion_logps(model, tokenizer, data, key):
    """Summed log-probability of each record's ``key`` completion given its prompt, by a plain forward pass."""
    logps = []
    with torch.no_grad():
        for record in data:
            prompt = tokenizer.apply_chat_template(record["prompt"], add_generation_prompt=True)["input_ids"]
            full = tokenizer.apply_chat_template(record["prompt"] + record[key])["input_ids"]
            assert full[: len(prompt)] == prompt
            log_probs = model(input_ids=torch.tensor([full])).logits[0, :-1].log_softmax(-1)
            targets = torch.tensor(full[1:])
            token_logps = log_probs.gather(-1, targets[:, None])[:, 0]
            logps.append(token_logps[len(prompt) - 1 :].sum().item())
    return torch.tensor(logps)


def margins(model, tokenizer, data):
    return completion_logps(model, tokenizer, data, "chosen") - completion_logps(model, tokenizer, data, "rejected")


def weights(model):
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def changed(before, model):
    return any(not torch.equal(before[name], tensor) for name, tensor in model.state_dict().items())


def test_dpo_widens_the_margin_against_a_frozen_reference(tokenizer, tmp_path):
    data = records(32)
    model = make_llama("XS", tokenizer, seed=0)
    start = copy.deepcopy(model)
    params = PreferenceSpec(max_steps=6, learning_rate=1e-3, batch_size=16, logging_steps=3, max_length=32)
    trainer = make_preference_trainer(model, tokenizer, data, params, tmp_path)
    assert type(trainer).__name__ == "DPOTrainer" and trainer.args.loss_type == ["sigmoid"]
    reference = trainer.ref_model
    assert reference is not model and not any(p.requires_grad for p in reference.parameters())

    result = run_trainer(trainer)

    assert result.model is model and result.steps == 6 and result.tokens_seen == 6 * 16 * 2 * (9 + 3)
    steps, losses = zip(*result.losses)
    assert steps == (1, 3, 6) and losses[-1] < losses[0]
    logged = [entry for entry in result.log_history if "loss" in entry]
    assert all(metric in entry for entry in logged for metric in REWARD_METRICS)
    assert logged[-1]["rewards/margins"] > 0
    assert changed(weights(start), model)
    assert not changed(weights(start), reference)  # the reference is the starting policy, untouched

    # Relative to the reference, the chosen completions gained log-probability on the rejected ones. Before
    # training the policy is the reference, so the relative margin starts at exactly 0.
    relative = margins(model, tokenizer, data) - margins(start, tokenizer, data)
    assert relative.mean() > 0.5 and (relative > 0).float().mean() >= 0.75

    # A second iteration starts from the trained policy, which trl has patched; its reference is a real copy
    # whose plain forward does not follow the policy's weights.
    again = make_preference_trainer(model, tokenizer, data, params, tmp_path)
    probe = torch.tensor([tokenizer.apply_chat_template(data[0]["prompt"], add_generation_prompt=True)["input_ids"]])
    with torch.no_grad():
        before = again.ref_model(input_ids=probe).logits
        for parameter in model.parameters():
            parameter.add_(0.5)
        assert torch.equal(again.ref_model(input_ids=probe).logits, before)
        assert not torch.allclose(model(input_ids=probe).logits, before)


def test_dpo_uses_a_given_reference(tokenizer, tmp_path):
    model = make_llama("XS", tokenizer, seed=0)
    reference = make_llama("XS", tokenizer, seed=1)
    trainer = make_preference_trainer(model, tokenizer, records(8), PreferenceSpec(max_steps=1), tmp_path, reference)
    assert trainer.ref_model is reference


@pytest.mark.parametrize(
    ("method", "trainer_name", "extra_metric"),
    [
        ("sppo", "DPOTrainer", "logps/chosen"),
        ("simpo", "TokenCountingCPOTrainer", "nll_loss"),
        ("orpo", "TokenCountingORPOTrainer", "log_odds_ratio"),
    ],
)
def test_other_methods_train(tokenizer, tmp_path, method, trainer_name, extra_metric):
    model = make_llama("XS", tokenizer, seed=0)
    start = weights(model)
    params = PreferenceSpec(method=method, max_steps=3, learning_rate=1e-3, batch_size=8, logging_steps=1)
    trainer = make_preference_trainer(model, tokenizer, records(32), params, tmp_path)
    assert type(trainer).__name__ == trainer_name
    result = run_trainer(trainer)
    steps, losses = zip(*result.losses)
    assert steps == (1, 2, 3) and all(loss == loss for loss in losses)  # logged, and not NaN
    logged = [entry for entry in result.log_history if "loss" in entry]
    assert all(metric in entry for entry in logged for metric in (*REWARD_METRICS, extra_metric))
    assert result.steps == 3 and changed(start, model)
    # Prompt + chosen and prompt + rejected, as DPO counts them: 3 batches of 8 pairs of 9 + 3 tokens each.
    assert result.tokens_seen == 3 * 8 * 2 * (9 + 3)


def test_trl_configs_per_method(tmp_path):
    dpo = preference_config(PreferenceSpec(), tmp_path)
    assert type(dpo).__name__ == "DPOConfig" and dpo.loss_type == ["sigmoid"] and dpo.beta == 0.1
    assert dpo.report_to == [] or dpo.report_to in ("none", ["none"])
    assert dpo.bf16 is False and dpo.activation_checkpointing is False and dpo.save_strategy == "no"
    assert dpo.learning_rate == 9e-5 and dpo.per_device_train_batch_size == 16 and dpo.num_train_epochs == 2
    sppo = preference_config(PreferenceSpec(method="sppo", beta=0.05), tmp_path)
    assert sppo.loss_type == ["sppo_hard"] and sppo.beta == 0.05
    simpo = preference_config(PreferenceSpec(method="simpo", beta=2.0, simpo_gamma=1.0), tmp_path)
    assert type(simpo).__name__ == "CPOConfig" and simpo.loss_type == "simpo" and simpo.cpo_alpha == 0.0
    assert simpo.beta == 2.0 and simpo.simpo_gamma == 1.0 and simpo.bf16 is False
    cpo_simpo = preference_config(PreferenceSpec(method="simpo", extra={"cpo_alpha": 1.0}), tmp_path)
    assert cpo_simpo.cpo_alpha == 1.0  # extra still overrides
    orpo = preference_config(PreferenceSpec(method="orpo", max_length=64), tmp_path)
    assert type(orpo).__name__ == "ORPOConfig" and orpo.max_length == 64
    assert orpo.activation_checkpointing is False and orpo.save_strategy == "no"


def test_the_chosen_answers_nll_joins_the_dpo_loss_only_when_asked(tokenizer, tmp_path):
    plain = preference_config(PreferenceSpec(), tmp_path)
    assert plain.loss_type == ["sigmoid"] and plain.loss_weights is None
    rpo = preference_config(PreferenceSpec(sft_weight=0.5), tmp_path)
    assert rpo.loss_type == ["sigmoid", "sft"] and rpo.loss_weights == [1.0, 0.5]
    assert preference_config(PreferenceSpec(method="sppo", sft_weight=1.0), tmp_path).loss_type == ["sppo_hard", "sft"]
    for bad in ({"sft_weight": -1.0}, {"method": "orpo", "sft_weight": 1.0}):
        with pytest.raises(ValueError, match="sft_weight"):
            PreferenceSpec(**bad)
    # the NLL term keeps the chosen answers likely: their log-probability falls less than under plain DPO
    data = records(32)
    start = make_llama("XS", tokenizer, seed=0)
    chosen = {}
    for weight in (0.0, 2.0):
        model = copy.deepcopy(start)
        params = PreferenceSpec(max_steps=8, learning_rate=3e-3, batch_size=16, max_length=32, sft_weight=weight)
        run_trainer(make_preference_trainer(model, tokenizer, data, params, tmp_path / str(weight)))
        chosen[weight] = (completion_logps(model, tokenizer, data, "chosen")
                          - completion_logps(start, tokenizer, data, "chosen")).mean().item()
    assert chosen[2.0] > chosen[0.0]


def test_bad_inputs_are_named(tokenizer, tmp_path):
    good = records(1)[0]
    with pytest.raises(ValueError, match="record 1 must have 'prompt', 'chosen' and 'rejected'"):
        preference_dataset([good, {"prompt": good["prompt"], "chosen": good["chosen"]}])
    with pytest.raises(ValueError, match=r"record 2: rejected\[0\]"):
        preference_dataset([good, good, {**good, "rejected": [{"role": "assistant"}]}])
    with pytest.raises(ValueError, match="record 0: chosen must be a non-empty list"):
        preference_dataset([{**good, "chosen": []}])
    with pytest.raises(ValueError, match="at least one record"):
        preference_dataset([])
    with pytest.raises(ValueError, match="method must be one of dpo, sppo, simpo, orpo, got 'kto'"):
        PreferenceSpec(method="kto")
    with pytest.raises(ValueError, match="beta"):
        PreferenceSpec(beta=0)
    with pytest.raises(ValueError, match="ORPOConfig .*'loss_type'"):
        preference_config(PreferenceSpec(method="orpo", extra={"loss_type": "ipo"}), tmp_path)
    with pytest.raises(ValueError, match="DPOConfig .*'simpo_gamma'"):
        preference_config(PreferenceSpec(extra={"simpo_gamma": 1.0}), tmp_path)
    model = make_llama("XS", tokenizer, seed=0)
    with pytest.raises(ValueError, match="reference-free"):
        train_preference(model, tokenizer, records(4), PreferenceSpec(method="simpo"), tmp_path, ref_model=model)
