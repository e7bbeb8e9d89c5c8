"""What every training wrapper shares: the parameters common to all trainers, the result, and the
translation of both into trl's config and back.

The defaults suit the tiny models on a CPU: float32 (trl would default to bf16), no activation
checkpointing (trl turns it on by default), no experiment trackers (``report_to="none"``) and no
checkpoints (``save_strategy="no"``). The same seed gives the same run: trl seeds torch before
training and the data order comes from the seed. At paper scale, ``extra`` passes any other trl /
`transformers.TrainingArguments` field (``bf16``, ``activation_checkpointing``, ``deepspeed``, ...).

trl, `datasets` and transformers' `Trainer` are imported inside the functions that make a trainer, in
this module and the others of the package: the studies import the parameter dataclasses, and a notebook
whose stages are all reused (the book rebuilt warm, a sweep's runs) never trains, so it should not pay
for importing them (about half a second of every kernel's start-up on two cores).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedModel, Trainer

# Fields of `TrainSpec` that map one to one onto `TrainingArguments` fields of another name.
_RENAMED = {"batch_size": "per_device_train_batch_size", "warmup_ratio": "warmup_steps"}
# Fields of `TrainSpec` that are not `TrainingArguments` fields.
_NOT_ARGUMENTS = {"extra", "progress"}


@dataclass
class TrainSpec:
    """Optimisation parameters common to every trainer.

    Attributes:
        learning_rate: peak learning rate of AdamW.
        lr_scheduler_type: transformers scheduler name ("cosine", "linear", "constant", ...).
        num_train_epochs: passes over the data (ignored when ``max_steps > 0``).
        max_steps: total optimiser steps; -1 trains for ``num_train_epochs``.
        batch_size: sequences per device per micro-batch when a trainer is built directly; a job of
            `repro.training.jobs` takes it as the global batch and splits it over its processes.
        gradient_accumulation_steps: micro-batches per optimiser step.
        warmup_ratio: fraction of the steps spent warming the learning rate up linearly from 0.
        weight_decay: AdamW weight decay.
        max_grad_norm: gradient clipping norm.
        seed: seed of the initialisation of trainer state and of the data order.
        logging_steps: optimiser steps between two entries of the log history (the first step is logged too).
        max_length: longest sequence in tokens; longer ones are truncated (or, when packing, the block size).
        progress: show a progress bar.
        extra: further `trl` config fields, passed as is (they override the fields above).
    """

    learning_rate: float = 1e-3
    lr_scheduler_type: str = "cosine"
    num_train_epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 32
    gradient_accumulation_steps: int = 1
    warmup_ratio: float = 0.05
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    seed: int = 0
    logging_steps: int = 10
    max_length: int = 256
    progress: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        name = type(self).__name__
        if self.learning_rate <= 0:
            raise ValueError(f"{name}.learning_rate must be > 0, got {self.learning_rate}")
        if self.max_steps <= 0 and self.num_train_epochs <= 0:
            raise ValueError(f"{name} needs num_train_epochs > 0 or max_steps > 0")
        for attribute in ("batch_size", "gradient_accumulation_steps", "logging_steps", "max_length"):
            if getattr(self, attribute) < 1:
                raise ValueError(f"{name}.{attribute} must be >= 1, got {getattr(self, attribute)}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"{name}.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")

    def trl_kwargs(self) -> dict[str, Any]:
        """The fields as keyword arguments of a trl config, with the repository's fixed choices."""
        import torch  # here, not at the top: defining a trainer's settings does not need torch

        kwargs = {
            _RENAMED.get(f.name, f.name): getattr(self, f.name)
            for f in fields(self)
            if f.name not in _NOT_ARGUMENTS
        }
        kwargs.update(
            data_seed=self.seed,
            logging_first_step=True,
            report_to="none",
            save_strategy="no",
            bf16=False,
            # transformers 5.23 renamed gradient_checkpointing (which trl turns on by default)
            activation_checkpointing=False,
            dataloader_pin_memory=torch.cuda.is_available(),
            include_num_input_tokens_seen="non_padding",
            disable_tqdm=not self.progress,
            dataloader_num_workers=0,
            # under DDP every parameter takes part in every step (no looking for unused ones: a
            # traversal of the graph per step, which transformers turns on by default)
            ddp_find_unused_parameters=False,
        )
        kwargs.update(self.extra)
        if "gradient_checkpointing" in self.extra:  # the old name would lose to activation_checkpointing=False
            kwargs["activation_checkpointing"] = kwargs.pop("gradient_checkpointing")
        return kwargs


@dataclass
class TrainResult:
    """The outcome of a training run.

    Attributes:
        model: the trained model (the same object that was passed in, trained in place), in eval mode.
        log_history: the trainer's log entries, e.g. ``{"step": 10, "loss": 3.2, "learning_rate": ...}``;
            the last entry holds the run summary (``train_loss``, ``train_runtime``, ...).
        wall_time_s: seconds spent in ``trainer.train()``.
        tokens_seen: non-padding input tokens processed.
        steps: optimiser steps taken.
        trainer: the trainer itself (for saving a sharded model under FSDP or DeepSpeed ZeRO-3, where
            only ``trainer.save_model`` can gather the full weights).
    """

    model: PreTrainedModel
    log_history: list[dict[str, Any]]
    wall_time_s: float
    tokens_seen: int
    steps: int
    trainer: Trainer | None = field(default=None, repr=False)

    @property
    def losses(self) -> list[tuple[int, float]]:
        """``(step, training loss)`` for each logged step."""
        return [(entry["step"], entry["loss"]) for entry in self.log_history if "loss" in entry]

    @property
    def tokens_per_second(self) -> float:
        return self.tokens_seen / self.wall_time_s if self.wall_time_s > 0 else 0.0

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.wall_time_s if self.wall_time_s > 0 else 0.0


@contextmanager
def dataset_progress(enabled: bool):
    """Show or hide the `datasets` progress bars (tokenizing, packing) for a block, then restore them."""
    import datasets

    were_disabled = datasets.are_progress_bars_disabled()
    if enabled:
        datasets.enable_progress_bars()
    else:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if were_disabled:
            datasets.disable_progress_bars()
        else:
            datasets.enable_progress_bars()


def group_lengths_by_global_batch(trainer: Trainer) -> None:
    """Make length-grouped sampling independent of the number of processes.

    transformers' `LengthGroupedSampler` groups the shuffled indices into mega-batches of 50 batches of
    the *per-device* batch size, sorted by length. Every process draws the same order (same seed), and
    accelerate hands each process its shard of consecutive batches; so with the per-device batch the
    grouping, and hence which examples share an optimiser step, would change with the number of
    processes. Grouping by the global batch (per-device batch x processes) gives N processes exactly the
    indices one process sees, step by step."""
    from transformers.trainer_pt_utils import LengthGroupedSampler

    world_size = trainer.args.world_size
    if world_size <= 1:
        return
    build = trainer._get_train_sampler

    def sampler(*args, **kwargs):
        built = build(*args, **kwargs)
        if isinstance(built, LengthGroupedSampler):
            built.batch_size *= world_size
        return built

    trainer._get_train_sampler = sampler


def run_trainer(trainer: Trainer) -> TrainResult:
    """Train and collect the result. Without a progress bar, the trainer prints nothing either."""
    from transformers.trainer_callback import PrinterCallback

    if trainer.args.disable_tqdm:
        trainer.remove_callback(PrinterCallback)
    group_lengths_by_global_batch(trainer)
    start = time.perf_counter()
    trainer.train()
    wall_time_s = time.perf_counter() - start
    state = trainer.state
    return TrainResult(
        model=trainer.model.eval(),
        log_history=[dict(entry) for entry in state.log_history],
        wall_time_s=wall_time_s,
        tokens_seen=int(state.num_input_tokens_seen),
        steps=int(state.global_step),
        trainer=trainer,
    )
