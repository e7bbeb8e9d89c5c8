"""The task families: how each kind of task is sampled, phrased, solved and graded.

A task is fully described by its *spec*, a plain JSON-able dict with three kinds of keys:

- knobs: difficulty knobs (list length, number magnitude, number of steps, ...) and variant knobs
  (sort order, which relation is asked, ...). `Family.default_knobs` maps a difficulty 1..5 to knobs;
  a caller may override any of them. A later mutation module makes a task harder (in depth) or
  different (in breadth) by editing knobs and sampling again.
- content: the concrete items, facts and steps drawn for these knobs.
- ``template``: which phrasing of the prompt is used.

`admits` is the other direction of sampling: whether `sample_content` could have drawn a spec's
content for its knobs (ranges, distinct items, the family's rules). `repro.world.parse` uses it to
decide whether a prompt read back from text (e.g. written by a model) is a valid task of the world.

From a complete spec, `render` writes the prompt and `solve` the answer tokens, both deterministic.
The grading hooks used by the oracle live here too, next to the task they grade:

- `is_answer_token`: which response tokens can be part of an answer (numbers, item words, ...),
- `errors`: how many errors an extracted answer makes, and `units`, the size of the answer in error
  units (at least `MIN_UNITS`), so that "at least half right" means ``errors <= units // 2``,
- `has_answer_form` and `anchors`: a response engages with the task (is relevant) if it gives an
  answer of the right form (one answer token; a list of about the right length) or uses tokens of
  this particular task instance (its items, operands, names),
- `corrupt`: an answer with exactly k errors (used to write responses of a target quality).

Two answer shapes exist. *List* families (sort, edit) answer with a token list and count errors as an
edit distance. *Single* families (arithmetic, count, extremum, lookup) answer with one token and grade
how far off a wrong token is: numerically, by rank in the list, or by position in the facts.
"""

from __future__ import annotations

import random
from typing import Any

from .lexicon import CATEGORIES, CITIES, COLORS, FOODS, ITEM_WORDS, NAMES, ANIMALS
from .text import MAX_NUMBER, as_number, canonical, edit_distance

#: Difficulty levels accepted by `Family.default_knobs`.
DIFFICULTIES = (1, 2, 3, 4, 5)
#: Largest number drawn at each difficulty (sort, extremum).
MAGNITUDE = {1: 20, 2: 50, 3: 100, 4: 500, 5: 999}
#: Every answer is graded over at least this many error units, so partial credit always exists.
MIN_UNITS = 4
_ITEM_SET = frozenset(ITEM_WORDS)

Spec = dict[str, Any]


class Family:
    """Base class of a task family. Subclasses fill in the class attributes and the hooks."""

    name: str = ""
    #: Knobs a caller may set (besides ``template``).
    knobs: tuple[str, ...] = ()
    #: "list" (answer is a token list) or "single" (answer is one token).
    shape: str = "list"
    #: Knobs `default_knobs` draws at random rather than setting from the difficulty (a prompt shows them).
    variant_knobs: tuple[str, ...] = ()

    # -- sampling ---------------------------------------------------------------------------------
    def default_knobs(self, difficulty: int, rng: random.Random) -> dict[str, Any]:
        """Knobs for a difficulty; variant knobs are drawn from ``rng``."""
        raise NotImplementedError

    def check_knobs(self, knobs: dict[str, Any]) -> None:
        """Raise ValueError (naming the family and the knob) if the knobs cannot make a task."""

    def sample_content(self, rng: random.Random, knobs: dict[str, Any]) -> dict[str, Any]:
        """Draw the concrete items for complete knobs."""
        raise NotImplementedError

    def admits(self, spec: Spec) -> bool:
        """Whether `sample_content` could have drawn the spec's content for the spec's knobs.

        The knobs are assumed to pass `check_knobs`; content of the wrong type is simply not admitted.
        """
        raise NotImplementedError

    def templates(self, spec: Spec) -> tuple[str, ...]:
        """The phrasings available for this spec (``spec["template"]`` indexes them)."""
        raise NotImplementedError

    # -- rendering --------------------------------------------------------------------------------
    def render(self, spec: Spec) -> str:
        """The prompt."""
        raise NotImplementedError

    def solve(self, spec: Spec) -> list[str]:
        """The answer tokens (without the final '.')."""
        raise NotImplementedError

    # -- grading ----------------------------------------------------------------------------------
    def answer_words(self, spec: Spec) -> frozenset[str] | None:
        """Words an answer is made of, or ``None`` when answers are numbers."""
        return None

    def is_answer_token(self, spec: Spec, token: str) -> bool:
        words = self.answer_words(spec)
        return as_number(token) is not None if words is None else token in words

    def anchors(self, spec: Spec) -> set[str]:
        """Tokens of this task instance (its items, operands, names) that a relevant response uses."""
        raise NotImplementedError

    def units(self, spec: Spec) -> int:
        return MIN_UNITS

    def has_answer_form(self, spec: Spec, answer: list[str]) -> bool:
        """Whether an extracted answer has the form of an answer to this task (one token here)."""
        return len(answer) == 1

    def errors(self, spec: Spec, answer: list[str]) -> int:
        """Errors of an extracted answer (a token list; one token for single families)."""
        raise NotImplementedError

    def corrupt(self, spec: Spec, k: int, rng: random.Random) -> list[str]:
        """Answer tokens that make exactly ``min(k, units)`` errors (more errors never score higher)."""
        raise NotImplementedError

    def phrases(self) -> list[str]:
        """Every literal string of the family's phrasing (its UPPERCASE class attributes), for `vocabulary`."""
        found: list[str] = []

        def walk(value: Any) -> None:
            if isinstance(value, str):
                found.append(value)
            elif isinstance(value, dict):
                for k, v in value.items():
                    walk(k)
                    walk(v)
            elif isinstance(value, (list, tuple)):
                for v in value:
                    walk(v)

        for cls in type(self).__mro__:
            for key, value in vars(cls).items():
                if key.isupper():
                    walk(value)
        return found

    def _template(self, spec: Spec) -> str:
        options = self.templates(spec)
        return options[int(spec["template"]) % len(options)]


def _items(values: list[Any]) -> str:
    return " ".join(str(v) for v in values)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _need(cond: bool, family: str, message: str) -> None:
    if not cond:
        raise ValueError(f"{family}: {message}")


def _need_int(family: str, knobs: dict[str, Any], key: str, low: int, high: int) -> None:
    value = knobs[key]
    ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    _need(ok, family, f"knob {key!r} must be an integer in {low}..{high}, got {value!r}")


def _need_choice(family: str, knobs: dict[str, Any], key: str, options) -> None:
    message = f"knob {key!r} must be one of {tuple(options)}, got {knobs[key]!r}"
    _need(knobs[key] in tuple(options), family, message)


def _need_subset(family: str, knobs: dict[str, Any], key: str, options) -> None:
    value = knobs[key]
    ok = isinstance(value, (list, tuple)) and len(value) > 0 and all(v in options for v in value)
    _need(ok, family, f"knob {key!r} must be a non-empty list drawn from {tuple(options)}, "
                      f"got {value!r}")


def _fresh_numbers(exclude: set[int], high: int, rng: random.Random, n: int) -> list[int]:
    """``n`` distinct numbers in 0..high (widened to 0..999 if needed) that are not in ``exclude``."""
    pool = [v for v in range(high + 1) if v not in exclude]
    if len(pool) < n:
        pool = [v for v in range(MAX_NUMBER + 1) if v not in exclude]
    return rng.sample(pool, n)


# ------------------------------------------------------------------------------------------------
# List families: the answer is a list, errors are an edit distance
# ------------------------------------------------------------------------------------------------
class ListFamily(Family):
    shape = "list"

    def units(self, spec: Spec) -> int:
        return max(MIN_UNITS, len(self.solve(spec)))

    def has_answer_form(self, spec: Spec, answer: list[str]) -> bool:
        """A list between half and twice the length of the right answer."""
        n = len(self.solve(spec))
        return (n + 1) // 2 <= len(answer) <= 2 * n

    def errors(self, spec: Spec, answer: list[str]) -> int:
        target = self.solve(spec)
        got = [canonical(t) for t in answer]
        if abs(len(got) - len(target)) > 2 * len(target):  # hopeless, skip the quadratic distance
            return abs(len(got) - len(target))
        return edit_distance(got, target)

    def fresh_tokens(self, spec: Spec, n: int, rng: random.Random) -> list[str]:
        """``n`` distinct answer tokens that are not in the correct answer."""
        raise NotImplementedError

    def corrupt(self, spec: Spec, k: int, rng: random.Random) -> list[str]:
        # Each error swaps an item for a token that is not in the answer (or appends one when the
        # list is used up); such tokens cannot be matched, so the distance is exactly k.
        answer = list(self.solve(spec))
        k = max(0, min(k, self.units(spec)))
        n_sub = min(k, len(answer))
        fresh = self.fresh_tokens(spec, k, rng)
        for pos, tok in zip(rng.sample(range(len(answer)), n_sub), fresh):
            answer[pos] = tok
        return answer + fresh[n_sub:]


class Sort(ListFamily):
    """Sort numbers (or words, alphabetically) ascending or descending.

    Knobs: ``length`` (items, >= 4), ``max_value`` (numbers are 0..max_value), ``items``
    ("numbers" or "words"), ``order`` ("ascending" or "descending").
    """

    name = "sort"
    knobs = ("length", "max_value", "items", "order")
    variant_knobs = ("items", "order")
    TEMPLATES = {
        ("numbers", "ascending"): (
            "sort these numbers from small to large : {items} .",
            "put these numbers in increasing order : {items} .",
            "order these numbers , smallest first : {items} .",
        ),
        ("numbers", "descending"): (
            "sort these numbers from large to small : {items} .",
            "put these numbers in decreasing order : {items} .",
            "order these numbers , largest first : {items} .",
        ),
        ("words", "ascending"): (
            "sort these words in alphabetical order : {items} .",
            "put these words in order from a to z : {items} .",
            "order these words alphabetically : {items} .",
        ),
        ("words", "descending"): (
            "sort these words in reverse alphabetical order : {items} .",
            "put these words in order from z to a : {items} .",
            "order these words alphabetically , last word first : {items} .",
        ),
    }

    def default_knobs(self, difficulty, rng):
        return {
            "length": 3 + difficulty,
            "max_value": MAGNITUDE[difficulty],
            "items": rng.choices(("numbers", "words"), weights=(3, 1))[0],
            "order": rng.choice(("ascending", "descending")),
        }

    def check_knobs(self, knobs):
        _need_choice(self.name, knobs, "items", ("numbers", "words"))
        _need_choice(self.name, knobs, "order", ("ascending", "descending"))
        _need_int(self.name, knobs, "max_value", MIN_UNITS - 1, MAX_NUMBER)
        pool = knobs["max_value"] + 1 if knobs["items"] == "numbers" else len(ITEM_WORDS)
        _need_int(self.name, knobs, "length", MIN_UNITS, min(pool, 20))

    def sample_content(self, rng, knobs):
        if knobs["items"] == "numbers":
            return {"values": rng.sample(range(knobs["max_value"] + 1), knobs["length"])}
        return {"values": rng.sample(ITEM_WORDS, knobs["length"])}

    def admits(self, spec):
        values = spec["values"]
        if len(values) != spec["length"] or len(set(values)) != len(values):
            return False
        if spec["items"] == "numbers":
            return all(_is_int(v) and 0 <= v <= spec["max_value"] for v in values)
        return all(v in _ITEM_SET for v in values)

    def templates(self, spec):
        return self.TEMPLATES[(spec["items"], spec["order"])]

    def render(self, spec):
        return self._template(spec).format(items=_items(spec["values"]))

    def solve(self, spec):
        values = sorted(spec["values"], reverse=spec["order"] == "descending")
        return [str(v) for v in values]

    def answer_words(self, spec):
        return None if spec["items"] == "numbers" else _ITEM_SET

    def anchors(self, spec):
        return {str(v) for v in spec["values"]}

    def fresh_tokens(self, spec, n, rng):
        if spec["items"] == "numbers":
            return [str(v) for v in _fresh_numbers(set(spec["values"]), spec["max_value"], rng, n)]
        return rng.sample([w for w in ITEM_WORDS if w not in spec["values"]], n)


class Edit(ListFamily):
    """Edit a list of words: reverse it, remove a word, replace a word, add a word at the end.

    Knobs: ``length`` (input items, >= 4), ``n_ops`` (edits applied one after the other),
    ``ops`` (the edit kinds to draw from). Content: ``items`` and ``steps``, each step a list
    ``[kind, *words]``. The result always keeps at least 4 items.
    """

    name = "edit"
    knobs = ("length", "n_ops", "ops")
    OPS = ("reverse", "remove", "replace", "append")
    PHRASES = {
        "reverse": "reverse the list",
        "remove": "remove every {0}",
        "replace": "replace every {0} with {1}",
        "append": "add {0} at the end",
    }
    THEN = " , then "
    TEMPLATES = (
        "{ops} : {items} .",
        "here is a list : {items} . {ops} .",
        "take this list : {items} . {ops} , and write the new list .",
    )

    def default_knobs(self, difficulty, rng):
        n_ops = {1: 1, 2: 1, 3: 2, 4: 2, 5: 3}[difficulty]
        return {"length": 4 + difficulty, "n_ops": n_ops, "ops": list(self.OPS)}

    def check_knobs(self, knobs):
        _need_int(self.name, knobs, "length", MIN_UNITS, 16)
        _need_int(self.name, knobs, "n_ops", 1, 4)
        _need_subset(self.name, knobs, "ops", self.OPS)

    @staticmethod
    def apply(items: list[str], step: list[str]) -> list[str]:
        kind, *words = step
        if kind == "reverse":
            return items[::-1]
        if kind == "remove":
            return [w for w in items if w != words[0]]
        if kind == "replace":
            return [words[1] if w == words[0] else w for w in items]
        if kind == "append":
            return items + [words[0]]
        raise ValueError(f"edit: unknown step {step!r}")

    def sample_content(self, rng, knobs):
        for _ in range(200):
            words = CATEGORIES[rng.choice(sorted(CATEGORIES))]
            items = [rng.choice(words) for _ in range(knobs["length"])]
            current, steps, last = list(items), [], None
            for _ in range(knobs["n_ops"]):
                kind = rng.choice([o for o in knobs["ops"] if o != last] or list(knobs["ops"]))
                if kind == "reverse":
                    step = ["reverse"]
                elif kind == "remove":
                    step = ["remove", rng.choice(current)]
                elif kind == "replace":
                    old = rng.choice(current)
                    step = ["replace", old, rng.choice([w for w in words if w != old])]
                else:
                    step = ["append", rng.choice(words)]
                current, last = self.apply(current, step), kind
                steps.append(step)
            if len(current) >= MIN_UNITS and current != items:
                return {"items": items, "steps": steps}
        raise ValueError(f"edit: could not build a task with knobs {knobs} "
                         f"(the result is always shorter than {MIN_UNITS} items or unchanged)")

    def admits(self, spec):
        items, steps, ops = spec["items"], spec["steps"], spec["ops"]
        if len(items) != spec["length"] or len(steps) != spec["n_ops"] or not items:
            return False
        words = next((ws for ws in CATEGORIES.values() if items[0] in ws), ())
        if not all(w in words for w in items):  # one category per list
            return False
        current, last = list(items), None
        for step in steps:
            if not isinstance(step, list) or not step or step[0] not in ops:
                return False
            kind, args = step[0], step[1:]
            if kind == last and any(o != last for o in ops):  # the same edit twice in a row
                return False
            ok = {
                "reverse": len(args) == 0,
                "remove": len(args) == 1 and args[0] in current,
                "replace": len(args) == 2 and args[0] in current and args[1] in words and args[1] != args[0],
                "append": len(args) == 1 and args[0] in words,
            }.get(kind, False)
            if not ok:
                return False
            current, last = self.apply(current, step), kind
        return len(current) >= MIN_UNITS and current != items

    def templates(self, spec):
        return self.TEMPLATES

    def render(self, spec):
        ops = self.THEN.join(self.PHRASES[s[0]].format(*s[1:]) for s in spec["steps"])
        return self._template(spec).format(ops=ops, items=_items(spec["items"]))

    def solve(self, spec):
        current = list(spec["items"])
        for step in spec["steps"]:
            current = self.apply(current, step)
        return current

    def answer_words(self, spec):
        return _ITEM_SET

    def anchors(self, spec):
        return set(spec["items"]) | {w for s in spec["steps"] for w in s[1:]}

    def fresh_tokens(self, spec, n, rng):
        # prefer words of the list's own category, so that wrong answers look plausible
        used = set(self.solve(spec))
        pool = [w for w in ITEM_WORDS if w not in used]
        kin = [w for w in pool if any(w in ws and spec["items"][0] in ws for ws in CATEGORIES.values())]
        return rng.sample(kin, n) if len(kin) >= n else rng.sample(pool, n)


# ------------------------------------------------------------------------------------------------
# Single families: the answer is one token
# ------------------------------------------------------------------------------------------------
def numeric_bounds(target: int) -> tuple[int, int]:
    """Distances that still count as one small error (b1) and as "at least half right" (b2)."""
    b1 = max(1, target // 20)
    return b1, max(2 * b1, target // 4)


def numeric_errors(target: int, value: int) -> int:
    """0 exact, 1 within b1 (about 5%), 2 within b2 (about 25%), 3 further off."""
    d = abs(value - target)
    b1, b2 = numeric_bounds(target)
    return 0 if d == 0 else 1 if d <= b1 else 2 if d <= b2 else 3


def numeric_corrupt(target: int, k: int, rng: random.Random) -> int:
    """A number in 0..999 at error level ``min(k, 3)`` from ``target``."""
    if k <= 0:
        return target
    b1, b2 = numeric_bounds(target)
    low, high = {1: (1, b1), 2: (b1 + 1, b2)}.get(k, (b2 + 1, b2 + 1 + max(b2, 5)))
    d = rng.randint(low, high)
    signs = [1, -1]
    rng.shuffle(signs)
    for sign in signs:
        if 0 <= target + sign * d <= MAX_NUMBER:
            return target + sign * d
    raise AssertionError(f"no number at error level {k} from {target}")  # cannot happen for 0..999


class NumericFamily(Family):
    """A single family whose answer is a number, graded by `numeric_errors`."""

    shape = "single"

    def target(self, spec: Spec) -> int:
        return int(self.solve(spec)[0])

    def errors(self, spec, answer):
        value = as_number(answer[0]) if len(answer) == 1 else None
        return MIN_UNITS if value is None else numeric_errors(self.target(spec), value)

    def corrupt(self, spec, k, rng):
        return [str(numeric_corrupt(self.target(spec), k, rng))]


class Arithmetic(NumericFamily):
    """Add, subtract and multiply, left to right, with every intermediate result in 0..999.

    Knobs: ``n_terms`` (numbers in the chain, >= 2), ``max_value`` (largest operand of plus and
    minus; times uses 2..9), ``ops`` (allowed operations: plus, minus, times). Content: ``start``
    and ``steps``, each step ``[op, value]``.
    """

    name = "arithmetic"
    knobs = ("n_terms", "max_value", "ops")
    OPS = ("plus", "minus", "times")
    BINARY = {
        "plus": ("what is {a} plus {b} ?", "add {a} and {b} .", "compute {a} plus {b} .",
                 "what do you get if you add {a} and {b} ?"),
        "minus": ("what is {a} minus {b} ?", "subtract {b} from {a} .", "compute {a} minus {b} .",
                  "what do you get if you take {b} away from {a} ?"),
        "times": ("what is {a} times {b} ?", "multiply {a} by {b} .", "compute {a} times {b} .",
                  "what do you get if you multiply {a} by {b} ?"),
    }
    CHAIN = (
        "start with {a} , {steps} . what is the result ?",
        "take {a} , {steps} . what number do you get ?",
        "begin at {a} , {steps} . what is the final number ?",
    )
    STEP = {"plus": "add {0}", "minus": "subtract {0}", "times": "multiply by {0}"}
    THEN = " , then "

    def default_knobs(self, difficulty, rng):
        return {
            "n_terms": {1: 2, 2: 2, 3: 3, 4: 3, 5: 4}[difficulty],
            "max_value": {1: 10, 2: 20, 3: 50, 4: 100, 5: 200}[difficulty],
            "ops": {1: ["plus"], 2: ["plus", "minus"]}.get(difficulty, list(self.OPS)),
        }

    def check_knobs(self, knobs):
        _need_int(self.name, knobs, "n_terms", 2, 6)
        _need_int(self.name, knobs, "max_value", 1, 500)
        _need_subset(self.name, knobs, "ops", self.OPS)

    def sample_content(self, rng, knobs):
        top = knobs["max_value"]
        start = rng.randint(1, top)
        current, steps = start, []
        for _ in range(knobs["n_terms"] - 1):
            valid = [op for op in knobs["ops"]
                     if (op == "plus" and current < MAX_NUMBER)
                     or (op == "minus" and current >= 1)
                     or (op == "times" and 1 <= current <= MAX_NUMBER // 2)]
            # Rarely no allowed operation keeps the result in range (e.g. only minus at 0).
            op = rng.choice(valid or (["plus"] if current < MAX_NUMBER else ["minus"]))
            if op == "plus":
                value = rng.randint(1, min(top, MAX_NUMBER - current))
            elif op == "minus":
                value = rng.randint(1, min(top, current))
            else:
                value = rng.randint(2, min(9, MAX_NUMBER // current))
            current = self._apply(current, op, value)
            steps.append([op, value])
        return {"start": start, "steps": steps}

    def admits(self, spec):
        top, ops, steps, current = spec["max_value"], spec["ops"], spec["steps"], spec["start"]
        if len(steps) != spec["n_terms"] - 1 or not _is_int(current) or not 1 <= current <= top:
            return False
        for step in steps:
            if not isinstance(step, list) or len(step) != 2 or not _is_int(step[1]):
                return False
            op, value = step
            possible = {"plus": current < MAX_NUMBER, "minus": current >= 1,
                        "times": 1 <= current <= MAX_NUMBER // 2}
            valid = [o for o in ops if possible.get(o, False)]
            fallback = [] if valid else ["plus"] if current < MAX_NUMBER else ["minus"]
            if op not in valid + fallback:
                return False
            if op == "plus":
                ok = 1 <= value <= min(top, MAX_NUMBER - current)
            elif op == "minus":
                ok = 1 <= value <= min(top, current)
            else:
                ok = 2 <= value <= min(9, MAX_NUMBER // current)
            if not ok:
                return False
            current = self._apply(current, op, value)
        return True

    @staticmethod
    def _apply(current: int, op: str, value: int) -> int:
        return current + value if op == "plus" else current - value if op == "minus" else current * value

    def templates(self, spec):
        if len(spec["steps"]) == 1:
            return self.BINARY[spec["steps"][0][0]] + self.CHAIN
        return self.CHAIN

    def render(self, spec):
        template = self._template(spec)
        steps = self.THEN.join(self.STEP[op].format(v) for op, v in spec["steps"])
        b = spec["steps"][0][1]
        return template.format(a=spec["start"], b=b, steps=steps)

    def solve(self, spec):
        current = spec["start"]
        for op, value in spec["steps"]:
            current = self._apply(current, op, value)
        return [str(current)]

    def anchors(self, spec):
        return {str(spec["start"])} | {str(v) for _, v in spec["steps"]}


class Count(NumericFamily):
    """Count how often a word occurs in a list, or how many list items belong to a category.

    Knobs: ``length`` (items, >= 4), ``what`` ("word" or "category"). Content: ``target`` (the
    word, or the category name: animals, fruits, colors) and ``items``.
    """

    name = "count"
    knobs = ("length", "what")
    variant_knobs = ("what",)
    TEMPLATES = {
        "word": (
            "how many times does the word {t} appear in this list : {items} ?",
            "count how often {t} appears : {items} .",
            "in the list {items} , how many times do you see {t} ?",
        ),
        "category": (
            "how many {t} are in this list : {items} ?",
            "count the {t} in this list : {items} .",
            "in the list {items} , how many words are {t} ?",
        ),
    }

    def default_knobs(self, difficulty, rng):
        return {"length": 4 + 2 * difficulty, "what": rng.choice(("word", "category"))}

    def check_knobs(self, knobs):
        _need_choice(self.name, knobs, "what", ("word", "category"))
        _need_int(self.name, knobs, "length", MIN_UNITS, 30)

    def sample_content(self, rng, knobs):
        n = knobs["length"]
        if knobs["what"] == "word":
            words = CATEGORIES[rng.choice(sorted(CATEGORIES))]
            target = rng.choice(words)
            hits = rng.randint(1, max(1, n // 2))
            others = [w for w in words if w != target]
        else:
            target = rng.choice(sorted(CATEGORIES))
            hits = rng.randint(1, n - 1)
            others = [w for c, ws in CATEGORIES.items() if c != target for w in ws]
            words = CATEGORIES[target]
        items = [rng.choice(words) if knobs["what"] == "category" else target for _ in range(hits)]
        items += [rng.choice(others) for _ in range(n - hits)]
        rng.shuffle(items)
        return {"target": target, "items": items}

    def admits(self, spec):
        items, target, n = spec["items"], spec["target"], spec["length"]
        if len(items) != n or not isinstance(target, str):
            return False
        if spec["what"] == "word":
            words = next((ws for ws in CATEGORIES.values() if target in ws), ())
            hits = sum(w == target for w in items)
            return all(w in words for w in items) and 1 <= hits <= max(1, n // 2)
        if target not in CATEGORIES or not all(w in _ITEM_SET for w in items):
            return False
        return 1 <= sum(w in CATEGORIES[target] for w in items) <= n - 1

    def templates(self, spec):
        return self.TEMPLATES[spec["what"]]

    def render(self, spec):
        return self._template(spec).format(t=spec["target"], items=_items(spec["items"]))

    def solve(self, spec):
        members = {spec["target"]} if spec["what"] == "word" else set(CATEGORIES[spec["target"]])
        return [str(sum(w in members for w in spec["items"]))]

    def anchors(self, spec):
        return set(spec["items"]) | {spec["target"]}


class Extremum(Family):
    """Find the largest or the smallest number of a list.

    Knobs: ``length`` (items, >= 4), ``max_value``, ``which`` ("largest" or "smallest"). A wrong
    pick from the list makes as many errors as its rank (the runner-up is one error); a number that
    is not in the list makes `units` errors.
    """

    name = "extremum"
    knobs = ("length", "max_value", "which")
    variant_knobs = ("which",)
    shape = "single"
    TEMPLATES = {
        "largest": (
            "which number is the largest : {items} ?",
            "what is the largest number in this list : {items} ?",
            "find the biggest number : {items} .",
        ),
        "smallest": (
            "which number is the smallest : {items} ?",
            "what is the smallest number in this list : {items} ?",
            "find the lowest number : {items} .",
        ),
    }

    def default_knobs(self, difficulty, rng):
        return {"length": 3 + difficulty, "max_value": MAGNITUDE[difficulty],
                "which": rng.choice(("largest", "smallest"))}

    def check_knobs(self, knobs):
        _need_choice(self.name, knobs, "which", ("largest", "smallest"))
        _need_int(self.name, knobs, "max_value", MIN_UNITS - 1, MAX_NUMBER)
        _need_int(self.name, knobs, "length", MIN_UNITS, min(knobs["max_value"] + 1, 20))

    def sample_content(self, rng, knobs):
        return {"values": rng.sample(range(knobs["max_value"] + 1), knobs["length"])}

    def admits(self, spec):
        values = spec["values"]
        return (len(values) == spec["length"] and len(set(values)) == len(values)
                and all(_is_int(v) and 0 <= v <= spec["max_value"] for v in values))

    def templates(self, spec):
        return self.TEMPLATES[spec["which"]]

    def render(self, spec):
        return self._template(spec).format(items=_items(spec["values"]))

    def ranked(self, spec: Spec) -> list[int]:
        """The values from best to worst answer."""
        return sorted(spec["values"], reverse=spec["which"] == "largest")

    def solve(self, spec):
        return [str(self.ranked(spec)[0])]

    def anchors(self, spec):
        return {str(v) for v in spec["values"]}

    def units(self, spec):
        return max(MIN_UNITS, len(spec["values"]))

    def errors(self, spec, answer):
        value = as_number(answer[0]) if len(answer) == 1 else None
        ranked = self.ranked(spec)
        return ranked.index(value) if value in ranked else self.units(spec)

    def corrupt(self, spec, k, rng):
        ranked = self.ranked(spec)
        if k < len(ranked):
            return [str(ranked[k])]
        return [str(_fresh_numbers(set(ranked), spec["max_value"], rng, 1)[0])]


class Lookup(Family):
    """Read a few facts, then answer a question about one of them.

    Knobs: ``n_facts`` (>= 4), ``hops`` (1: "ana likes tea"; 2: "ana has a cat", "the cat likes
    tea", asked about "the pet of ana"), ``relation`` ("food", "city" or "color"). A wrong value taken
    from the facts makes as many errors as it stands facts away from the right one; any other value
    makes `units` errors.
    """

    name = "lookup"
    knobs = ("n_facts", "hops", "relation")
    variant_knobs = ("relation",)
    shape = "single"
    RELATIONS = {
        "food": ("{s} likes {v}", "what does {s} like ?", FOODS),
        "city": ("{s} lives in {v}", "where does {s} live ?", CITIES),
        "color": ("{s} wears {v}", "what color does {s} wear ?", COLORS),
    }
    DOMAINS = {name: frozenset(words) for name, (_, _, words) in RELATIONS.items()}
    PET_FACT, PET_SUBJECT, PET_QUESTION = "{p} has {a} {pet}", "the {pet}", "the pet of {p}"
    ARTICLES = ("a", "an")
    TEMPLATES = (
        "facts : {facts} question : {question}",
        "read the facts and answer the question . {facts} {question}",
        "{facts} {question}",
        "here is what we know : {facts} now answer : {question}",
    )

    def default_knobs(self, difficulty, rng):
        return {"n_facts": 3 + difficulty, "hops": 1 if difficulty <= 3 else 2,
                "relation": rng.choice(sorted(self.RELATIONS))}

    def check_knobs(self, knobs):
        _need_choice(self.name, knobs, "relation", sorted(self.RELATIONS))
        _need_choice(self.name, knobs, "hops", (1, 2))
        # one value of the relation's domain is kept out of the facts (for wrong answers)
        top = min(len(self.RELATIONS[knobs["relation"]][2]) - 1, len(NAMES), len(ANIMALS))
        _need_int(self.name, knobs, "n_facts", MIN_UNITS, top)

    def sample_content(self, rng, knobs):
        n = knobs["n_facts"]
        order = list(range(n))
        if knobs["hops"] == 2:
            rng.shuffle(order)
        return {
            "people": rng.sample(NAMES, n),
            "pets": rng.sample(ANIMALS, n) if knobs["hops"] == 2 else [],
            "values": rng.sample(self.RELATIONS[knobs["relation"]][2], n),
            "order": order,  # attribute facts are listed in this order of people
            "query": rng.randrange(n),
        }

    def admits(self, spec):
        n, hops = spec["n_facts"], spec["hops"]
        people, pets, values, order = spec["people"], spec["pets"], spec["values"], spec["order"]

        def distinct(words, pool):
            return len(words) == n and len(set(words)) == n and all(w in pool for w in words)

        return (distinct(people, NAMES) and distinct(values, self.RELATIONS[spec["relation"]][2])
                and (distinct(pets, ANIMALS) if hops == 2 else pets == [])
                and sorted(order) == list(range(n)) and (hops == 2 or order == list(range(n)))
                and _is_int(spec["query"]) and 0 <= spec["query"] < n)

    def templates(self, spec):
        return self.TEMPLATES

    def render(self, spec):
        fact, question, _ = self.RELATIONS[spec["relation"]]
        people, pets, values = spec["people"], spec["pets"], spec["values"]
        if spec["hops"] == 1:
            facts = [fact.format(s=people[i], v=values[i]) for i in spec["order"]]
            subject = people[spec["query"]]
        else:
            facts = [self.PET_FACT.format(p=p, a="an" if pet[0] in "aeiou" else "a", pet=pet)
                     for p, pet in zip(people, pets)]
            facts += [fact.format(s=self.PET_SUBJECT.format(pet=pets[i]), v=values[i]) for i in spec["order"]]
            subject = self.PET_QUESTION.format(p=people[spec["query"]])
        return self._template(spec).format(
            facts=" ".join(f + " ." for f in facts), question=question.format(s=subject))

    def solve(self, spec):
        return [spec["values"][spec["query"]]]

    def answer_words(self, spec):
        return self.DOMAINS[spec["relation"]]

    def anchors(self, spec):
        return set(spec["people"]) | set(spec["pets"]) | set(spec["values"])

    def units(self, spec):
        return max(MIN_UNITS, spec["n_facts"])

    def _position(self, spec: Spec, value: str) -> int:
        return spec["order"].index(spec["values"].index(value))

    def errors(self, spec, answer):
        if len(answer) != 1 or answer[0] not in spec["values"]:
            return self.units(spec)
        return abs(self._position(spec, answer[0]) - self._position(spec, self.solve(spec)[0]))

    def corrupt(self, spec, k, rng):
        here = self._position(spec, self.solve(spec)[0])
        spots = [p for p in (here - k, here + k) if 0 <= p < len(spec["order"])]
        if spots:
            return [spec["values"][spec["order"][rng.choice(spots)]]]
        unused = [v for v in self.RELATIONS[spec["relation"]][2] if v not in spec["values"]]
        return [rng.choice(unused)]


#: The families by name, in a fixed order.
REGISTRY: dict[str, Family] = {
    f.name: f for f in (Sort(), Arithmetic(), Lookup(), Count(), Edit(), Extremum())
}
FAMILIES: tuple[str, ...] = tuple(REGISTRY)


def get_family(name: str) -> Family:
    """The family object for a name; unknown names get a clear error."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown task family {name!r}; known families: {', '.join(FAMILIES)}") from None
