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

import numpy as np

from repro.generation.base import GenerationSpec, Prompt, encode_prompts, single_token_id

logger = logging.getLogger(__name__)

INSTALL_HINT = "The vLLM backend needs the optional 'vllm' extra: pip install -e .[vllm]"


# ``vllm.LLM`` arguments that decide how the work is scheduled and how much memory it may take, not which
# tokens come out: they are left out of a stage's key (`repro.generation.engine.Engine.key`), so that tuning
# them for a machine reuses finished stages. vLLM does not promise bit-identical outputs across batch
# compositions, so these may still move a sampled token; every other option (dtype, max_model_len,
# quantization, tensor_parallel_size, any option not listed here) is part of the key.
SCHEDULING_OPTIONS = frozenset({
    "gpu_memory_utilization", "swap_space", "cpu_offload_gb", "enforce_eager", "enable_prefix_caching",
    "enable_chunked_prefill", "max_num_seqs", "max_num_batched_tokens", "disable_log_stats",
    "distributed_executor_backend", "progress",
})


def output_options(options: dict[str, Any]) -> dict[str, Any]:
    """The engine options that can change what a vLLM engine generates (all but `SCHEDULING_OPTIONS`)."""
    return {key: value for key, value in options.items() if key not in SCHEDULING_OPTIONS}


def check_engine_options(vllm: Any, options: dict[str, Any]) -> None:
    """Fail clearly, before an engine starts, on an option that ``vllm.LLM`` does not take: one that is
    neither a parameter of ``LLM`` nor a field of ``vllm.EngineArgs`` (where ``LLM`` sends its other
    keyword arguments). Where vLLM cannot be introspected so, ``LLM`` itself raises on such options.

    Raises:
        ValueError: an unknown option, named with the valid ones.
    """
    import dataclasses
    import inspect

    engine_args = getattr(vllm, "EngineArgs", None)
    if engine_args is None or not dataclasses.is_dataclass(engine_args):
        return
    try:
        parameters = inspect.signature(vllm.LLM).parameters
    except (TypeError, ValueError):
        return
    valid = {f.name for f in dataclasses.fields(engine_args)} | {
        name for name, p in parameters.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ValueError(f"unknown vLLM engine option(s) {', '.join(map(repr, unknown))}: vllm.LLM takes "
                         f"{', '.join(sorted(valid))}")


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
        seed: engine seed (sampling itself is seeded per request from `GenerationSpec.seed`).
        trust_remote_code: run code shipped with the checkpoint (warned about when on).
        load_format (in ``engine_kwargs``): only ``"safetensors"``, the default here; weights are never
            unpickled.
        progress: show vLLM's progress bar.
        **engine_kwargs: any other ``vllm.LLM`` argument (``enforce_eager``, ``enable_prefix_caching``,
            ``max_num_seqs``, ``quantization``, ...).

    Raises:
        ImportError: vLLM is not installed.
        ValueError: an engine option that ``vllm.LLM`` does not take (`check_engine_options`).
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
        load_format = engine_kwargs.pop("load_format", "safetensors")
        if load_format != "safetensors":
            raise ValueError(f"vLLM load_format {load_format!r}: weights are read only from safetensors files")
        vllm = _import_vllm()
        check_engine_options(vllm, {"tensor_parallel_size": tensor_parallel_size, "dtype": dtype,
                                    "gpu_memory_utilization": gpu_memory_utilization,
                                    "max_model_len": max_model_len, "seed": seed, **engine_kwargs})
        self._sampling_params_cls = vllm.SamplingParams
        model_path = os.fspath(model_path)
        if trust_remote_code:
            logger.warning(
                "Loading %r with trust_remote_code=True: code shipped with the checkpoint will run.", model_path
            )
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code)
        self.llm = vllm.LLM(
            model=model_path,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            dtype=dtype,
            max_model_len=max_model_len,
            seed=seed,
            trust_remote_code=trust_remote_code,
            load_format=load_format,
            **engine_kwargs,
        )
        self.progress = progress

    def generate(self, prompts: Sequence[Prompt], config: GenerationSpec = GenerationSpec(), *,
                 index_offset: int = 0) -> list[list[str]]:
        """For each prompt, ``config.n`` completions (decoded without special tokens, stripped).

        Prompt ``i`` is sampled with seed ``config.seed + index_offset + i``: ``index_offset`` is where
        ``prompts`` start in a larger list split over processes (`repro.generation.sharded`), so that a
        prompt's completions do not depend on how the list was split."""
        token_prompts = [{"prompt_token_ids": ids} for ids in encode_prompts(self.tokenizer, prompts)]
        params = [
            self._sampling_params_cls(
                n=config.n,
                temperature=config.temperature,
                top_p=config.top_p,
                max_tokens=config.max_new_tokens,
                seed=config.seed + index_offset + index,
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
