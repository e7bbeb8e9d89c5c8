"""The vLLM backend, for paper-scale models on GPUs (optional extra: ``pip install -e .[vllm]``).

vLLM is imported only when a `VLLMGenerator` is built, so ``import repro.generation`` works (and
stays fast) without it. Prompts are turned into token ids by the model's own Hugging Face tokenizer
with `encode_prompts`, exactly as in the transformers backend, and handed to ``LLM.generate`` as
token prompts: both backends condition on the same tokens. Each prompt gets its own sampler seed
(``config.seed + index``), so its completions do not depend on how vLLM schedules the batch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from transformers import AutoTokenizer

import numpy as np

from repro.generation.base import GenerationConfig, Prompt, encode_prompts, single_token_id

logger = logging.getLogger(__name__)

INSTALL_HINT = "The vLLM backend needs the optional 'vllm' extra: pip install -e .[vllm]"


def _import_vllm():
    try:
        import vllm
    except ImportError as error:
        raise ImportError(f"{INSTALL_HINT} ({error})") from error
    return vllm


class VLLMGenerator:
    """Generate with a vLLM engine.

    Args:
        model_path: a local checkpoint folder or hub id.
        tensor_parallel_size: GPUs to shard the model over.
        gpu_memory_utilization: fraction of each GPU's memory vLLM may take.
        dtype: weights/activations dtype ("auto", "bfloat16", "float16", ...).
        max_model_len: longest prompt + completion; None uses the model's.
        seed: engine seed (sampling itself is seeded per request from `GenerationConfig.seed`).
        trust_remote_code: run code shipped with the checkpoint (warned about when on).
        progress: show vLLM's progress bar.
        **engine_kwargs: any other ``vllm.LLM`` argument.

    Raises:
        ImportError: vLLM is not installed.
    """

    def __init__(
        self,
        model_path: str | os.PathLike,
        *,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        dtype: str = "auto",
        max_model_len: int | None = None,
        seed: int = 0,
        trust_remote_code: bool = False,
        progress: bool = True,
        **engine_kwargs: Any,
    ) -> None:
        vllm = _import_vllm()
        self._sampling_params_cls = vllm.SamplingParams
        model_path = os.fspath(model_path)
        if trust_remote_code:
            logger.warning(
                "Loading %r with trust_remote_code=True: code shipped with the checkpoint will run.", model_path
            )
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code)
        self.llm = vllm.LLM(
            model=model_path,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            dtype=dtype,
            max_model_len=max_model_len,
            seed=seed,
            trust_remote_code=trust_remote_code,
            **engine_kwargs,
        )
        self.progress = progress

    def generate(self, prompts: Sequence[Prompt], config: GenerationConfig = GenerationConfig()) -> list[list[str]]:
        """For each prompt, ``config.n`` completions (decoded without special tokens, stripped)."""
        token_prompts = [{"prompt_token_ids": ids} for ids in encode_prompts(self.tokenizer, prompts)]
        params = [
            self._sampling_params_cls(
                n=config.n,
                temperature=config.temperature,
                top_p=config.top_p,
                max_tokens=config.max_new_tokens,
                seed=config.seed + index,
                skip_special_tokens=True,
            )
            for index in range(len(token_prompts))
        ]
        outputs = self.llm.generate(token_prompts, params, use_tqdm=self.progress)
        return [[choice.text.strip() for choice in output.outputs] for output in outputs]

    def score_next_token_logprobs(self, prompts: Sequence[Prompt], candidate_tokens: Sequence[str | int], *,
                                  batch_size: int | None = None) -> np.ndarray:
        """Log-probabilities of candidate tokens right after each prompt (the RLAIF read-out), as in
        the transformers backend: each prompt is sent once per candidate with the candidate appended,
        and vLLM's ``prompt_logprobs`` gives the log-probability of that last token under the full
        next-token distribution (one prefill per request; vLLM's prefix cache shares the prompt's).
        ``batch_size`` is ignored: vLLM schedules its own batches."""
        candidate_ids = [single_token_id(self.tokenizer, token) for token in candidate_tokens]
        encoded = encode_prompts(self.tokenizer, prompts)
        requests = [{"prompt_token_ids": [*ids, c]} for ids in encoded for c in candidate_ids]
        if not requests:
            return np.zeros((0, len(candidate_ids)))
        params = self._sampling_params_cls(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        outputs = self.llm.generate(requests, params, use_tqdm=self.progress)
        values = [output.prompt_logprobs[-1][request["prompt_token_ids"][-1]].logprob
                  for request, output in zip(requests, outputs)]
        return np.asarray(values, dtype=float).reshape(len(encoded), len(candidate_ids))
