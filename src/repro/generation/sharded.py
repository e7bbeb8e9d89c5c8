"""Generation and judging split over the processes of ``accelerate launch``.

`ShardedGenerator` wraps any generator (`HFGenerator`, `VLLMGenerator`) and keeps its interface. With
accelerate's ``PartialState`` of N processes, each process takes one contiguous slice of the prompts
(process 0 the first, process N-1 the last; the first ``len(prompts) % N`` processes one prompt more,
as accelerate's ``split_between_processes`` does), runs the wrapped generator on it, and every process
gets all the results back in the prompts' original order (``accelerate.utils.gather_object``
concatenates the slices in process order). With one process, or no state, it is a pass-through: a
study run the ordinary way (one notebook process) does exactly what it did before.

Reproducibility across process counts:

- A generator whose sampler is seeded per prompt (`VLLMGenerator`: prompt ``i`` gets seed
  ``config.seed + i``) is told where its slice starts (``index_offset``), so each prompt keeps its
  global seed: the same prompts give the same completions on 1 or 8 processes.
- `HFGenerator` seeds once per call, and a prompt's sampled completions depend on the other prompts
  of its batch (see `repro.generation.hf`). Sharded, greedy decoding and the log-probability read-out
  give the same results as in one process (up to float rounding from different padding); sampled
  completions are equal in distribution only. Each slice after the first is sampled with its own
  seed (`shard_seed`), so that two slices never draw the same random numbers; the first slice keeps
  ``config.seed``. Because sampled outputs then depend on the number of processes, that number is
  part of the transformers engine's stage key when it is above 1 (`repro.generation.engine.Engine.key`).

Every process must call the same methods with the same prompts in the same order (each call is a
collective operation): launch the whole study under ``accelerate launch``, not a part of it.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from repro.generation.base import GenerationSpec, Prompt


def shard_bounds(total: int, processes: int, index: int) -> tuple[int, int]:
    """``(start, stop)`` of process ``index``'s contiguous slice of ``total`` items split over
    ``processes`` processes: slices in process order, sizes differing by at most one, the larger ones
    first (as accelerate's ``split_between_processes``)."""
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    if not 0 <= index < processes:
        raise ValueError(f"process index {index} is not in [0, {processes})")
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}")
    base, extra = divmod(total, processes)
    start = index * base + min(index, extra)
    return start, start + base + (1 if index < extra else 0)


def merge_shards(shards: Sequence[Sequence[Any]]) -> list[Any]:
    """The per-process slices (in process order) put back into one list, in the original order."""
    return [item for shard in shards for item in shard]


def shard_seed(seed: int, start: int) -> int:
    """The sampling seed of the slice that starts at prompt ``start``, for generators seeded once per
    call: ``seed`` itself for the first slice, otherwise a seed derived from both (numpy's
    ``SeedSequence``), so that slices do not share random numbers with each other nor, in practice,
    with calls made with nearby seeds (``seed + 1``, ...)."""
    if start == 0:
        return seed
    return int(np.random.SeedSequence([seed, start]).generate_state(1, dtype=np.uint32)[0])


def takes_index_offset(generator: Any) -> bool:
    """Whether ``generator.generate`` accepts ``index_offset`` (its sampler is seeded per prompt)."""
    try:
        return "index_offset" in inspect.signature(generator.generate).parameters
    except (TypeError, ValueError):
        return False


def launched_processes() -> int:
    """How many processes ``accelerate launch`` (or ``torchrun``) started this one among: its
    ``WORLD_SIZE``, 1 when not launched."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def accelerate_state():
    """Accelerate's ``PartialState`` of this process. Several CPU processes are launched with
    ``ACCELERATE_USE_CPU=true`` (see `repro.runs.launch.launch_command`), which ``PartialState`` does
    not read by itself: it is passed on."""
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    return PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))


def launched_state():
    """`accelerate_state` when this process is one of several launched ones, else None (nothing
    distributed is initialised then)."""
    return accelerate_state() if launched_processes() > 1 else None


class ShardedGenerator:
    """A generator whose calls are split over the launched processes and gathered in order.

    Args:
        generator: the generator each process runs on its slice (every process holds its own copy of
            the model).
        state: accelerate's ``PartialState`` (or anything with ``num_processes`` and
            ``process_index``); None means `launched_state()`.
    """

    def __init__(self, generator: Any, state: Any = None) -> None:
        self.generator = generator
        self.state = state if state is not None else launched_state()

    @property
    def processes(self) -> int:
        return 1 if self.state is None else int(self.state.num_processes)

    @property
    def tokenizer(self):
        return self.generator.tokenizer

    def __getattr__(self, name: str) -> Any:  # model, device, progress, ... of the wrapped generator
        if name == "generator":
            raise AttributeError(name)
        return getattr(self.generator, name)

    def _bounds(self, total: int) -> tuple[int, int]:
        return shard_bounds(total, self.processes, int(self.state.process_index))

    def _gather(self, items: list) -> list:
        from accelerate.utils import gather_object

        return list(gather_object(items))

    def generate(self, prompts: Sequence[Prompt], config: GenerationSpec = GenerationSpec(), *,
                 index_offset: int = 0) -> list[list[str]]:
        """For each prompt, ``config.n`` completions, as the wrapped generator gives them; every
        process returns the whole list. ``index_offset``: where ``prompts`` start in a larger list
        (for per-prompt seeds), as in `VLLMGenerator.generate`."""
        per_prompt = takes_index_offset(self.generator)
        if self.processes == 1:
            if per_prompt:
                return self.generator.generate(prompts, config, index_offset=index_offset)
            return self.generator.generate(prompts, config)
        start, stop = self._bounds(len(prompts))
        mine = list(prompts[start:stop])
        if not mine:
            local: list[list[str]] = []
        elif per_prompt:
            local = self.generator.generate(mine, config, index_offset=index_offset + start)
        else:
            local = self.generator.generate(mine, replace(config, seed=shard_seed(config.seed, index_offset + start)))
        return self._gather(list(local))

    def score_next_token_logprobs(self, prompts: Sequence[Prompt], candidate_tokens: Sequence[str | int], *,
                                  batch_size: int | None = None) -> np.ndarray:
        """Log-probabilities of the candidate tokens after each prompt (see the wrapped generator);
        every process returns the whole ``(len(prompts), len(candidate_tokens))`` array."""
        if self.processes == 1:
            return self.generator.score_next_token_logprobs(prompts, candidate_tokens, batch_size=batch_size)
        start, stop = self._bounds(len(prompts))
        mine = list(prompts[start:stop])
        local = (self.generator.score_next_token_logprobs(mine, candidate_tokens, batch_size=batch_size)
                 if mine else np.zeros((0, len(candidate_tokens))))
        rows = self._gather([np.asarray(row) for row in local])
        if not rows:
            return np.zeros((0, len(candidate_tokens)), dtype=local.dtype)
        return np.stack(rows)


def shard(generator: Any, state: Any = None) -> Any:
    """``generator`` wrapped in a `ShardedGenerator` when this process is one of several launched
    ones (or ``state`` has several processes), else ``generator`` itself."""
    if isinstance(generator, ShardedGenerator):
        return generator
    state = state if state is not None else launched_state()
    if state is None or int(state.num_processes) <= 1:
        return generator
    return ShardedGenerator(generator, state)
