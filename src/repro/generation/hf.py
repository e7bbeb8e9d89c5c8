"""The transformers backend: batched ``model.generate`` with a KV cache.

Prompts are sorted by length (longest first, so the largest batch runs first and padding is small),
left-padded in batches of ``config.batch_size``, generated, and put back in their original order. A
Llama-architecture model is decoded by `repro.generation.decode`: one prefill per prompt for its ``n``
samples and a preallocated key/value cache, with ``generate``'s samples token for token; any other model
by ``model.generate(num_return_sequences=n)``. Sampling is seeded once per call (without touching the caller's global
RNG state), so a call is reproducible run to run; the completions of one prompt may depend on which
other prompts share its batch, so keep prompts and batch size fixed to reproduce a result.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager

from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from repro.generation.base import GenerationSpec, Prompt, encode_prompts, single_token_id
from repro.generation.decode import NucleusSampler, can_decode, decode, in_nucleus

if TYPE_CHECKING:  # torch and transformers are imported where a model runs: a notebook whose stages are reused
    import torch  # never loads them (tests/test_startup.py)
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


#: How `HFGenerator`'s decode loop draws sampled tokens (see its ``sampler`` argument).
SAMPLERS = ("generate", "nucleus")


class TemperatureTopP:
    """Temperature, then nucleus (top-p) filtering: what transformers' ``TemperatureLogitsWarper`` followed
    by its ``TopPLogitsWarper`` do, without sorting the whole vocabulary at every step.

    transformers sorts every row of the vocabulary to find the nucleus; on a CPU that sort was a third of
    the time of sampling with ``top_p < 1`` (`benchmarks/bench_generation.py`). Here the ``k`` most likely
    tokens are taken first (``topk``); a row whose nucleus lies within them (their mass reaches ``top_p``,
    as it does for any peaked distribution) is filtered from them alone, and only the other rows are
    sorted in full, by transformers' own warper. A token is kept when the mass of the tokens more likely
    than it is below ``top_p`` (so the most likely token always is), which is transformers' rule; the two
    can differ only for a token whose preceding mass equals ``top_p`` to within float rounding.

    A row whose last token is an end-of-sequence token (``eos_token_ids``) has finished: generate
    replaces its next token with padding whatever is drawn, so it is not sorted either.

    A logits processor of ``generate`` (called with the ids so far and the scores); it is not a subclass of
    transformers' ``LogitsProcessor``, so that defining it imports neither torch nor transformers.
    """

    def __init__(self, temperature: float, top_p: float, k: int = 64, eos_token_ids: Sequence[int] = ()) -> None:
        if temperature <= 0 or not 0 < top_p <= 1 or k < 1:
            raise ValueError(f"need temperature > 0, 0 < top_p <= 1 and k >= 1, got {temperature}, {top_p}, {k}")
        import torch
        from transformers.generation.logits_process import TopPLogitsWarper

        self.temperature, self.top_p, self.k = temperature, top_p, k
        self.eos_token_ids = torch.tensor(sorted(set(eos_token_ids)), dtype=torch.long)
        self._full = TopPLogitsWarper(top_p=top_p)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        import torch

        scores = scores / self.temperature
        if self.top_p >= 1:
            return scores
        top, index = scores.softmax(dim=-1).topk(min(self.k, scores.shape[-1]), dim=-1)
        keep = torch.zeros_like(scores, dtype=torch.bool).scatter_(1, index, in_nucleus(top, self.top_p))
        filtered = scores.masked_fill(~keep, -float("inf"))
        wide = top.sum(dim=-1) < self.top_p  # rows whose nucleus reaches past the top k
        if len(self.eos_token_ids):
            wide &= ~torch.isin(input_ids[:, -1], self.eos_token_ids.to(input_ids.device))
        if wide.any():
            filtered[wide] = self._full(input_ids[wide], scores[wide])
        return filtered


class HFGenerator:
    """Generate with a `transformers` causal LM.

    Args:
        model: the model; moved to ``device`` when one is given.
        tokenizer: its tokenizer. A tokenizer without a pad token gets its eos token as pad token.
        device: where to run (e.g. "cpu", "cuda"); None keeps the model where it is.
        progress: show a tqdm bar over batches.
        decode_loop: decode a model that `repro.generation.decode.can_decode` accepts with that loop (the same
            samples, faster); False decodes every model with ``model.generate`` (to compare the two).
        retire_rows: in that loop, drop the rows that have ended from the forward passes (the same samples,
            faster when completions end at different lengths); False keeps them (to compare the two).
        sampler: how the loop draws a sampled token. ``"generate"``: ``generate``'s own draw, so the samples
            are ``generate``'s token for token. ``"nucleus"``: `repro.generation.decode.NucleusSampler`, the
            same distribution drawn among the nucleus only, for the rows still going: faster, other samples
            (an `repro.generation.engine.Engine` option, so it is part of the stages' keys). A model the decode
            loop does not take (another architecture, an unusual generation config, ``decode_loop=False``) is
            sampled by ``generate``'s draw instead: the same distribution, the same samples from run to run.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        device: str | torch.device | None = None,
        *,
        progress: bool = True,
        decode_loop: bool = True,
        retire_rows: bool = True,
        sampler: str = "generate",
    ) -> None:
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; valid samplers: {', '.join(SAMPLERS)}")
        if device is not None:
            model = model.to(device)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.model = model
        self.tokenizer = tokenizer
        self.decode_loop = decode_loop
        self.retire_rows = retire_rows
        self.sampler = sampler
        self.progress = progress

    @property
    def device(self) -> torch.device:
        return self.model.device

    def generate(self, prompts: Sequence[Prompt], config: GenerationSpec = GenerationSpec()) -> list[list[str]]:
        """For each prompt, ``config.n`` completions (decoded without special tokens, stripped).

        With ``temperature == 0`` (greedy) each prompt is decoded once and its completion repeated ``n`` times.
        """
        import torch
        from transformers import LogitsProcessorList

        encoded = encode_prompts(self.tokenizer, prompts)
        draws = 1 if config.greedy else config.n
        fast = self._can_decode()
        # the nucleus sampler draws in the decode loop; a model the loop does not take gets generate's draw
        nucleus = NucleusSampler(config.temperature, config.top_p) if (
            self.sampler == "nucleus" and not config.greedy and fast) else None
        if config.greedy:
            sampling = {"do_sample": False}
        elif nucleus is not None:  # temperature and top-p are the sampler's
            sampling = {"do_sample": True, "logits_processor": LogitsProcessorList()}
        else:  # top_k=0: no top-k cut-off (transformers would apply 50), as in vLLM
            sampling = {"do_sample": True, "temperature": 1.0, "top_p": 1.0, "top_k": 0, "logits_processor":
                        LogitsProcessorList([TemperatureTopP(config.temperature, config.top_p,
                                                             eos_token_ids=self._eos_token_ids())])}

        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]), reverse=True)
        batches = [order[start : start + config.batch_size] for start in range(0, len(order), config.batch_size)]
        completions: list[list[str]] = [[] for _ in encoded]
        with self._seeded(config.seed), self._eval_mode(), torch.inference_mode():
            for batch in tqdm(batches, desc="generate", unit="batch", disable=not self.progress):
                inputs = self._pad([encoded[i] for i in batch])
                if fast:
                    new_tokens = decode(self.model, inputs["input_ids"], inputs["attention_mask"], n=draws,
                                        max_new_tokens=config.max_new_tokens, sample=not config.greedy,
                                        processors=sampling.get("logits_processor", LogitsProcessorList()),
                                        eos_token_ids=self._eos_token_ids(), pad_token_id=self.tokenizer.pad_token_id,
                                        retire_rows=self.retire_rows, sampler=nucleus)
                else:
                    output = self.model.generate(
                        **inputs,
                        max_new_tokens=config.max_new_tokens,
                        num_return_sequences=draws,
                        pad_token_id=self.tokenizer.pad_token_id,
                        **sampling,
                    )
                    new_tokens = output[:, inputs["input_ids"].shape[1] :]
                texts = [t.strip() for t in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]
                for row, index in enumerate(batch):
                    completions[index] = texts[row * draws : (row + 1) * draws] * (config.n // draws)
        return completions

    def score_next_token_logprobs(
        self,
        prompts: Sequence[Prompt],
        candidate_tokens: Sequence[str | int],
        *,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Log-probabilities of candidate tokens at the position right after each prompt.

        Used to read a judge's preference from one token (e.g. "1" vs "2") without sampling.

        Args:
            prompts: conversations (rendered with the generation prompt) or raw strings.
            candidate_tokens: vocabulary entries (e.g. "1") or token ids; each must be a single token.
            batch_size: prompts per forward pass; None scores all prompts in one batched pass.

        Returns:
            Array of shape ``(len(prompts), len(candidate_tokens))`` of log-probabilities under the full
            next-token distribution (not renormalised over the candidates).
        """
        import torch

        candidate_ids = [single_token_id(self.tokenizer, token) for token in candidate_tokens]
        encoded = encode_prompts(self.tokenizer, prompts)
        if not encoded:
            return np.zeros((0, len(candidate_ids)), dtype=np.float32)
        # Batches of prompts of similar length (longest first), as in `generate`: little padding.
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]), reverse=True)
        step = batch_size or len(encoded)
        scores = torch.empty(len(encoded), len(candidate_ids))
        with self._eval_mode(), torch.inference_mode():
            for start in range(0, len(order), step):
                batch = order[start : start + step]
                inputs = self._pad([encoded[i] for i in batch])
                # Left padding shifts the real tokens, so positions are counted from each prompt's first token.
                position_ids = (inputs["attention_mask"].cumsum(-1) - 1).clamp(min=0)
                logits = self.model(**inputs, position_ids=position_ids, logits_to_keep=1).logits[:, -1]
                scores[batch] = torch.log_softmax(logits.float(), dim=-1)[:, candidate_ids].cpu()
        return scores.numpy()

    def _can_decode(self) -> bool:
        """Whether `repro.generation.decode` decodes (else ``model.generate`` runs)."""
        return self.decode_loop and can_decode(self.model)

    # -- helpers -------------------------------------------------------------------------------

    def _eos_token_ids(self) -> list[int]:
        """The ids that end a sequence in ``generate`` (the model's generation config, else the tokenizer's)."""
        eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        if eos is None:
            eos = self.tokenizer.eos_token_id
        return [] if eos is None else [eos] if isinstance(eos, int) else list(eos)

    def _pad(self, batch: list[list[int]]) -> dict[str, torch.Tensor]:
        inputs = self.tokenizer.pad({"input_ids": batch}, padding_side="left", return_tensors="pt")
        return {key: value.to(self.device) for key, value in inputs.items()}

    @contextmanager
    def _seeded(self, seed: int):
        """Seed torch for the duration of a call, restoring the caller's RNG state afterwards."""
        import torch

        devices = list(range(torch.cuda.device_count())) if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield

    @contextmanager
    def _eval_mode(self):
        """Run in eval mode, then restore the model's training flag."""
        was_training = self.model.training
        self.model.eval()
        try:
            yield
        finally:
            self.model.train(was_training)
