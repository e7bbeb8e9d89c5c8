"""Preference optimisation on chosen/rejected pairs: DPO, SPPO, SimPO and ORPO, with trl's trainers.

Records are in trl's conversational preference format::

    {"prompt": [{"role": "user", "content": "..."}],
     "chosen": [{"role": "assistant", "content": "..."}],
     "rejected": [{"role": "assistant", "content": "..."}]}

Each method is one trl trainer and loss (log-probabilities are of the completion tokens only, its
closing ``</s>`` included; ``beta`` is the config's ``beta`` in every case):

- ``"dpo"``: `trl.DPOTrainer`, ``loss_type="sigmoid"`` (Rafailov et al. 2023): ``-log sigmoid(beta *
  (log-ratio of chosen - log-ratio of rejected))``, log-ratios taken against a frozen reference model.
- ``"sppo"``: `trl.DPOTrainer`, ``loss_type="sppo_hard"`` (Wu et al. 2024, with the hard win probabilities
  1 and 0): ``(chosen log-ratio - 1 / (2 beta))^2 + (rejected log-ratio + 1 / (2 beta))^2``; SPPO's
  eta is ``1 / beta``. Against the same reference model.
- ``"simpo"``: `trl.experimental.cpo.CPOTrainer`, ``loss_type="simpo"``, ``cpo_alpha=0`` (Meng et al.
  2024): ``-log sigmoid(beta * (mean token log-prob of chosen - that of rejected) - simpo_gamma)``.
  Reference-free; ``cpo_alpha=0`` drops CPO's behaviour-cloning term, which leaves pure SimPO.
- ``"orpo"``: `trl.experimental.orpo.ORPOTrainer` (Hong et al. 2024): the NLL of the chosen sequence
  minus ``beta * log sigmoid(log odds(chosen) - log odds(rejected))``, odds from mean token
  log-probs; ``beta`` is the paper's lambda. Reference-free, and no SFT step is needed before it.
  In trl 1.16 that NLL covers the prompt tokens too, not only the completion as in the paper.

The reference model of DPO and SPPO is a frozen copy of the starting policy unless one is given.
(trl 1.16, given ``ref_model=None``, would instead reload the policy from ``config._name_or_path``:
that fails for a model built in memory and silently loads stale weights for a checkpoint trained
further since it was loaded, as in the iterations of Self-Rewarding.)

The log history holds trl's reward metrics at every logged step, for plots: ``rewards/chosen``,
``rewards/rejected``, ``rewards/margins``, ``rewards/accuracies``, ``logps/chosen``,
``logps/rejected`` (plus ``nll_loss`` for SimPO/ORPO and ``log_odds_ratio`` for ORPO). The rewards
are ``beta`` times the log-ratio to the reference (DPO, SPPO) or times the (mean token, for SimPO)
log-probability (SimPO, ORPO).
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from repro.training.common import TrainResult, TrainSpec, dataset_progress, run_trainer
from repro.training.sft import _check_messages

if TYPE_CHECKING:  # trl, datasets and transformers' Trainer are imported where a trainer is made (`common`)
    from datasets import Dataset
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer


class _CountPairTokens:
    """Count the tokens of trl's paired batches (``chosen_*`` and ``rejected_*`` tensors, prompt included).

    CPO's and ORPO's batches have no ``input_ids``, so `transformers.Trainer` would warn at every step and
    count nothing; this counts what `DPOTrainer` counts: prompt + chosen and prompt + rejected.
    """

    def _track_num_input_tokens(self, inputs: dict[str, Any]) -> None:
        import torch

        if self.args.include_num_input_tokens_seen == "no":
            return
        key = "attention_mask" if self.args.include_num_input_tokens_seen == "non_padding" else "input_ids"
        sides = [inputs[f"{side}_{key}"] for side in ("chosen", "rejected")]
        tokens = sum(int(side.sum() if key == "attention_mask" else side.numel()) for side in sides)
        tokens = torch.as_tensor(tokens, device=self.args.device, dtype=torch.int64)
        self.state.num_input_tokens_seen += self.accelerator.gather(tokens).sum().item()


#: The methods, each with its trl config and trainer (`trl_classes`).
METHODS = ("dpo", "sppo", "simpo", "orpo")


@functools.cache
def trl_classes(method: str) -> tuple[type, type[Trainer]]:
    """The trl config and trainer behind ``method``: `trl.DPOTrainer`, and for "simpo" and "orpo"
    `TokenCountingCPOTrainer` and `TokenCountingORPOTrainer` (trl's, counting the tokens they see)."""
    if method in ("dpo", "sppo"):
        from trl import DPOConfig, DPOTrainer

        return DPOConfig, DPOTrainer
    if method == "simpo":
        from trl.experimental.cpo import CPOConfig as config, CPOTrainer as trainer
    else:
        from trl.experimental.orpo import ORPOConfig as config, ORPOTrainer as trainer
    counting = type(f"TokenCounting{trainer.__name__}", (_CountPairTokens, trainer),
                    {"__doc__": f"`{trainer.__name__}` that counts the tokens it sees.", "__module__": __name__})
    return config, counting


#: The methods that need a reference model.
REFERENCE_METHODS = ("dpo", "sppo")


@dataclass
class PreferenceSpec(TrainSpec):
    """`TrainSpec` for preference optimisation plus the method and its loss parameters.

    The papers' DPO learning rates (Self-Rewarding: 1e-6 on Llama 2 70B; eva: 5e-7 on gemma-2-9b) barely
    move a model of a million parameters trained from scratch. The default here is the tiny SFT learning
    rate (`SFTSpec`: 5e-4) times Self-Rewarding's DPO-to-SFT ratio (1e-6 / 5.5e-6), about 9e-5, which
    both studies' notebooks use; it is a scale choice, not tuned on any result.
    The batch size is Self-Rewarding's (16), the cosine schedule both papers', the two epochs eva's.

    Attributes:
        method: "dpo", "sppo", "simpo" or "orpo" (see the module docstring for the trl trainer and loss).
        beta: DPO/SPPO: inverse strength of the pull to the reference (Self-Rewarding 0.1, eva 0.05;
            SPPO's eta is 1 / beta). SimPO: the reward scale (its paper tunes 2.0-2.5 on 7-8B models).
            ORPO: lambda, the weight of the odds-ratio term (its paper: 0.1).
        simpo_gamma: SimPO's target reward margin gamma, in reward units (trl's ``simpo_gamma``). The
            default keeps gamma / beta = 0.5, about the ratio the SimPO paper settles on (beta 2, gamma 1).
            Used by "simpo" only.
        sft_weight: "dpo" and "sppo": add the negative log-likelihood of the chosen response, with this
            weight, to the preference loss (trl's ``loss_type=[..., "sft"]`` and ``loss_weights``; Iterative
            RPO, Pang et al. 2024). 0 (the default) is the papers' plain loss. A small model trained by
            plain DPO can push both responses down and lose its answers; the term keeps the chosen likely.
    """

    method: str = "dpo"
    beta: float = 0.1
    simpo_gamma: float = 0.05
    sft_weight: float = 0.0
    learning_rate: float = 9e-5
    num_train_epochs: float = 2.0
    batch_size: int = 16

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.method not in METHODS:
            raise ValueError(f"PreferenceSpec.method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.beta <= 0:
            raise ValueError(f"PreferenceSpec.beta must be > 0, got {self.beta}")
        if self.simpo_gamma < 0:
            raise ValueError(f"PreferenceSpec.simpo_gamma must be >= 0, got {self.simpo_gamma}")
        if self.sft_weight < 0 or (self.sft_weight and self.method not in REFERENCE_METHODS):
            raise ValueError(f"PreferenceSpec.sft_weight must be >= 0, and is for {' and '.join(REFERENCE_METHODS)} "
                             f"only; got {self.sft_weight} with {self.method!r}")

    def trl_kwargs(self) -> dict[str, Any]:
        """`TrainSpec.trl_kwargs` for the method's trl config, with its loss; ``extra`` still overrides all."""
        kwargs = super().trl_kwargs()
        del kwargs["method"], kwargs["sft_weight"]  # not trl fields: they pick the config and the loss below
        if "simpo_gamma" not in self.extra:  # a field of CPOConfig only
            del kwargs["simpo_gamma"]
        loss = {
            "dpo": {"loss_type": ["sigmoid"]},
            "sppo": {"loss_type": ["sppo_hard"]},
            "simpo": {"loss_type": "simpo", "cpo_alpha": 0.0, "simpo_gamma": self.simpo_gamma},
            "orpo": {},
        }[self.method]
        if self.sft_weight:
            loss = {"loss_type": [*loss["loss_type"], "sft"], "loss_weights": [1.0, self.sft_weight]}
        if self.method in ("simpo", "orpo"):  # their collator needs every column; trl warns and sets it otherwise
            loss["remove_unused_columns"] = False
        return {**loss, **kwargs}


def preference_dataset(records: Sequence[Mapping[str, Any]]) -> Dataset:
    """A `datasets.Dataset` of conversational prompt/chosen/rejected records, checked field by field."""
    from datasets import Dataset

    if not records:
        raise ValueError("preference optimisation needs at least one record")
    rows = {"prompt": [], "chosen": [], "rejected": []}
    for index, record in enumerate(records):
        if not isinstance(record, Mapping) or any(key not in record for key in rows):
            raise ValueError(
                f"preference record {index} must have 'prompt', 'chosen' and 'rejected' message lists"
            )
        for key in rows:
            rows[key].append(_check_messages(record[key], f"preference record {index}: {key}"))
    return Dataset.from_dict(rows)


def preference_config(params: PreferenceSpec, output_dir: str | os.PathLike):
    """The trl config of ``params.method``; a field of ``params.extra`` that it lacks is an error, not dropped."""
    config_class = trl_classes(params.method)[0]
    kwargs = params.trl_kwargs()
    unknown = sorted(set(kwargs) - {f.name for f in fields(config_class)})
    if unknown:
        raise ValueError(
            f"PreferenceSpec.extra: {config_class.__name__} (method {params.method!r}) has no field "
            f"{', '.join(map(repr, unknown))}"
        )
    return config_class(output_dir=os.fspath(output_dir), **kwargs)


def _frozen_copy(model: PreTrainedModel) -> PreTrainedModel:
    """A copy of ``model`` that no optimiser will touch, in eval mode, to serve as the reference."""
    reference = copy.deepcopy(model)
    # trl's trainers (SFT, DPO, ...) replace `forward` on the instance by a closure over the forward of
    # *that* model; a deep copy would keep the closure, and its plain forward would run the original's weights.
    reference.__dict__.pop("forward", None)
    return reference.requires_grad_(False).eval()


def make_preference_trainer(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    records: Sequence[Mapping[str, Any]],
    params: PreferenceSpec,
    output_dir: str | os.PathLike,
    ref_model: PreTrainedModel | None = None,
) -> Trainer:
    """The configured trainer behind `train_preference` (its dataset is tokenized, not yet trained).

    A `trl.DPOTrainer` for "dpo" and "sppo" (its ``ref_model`` is the reference), a
    `trl.experimental.cpo.CPOTrainer` for "simpo" and a `trl.experimental.orpo.ORPOTrainer` for "orpo"
    (both subclassed only to count the tokens they see).
    """
    if params.method not in REFERENCE_METHODS and ref_model is not None:
        raise ValueError(f"method {params.method!r} is reference-free; ref_model is used by dpo and sppo only")
    config = preference_config(params, output_dir)
    trainer_class = trl_classes(params.method)[1]
    dataset = preference_dataset(records)
    reference = {}
    if params.method in REFERENCE_METHODS:
        reference["ref_model"] = _frozen_copy(model) if ref_model is None else ref_model
    with dataset_progress(params.progress):
        return trainer_class(model=model, args=config, train_dataset=dataset, processing_class=tokenizer, **reference)


def train_preference(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    records: Sequence[Mapping[str, Any]],
    params: PreferenceSpec,
    output_dir: str | os.PathLike,
    ref_model: PreTrainedModel | None = None,
) -> TrainResult:
    """Train ``model`` in place on preference pairs with ``params.method``.

    Args:
        model: the policy to train, e.g. an SFT checkpoint (ORPO may start from a pre-trained model).
        tokenizer: its tokenizer, with a chat template.
        records: ``{"prompt": [messages], "chosen": [messages], "rejected": [messages]}`` dicts (other keys
            are ignored).
        params: the method, its loss parameters and the optimisation parameters.
        output_dir: the trainer's working folder (no checkpoints are written there by default).
        ref_model: the reference of "dpo" and "sppo" (default: a frozen copy of ``model`` as passed in);
            it is not trained. The reference-free "simpo" and "orpo" refuse one.
    """
    return run_trainer(make_preference_trainer(model, tokenizer, records, params, output_dir, ref_model))
