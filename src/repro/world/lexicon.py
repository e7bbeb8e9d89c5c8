"""The words of the world.

Item words (animals, fruits, colors) fill the lists that tasks sort, count and edit; names, cities and
foods fill the facts of lookup tasks. The groups are disjoint, and none of them shares a word with the
templates or with the chatter that responses wrap their answers in, so the oracle can tell an answer
word from a filler word by looking it up.
"""

from __future__ import annotations

ANIMALS = (
    "ant", "bat", "bear", "bee", "cat", "cow", "dog", "duck",
    "fox", "frog", "goat", "hen", "lion", "owl", "pig", "rat",
)
FRUITS = (
    "apple", "berry", "cherry", "date", "fig", "grape", "kiwi", "lemon",
    "lime", "mango", "melon", "olive", "peach", "pear", "plum",
)
COLORS = (
    "black", "blue", "brown", "gold", "gray", "green", "pink", "purple",
    "red", "silver", "white", "yellow",
)
#: Item words by category; the category names are the plural words used in prompts.
CATEGORIES: dict[str, tuple[str, ...]] = {"animals": ANIMALS, "fruits": FRUITS, "colors": COLORS}
#: Every word that can appear as an item of a word list.
ITEM_WORDS = tuple(sorted(ANIMALS + FRUITS + COLORS))

NAMES = (
    "ana", "bo", "cy", "dan", "eva", "finn", "gus", "hal",
    "ida", "jo", "kai", "lea", "max", "nia", "omar", "pia",
)
CITIES = (
    "berlin", "cairo", "delhi", "dublin", "lima", "madrid", "oslo", "paris",
    "quito", "rome", "tokyo", "vienna",
)
FOODS = (
    "beans", "bread", "cake", "cheese", "corn", "honey", "milk", "nuts",
    "pasta", "rice", "soup", "tea",
)


def _check_disjoint() -> None:
    groups = {"animals": ANIMALS, "fruits": FRUITS, "colors": COLORS, "names": NAMES,
              "cities": CITIES, "foods": FOODS}
    seen: dict[str, str] = {}
    for group, words in groups.items():
        for word in words:
            if word in seen:
                raise AssertionError(f"lexicon word {word!r} is in both {seen[word]} and {group}")
            seen[word] = group


_check_disjoint()
