"""Saving and loading models in the Hugging Face format (safetensors only).

One loader serves the tiny models trained here and real models (a local folder or a hub id such as
``meta-llama/Llama-2-70b-chat-hf``): both go through ``from_pretrained``. Weights are only ever read
from safetensors files, and code shipped with a checkpoint only runs when explicitly allowed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where a model is loaded: a notebook whose stages are reused never loads them
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

from repro.errors import ReproError

logger = logging.getLogger(__name__)


class ModelNotFound(ReproError, ValueError):
    """A model path or hub id that names no loadable model."""


def load_weights(model_class: Any, source: str | os.PathLike, **kwargs: Any) -> PreTrainedModel:
    """``model_class.from_pretrained(source, **kwargs)`` reading safetensors weights only: the one place
    where this project loads a model's weights with transformers. A checkpoint with only pickled
    weights (``pytorch_model.bin``) is refused by transformers with an ``OSError`` before anything is
    unpickled, so no code hidden in such a file runs."""
    if kwargs.get("use_safetensors", True) is not True:
        raise ValueError("weights are read only from safetensors files")
    kwargs["use_safetensors"] = True
    return model_class.from_pretrained(os.fspath(source), **kwargs)


def load_gguf(gguf_file: str | os.PathLike) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A causal language model and its tokenizer read from one GGUF file (llama.cpp's format), de-quantised
    by transformers into float32: the one place where this project reads GGUF. The format holds tensors
    and metadata only (no pickled objects, no code), so reading it runs nothing from the file. The model
    still carries transformers' GGUF quantiser, which refuses `save_pretrained`: `repro.models.gguf`
    takes it off before saving."""
    path = Path(gguf_file).expanduser()
    if not path.is_file():
        raise ModelNotFound(f"GGUF file {str(path)!r} does not exist")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
    except (OSError, ValueError, KeyError) as error:  # not GGUF, a truncated file, an architecture transformers lacks
        raise ModelNotFound(f"could not read {str(path)!r} as a GGUF model: {type(error).__name__}: {error}") from error
    return model.eval(), tokenizer


def save_model(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, path: str | os.PathLike) -> Path:
    """Save a model and its tokenizer into a folder (config, safetensors weights, tokenizer files).

    Returns the folder, which `load_model` reads back.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)  # transformers 5 writes safetensors only
    tokenizer.save_pretrained(path)
    return path


def _looks_like_path(name: str | os.PathLike) -> bool:
    """Whether a model name is meant as a local path rather than a hub id (``name`` or ``org/name``)."""
    if isinstance(name, os.PathLike):
        return True
    return (
        os.path.isabs(name)
        or name.startswith((".", "~"))
        or name.endswith("/")
        or "\\" in name
        or name.count("/") > 1
    )


def _as_dtype(dtype: str | torch.dtype | None) -> str | torch.dtype | None:
    import torch

    if isinstance(dtype, str) and dtype != "auto":
        resolved = getattr(torch, dtype.removeprefix("torch."), None)
        if not isinstance(resolved, torch.dtype):
            raise ValueError(f"unknown dtype {dtype!r}; use e.g. 'float32', 'bfloat16', 'float16' or 'auto'")
        return resolved
    return dtype


def load_model(
    path_or_hub_id: str | os.PathLike,
    *,
    trust_remote_code: bool = False,
    dtype: str | torch.dtype | None = None,
    device: str | torch.device | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal language model and its tokenizer from a local folder or the Hugging Face hub.

    Args:
        path_or_hub_id: a folder written by `save_model` (or any Hugging Face checkpoint folder), or a
            hub id. An existing folder always wins; a name that looks like a path (absolute, starting
            with ``.`` or ``~``, or with more than one ``/``) is never looked up on the hub.
        trust_remote_code: run modelling code shipped with the checkpoint. Off unless asked for, and a
            warning is logged when on.
        dtype: weights dtype, e.g. ``"bfloat16"`` or ``torch.float16``; ``"auto"`` keeps the stored
            dtype; None loads float32.
        device: where to place the weights (``"cpu"``, ``"cuda"``, ``"cuda:1"``, or ``"auto"`` to spread
            a large model over the visible GPUs); None leaves them on the CPU.

    Returns:
        ``(model, tokenizer)``, the model in eval mode.

    Raises:
        ModelNotFound: the path does not exist, holds no model, or the hub id cannot be loaded.
    """
    name = os.fspath(path_or_hub_id)
    local = Path(name).expanduser()
    if local.exists():
        if not (local / "config.json").is_file():
            raise ModelNotFound(f"{str(local)!r} is not a model folder: it has no config.json")
        source = str(local)
    elif _looks_like_path(path_or_hub_id):
        raise ModelNotFound(f"model path {name!r} does not exist")
    else:
        source = name  # a hub id

    if trust_remote_code:
        logger.warning("Loading %r with trust_remote_code=True: code shipped with the checkpoint will run.", source)

    model_kwargs: dict = {"trust_remote_code": trust_remote_code}
    if dtype is not None:
        model_kwargs["dtype"] = _as_dtype(dtype)
    if device is not None:
        model_kwargs["device_map"] = str(device)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = load_weights(AutoModelForCausalLM, source, **model_kwargs)
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    except OSError as error:
        raise ModelNotFound(
            f"could not load model {name!r} (no such local folder; as a hub id: {error})"
        ) from error
    return model.eval(), tokenizer
