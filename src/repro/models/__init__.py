"""Tokenizer, tiny Llama factory, and loading/saving in the Hugging Face format (safetensors).

>>> tokenizer = build_tokenizer(["the", "cat", "sat", "."])
>>> model = make_llama("XS", tokenizer, seed=0)
>>> save_model(model, tokenizer, "runs/example/model")            # doctest: +SKIP
>>> model, tokenizer = load_model("runs/example/model")           # doctest: +SKIP
>>> model, tokenizer = load_model("meta-llama/Llama-2-7b-hf", dtype="bfloat16", device="cuda")  # doctest: +SKIP
"""

from repro.models.io import ModelNotFound, load_model, save_model
from repro.models.llama import DEFAULT_MAX_POSITION_EMBEDDINGS, SIZE_PRESETS, count_parameters, llama_config, make_llama
from repro.models.tokenizer import CHAT_TEMPLATE, SPECIAL_TOKENS, build_tokenizer

__all__ = [
    "CHAT_TEMPLATE",
    "DEFAULT_MAX_POSITION_EMBEDDINGS",
    "SIZE_PRESETS",
    "SPECIAL_TOKENS",
    "ModelNotFound",
    "build_tokenizer",
    "count_parameters",
    "llama_config",
    "load_model",
    "make_llama",
    "save_model",
]
