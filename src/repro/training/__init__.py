"""Thin wrappers over trl: each is a plain parameter dataclass and one function returning `TrainResult`.

>>> result = pretrain(model, tokenizer, texts, PretrainSpec(max_steps=200), "runs/x/pretrain")  # doctest: +SKIP
>>> result = sft(model, tokenizer, records, SFTSpec(num_train_epochs=3), "runs/x/sft")         # doctest: +SKIP
>>> result = train_preference(model, tokenizer, pairs, PreferenceSpec(method="dpo"), "runs/x/dpo")  # doctest: +SKIP
>>> result.losses[-1], result.tokens_per_second                                               # doctest: +SKIP
"""

from repro.training.common import TrainResult, TrainSpec
from repro.training.preference import (
    PreferenceSpec,
    make_preference_trainer,
    preference_config,
    preference_dataset,
    train_preference,
)
from repro.training.pretrain import PretrainSpec, make_pretrain_trainer, pretrain
from repro.training.reward import RewardSpec, make_reward_model, reward_scores, train_reward
from repro.training.rl import RLSpec, joined, reward_model_function, saved_reward_model, train_rloo
from repro.training.sft import SFTSpec, make_sft_trainer, sft, sft_dataset

__all__ = [
    "PreferenceSpec",
    "PretrainSpec",
    "RLSpec",
    "RewardSpec",
    "SFTSpec",
    "TrainSpec",
    "TrainResult",
    "make_preference_trainer",
    "make_pretrain_trainer",
    "make_reward_model",
    "joined",
    "make_sft_trainer",
    "preference_config",
    "preference_dataset",
    "pretrain",
    "reward_model_function",
    "reward_scores",
    "saved_reward_model",
    "sft",
    "sft_dataset",
    "train_preference",
    "train_reward",
    "train_rloo",
]
