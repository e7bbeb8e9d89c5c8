"""Tiny Llama models, trained from scratch on the world.

The presets are plain data: keyword arguments of `transformers.LlamaConfig` that fix the shape of the
network. The vocabulary size and the special token ids come from the tokenizer, so one preset fits
any world. Every preset uses 32-dimensional attention heads, no grouped-query attention and tied
input/output embeddings; with a vocabulary of about 1,500 words they span about 0.2M (XXS) to 6.8M (L)
parameters (see `count_parameters`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where a model is built: a notebook whose stages are reused never loads them
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase

#: Context length of the tiny models: long enough for a prompt and its completion in the world.
DEFAULT_MAX_POSITION_EMBEDDINGS = 256


def _preset(hidden_size: int, num_hidden_layers: int, intermediate_size: int) -> Mapping[str, int]:
    return MappingProxyType(
        {
            "hidden_size": hidden_size,
            "num_hidden_layers": num_hidden_layers,
            "num_attention_heads": hidden_size // 32,
            "intermediate_size": intermediate_size,
        }
    )


#: Named shapes of the tiny models (parameters counted with a ~1,500-word vocabulary, embeddings included).
SIZE_PRESETS: Mapping[str, Mapping[str, int]] = MappingProxyType(
    {
        "XXS": _preset(hidden_size=64, num_hidden_layers=2, intermediate_size=160),  # ~0.15M
        "XS": _preset(hidden_size=96, num_hidden_layers=2, intermediate_size=256),  # ~0.37M
        "S": _preset(hidden_size=128, num_hidden_layers=4, intermediate_size=384),  # ~1.05M
        "M": _preset(hidden_size=192, num_hidden_layers=6, intermediate_size=512),  # ~2.95M
        "L": _preset(hidden_size=256, num_hidden_layers=8, intermediate_size=704),  # ~6.8M
    }
)


def llama_config(size: str, tokenizer: PreTrainedTokenizerBase, **overrides: Any) -> LlamaConfig:
    """The `LlamaConfig` of a preset for a tokenizer; ``overrides`` replace any config field."""
    from transformers import LlamaConfig

    if size not in SIZE_PRESETS:
        raise ValueError(f"unknown model size {size!r}; valid sizes: {', '.join(SIZE_PRESETS)}")
    kwargs: dict[str, Any] = {
        **SIZE_PRESETS[size],
        "vocab_size": len(tokenizer),
        "max_position_embeddings": DEFAULT_MAX_POSITION_EMBEDDINGS,
        "tie_word_embeddings": True,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "use_cache": True,
    }
    kwargs.update(overrides)
    return LlamaConfig(**kwargs)


def make_llama(size: str, tokenizer: PreTrainedTokenizerBase, seed: int, **overrides: Any) -> LlamaForCausalLM:
    """A freshly initialised Llama model of a preset size.

    Args:
        size: one of `SIZE_PRESETS` ("XXS", "XS", "S", "M", "L").
        tokenizer: gives the vocabulary size and the pad/bos/eos ids.
        seed: the initial weights depend only on this seed (the global RNG state is left untouched).
        **overrides: `LlamaConfig` fields to change, e.g. ``max_position_embeddings=512``.

    Returns:
        A float32 `LlamaForCausalLM` on the CPU, in eval mode, whose generation config carries the
        tokenizer's pad/bos/eos ids.
    """
    config = llama_config(size, tokenizer, **overrides)
    import torch
    from transformers import LlamaForCausalLM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model.eval()


def count_parameters(model: torch.nn.Module, *, trainable_only: bool = False) -> int:
    """Number of distinct parameters of a model (tied weights counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)

