"""Language-model pre-training on plain texts, with trl's `SFTTrainer` on a ``text`` dataset.

Each text becomes ``<s> text </s>`` (the tokenizer adds ``<s>``, ``</s>`` is appended as trl appends it;
`tokenized_texts` does trl's preparation in batched calls) and the loss is taken on every token. By
default the texts are packed into blocks of ``max_length`` tokens with trl's ``"wrapped"`` strategy: the
token stream is cut into full blocks, as in GPT-2/nanoGPT pre-training, so no compute goes to padding and
documents may attend to the end of the previous one (the ``</s>`` separates them). trl's default ``"bfd"``
strategy keeps documents apart, but it trains "padding-free": the whole batch becomes one row with a
block-diagonal attention mask, which only pays with FlashAttention; on a CPU (SDPA) attention then costs
(batch x block)^2 per layer instead of batch x block^2. ``packing=False`` pads each batch to its longest
text instead.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass

from pathlib import Path
from typing import TYPE_CHECKING

from repro.training.common import TrainResult, TrainSpec, dataset_progress, run_trainer

if TYPE_CHECKING:  # trl, datasets and transformers are imported where a trainer is made (`repro.training.common`)
    from datasets import Dataset
    from transformers import PreTrainedModel, PreTrainedTokenizerBase
    from trl import SFTTrainer

PACKING_STRATEGIES = ("wrapped", "bfd", "bfd_split")


@dataclass
class PretrainSpec(TrainSpec):
    """`TrainSpec` plus how texts are batched.

    Attributes:
        packing: pack texts into blocks of ``max_length`` tokens (else pad each batch).
        packing_strategy: trl's strategy, "wrapped" (default, see the module docstring), "bfd" or "bfd_split".
        snapshot_steps: after each of these optimiser steps, save the weights to
            ``<output_dir>/snapshots/step-<N>.safetensors`` (a recipe records them so that its first steps
            can be replayed and checked; see `repro.studies.base`).
        stop_after: stop after this many optimiser steps (0: never), with the learning-rate schedule of the
            whole run, so that a replay of a run's first steps passes through the very same states.
    """

    packing: bool = True
    packing_strategy: str = "wrapped"
    snapshot_steps: tuple[int, ...] = ()
    stop_after: int = 0

    def trl_kwargs(self) -> dict:
        kwargs = super().trl_kwargs()
        del kwargs["snapshot_steps"], kwargs["stop_after"]  # this module's, not trl's
        return kwargs

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.packing_strategy not in PACKING_STRATEGIES:
            raise ValueError(
                f"PretrainSpec.packing_strategy must be one of {', '.join(PACKING_STRATEGIES)}, "
                f"got {self.packing_strategy!r}"
            )


@functools.cache
def step_snapshots() -> type:
    """`StepSnapshots`, a transformers trainer callback (defined on first use, as the trainers are, so that
    importing this module imports neither transformers nor torch)."""
    from safetensors.torch import save_model
    from transformers import TrainerCallback

    class StepSnapshots(TrainerCallback):
        """Saves the weights after the chosen optimiser steps, and stops training after ``stop_after`` steps."""

        def __init__(self, folder: Path, steps: Sequence[int], stop_after: int = 0):
            self.folder, self.steps, self.stop_after = folder, set(steps), stop_after

        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step in self.steps and state.is_world_process_zero:
                self.folder.mkdir(parents=True, exist_ok=True)
                save_model(model, str(self.folder / f"step-{state.global_step}.safetensors"))
            if self.stop_after and state.global_step >= self.stop_after:
                control.should_training_stop = True
            return control

    return StepSnapshots


def make_pretrain_trainer(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    params: PretrainSpec,
    output_dir: str | os.PathLike,
) -> SFTTrainer:
    """The configured trainer behind `pretrain` (its dataset is tokenized and packed, not yet trained)."""
    from trl import SFTConfig, SFTTrainer

    if not texts:
        raise ValueError("pretrain needs at least one text")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"pretraining text {index} must be a string, got {type(text).__name__}")
    config = SFTConfig(output_dir=os.fspath(output_dir), dataset_text_field="text", **params.trl_kwargs())
    callbacks = ([step_snapshots()(Path(output_dir) / "snapshots", params.snapshot_steps, params.stop_after)]
                 if params.snapshot_steps or params.stop_after else None)
    with dataset_progress(params.progress):
        return SFTTrainer(
            model=model,
            args=config,
            train_dataset=tokenized_texts(tokenizer, texts),
            processing_class=tokenizer,
            callbacks=callbacks,
        )


def tokenized_texts(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], chunk: int = 4096) -> Dataset:
    """The dataset trl's `SFTTrainer` makes of a ``text`` dataset before it packs or truncates it, made by batched
    calls of the tokenizer: ``</s>`` appended to a text that does not end with it, the text tokenized as the
    tokenizer's own call does it (``<s>`` first), and labels equal to the ids (the loss on every token).

    trl does the same one text at a time, in three ``Dataset.map`` passes (append, tokenize, label); for M0's
    80,000 documents on 2 cores that took 13.5 s of the trainer's set-up (4.7 s this way), longer than the
    first 20 optimiser steps. Given ``input_ids``, trl takes the dataset as tokenized and goes on to packing
    or truncation. The weights after M0's first 20 steps equal, to the bit, those its recipe recorded with
    trl's own preparation (`repro.studies.base.replay`, ``tests/test_shipped.py``). ``chunk`` texts at a time
    become Arrow tables, so the token lists of the whole corpus are never held as Python objects at once.
    """
    from datasets import Dataset, concatenate_datasets

    eos = tokenizer.eos_token
    parts = []
    for start in range(0, len(texts), chunk):
        ids = tokenizer([text if text.endswith(eos) else text + eos for text in texts[start : start + chunk]])
        parts.append(Dataset.from_dict({"input_ids": ids["input_ids"], "labels": ids["input_ids"]}))
    return concatenate_datasets(parts) if len(parts) > 1 else parts[0]


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
