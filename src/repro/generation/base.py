"""The interface every generation backend implements.

A prompt is either a conversation (a list of ``{"role": ..., "content": ...}`` messages), rendered with
the tokenizer's chat template and the generation prompt, or a raw string, tokenized as is (with the
tokenizer's special tokens, e.g. a leading ``<s>``). Both backends turn prompts into token ids with
`encode_prompts`, so they condition on exactly the same tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeAlias, runtime_checkable

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

Message: TypeAlias = Mapping[str, str]
Prompt: TypeAlias = str | Sequence[Message]


@dataclass(frozen=True)
class GenerationSpec:
    """How to sample completions (the fields of vLLM's ``SamplingParams`` that the study uses).

    Attributes:
        max_new_tokens: most tokens generated per completion.
        temperature: softmax temperature; 0 means greedy decoding (the ``n`` completions are then equal).
        top_p: nucleus sampling threshold (1.0 keeps the whole distribution). No top-k cut-off is applied.
        n: completions per prompt.
        seed: seed of the sampler; the same seed, prompts and config give the same completions.
        batch_size: prompts per forward batch (transformers backend; vLLM schedules batches itself).
    """

    max_new_tokens: int = 64
    temperature: float = 1.0
    top_p: float = 1.0
    n: int = 1
    seed: int = 0
    batch_size: int = 32

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"GenerationSpec.max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"GenerationSpec.temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"GenerationSpec.top_p must be in (0, 1], got {self.top_p}")
        if self.n < 1:
            raise ValueError(f"GenerationSpec.n must be >= 1, got {self.n}")
        if self.batch_size < 1:
            raise ValueError(f"GenerationSpec.batch_size must be >= 1, got {self.batch_size}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@runtime_checkable
class Generator(Protocol):
    """Anything that samples completions for a batch of prompts."""

    def generate(self, prompts: Sequence[Prompt], config: GenerationSpec) -> list[list[str]]:
        """For each prompt, ``config.n`` completions, decoded without special tokens and stripped."""
        ...


def is_conversation(prompt: Prompt) -> bool:
    """Whether a prompt is a list of chat messages (rather than a raw string)."""
    return not isinstance(prompt, str)


def encode_prompts(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[Prompt]) -> list[list[int]]:
    """Token ids of each prompt: chat template with the generation prompt, or the raw string. A conversation
    whose last message is the assistant's is rendered open, so that its text is the start of the reply.

    Raises:
        TypeError: a prompt is neither a string nor a list of messages with "role" and "content".
    """
    encoded = []
    for index, prompt in enumerate(prompts):
        if isinstance(prompt, str):
            encoded.append(tokenizer(prompt)["input_ids"])
            continue
        if not isinstance(prompt, Sequence) or not all(
            isinstance(m, Mapping) and "role" in m and "content" in m for m in prompt
        ):
            raise TypeError(
                f"prompt {index} must be a string or a list of {{'role', 'content'}} messages, got {prompt!r:.200}"
            )
        if prompt and prompt[-1]["role"] == "assistant":  # a reply already begun (e.g. a read-out cue): continue it
            encoded.append(tokenizer.apply_chat_template(list(prompt), continue_final_message=True)["input_ids"])
        else:
            encoded.append(tokenizer.apply_chat_template(list(prompt), add_generation_prompt=True)["input_ids"])
    return encoded


def single_token_id(tokenizer, token: str | int) -> int:
    """The id of a candidate answer token (e.g. "1"), which must be one token of the tokenizer."""
    if isinstance(token, int):
        return token
    vocab = tokenizer.get_vocab()
    if token in vocab:
        return vocab[token]
    ids = tokenizer.encode(token, add_special_tokens=False)
    if len(ids) != 1:
        raise ValueError(f"candidate token {token!r} is not a single token of the tokenizer (ids {ids})")
    return ids[0]
