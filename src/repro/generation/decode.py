"""A small decode loop over a preallocated key/value cache: what ``model.generate`` samples, faster on a CPU.

``generate`` grows its key/value cache by concatenation, so every step copies the whole cache of every row,
and it spends as long again per step on its own bookkeeping (`benchmarks/perf/generation.py`). This loop
keeps ``generate``'s sampling exactly and changes only where the keys and values live:

1. **Prefill** the prompts alone, once each, with the model's ordinary forward pass (the pass ``generate``
   makes), left-padded, positions counted from each prompt's first token.
2. **One preallocated cache** for the ``n`` rows of each prompt, long enough for the prompt and
   ``max_new_tokens`` (`preallocated_layer`): the prefill's keys and values are written into it, repeated
   to the ``n`` rows, and each decode step writes one column in place. Attention reads the filled part,
   so it sees the keys ``generate``'s cache holds, no more (transformers' `StaticCache` attends over the
   whole preallocated length at every step, which cost more than it saved on completions that end early).
3. **Each step** is ``generate``'s: the last position's logits in float32, the logits processors over the
   ids so far, ``multinomial`` over the softmax (or ``argmax`` when greedy), padding after a row's
   end-of-sequence token, and a stop when every row has ended or the budget is spent.
4. **Rows that have ended retire** from the forward passes (`retire`): once at most three quarters of the
   rows in the batch are still going, the cache keeps only theirs, so the model stops computing completions
   that can only grow padding. The sampler still draws for every row, as ``generate`` does (`draw`), so the
   random stream, and every sample, stays ``generate``'s. The batch never shrinks below `RETIRE_FLOOR` rows
   (finished rows fill it up): on this project's CPUs a row's logits are bit for bit the same in any batch
   of 16 rows or more (fewer rows take another matrix-multiply kernel, whose last bits differ), and the
   floor leaves a margin.

So under the same seed the completions are ``generate(num_return_sequences=n)``'s token for token
(`tests/test_generation.py`, with rows that end early and retire).

`NucleusSampler` draws the same distribution in fewer steps, among the nucleus only and for the rows still
going (`decode`'s ``sampler``; `repro.generation.hf.HFGenerator`'s ``sampler="nucleus"``): other samples, so it
is an engine option that changes the stages' keys, not the default. `loop_generate` lends the loop to code that
calls ``model.generate`` itself (trl's RLOO trainer).

`can_decode` says which models and generation configs the loop covers: a Llama-architecture causal LM
(the studies' models, SmolLM2) whose generation config sets nothing beyond the special tokens and a
minimum number of new tokens; `repro.generation.hf.HFGenerator` uses ``generate`` for anything else.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where a model runs (a notebook whose stages are reused never loads them)
    import torch
    from transformers import LogitsProcessorList, PreTrainedModel

#: Generation-config fields the loop honours (or that the caller's settings replace); a model whose config
#: sets any other field (a repetition penalty, bad words, a forced token, ...) is decoded by ``generate``.
HANDLED_CONFIG_FIELDS = frozenset({
    "bos_token_id", "eos_token_id", "pad_token_id", "min_new_tokens", "max_length", "max_new_tokens",
    "do_sample", "temperature", "top_p", "top_k", "use_cache", "output_attentions", "output_hidden_states",
    "transformers_version", "_from_model_config",
})
#: Model types whose transformers implementation reads and fills its cache through `Cache.update`, as the loop expects.
MODEL_TYPES = frozenset({"llama"})
#: The fewest rows a batch keeps when its finished rows retire (see the module's docstring, point 4).
RETIRE_FLOOR = 32


@functools.cache
def preallocated_layer() -> type:
    """`PreallocatedLayer`, a transformers cache layer (defined on first use, so that importing this module
    imports neither torch nor transformers)."""
    from transformers.cache_utils import DynamicLayer

    class PreallocatedLayer(DynamicLayer):
        """One layer's keys and values in buffers allocated once for the prompt and every new token: a step
        writes its column in place, and attention reads the filled part (a view), as long as ``generate``'s
        growing cache and with the same values, without copying the cache at every step."""

        def __init__(self, keys: torch.Tensor, values: torch.Tensor, capacity: int) -> None:
            super().__init__()
            rows, heads, self.filled, _ = keys.shape
            self._keys = keys.new_zeros((rows, heads, capacity, keys.shape[-1]))
            self._values = values.new_zeros((rows, heads, capacity, values.shape[-1]))
            self._keys[:, :, : self.filled], self._values[:, :, : self.filled] = keys, values
            self.dtype, self.device, self.is_initialized = keys.dtype, keys.device, True
            self._view()

        def _view(self) -> None:
            self.keys, self.values = self._keys[:, :, : self.filled], self._values[:, :, : self.filled]

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
            new = key_states.shape[-2]
            self._keys[:, :, self.filled : self.filled + new] = key_states
            self._values[:, :, self.filled : self.filled + new] = value_states
            self.filled += new
            self._view()
            return self.keys, self.values

        def keep(self, rows: torch.Tensor) -> None:
            """Keep only these rows (indices into the current ones, in order): the others retire."""
            self._keys, self._values = self._keys[rows], self._values[rows]
            self._view()

    return PreallocatedLayer


def draw(probs: torch.Tensor, rows: torch.Tensor, total: int) -> torch.Tensor:
    """A token for each of ``rows`` of a batch of ``total`` rows, from the probabilities of those rows,
    exactly as ``torch.multinomial(all_probs, 1)`` draws for them from the whole batch's probabilities.

    ``multinomial`` draws one sample per row by the exponential race: ``argmax(p / q)`` with ``q`` one
    Exp(1) variate per token of every row (torch's ``multinomial``, the one-sample path). The variates are
    drawn here for the whole batch, in its shape, so that the generator's stream advances as it would,
    and only the rows still going are raced (`tests/test_generation.py` checks this against ``multinomial``).
    """
    import torch

    race = torch.empty((total, probs.shape[-1]), dtype=probs.dtype, device=probs.device).exponential_(1)
    return torch.argmax(probs / (race if len(rows) == total else race[rows]), dim=-1)


def in_nucleus(ordered: torch.Tensor, top_p: float) -> torch.Tensor:
    """Which tokens of each row are in its top-p nucleus, given the row's probabilities in decreasing order (all
    of them, or its most likely ones): a token is when the mass of the tokens more likely than it is below
    ``top_p`` (transformers' rule; the most likely token always is)."""
    return ordered.cumsum(dim=-1) - ordered < top_p


class NucleusSampler:
    """Temperature and nucleus (top-p) sampling that draws among the nucleus only: the distribution of
    transformers' ``TemperatureLogitsWarper``, ``TopPLogitsWarper`` and ``multinomial`` (a token is kept when
    the mass of the tokens more likely than it is below ``top_p``, so the most likely always is; the kept
    masses renormalised), drawn with other random numbers, far fewer of them.

    ``generate`` races one exponential variate per token of the whole vocabulary for every row of the batch
    (`draw`), finished rows included, and sorts the whole vocabulary of a row to find its nucleus. Here the
    ``k`` most likely tokens of each row are taken (``topk``), a row whose nucleus lies within them (their mass
    reaches ``top_p``, as it does for a trained model's peaked rows) draws among them alone, and only the
    other rows are sorted in full and draw from the whole vocabulary. Only the rows still going draw
    (`decode`'s ``sampler``). The samples differ from ``generate``'s under the same seed; their distribution
    is the same (`tests/test_generation.py`)."""

    def __init__(self, temperature: float, top_p: float, k: int = 64) -> None:
        if temperature <= 0 or not 0 < top_p <= 1 or k < 1:
            raise ValueError(f"need temperature > 0, 0 < top_p <= 1 and k >= 1, got {temperature}, {top_p}, {k}")
        self.temperature, self.top_p, self.k = temperature, top_p, k

    def __call__(self, scores: torch.Tensor) -> torch.Tensor:
        """One token id per row of ``scores`` (float32 logits, ``(rows, vocabulary)``)."""
        import torch

        probs = torch.softmax(scores / self.temperature, dim=-1)
        if self.top_p >= 1:
            return torch.multinomial(probs, 1).squeeze(1)
        top, index = probs.topk(min(self.k, probs.shape[-1]), dim=-1)
        chosen = index.gather(1, torch.multinomial(top * in_nucleus(top, self.top_p), 1)).squeeze(1)
        wide = top.sum(dim=-1) < self.top_p  # rows whose nucleus reaches past the k most likely tokens
        if wide.any():
            ordered, order = probs[wide].sort(dim=-1, descending=True)
            chosen[wide] = order.gather(1, torch.multinomial(ordered * in_nucleus(ordered, self.top_p), 1)).squeeze(1)
        return chosen


def can_decode(model: PreTrainedModel) -> bool:
    """Whether `decode` samples what ``generate`` would for this model (else use ``generate``)."""
    config = getattr(model, "generation_config", None)
    if config is None or getattr(model.config, "model_type", None) not in MODEL_TYPES:
        return False
    return set(config.to_diff_dict()) <= HANDLED_CONFIG_FIELDS


def decode(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    n: int,
    max_new_tokens: int,
    sample: bool,
    processors: LogitsProcessorList,
    eos_token_ids: list[int],
    pad_token_id: int,
    retire_rows: bool = True,
    logits_per_row: bool = False,
    sampler: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """The new tokens of ``n`` completions of each left-padded prompt, rows ``[prompt 0] * n, [prompt 1] * n, ...``.

    Args:
        model: a model `can_decode` accepts, in eval mode, under ``torch.inference_mode``.
        input_ids, attention_mask: the left-padded prompts, shape ``(prompts, length)``.
        n: completions per prompt; each prompt's prefill is computed once and its cache shared.
        max_new_tokens: the most tokens generated per completion.
        sample: draw with ``multinomial`` from the processed scores; False takes the ``argmax``.
        processors: the caller's logits processors (applied after the generation config's minimum length).
        eos_token_ids: the ids that end a completion; pad_token_id: what follows an ended completion.
        retire_rows: shrink the batch as rows end (`retire`); False keeps every row to the end (the same
            samples, slower: the benchmark compares the two).
        logits_per_row: compute the prefill's next-token logits row by row (the output layer over each prompt's
            last hidden state repeated to its ``n`` rows), as ``generate`` does when each row is its own copy of
            the prompt (`loop_generate`); the transformer body still runs once per prompt.
        sampler: with ``sample``, draws a token for each row still going from its processed scores (e.g.
            `NucleusSampler`), in place of ``generate``'s race over every row of the batch: other samples than
            ``generate``'s, from the same distribution when the sampler draws from what the processors leave.

    Returns:
        A ``(prompts * n, steps)`` tensor, ``steps <= max_new_tokens`` (fewer when every row ended early),
        as ``generate`` returns them after the prompt.
    """
    import torch
    from transformers import LogitsProcessorList
    from transformers.cache_utils import Cache
    from transformers.generation.logits_process import MinNewTokensLengthLogitsProcessor

    prompts, length = input_ids.shape
    rows, total = prompts * n, length + max_new_tokens
    device = input_ids.device
    minimum = getattr(model.generation_config, "min_new_tokens", None)
    eos = torch.tensor(eos_token_ids, dtype=torch.long, device=device)
    if minimum:
        processors = LogitsProcessorList([MinNewTokensLengthLogitsProcessor(length, minimum, eos), *processors])

    # the prefill: generate's positions (counted from each prompt's first real token; padding gets 1)
    positions = (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 1)
    if logits_per_row:
        prefill = model.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions,
                              use_cache=True)
        logits = model.lm_head(prefill.last_hidden_state[:, -1:].repeat_interleave(n, dim=0))[:, -1]
    else:
        prefill = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, use_cache=True,
                        logits_to_keep=1)
        logits = prefill.logits[:, -1].repeat_interleave(n, dim=0)
    logits = logits.to(copy=True, dtype=torch.float32)
    layer_class = preallocated_layer()
    cache = Cache(layers=[layer_class(layer.keys.repeat_interleave(n, dim=0), layer.values.repeat_interleave(n, dim=0),
                                      total) for layer in prefill.past_key_values.layers])
    del prefill

    ids = torch.full((rows, total), pad_token_id, dtype=torch.long, device=device)
    ids[:, :length] = input_ids.repeat_interleave(n, dim=0)
    mask = torch.zeros((rows, total), dtype=attention_mask.dtype, device=device)
    mask[:, :length] = attention_mask.repeat_interleave(n, dim=0)
    position = positions[:, -1:].repeat_interleave(n, dim=0)
    unfinished = torch.ones(rows, dtype=torch.bool, device=device)
    batch = torch.arange(rows, device=device)  # the rows in the cache (and in `logits`, `position`), in order
    step = 0
    while True:
        end = length + step
        whole = len(batch) == rows  # no row has retired yet: views, not copies
        scores = processors(ids[:, :end] if whole else ids[batch, :end], logits)  # row by row
        going = unfinished[batch]
        if sample and sampler is not None:
            chosen = torch.full_like(batch, pad_token_id)
            chosen[going] = sampler(scores[going])
        else:
            chosen = draw(torch.softmax(scores, dim=-1), batch, rows) if sample else torch.argmax(scores, dim=-1)
            chosen = chosen.masked_fill(~going, pad_token_id)
        ids[batch, end] = chosen
        mask[:, end] = 1
        unfinished[batch] = going & ~torch.isin(chosen, eos)
        step += 1
        if step == max_new_tokens or not unfinished.any():
            return ids[:, length : length + step]
        position = position + 1
        kept = retire(unfinished[batch], len(batch)) if retire_rows else None
        if kept is not None:
            batch, chosen, position = batch[kept], chosen[kept], position[kept]
            for layer in cache.layers:
                layer.keep(kept)
        attention = mask[:, : end + 1] if len(batch) == rows else mask[batch, : end + 1]
        logits = model(input_ids=chosen[:, None], attention_mask=attention, position_ids=position,
                       past_key_values=cache, use_cache=True).logits[:, -1].to(copy=True, dtype=torch.float32)


def retire(going: torch.Tensor, size: int) -> torch.Tensor | None:
    """Which rows of a batch of ``size`` stay (indices, in order) once finished rows retire, or None to keep the
    batch as it is: it shrinks when at most three quarters of its rows are still going, to those rows, filled
    up with finished ones to `RETIRE_FLOOR` rows (or the whole batch, when it is that small already)."""
    import torch

    alive = int(going.sum())
    if size <= RETIRE_FLOOR or 4 * alive > 3 * size:
        return None
    keep = going.clone()
    fill = max(RETIRE_FLOOR - alive, 0)
    if fill:
        keep[torch.nonzero(~going).squeeze(1)[:fill]] = True
    return torch.nonzero(keep).squeeze(1)


#: Fields a ``GenerationConfig`` passed to ``generate`` may set for `loop_generate` to take the call: sampling
#: (temperature, top-k, top-p) or greedy, one sequence per row, no beams; anything else goes to ``generate``.
CALL_CONFIG_FIELDS = frozenset({
    "bos_token_id", "eos_token_id", "pad_token_id", "max_new_tokens", "max_length", "do_sample", "temperature",
    "top_k", "top_p", "use_cache", "disable_compile", "transformers_version", "_from_model_config",
})
#: Fields the model's own generation config may set for `loop_generate` to take a call (``generate`` could fill
#: the call's unset sampling fields from any other).
MODEL_CONFIG_FIELDS = frozenset({"bos_token_id", "eos_token_id", "pad_token_id", "use_cache", "output_attentions",
                                 "output_hidden_states", "transformers_version", "_from_model_config"})
#: ... and these, at values that mean "off".
NEUTRAL_CALL_SETTINGS = {"repetition_penalty": (None, 1.0), "num_beams": (None, 1), "num_return_sequences": (None, 1),
                         "min_p": (None,), "cache_implementation": (None,), "min_new_tokens": (None, 0),
                         "min_length": (None, 0)}


def warpers(config) -> LogitsProcessorList:
    """The logits processors ``generate`` builds for a config `loop_generate` takes, in its order: temperature,
    top-k, top-p (none when greedy)."""
    from transformers import LogitsProcessorList
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    processors = LogitsProcessorList()
    if config.do_sample:
        if config.temperature is not None and config.temperature != 1.0:
            processors.append(TemperatureLogitsWarper(config.temperature))
        if config.top_k is not None and config.top_k != 0:
            processors.append(TopKLogitsWarper(top_k=config.top_k, min_tokens_to_keep=1))
        if config.top_p is not None and config.top_p < 1.0:
            processors.append(TopPLogitsWarper(top_p=config.top_p, min_tokens_to_keep=1))
    return processors


def takes_call(model: PreTrainedModel, config, kwargs: dict) -> bool:
    """Whether `loop_generate` decodes ``model.generate(input_ids=, attention_mask=, generation_config=config)``."""
    if config is None or set(kwargs) - {"input_ids", "attention_mask"} or kwargs.get("attention_mask") is None:
        return False
    if not can_decode(model) or set(model.generation_config.to_diff_dict()) - MODEL_CONFIG_FIELDS:
        return False
    settings = config.to_diff_dict()
    if set(settings) - CALL_CONFIG_FIELDS - set(NEUTRAL_CALL_SETTINGS) or not config.max_new_tokens:
        return False
    if config.eos_token_id is None or config.pad_token_id is None:
        return False
    return all(getattr(config, name, None) in neutral for name, neutral in NEUTRAL_CALL_SETTINGS.items())


def repeated_rows(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> int:
    """How many consecutive copies of each prompt the rows are (trl's RLOO asks for its ``k`` completions of a
    prompt as ``k`` rows in a row), or 1: the rows split into groups of that many identical rows."""
    rows = len(input_ids)
    copies = 1
    while copies < rows and bool((input_ids[copies] == input_ids[0]).all()):
        copies += 1
    if copies == 1 or rows % copies:
        return 1
    grouped = input_ids.view(rows // copies, copies, -1), attention_mask.view(rows // copies, copies, -1)
    return copies if all(bool((t == t[:, :1]).all()) for t in grouped) else 1


@contextmanager
def loop_generate(model: PreTrainedModel):
    """While inside, ``model.generate(input_ids=, attention_mask=, generation_config=)`` runs through `decode`
    when it can (`takes_call`) and returns what ``generate`` returns, the prompts followed by the new tokens,
    token for token; any other call goes to ``generate``. Rows that are copies of one prompt (`repeated_rows`)
    share its prefill, as the ``n`` samples of `decode` do. For a trainer that samples with ``model.generate``
    (trl's RLOO): its completions, and so its training, stay the same, faster (`tests/test_rl.py` trains with
    and without it)."""
    import torch

    original = model.generate

    def generate(*args, generation_config=None, **kwargs):
        if args or not takes_call(model, generation_config, kwargs):
            return original(*args, generation_config=generation_config, **kwargs)
        input_ids, attention_mask = kwargs["input_ids"], kwargs["attention_mask"]
        eos = generation_config.eos_token_id
        copies = repeated_rows(input_ids, attention_mask)
        new = decode(model, input_ids[::copies], attention_mask[::copies], n=copies,
                     max_new_tokens=generation_config.max_new_tokens, sample=bool(generation_config.do_sample),
                     processors=warpers(generation_config), eos_token_ids=[eos] if isinstance(eos, int) else list(eos),
                     pad_token_id=generation_config.pad_token_id, logits_per_row=True)
        return torch.cat([input_ids, new], dim=1)

    shadowed = vars(model).get("generate")  # an instance's own generate (a wrapper), put back afterwards
    model.generate = generate
    try:
        yield model
    finally:
        if shadowed is None:
            del model.generate
        else:
            model.generate = shadowed
