"""A word-level tokenizer for the verifiable world.

The world's texts are lowercase, with tokens separated by single spaces (punctuation and numbers are
tokens of their own), so a word-level vocabulary is exact: every text over the vocabulary encodes to
one id per word and decodes back to the same string. The tokenizer is built with the `tokenizers`
library and wrapped as a `transformers` fast tokenizer, so that trl, `generate` and
`apply_chat_template` treat it like any hub tokenizer.

Layout of the ids: the special tokens come first, in the order of `SPECIAL_TOKENS`, then the words in
the order given (duplicates dropped), so the same word list always gives the same ids.

Conversations are rendered as ``<s> <|user|> content </s> <|assistant|> content </s>``: every message
is ``<|role|> content </s>``, and the generation prompt is a trailing ``<|assistant|>``. Because a
message never depends on what follows it, the tokens of a prompt rendered with the generation prompt
are a prefix of the tokens of the prompt followed by its completion, which is what trl's
prompt-completion format (completion-only loss) needs. The assistant's ``</s>`` ends its turn and is
the end-of-sequence token, so a model trained on completions learns to stop.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where a tokenizer is built: a notebook whose stages are reused never loads them
    from transformers import PreTrainedTokenizerFast

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS, *ROLE_TOKENS)

#: Each message as ``<|role|> content </s>``; the generation prompt is a trailing ``<|assistant|>``.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|> ' + message['content'] + ' ' + eos_token + ' ' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)

#: Longest sequence the tiny models see (prompt and completion); also the default context length.
DEFAULT_MODEL_MAX_LENGTH = 256


def build_tokenizer(
    words: Iterable[str], *, model_max_length: int = DEFAULT_MODEL_MAX_LENGTH
) -> PreTrainedTokenizerFast:
    """Build the word-level tokenizer for a vocabulary.

    Args:
        words: the vocabulary, e.g. ``repro.world.vocabulary()``. Each word must be a non-empty string
            without whitespace. Duplicates and words that are special tokens are dropped; order is kept.
        model_max_length: the longest input the tokenizer truncates to when asked to.

    Returns:
        A fast tokenizer with ``<pad>``, ``<unk>``, ``<s>`` (bos) and ``</s>`` (eos), the role markers
        ``<|system|>``, ``<|user|>``, ``<|assistant|>``, left padding and the chat template above.
        Plain texts are encoded as ``<s> w1 w2 ...``; chat templates render their own ``<s>``.
        Words outside the vocabulary become ``<unk>``.
    """
    vocab: dict[str, int] = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    for word in words:
        if not isinstance(word, str) or not word or any(ch.isspace() for ch in word):
            raise ValueError(f"vocabulary word {word!r} must be a non-empty string without whitespace")
        vocab.setdefault(word, len(vocab))

    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    # Without a decoder, `tokenizers` joins the tokens with single spaces: the inverse of the pre-tokenizer.
    bos_id = vocab[BOS]
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    backend.add_special_tokens(list(SPECIAL_TOKENS))

    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD,
        unk_token=UNK,
        bos_token=BOS,
        eos_token=EOS,
        extra_special_tokens=list(ROLE_TOKENS),
        padding_side="left",
        clean_up_tokenization_spaces=False,  # would glue punctuation to the previous word
        model_max_length=model_max_length,
        chat_template=CHAT_TEMPLATE,
    )
