"""The world's vocabulary and version.

`vocabulary()` lists every token the world can emit, so a word-level tokenizer built from it covers
all world text exactly: the words of the lexicon, of every family's phrasing, of the response writer,
of judgments and of the corpus, the punctuation marks and the numbers 0..999.
"""

from __future__ import annotations

from functools import lru_cache

from . import lexicon
from .corpus import LISTING_PHRASES, TEXT_INTROS
from .families import REGISTRY
from .judging import PHRASES as JUDGMENT_PHRASES
from .oracle import CONCISE_LEADS
from .text import MAX_NUMBER, PUNCTUATION, tokenize
from .writer import PHRASES

#: Version of everything the world generates; bump it whenever generated content would change
#: (it goes into cache keys of the run store).
# world-2: review documents in the corpus, judgments, parse_prompt; world-3: listing documents
WORLD_VERSION = "world-3"


@lru_cache(maxsize=1)
def _vocabulary() -> tuple[str, ...]:
    words: set[str] = set(PUNCTUATION)
    words.update(str(n) for n in range(MAX_NUMBER + 1))
    for group in (lexicon.ANIMALS, lexicon.FRUITS, lexicon.COLORS, lexicon.NAMES, lexicon.CITIES,
                  lexicon.FOODS, tuple(lexicon.CATEGORIES)):
        words.update(group)
    texts = [p for fam in REGISTRY.values() for p in fam.phrases()]
    texts += list(PHRASES) + list(TEXT_INTROS) + list(LISTING_PHRASES) + [" ".join(lead) for lead in CONCISE_LEADS]
    texts += list(JUDGMENT_PHRASES)
    for text in texts:
        words.update(t for t in tokenize(text) if "{" not in t and "}" not in t)
    return tuple(sorted(words))


def vocabulary() -> list[str]:
    """Every token the world can emit, sorted (deterministic)."""
    return list(_vocabulary())
