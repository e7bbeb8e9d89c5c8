"""Sampling completions, behind one interface with two backends.

- ``"transformers"``: `HFGenerator`, batched ``model.generate`` (CPU or GPU; the tiny profile).
- ``"vllm"``: `VLLMGenerator`, a vLLM engine (GPUs; paper scale; optional extra, imported lazily).

>>> generator = make_generator("transformers", model=model, tokenizer=tokenizer)  # doctest: +SKIP
>>> generator = make_generator("vllm", model="meta-llama/Llama-2-70b-chat-hf",
...                            tensor_parallel_size=8)                             # doctest: +SKIP
>>> generator.generate([[{"role": "user", "content": "..."}]], GenerationConfig(n=4))  # doctest: +SKIP

Under ``accelerate launch``, `shard` wraps a generator so that each process generates for its slice of
the prompts and all get the results in order (`repro.generation.sharded`).
"""

from __future__ import annotations

import os
from typing import Any

from repro.generation.base import GenerationConfig, Generator, Prompt, encode_prompts, is_conversation
from repro.generation.hf import HFGenerator
from repro.generation.sharded import ShardedGenerator, shard
from repro.generation.vllm_backend import VLLMGenerator

BACKENDS = ("transformers", "vllm")

__all__ = [
    "BACKENDS",
    "GenerationConfig",
    "Generator",
    "HFGenerator",
    "Prompt",
    "ShardedGenerator",
    "VLLMGenerator",
    "encode_prompts",
    "is_conversation",
    "make_generator",
    "shard",
]


def make_generator(backend: str, model: Any, tokenizer: Any = None, **kwargs: Any) -> Generator:
    """Build a generator by backend name.

    Args:
        backend: "transformers" or "vllm".
        model: for "transformers", a loaded model (with ``tokenizer``) or a path/hub id, loaded with
            `repro.models.load_model` (``dtype``, ``device`` and ``trust_remote_code`` in ``kwargs`` are
            passed on); for "vllm", a path or hub id.
        tokenizer: the tokenizer of a loaded model (transformers backend only).
        **kwargs: the backend's other arguments (e.g. ``progress``; vLLM engine arguments).

    Raises:
        ValueError: unknown backend, or a model/tokenizer combination the backend cannot use.
    """
    if backend == "transformers":
        if isinstance(model, (str, os.PathLike)):
            from repro.models import load_model

            load_kwargs = {key: kwargs.pop(key) for key in ("dtype", "trust_remote_code") if key in kwargs}
            model, tokenizer = load_model(model, device=kwargs.pop("device", None), **load_kwargs)
        elif tokenizer is None:
            raise ValueError("make_generator('transformers', model=<loaded model>) also needs its tokenizer")
        return HFGenerator(model, tokenizer, **kwargs)
    if backend == "vllm":
        if not isinstance(model, (str, os.PathLike)):
            raise ValueError("the vllm backend loads the model itself: pass a checkpoint path or hub id as model")
        return VLLMGenerator(model, **kwargs)
    raise ValueError(f"unknown generation backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
