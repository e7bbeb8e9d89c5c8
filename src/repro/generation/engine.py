"""Where a stage's model is, and the engine that generates with it.

- `Engine`: the generation backend every stage of a study uses (``"transformers"`` or ``"vllm"``) with its
  options; part of every generating stage's key. `DEFAULT_ENGINE` is the tiny default (transformers, with
  `DEFAULT_SAMPLER`).
- `make_generator`: a generator by backend name.
- `model_location`, `load_stage_model`: the model a run-store stage saved (``model/``) or refers to
  (`external_model_stage`, paper scale: a checkpoint folder or hub id outside the store).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repro.errors import ReproError
from repro.generation.base import Generator
from repro.generation.hf import HFGenerator
from repro.generation.sharded import launched_processes, launched_state, shard
from repro.generation.vllm_backend import VLLMGenerator, output_options
from repro.models import load_model
from repro.models.gguf import gguf_model_stage, is_gguf
from repro.paths import existing_path
from repro.progress import show_progress
from repro.runs.store import RunStore, Stage, params_hash

BACKENDS = ("transformers", "vllm")
#: How the transformers engine draws sampled tokens unless told otherwise (`HFGenerator`'s ``sampler``):
#: `repro.generation.decode.NucleusSampler`, the distribution of transformers' temperature and top-p warpers
#: drawn among each row's nucleus. ``Engine.of("transformers", sampler="generate")`` draws as ``generate`` does,
#: token for token (the stages' keys name the sampler only when it is not ``generate``, so stores made before
#: the nucleus sampler was the default are still found with it).
DEFAULT_SAMPLER = "nucleus"
# The version in the key of an external model's stage; it dates from when the stage lived beside M0's
# stages (``base-1``), and is kept so that stores made then are still found.
EXTERNAL_MODEL_VERSION = "base-1"


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


MODEL_REF = "model_ref.json"


def external_model_stage(store: RunStore, model: str, *, name: str = "external-model") -> Stage:
    """A stage standing for a model that lives outside the run store (paper scale: a local checkpoint
    folder or a hub id such as ``meta-llama/Llama-2-70b-hf``), so that stages built on it chain and
    cache like those built on the tiny M0. Nothing is copied: the stage records where the model is
    (``model_ref.json``). A local folder must hold a ``config.json`` (whose content is part of the
    key); anything else is taken as a hub id, whose weights may change under the same name: to pin a
    version, download a snapshot and give its folder.

    A ``.gguf`` file (llama.cpp's format, e.g. the real-small model) is converted into a safetensors folder
    in the store instead, once per file (`repro.models.gguf.gguf_model_stage`), whatever role it plays."""
    path = existing_path(model) or Path(model).expanduser()
    if is_gguf(path):
        return gguf_model_stage(store, path)
    local = path.exists()
    if local and not (path / "config.json").is_file():
        raise ReproError(f"model folder {path} has no config.json (not a Hugging Face checkpoint)")
    where = str(path.resolve()) if local else model
    params = {"version": EXTERNAL_MODEL_VERSION, "model": where,
              "config": params_hash((path / "config.json").read_text()) if local else None}

    def compute(workdir: Path) -> dict:
        (workdir / MODEL_REF).write_text(json.dumps({"model": where}))
        return {"model": where, "local": local}

    return store.run(name, params, compute)


def model_location(stage: Stage, subdir: str = "model") -> str:
    """Where a stage's model is: its own ``model/`` folder, or the path or hub id it refers to."""
    if (stage / subdir).is_dir():
        return str(stage / subdir)
    ref = stage / MODEL_REF
    if ref.is_file():
        return json.loads(ref.read_text())["model"]
    raise FileNotFoundError(f"stage {stage.name}/{stage.key} holds no model ({subdir}/ or {MODEL_REF})")


def load_stage_model(stage: Stage, subdir: str = "model"):
    """``(model, tokenizer)`` saved by a stage (or referred to by an external-model stage)."""
    return load_model(model_location(stage, subdir))


@dataclass(frozen=True)
class Engine:
    """The generation backend every stage of a study uses: ``"transformers"`` (`HFGenerator`, the tiny
    default) or ``"vllm"`` (paper scale), with the backend's engine options (for the transformers backend,
    ``sampler``: the studies' engines, `DEFAULT_ENGINE` and `from_parameters`, use `DEFAULT_SAMPLER`; an
    ``Engine()`` without options draws as ``generate`` does, `HFGenerator`'s own default. For vLLM:
    ``tensor_parallel_size``, ``gpu_memory_utilization``, ``max_model_len``, ``dtype``, any other
    ``vllm.LLM`` argument). Part of every generating stage's key (`key`), since backends and samplers
    sample differently.

    Under ``accelerate launch`` (several processes), every generator it builds is sharded: each process
    generates and judges its slice of the prompts and all get the results in order
    (`repro.generation.sharded`). In one process nothing changes."""

    backend: str = "transformers"
    options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown generation backend {self.backend!r}; valid backends: {', '.join(BACKENDS)}")

    @classmethod
    def of(cls, backend: str = "transformers", **options: Any) -> Engine:
        return cls(backend, tuple(sorted(options.items())))

    @classmethod
    def from_parameters(cls, p: Mapping[str, Any]) -> Engine:
        """The engine of a notebook's parameters ``generation_backend``, ``tensor_parallel_size`` (default
        1) and ``vllm_options`` (any other ``vllm.LLM`` argument; default none). With the transformers
        backend ``tensor_parallel_size`` is ignored, as before, and ``vllm_options`` must be empty.

        Raises:
            ValueError: ``vllm_options`` with the transformers backend, or a ``tensor_parallel_size`` in
                ``vllm_options`` other than the parameter's.
        """
        backend, tensor_parallel_size = p["generation_backend"], p.get("tensor_parallel_size", 1)
        options = dict(p.get("vllm_options") or {})
        if backend != "vllm":
            if options:
                raise ValueError(f"vllm_options {options} are given, but generation_backend is {backend!r}, "
                                 "not 'vllm'")
            return cls.of(backend, sampler=DEFAULT_SAMPLER)
        if options.get("tensor_parallel_size", tensor_parallel_size) != tensor_parallel_size:
            raise ValueError(f"vllm_options sets tensor_parallel_size={options['tensor_parallel_size']}, but the "
                             f"tensor_parallel_size parameter is {tensor_parallel_size}: set it in one place")
        return cls.of(backend, **{**options, "tensor_parallel_size": tensor_parallel_size})

    def key(self) -> dict:
        """What of the engine goes into a generating stage's key: the backend and the options that can
        change the output. For vLLM, options that only schedule the work or size its memory
        (`repro.generation.vllm_backend.SCHEDULING_OPTIONS`: ``gpu_memory_utilization``,
        ``enforce_eager``, ``max_num_seqs``, ...) are left out; ``dtype``, ``max_model_len``,
        ``tensor_parallel_size`` and any other option stay in. With the transformers backend under
        ``accelerate launch``, the number of processes is added: sampled completions depend on how the
        prompts were split (`repro.generation.sharded`). vLLM seeds each prompt by its global index, so
        its key does not depend on the number of processes."""
        options = dict(self.options)
        if self.backend == "vllm":
            options = output_options(options)
        if options.get("sampler") == "generate":  # the draw every stage made before samplers were an option
            del options["sampler"]
        key = {"backend": self.backend, **options}
        if self.backend == "transformers" and launched_processes() > 1:
            key["processes"] = launched_processes()
        return key

    def generator(self, stage: Stage, *, progress: bool | None = None):
        """A generator over the model of ``stage`` (sharded over the processes when launched)."""
        state = launched_state()
        show = show_progress(progress) and (state is None or state.is_main_process)
        options = dict(self.options)
        if self.backend == "transformers":
            model, tokenizer = load_stage_model(stage)
            if state is not None:  # each launched process runs its own copy on its own device
                options.setdefault("device", state.device)
            return shard(HFGenerator(model, tokenizer, progress=show, **options), state)
        if not show:
            options.setdefault("progress", False)
        return shard(make_generator(self.backend, model_location(stage), **options), state)


DEFAULT_ENGINE = Engine.of("transformers", sampler=DEFAULT_SAMPLER)
