"""Pre-training and SFT wrappers over trl, on a tiny model and a synthetic corpus."""

import random

import pytest

from repro.models import build_tokenizer, make_llama
from repro.training import PretrainSpec, SFTSpec, make_sft_trainer, pretrain, sft, sft_dataset

VOCAB = "the a cat dog sat ran on mat big small . add and is ?".split() + [str(n) for n in range(100)]


def corpus(count, seed=0):
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        a, b = rng.randrange(50), rng.randrange(50)
        animal, verb, size = rng.choice(["cat", "dog"]), rng.choice(["sat", "ran"]), rng.choice(["big", "small"])
        texts.append(f"the {animal} {verb} on the {size} mat . add {a} and {b} is {a + b} .")
    return texts


def records(count, seed=0):
    rng = random.Random(seed)
    pairs = [(rng.randrange(50), rng.randrange(50)) for _ in range(count)]
    return [
        {
            "prompt": [{"role": "user", "content": f"add {a} and {b} ?"}],
            "completion": [{"role": "assistant", "content": f"{a + b} ."}],
        }
        for a, b in pairs
    ]


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(VOCAB)


def test_pretrain_reduces_loss_and_is_deterministic(tokenizer, tmp_path):
    params = PretrainSpec(max_steps=24, batch_size=16, max_length=64, logging_steps=8, learning_rate=3e-3)
    texts = corpus(400)
    result = pretrain(make_llama("XS", tokenizer, seed=0), tokenizer, texts, params, tmp_path)
    steps, losses = zip(*result.losses)
    assert steps == (1, 8, 16, 24)
    assert losses[-1] < losses[0] - 1.0
    # Packed into full blocks of 64 tokens (but the last block of each epoch), so nearly no padding.
    assert result.steps == 24 and 0.9 * 24 * 16 * 64 < result.tokens_seen <= 24 * 16 * 64
    assert result.wall_time_s > 0 and result.tokens_per_second > 0
    assert all("learning_rate" in entry for entry in result.log_history if "loss" in entry)

    short = PretrainSpec(max_steps=3, batch_size=8, max_length=32, logging_steps=1)
    first = pretrain(make_llama("XS", tokenizer, seed=1), tokenizer, texts, short, tmp_path)
    again = pretrain(make_llama("XS", tokenizer, seed=1), tokenizer, texts, short, tmp_path)
    assert first.losses == again.losses


@pytest.mark.parametrize("packing", [True, False])
def test_the_pretraining_dataset_is_the_one_trl_prepares_from_the_texts(tokenizer, tmp_path, packing):
    """`tokenized_texts` (batched tokenizer calls) gives trl the rows its own preparation of a ``text``
    dataset gives (append ``</s>``, tokenize one text at a time, labels = ids), packed or truncated alike;
    texts that already end with ``</s>`` are not given a second one."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from repro.training.pretrain import make_pretrain_trainer, tokenized_texts

    texts = corpus(40) + ["the cat sat . </s>", "a dog ran on the big mat " * 6]
    params = PretrainSpec(max_steps=1, batch_size=4, max_length=24, packing=packing)
    ours = make_pretrain_trainer(make_llama("XS", tokenizer, seed=0), tokenizer, texts, params, tmp_path / "a")
    config = SFTConfig(output_dir=str(tmp_path / "b"), dataset_text_field="text", **params.trl_kwargs())
    theirs = SFTTrainer(model=make_llama("XS", tokenizer, seed=0), args=config, processing_class=tokenizer,
                        train_dataset=Dataset.from_dict({"text": texts}))
    columns = ["input_ids", "labels"]  # (unpacked, trl keeps the text column too; the collator reads these)
    assert set(columns) <= set(theirs.train_dataset.column_names)
    assert ours.train_dataset.select_columns(columns).to_list() == theirs.train_dataset.select_columns(columns).to_list()
    assert (len(ours.train_dataset) < len(texts)) if packing else (len(ours.train_dataset) == len(texts))
    # made in chunks of a few texts (Arrow tables joined), the same rows
    assert tokenized_texts(tokenizer, texts, chunk=5).to_list() == tokenized_texts(tokenizer, texts).to_list()


def test_sft_masks_the_prompt(tokenizer, tmp_path):
    data = records(8)
    trainer = make_sft_trainer(make_llama("XS", tokenizer, seed=0), tokenizer, data, SFTSpec(max_steps=1), tmp_path)
    assert trainer.completion_only_loss
    for record, example in zip(data, trainer.train_dataset):
        prompt_ids = tokenizer.apply_chat_template(record["prompt"], add_generation_prompt=True)["input_ids"]
        completion = record["completion"][0]["content"].split() + ["</s>"]
        labels = example["labels"]
        assert labels[: len(prompt_ids)] == [-100] * len(prompt_ids)
        assert tokenizer.convert_ids_to_tokens(labels[len(prompt_ids) :]) == completion
        assert example["input_ids"][: len(prompt_ids)] == prompt_ids


def test_sft_reduces_loss(tokenizer, tmp_path):
    params = SFTSpec(max_steps=20, batch_size=16, logging_steps=10, learning_rate=3e-3)
    result = sft(make_llama("XS", tokenizer, seed=0), tokenizer, records(160), params, tmp_path)
    losses = [loss for _, loss in result.losses]
    assert losses[-1] < losses[0] - 0.5
    assert result.steps == 20 and result.tokens_seen > 0


def test_bad_inputs_are_named(tokenizer):
    with pytest.raises(ValueError, match="record 1"):
        sft_dataset([records(1)[0], {"prompt": "add 1 and 2 ?"}])
    with pytest.raises(ValueError, match="record 0: completion"):
        sft_dataset([{"prompt": [{"role": "user", "content": "?"}], "completion": []}])
    with pytest.raises(ValueError, match="packing_strategy"):
        PretrainSpec(packing_strategy="greedy")
    with pytest.raises(ValueError, match="learning_rate"):
        SFTSpec(learning_rate=0)


def test_trl_config_defaults_suit_a_cpu():
    kwargs = PretrainSpec(extra={"weight_decay": 0.1}).trl_kwargs()
    assert kwargs["report_to"] == "none" and kwargs["save_strategy"] == "no"
    assert kwargs["bf16"] is False and kwargs["activation_checkpointing"] is False
    assert kwargs["per_device_train_batch_size"] == 32 and kwargs["weight_decay"] == 0.1
    assert kwargs["packing"] is True and kwargs["packing_strategy"] == "wrapped"
    paper_scale = SFTSpec(extra={"gradient_checkpointing": True, "bf16": True}).trl_kwargs()
    assert paper_scale["activation_checkpointing"] is True and paper_scale["bf16"] is True
    assert "gradient_checkpointing" not in paper_scale


def test_sft_groups_examples_by_length_unless_told_not_to():
    from trl import SFTConfig

    assert SFTSpec().trl_kwargs()["train_sampling_strategy"] == "group_by_length"
    assert SFTSpec(group_by_length=False).trl_kwargs()["train_sampling_strategy"] == "random"
    assert "group_by_length" not in SFTSpec().trl_kwargs()
    config = SFTConfig(output_dir="/tmp/unused", **SFTSpec().trl_kwargs())
    assert config.train_sampling_strategy == "group_by_length"
