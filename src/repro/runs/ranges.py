"""The values each notebook parameter may take, checked before a kernel starts.

A notebook's ``parameters`` cell declares a parameter's name, type and default (`repro.runs.notebooks`);
this table adds what the type cannot say: a count is at least 1, a probability lies in [0, 1], a
learning rate is positive, a model size is one of the presets. Parameters of the same name mean the
same thing in every notebook, so one table serves them all, and a test checks that every ``int``,
``float`` and ``list`` parameter of every shipped notebook has an entry here: a new parameter cannot
be added without saying what range it accepts.

A rule is one of

* `Between(low, high)`: a number, with either bound open (``low_open`` / ``high_open``) or absent;
* `OneOf(choices)`: a string from a fixed set;
* `Each(rule, min_items, max_items)`: a list whose items each satisfy ``rule``;
* `Names()`: a mapping whose keys become parts of stage names (no path separators, no ``..``).

`check_range` returns a message naming what is wrong, or None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from repro.runs.store import RunStore


@dataclass(frozen=True)
class Between:
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False

    def check(self, value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be a number, got {type(value).__name__} {value!r}"
        if self.integer and not isinstance(value, int):
            return f"must be a whole number, got {value!r}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be finite, got {value!r}"
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        return f"must be {self.describe()}, got {value!r}" if too_low or too_high else None

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_open else '['}{_num(self.low)}, {_num(self.high)}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {_num(self.low)}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {_num(self.high)}"
        return "any number"


@dataclass(frozen=True)
class OneOf:
    choices: tuple[str, ...]

    def check(self, value: Any) -> str | None:
        if value not in self.choices:
            return f"must be {self.describe()}, got {value!r}"
        return None

    def describe(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)


@dataclass(frozen=True)
class Each:
    rule: Between | OneOf
    min_items: int = 0
    max_items: int | None = None

    def check(self, value: Any) -> str | None:
        if not isinstance(value, list):
            return f"must be a list, got {type(value).__name__} {value!r}"
        if len(value) < self.min_items or (self.max_items is not None and len(value) > self.max_items):
            return f"must be {self.describe()}, got {len(value)} item(s)"
        for i, item in enumerate(value):
            if (problem := self.rule.check(item)) is not None:
                return f"item {i} {problem}"
        return None

    def describe(self) -> str:
        size = (f"{self.min_items}" if self.max_items == self.min_items
                else f"{self.min_items} to {self.max_items}" if self.max_items is not None
                else f"at least {self.min_items}")
        return f"a list of {size} item(s), each {self.rule.describe()}"


@dataclass(frozen=True)
class Names:
    """A mapping from names to strings, whose names become parts of stage names: letters, digits,
    ``_``, ``-`` and ``.``, without ``..`` (a name can never walk out of the run store)."""

    def check(self, value: Any) -> str | None:
        if not isinstance(value, dict):
            return f"must be a mapping, got {type(value).__name__} {value!r}"
        for key, item in value.items():
            if not RunStore.valid_name(key) or len(key) > 64:  # the store's rule, leaving room for a prefix
                return f"has the name {key!r}: {self.describe()}"
            if not isinstance(item, str) or not item:
                return f"must map {key!r} to a non-empty string, got {item!r}"
        return None

    def describe(self) -> str:
        return "names of letters, digits, '_', '-' and '.' (no '/', no '..') mapped to strings"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


Rule = Between | OneOf | Each | Names

COUNT = Between(1, integer=True)  # how many of something: at least one
SEED = Between(0, 2**32 - 1, integer=True)  # numpy's and torch's seeds
PROBABILITY = Between(0, 1)
POSITIVE = Between(0, low_open=True)
TEMPERATURE = Between(0)  # 0 is greedy decoding
TOP_P = Between(0, 1, low_open=True)
EPOCHS = Between(0, low_open=True)
DIFFICULTY = Between(1, 5, integer=True)
SIZES = ("XXS", "XS", "S", "M", "L")

RULES: dict[str, Rule] = {
    # counts
    **{name: COUNT for name in (
        "batch_size", "candidates", "chunk_size", "corpus_docs", "dev_prompts_per_family", "dpo_batch_size",
        "eft_eval_prompts",
        "eft_train_prompts", "eval_posts", "eval_prompts_per_family", "eval_samples", "eval_tasks_per_family",
        "evolutions", "hard_prompts", "ift_size", "iterations", "jobs", "judge_max_new_tokens", "judge_samples",
        "labeller_batch_size", "max_new_tokens", "max_rationale_tokens", "new_prompts", "posts",
        "evolver_max_new_tokens",
        "prompt_max_new_tokens", "rl_prompts", "samples_per_task", "shots", "sft_batch_size", "sft_posts",
        "solver_batch_size", "sr_eval_prompts_per_family", "standard_prompts", "two_turn_prompts",
        "validation_pairs", "workers", "tensor_parallel_size")},
    "chunks": Between(2, integer=True),  # the first chunk trains the SFT policy, later ones the iterations
    "responses": Between(2, integer=True),  # the creator's informativeness needs a spread of rewards
    "rl_generations": Between(2, integer=True),  # the leave-one-out baseline needs another completion
    "seed_shots": Between(0, integer=True),
    "hard_difficulty": DIFFICULTY,
    # seeds
    **{name: SEED for name in ("seed", "m0_seed", "world_seed")},
    "seeds": Each(SEED, min_items=1),
    "sweep_seeds": Each(SEED),
    # probabilities and shares
    **{name: PROBABILITY for name in ("evolved_share", "rouge_threshold", "target_agreement")},
    **{name: TOP_P for name in ("top_p", "prompt_top_p", "keep_fraction")},
    "eval_fraction": Between(0, 1, low_open=True, high_open=True),
    # the listings' share of the corpus: what task lists and reviews leave (their shares are 0.15 and 0.10)
    "listing_fraction": Between(0, 0.75),
    # sampling temperatures
    **{name: TEMPERATURE for name in ("temperature", "judge_temperature", "prompt_temperature")},
    "rl_temperature": POSITIVE,  # RL samples: greedy completions would all be equal
    # optimisation
    **{name: EPOCHS for name in ("dpo_epochs", "epochs", "rl_epochs", "rm_epochs", "sft_epochs", "solver_epochs",
                                 "reward_pairs_epochs")},
    **{name: Between(0) for name in ("instruct_epochs", "pretrain_epochs")},  # 0 skips that phase
    "dpo_sft_weight": Between(0),  # 0: no NLL term
    **{name: POSITIVE for name in ("learning_rate", "dpo_learning_rate", "sft_learning_rate", "rl_learning_rate",
                                   "rm_learning_rate", "solver_learning_rate", "dpo_beta")},
    "rl_beta": Between(0),
    "max_prompts": Between(0, integer=True),  # 0: all of them
    # lists and choices
    "difficulty": Each(DIFFICULTY, min_items=2, max_items=2),
    "rm_data_sizes": Each(COUNT, min_items=1),
    "labeller_sizes": Each(OneOf(SIZES), min_items=1),
    "model_size": OneOf(SIZES),
    "generation_backend": OneOf(("transformers", "vllm")),
    "method": OneOf(("dpo", "sppo", "simpo", "orpo")),
    "judge_template": OneOf(("compact", "full")),
    "judge_readout": OneOf(("parse", "cue")),
    "labeller_paths": Names(),  # its names become stage names (rlaif-labeller-NAME)
}


def rule_for(name: str) -> Rule | None:
    return RULES.get(name)


def check_range(name: str, value: Any) -> str | None:
    """What is wrong with ``value`` for the parameter ``name`` (None: nothing, or no rule)."""
    rule = RULES.get(name)
    return None if rule is None else rule.check(value)
