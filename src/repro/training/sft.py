"""Supervised fine-tuning on prompt/completion conversations, with trl's `SFTTrainer`.

Records are in trl's conversational prompt-completion format::

    {"prompt": [{"role": "user", "content": "..."}],
     "completion": [{"role": "assistant", "content": "..."}]}

trl renders ``prompt`` with the generation prompt and ``prompt + completion`` with the chat template,
and with ``completion_only_loss`` the labels of the prompt tokens are -100: the loss is taken on the
completion (including its closing ``</s>``) only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from repro.training.common import TrainResult, TrainSpec, dataset_progress, run_trainer

if TYPE_CHECKING:  # trl and datasets are imported where a trainer is made (`repro.training.common`)
    from datasets import Dataset
    from transformers import PreTrainedModel, PreTrainedTokenizerBase
    from trl import SFTTrainer


@dataclass
class SFTSpec(TrainSpec):
    """`TrainSpec` for fine-tuning (a smaller learning rate, several epochs) plus the loss mask.

    Attributes:
        completion_only_loss: take the loss on completion tokens only (False: on the whole conversation).
        group_by_length: batch examples of similar length together (transformers' length-grouped
            sampler: random groups of 50 batches, sorted by length within a group). Every batch is
            padded to its longest example, so mixing short instructions with long judge prompts (M1's
            IFT + EFT) otherwise pads nearly every batch to judge length: 2.4x slower on M1's data.
    """

    learning_rate: float = 5e-4
    num_train_epochs: float = 3.0
    batch_size: int = 16
    completion_only_loss: bool = True
    group_by_length: bool = True

    def trl_kwargs(self) -> dict[str, Any]:
        kwargs = super().trl_kwargs()
        grouped = kwargs.pop("group_by_length")
        kwargs.setdefault("train_sampling_strategy", "group_by_length" if grouped else "random")
        return kwargs


def _check_messages(value: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        raise ValueError(f"{where} must be a non-empty list of messages, got {value!r:.200}")
    messages = []
    for position, message in enumerate(value):
        if (
            not isinstance(message, Mapping)
            or not isinstance(message.get("role"), str)
            or not isinstance(message.get("content"), str)
        ):
            raise ValueError(
                f"{where}[{position}] must be a {{'role': str, 'content': str}} message, got {message!r:.200}"
            )
        messages.append({"role": message["role"], "content": message["content"]})
    return messages


def sft_dataset(records: Sequence[Mapping[str, Any]]) -> Dataset:
    """A `datasets.Dataset` of prompt/completion records, checked field by field: all conversational
    (message lists, rendered with the chat template) or all plain text (trl's standard format, e.g.
    the TL;DR prompt and its summary; trl appends the EOS token to the completion)."""
    from datasets import Dataset

    if not records:
        raise ValueError("sft needs at least one record")
    rows = {"prompt": [], "completion": []}
    plain = isinstance(records[0], Mapping) and isinstance(records[0].get("prompt"), str)
    for index, record in enumerate(records):
        if not isinstance(record, Mapping) or "prompt" not in record or "completion" not in record:
            raise ValueError(f"SFT record {index} must have 'prompt' and 'completion' message lists")
        if plain:
            if not isinstance(record["prompt"], str) or not isinstance(record["completion"], str):
                raise ValueError(f"SFT record {index}: plain-text records need a string prompt and completion "
                                 "(the first record is plain text; formats cannot be mixed)")
            rows["prompt"].append(record["prompt"])
            rows["completion"].append(record["completion"])
            continue
        rows["prompt"].append(_check_messages(record["prompt"], f"SFT record {index}: prompt"))
        rows["completion"].append(_check_messages(record["completion"], f"SFT record {index}: completion"))
    return Dataset.from_dict(rows)


def make_sft_trainer(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    records: Sequence[Mapping[str, Any]],
    params: SFTSpec,
    output_dir: str | os.PathLike,
) -> SFTTrainer:
    """The configured trainer behind `sft` (its dataset is tokenized with labels, not yet trained)."""
    from trl import SFTConfig, SFTTrainer

    config = SFTConfig(output_dir=os.fspath(output_dir), **params.trl_kwargs())
    with dataset_progress(params.progress):
        return SFTTrainer(model=model, args=config, train_dataset=sft_dataset(records), processing_class=tokenizer)


def sft(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    records: Sequence[Mapping[str, Any]],
    params: SFTSpec,
    output_dir: str | os.PathLike,
) -> TrainResult:
    """Fine-tune ``model`` in place on prompt/completion conversations.

    Args:
        model: e.g. a pre-trained tiny model, or a loaded checkpoint.
        tokenizer: its tokenizer, with a chat template.
        records: ``{"prompt": [messages], "completion": [messages]}`` dicts (other keys are ignored).
        params: optimisation parameters and the loss mask.
        output_dir: the trainer's working folder (no checkpoints are written there by default).
    """
    return run_trainer(make_sft_trainer(model, tokenizer, records, params, output_dir))
