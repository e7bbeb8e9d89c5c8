"""Sampling completions, behind one interface with two backends.

- ``"transformers"``: `HFGenerator`, batched ``model.generate`` (CPU or GPU; the tiny profile).
- ``"vllm"``: `VLLMGenerator`, a vLLM engine (GPUs; paper scale; optional extra, imported lazily).

>>> generator = make_generator("transformers", model=model, tokenizer=tokenizer)  # doctest: +SKIP
>>> generator = make_generator("vllm", model="meta-llama/Llama-2-70b-chat-hf",
...                            tensor_parallel_size=8)                             # doctest: +SKIP
>>> generator.generate([[{"role": "user", "content": "..."}]], GenerationSpec(n=4))  # doctest: +SKIP

Under ``accelerate launch``, `shard` wraps a generator so that each process generates for its slice of
the prompts and all get the results in order (`repro.generation.sharded`). `Engine` (`repro.generation.engine`)
names the backend a study generates with and finds a run-store stage's model.
"""

from __future__ import annotations

from repro.generation.base import GenerationSpec, Generator, Prompt, encode_prompts, is_conversation
from repro.generation.engine import (
    BACKENDS,
    DEFAULT_ENGINE,
    Engine,
    external_model_stage,
    load_stage_model,
    make_generator,
    model_location,
)
from repro.generation.hf import HFGenerator
from repro.generation.sharded import ShardedGenerator, shard
from repro.generation.vllm_backend import VLLMGenerator

__all__ = [
    "BACKENDS",
    "DEFAULT_ENGINE",
    "Engine",
    "GenerationSpec",
    "Generator",
    "HFGenerator",
    "Prompt",
    "ShardedGenerator",
    "VLLMGenerator",
    "encode_prompts",
    "external_model_stage",
    "is_conversation",
    "load_stage_model",
    "make_generator",
    "model_location",
    "shard",
]
