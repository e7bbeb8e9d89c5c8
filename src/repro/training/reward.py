"""Reward models on preference pairs with trl's `RewardTrainer`, from hard or soft labels.

Records are ``{"chosen": ..., "rejected": ..., "soft_label": p}`` (text or conversations, as trl
takes them), where ``soft_label`` is optional: the probability that ``chosen`` is the better of the
two (an AI labeller's soft label; RLAIF). Without it the pair is a hard label (p = 1).

trl's `RewardTrainer` minimises the Bradley-Terry loss ``-log sigmoid(r_chosen - r_rejected)``
(optionally with a per-pair ``margin`` column, which its collator carries). RLAIF trains on soft
labels instead, with the cross-entropy between the soft label and the model's preference
probability::

    loss = -[p log sigmoid(r_c - r_r) + (1 - p) log sigmoid(r_r - r_c)]

trl has no such loss, so it is added the way trl carries ``margin``: a collator that passes the
``soft_label`` column through, the column among the trainer's signature columns, and
``compute_loss`` returning the soft loss (the parent's forward pass and reward metrics are reused).
With p = 1 the soft loss is exactly trl's.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from repro.models.io import load_weights
from repro.training.common import TrainResult, TrainSpec, dataset_progress, run_trainer

if TYPE_CHECKING:  # trl, datasets and torch are imported where a trainer is made (`repro.training.common`)
    import torch
    from datasets import Dataset
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

SOFT_LABEL = "soft_label"


def soft_preference_loss(rewards_chosen: torch.Tensor, rewards_rejected: torch.Tensor,
                         soft_label: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy between soft labels and the Bradley-Terry preference of the rewards."""
    from torch import nn

    difference = rewards_chosen - rewards_rejected
    return -(soft_label * nn.functional.logsigmoid(difference)
             + (1 - soft_label) * nn.functional.logsigmoid(-difference)).mean()


@functools.cache
def soft_label_classes() -> tuple[type, type]:
    """``(SoftLabelCollator, SoftLabelRewardTrainer)``: trl's preference collator, also carrying each pair's
    ``soft_label``, and its `RewardTrainer` with the soft-label cross-entropy when the batch has one.
    Made when first asked for, so that importing this module does not import trl."""
    import torch
    from trl import RewardTrainer
    from trl.trainer.reward_trainer import DataCollatorForPreference

    @dataclass
    class SoftLabelCollator(DataCollatorForPreference):
        """trl's preference collator, also carrying each pair's ``soft_label`` as a float tensor."""

        def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
            output = super().torch_call(examples)
            if SOFT_LABEL in examples[0]:
                output[SOFT_LABEL] = torch.tensor([e[SOFT_LABEL] for e in examples], dtype=torch.float)
            return output

    class SoftLabelRewardTrainer(RewardTrainer):
        """`RewardTrainer` with the soft-label cross-entropy when the batch has a ``soft_label``."""

        def _set_signature_columns_if_needed(self):
            super()._set_signature_columns_if_needed()
            if SOFT_LABEL not in self._signature_columns:
                self._signature_columns = [*self._signature_columns, SOFT_LABEL]

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            soft_label = inputs.pop(SOFT_LABEL, None)
            loss, outputs = super().compute_loss(model, inputs, return_outputs=True,
                                                 num_items_in_batch=num_items_in_batch)
            if soft_label is not None:
                rewards_chosen, rewards_rejected = torch.chunk(outputs.logits.squeeze(-1), chunks=2)
                loss = soft_preference_loss(rewards_chosen, rewards_rejected, soft_label.to(rewards_chosen.dtype))
                if self.args.center_rewards_coefficient is not None:
                    loss = loss + self.args.center_rewards_coefficient * torch.mean(
                        (rewards_chosen + rewards_rejected) ** 2)
            return (loss, outputs) if return_outputs else loss

    return SoftLabelCollator, SoftLabelRewardTrainer


@dataclass
class RewardSpec(TrainSpec):
    """`TrainSpec` for reward models (the RLAIF paper trains its RMs for a few epochs)."""

    learning_rate: float = 5e-4
    num_train_epochs: float = 2.0
    batch_size: int = 16

    def trl_kwargs(self) -> dict:
        kwargs = super().trl_kwargs()
        kwargs["include_num_input_tokens_seen"] = "no"  # pairs are not ``input_ids``: uncountable, warned
        return kwargs


def reward_dataset(records: Sequence[Mapping[str, Any]]) -> Dataset:
    """A `datasets.Dataset` of preference records, checked: chosen and rejected present, soft labels
    (all or none) in [0, 1]."""
    from datasets import Dataset

    if not records:
        raise ValueError("reward model training needs at least one record")
    soft = SOFT_LABEL in records[0]
    rows: dict[str, list] = {"chosen": [], "rejected": [], **({SOFT_LABEL: []} if soft else {})}
    for index, record in enumerate(records):
        if not isinstance(record, Mapping) or "chosen" not in record or "rejected" not in record:
            raise ValueError(f"reward record {index} must have 'chosen' and 'rejected'")
        if (SOFT_LABEL in record) != soft:
            raise ValueError(f"reward record {index}: either every record has a soft_label or none does")
        rows["chosen"].append(record["chosen"])
        rows["rejected"].append(record["rejected"])
        if soft:
            p = record[SOFT_LABEL]
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
                raise ValueError(f"reward record {index}: soft_label must be a probability in [0, 1], got {p!r}")
            rows[SOFT_LABEL].append(float(p))
    return Dataset.from_dict(rows)


def make_reward_model(path: str | os.PathLike, *, seed: int = 0) -> PreTrainedModel:
    """A sequence-classification model with one output (the reward) on top of a causal LM checkpoint;
    the scalar head is new, initialised with ``seed``."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers import logging as hf_logging

    tokenizer = AutoTokenizer.from_pretrained(path)
    torch.manual_seed(seed)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "some weights were newly initialised" is the point here
    try:
        model = load_weights(AutoModelForSequenceClassification, path, num_labels=1)
    finally:
        hf_logging.set_verbosity(verbosity)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model


def load_reward_model(path: str | os.PathLike, *, device: str | None = None):
    """A saved reward model and its tokenizer, in eval mode. ``device``: where to put it; ``"auto"`` is
    the GPU when there is one (where a trainer leaves a freshly trained model), else the CPU; None
    leaves it on the CPU."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = load_weights(AutoModelForSequenceClassification, path).eval()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device is not None:
        model = model.to(device)
    return model, AutoTokenizer.from_pretrained(path)


def make_reward_trainer(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, records, params: RewardSpec,
                        output_dir: str | os.PathLike):
    """The configured ``SoftLabelRewardTrainer`` (`soft_label_classes`) behind `train_reward`."""
    from trl import RewardConfig

    SoftLabelCollator, SoftLabelRewardTrainer = soft_label_classes()
    config = RewardConfig(output_dir=os.fspath(output_dir), **params.trl_kwargs())
    with dataset_progress(params.progress):
        return SoftLabelRewardTrainer(model=model, args=config, train_dataset=reward_dataset(records),
                                      processing_class=tokenizer,
                                      data_collator=SoftLabelCollator(pad_token_id=tokenizer.pad_token_id))


def train_reward(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, records, params: RewardSpec,
                 output_dir: str | os.PathLike) -> TrainResult:
    """Train a reward model in place on preference records (hard or soft labels; see the module)."""
    return run_trainer(make_reward_trainer(model, tokenizer, records, params, output_dir))


def reward_scores(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str],
                  *, batch_size: int = 64) -> list[float]:
    """The reward of each text (the model's scalar output at its last token), in batches. Texts end
    with the tokenizer's EOS, as trl's `RewardTrainer` trains on them."""
    import torch

    model.eval()
    scores: list[float] = []
    device = next(model.parameters()).device
    texts = [t if t.endswith(tokenizer.eos_token) else t + tokenizer.eos_token for t in texts]
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start:start + batch_size], return_tensors="pt", padding=True)
            batch = {k: v.to(device) for k, v in batch.items()}
            scores.extend(model(**batch).logits.squeeze(-1).float().cpu().tolist())
    return scores
