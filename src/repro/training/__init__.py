"""Thin wrappers over trl: each is a plain parameter dataclass and one function returning `TrainResult`.

>>> result = pretrain(model, tokenizer, texts, PretrainParams(max_steps=200), "runs/x/pretrain")  # doctest: +SKIP
>>> result = sft(model, tokenizer, records, SFTParams(num_train_epochs=3), "runs/x/sft")         # doctest: +SKIP
>>> result.losses[-1], result.tokens_per_second                                               # doctest: +SKIP
"""

from repro.training.common import TrainParams, TrainResult
from repro.training.pretrain import PretrainParams, make_pretrain_trainer, pretrain
from repro.training.sft import SFTParams, make_sft_trainer, sft, sft_dataset

__all__ = [
    "PretrainParams",
    "SFTParams",
    "TrainParams",
    "TrainResult",
    "make_pretrain_trainer",
    "make_sft_trainer",
    "pretrain",
    "sft",
    "sft_dataset",
]
