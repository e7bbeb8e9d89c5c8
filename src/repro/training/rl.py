"""Reinforcement learning of a policy against a reward, with trl's `RLOOTrainer`.

RLAIF (Lee et al., 2023) trains its summarisation policies with REINFORCE with a baseline, the reward
given at the last token, and a KL penalty to the SFT policy (beta 0.05, sampling temperature 0.9).
trl's RLOO is that estimator with a leave-one-out baseline: ``k`` completions per prompt, each
completion's advantage its reward minus the mean reward of the other ``k - 1``, and the KL to the
frozen starting policy weighted by ``beta``.

The reward is any function ``reward(prompts, completions) -> list[float]``: a reward model
(`reward_model_function`, or `saved_reward_model` for one saved in a folder, which score the prompt
joined with the completion, `joined`, exactly as the reward model was trained, EOS included: trl's own
reward-model path tokenizes differently), the labeller's d-RLAIF
scores, or the oracle (for measurement, never for training the study's policies).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from repro.generation.decode import loop_generate
from repro.training.common import TrainResult, TrainSpec, dataset_progress, run_trainer
from repro.training.reward import load_reward_model, reward_scores

if TYPE_CHECKING:  # trl and datasets are imported where a trainer is made (`repro.training.common`)
    from transformers import PreTrainedModel, PreTrainedTokenizerBase
    from trl import RLOOTrainer

Reward = Callable[[list[str], list[str]], Sequence[float]]


@dataclass
class RLSpec(TrainSpec):
    """`TrainSpec` for RLOO plus the sampling of completions.

    Attributes:
        num_generations: completions per prompt (the ``k`` of the leave-one-out baseline).
        beta: weight of the KL penalty to the starting policy (the RLAIF paper: 0.05).
        temperature: sampling temperature of the completions (the RLAIF paper: 0.9).
        max_completion_length: longest completion in tokens.
    """

    learning_rate: float = 1e-4
    num_train_epochs: float = 1.0
    batch_size: int = 16
    num_generations: int = 4
    beta: float = 0.05
    temperature: float = 0.9
    max_completion_length: int = 32

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_generations < 2:
            raise ValueError(f"RLSpec.num_generations must be >= 2 (a leave-one-out baseline), got {self.num_generations}")
        if self.batch_size % self.num_generations:
            raise ValueError(f"RLSpec.batch_size ({self.batch_size}) must be a multiple of num_generations "
                             f"({self.num_generations}): each batch holds whole groups of completions")

    def trl_kwargs(self) -> dict:
        kwargs = super().trl_kwargs()
        kwargs.pop("max_length")  # RLOO limits the completion, not the whole sequence
        # RLOO's batches hold prompt and completion ids, not ``input_ids``: transformers cannot count
        # them and warns at every step
        kwargs["include_num_input_tokens_seen"] = "no"
        return kwargs


def named_reward(name: str, reward: Reward):
    """``reward`` as a trl reward function (keyword arguments, one float per completion), logged under
    ``name``."""

    def reward_function(prompts, completions, **_):
        values = [float(v) for v in reward(list(prompts), list(completions))]
        if len(values) != len(completions):
            raise ValueError(f"reward {name!r} returned {len(values)} values for {len(completions)} completions")
        return values

    reward_function.__name__ = name
    return reward_function


def joined(prompt: str, completion: str) -> str:
    """A prompt and its completion as one text, with a space between when neither brings one (the
    word-level tokenizer decodes completions without a leading space)."""
    return prompt + completion if prompt[-1:].isspace() or completion[:1].isspace() else f"{prompt} {completion}"


def reward_model_function(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, *, batch_size: int = 64) -> Reward:
    """A reward model as a reward function: the score of each prompt joined with its completion (`joined`)."""

    def reward(prompts: list[str], completions: list[str]) -> list[float]:
        return reward_scores(model, tokenizer, [joined(p, c) for p, c in zip(prompts, completions)],
                             batch_size=batch_size)

    return reward


def saved_reward_model(location: str | os.PathLike, *, device=None) -> Reward:
    """The reward model saved at ``location`` as a reward function (`reward_model_function`). ``device``:
    where it runs (default the CPU)."""
    model, tokenizer = load_reward_model(location, device=device)
    return reward_model_function(model, tokenizer)


def make_rloo_trainer(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str],
                      reward: Reward, params: RLSpec, output_dir: str | os.PathLike, *,
                      reward_name: str = "reward", reference_path: str | os.PathLike | None = None) -> RLOOTrainer:
    """The configured trainer behind `train_rloo`.

    trl 1.16 builds the KL reference by loading ``model.config._name_or_path``, which fails for a
    model built in memory and is stale for a checkpoint trained since it was loaded. The reference
    is therefore loaded from ``reference_path`` (a checkpoint holding exactly the starting policy,
    e.g. the stage folder it came from) or, by default, from a copy of the starting policy saved into
    ``output_dir/reference``.
    """
    from datasets import Dataset
    from trl import RLOOConfig, RLOOTrainer

    if not prompts:
        raise ValueError("RL needs at least one prompt")
    if reference_path is None and params.beta != 0.0:
        reference_path = os.path.join(os.fspath(output_dir), "reference")
        model.save_pretrained(reference_path)
    config = RLOOConfig(output_dir=os.fspath(output_dir), **params.trl_kwargs())
    name = model.config._name_or_path
    if reference_path is not None:
        model.config._name_or_path = os.fspath(reference_path)  # where trl loads the reference from
    try:
        with dataset_progress(params.progress):
            return RLOOTrainer(model=model, reward_funcs=named_reward(reward_name, reward), args=config,
                               train_dataset=Dataset.from_dict({"prompt": list(prompts)}), processing_class=tokenizer)
    finally:
        model.config._name_or_path = name


def train_rloo(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str], reward: Reward,
               params: RLSpec, output_dir: str | os.PathLike, *, reward_name: str = "reward",
               reference_path: str | os.PathLike | None = None, decode_loop: bool = True) -> TrainResult:
    """Train ``model`` in place with RLOO on ``prompts`` against ``reward`` (see the module and
    `make_rloo_trainer` for the KL reference).

    trl samples the completions with ``model.generate``; with ``decode_loop`` those calls run through
    `repro.generation.decode.loop_generate` when it takes them: the same completions token for token, so the
    same training, in less time (False: transformers' ``generate``, to compare)."""
    import warnings
    from contextlib import nullcontext

    trainer = make_rloo_trainer(model, tokenizer, prompts, reward, params, output_dir, reward_name=reward_name,
                                reference_path=reference_path)
    with warnings.catch_warnings():  # trl 1.16 reads a property that transformers 5.23 deprecates
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated")
        with loop_generate(model) if decode_loop else nullcontext():
            return run_trainer(trainer)
