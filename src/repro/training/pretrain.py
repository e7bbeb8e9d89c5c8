"""Language-model pre-training on plain texts, with trl's `SFTTrainer` on a ``text`` dataset.

Each text becomes ``<s> text </s>`` (the tokenizer adds ``<s>``, trl appends ``</s>``) and the loss
is taken on every token. By default the texts are packed into blocks of ``max_length`` tokens with
trl's ``"wrapped"`` strategy: the token stream is cut into full blocks, as in GPT-2/nanoGPT
pre-training, so no compute goes to padding and documents may attend to the end of the previous one
(the ``</s>`` separates them). trl's default ``"bfd"`` strategy keeps documents apart, but it trains
"padding-free": the whole batch becomes one row with a block-diagonal attention mask, which only pays
with FlashAttention; on a CPU (SDPA) attention then costs (batch x block)^2 per layer instead of
batch x block^2. ``packing=False`` pads each batch to its longest text instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from datasets import Dataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from trl import SFTConfig, SFTTrainer

from repro.training.common import TrainResult, TrainSpec, dataset_progress, run_trainer

PACKING_STRATEGIES = ("wrapped", "bfd", "bfd_split")


@dataclass
class PretrainSpec(TrainSpec):
    """`TrainSpec` plus how texts are batched.

    Attributes:
        packing: pack texts into blocks of ``max_length`` tokens (else pad each batch).
        packing_strategy: trl's strategy, "wrapped" (default, see the module docstring), "bfd" or "bfd_split".
    """

    packing: bool = True
    packing_strategy: str = "wrapped"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.packing_strategy not in PACKING_STRATEGIES:
            raise ValueError(
                f"PretrainSpec.packing_strategy must be one of {', '.join(PACKING_STRATEGIES)}, "
                f"got {self.packing_strategy!r}"
            )


def make_pretrain_trainer(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    params: PretrainSpec,
    output_dir: str | os.PathLike,
) -> SFTTrainer:
    """The configured trainer behind `pretrain` (its dataset is tokenized and packed, not yet trained)."""
    if not texts:
        raise ValueError("pretrain needs at least one text")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"pretraining text {index} must be a string, got {type(text).__name__}")
    config = SFTConfig(output_dir=os.fspath(output_dir), dataset_text_field="text", **params.trl_kwargs())
    with dataset_progress(params.progress):
        return SFTTrainer(
            model=model,
            args=config,
            train_dataset=Dataset.from_dict({"text": list(texts)}),
            processing_class=tokenizer,
        )


def pretrain(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    params: PretrainSpec,
    output_dir: str | os.PathLike,
) -> TrainResult:
    """Train ``model`` in place as a language model on ``texts``.

    Args:
        model: e.g. a fresh `repro.models.make_llama` model.
        tokenizer: its tokenizer.
        texts: the corpus, one document per string.
        params: optimisation and batching parameters.
        output_dir: the trainer's working folder (no checkpoints are written there by default).
    """
    return run_trainer(make_pretrain_trainer(model, tokenizer, texts, params, output_dir))
