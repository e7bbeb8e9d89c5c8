"""Reading prompts back into tasks: `parse_prompt`, the inverse of the families' templates.

A model prompted with the corpus's task lists writes new prompts; `parse_prompt` says which task of
the world such a text expresses, or that it expresses none:

    >>> parse_prompt("what is 12 plus 30 ?").answer
    '42 .'
    >>> parse_prompt("what is 12 plus banana ?") is None
    True

How a text is read:

1. It is tokenized tolerantly (case, spacing around punctuation and leading zeros do not matter)
   and rewritten as world text; texts over `MAX_PROMPT_CHARS` characters or `MAX_PROMPT_TOKENS`
   tokens are rejected (no task of the world is that long).
2. It is matched against every template of every family; a match gives the content (items, facts,
   operations) and the knobs the prompt shows (list length, sort order, ...).
3. The knobs the prompt does not show (difficulty, number range, allowed operations) are inferred:
   the lowest difficulty whose default knobs fit the shown knobs and the content (its ranges are the
   narrowest, so it is the likeliest to have drawn the content); for a new combination that no
   difficulty's defaults fit (e.g. a sort of 12 numbers), the difficulty nearest in size, with the
   hidden knobs widened just enough to cover the content.
4. The task is valid if its knobs pass the family's `check_knobs` and the family `admits` the content
   (it could have sampled it: e.g. a lookup question about someone in the facts, an arithmetic chain
   that stays in 0..999, a counted word that occurs in a list of its own category), and if rendering
   the spec gives back exactly the text. The task returned carries the canonical answer, recomputed
   from the content.

So ``parse_prompt(task.prompt)`` gives back the task (same family, prompt and answer; the same spec
and uid too, except where two difficulties could have drawn the same prompt: the lower one is taken).
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from .families import DIFFICULTIES, REGISTRY, Family
from .tasks import Task, task_from_spec
from .text import MAX_NUMBER, as_number, canonical, join, tokenize

#: Longer texts are not read at all (the longest prompts of the world have about 800 characters).
MAX_PROMPT_CHARS = 2_000
#: Texts of more tokens are not tasks of the world (the longest prompts have about 140).
MAX_PROMPT_TOKENS = 160

#: What each template field may hold (world text: single spaces, punctuation as separate tokens).
_WORDS = r"[a-z]+(?: [a-z]+)*"
_FIELDS = {
    "items": r"[a-z0-9]+(?: [a-z0-9]+)*",
    "a": r"[0-9]+",
    "b": r"[0-9]+",
    "t": r"[a-z]+",
    "steps": r"[^.?:;]+?",
    "ops": r"[^.?:;]+?",
    "facts": rf"(?:{_WORDS} \. )*{_WORDS} \.",
    "question": rf"{_WORDS} \?",
    "0": r"[a-z0-9]+",
    "1": r"[a-z0-9]+",
}
#: Fields of lookup facts and questions ("a" is the article here).
_FACT_FIELDS = {"s": r"(?:the pet of |the )?[a-z]+", "v": r"[a-z]+", "p": r"[a-z]+", "a": r"an?",
                "pet": r"[a-z]+"}
_TABLES = {"prompt": _FIELDS, "fact": _FACT_FIELDS}
#: The knob whose default sets a family's size, used to place a new combination at a difficulty.
_SIZE_KNOB = {"sort": "length", "arithmetic": "n_terms", "lookup": "n_facts", "count": "length",
              "edit": "length", "extremum": "length"}
#: Hidden knobs are widened along these ladders (the families' default values).
_MAGNITUDES = (20, 50, 100, 500, 999)
_ARITHMETIC_TOPS = (10, 20, 50, 100, 200, 500)
_ARITHMETIC_OPS = (["plus"], ["plus", "minus"], ["plus", "minus", "times"])


@lru_cache(maxsize=None)
def _regex(template: str, table: str) -> re.Pattern[str]:
    fields, parts, seen = _TABLES[table], [], set()
    for literal, name, _, _ in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if name is not None:
            group = f"f_{name}"
            parts.append(f"(?P={group})" if name in seen else f"(?P<{group}>{fields[name]})")
            seen.add(name)
    return re.compile("".join(parts))


def _match(template: str, text: str, table: str = "prompt") -> dict[str, str] | None:
    """The fields of ``text`` if it is ``template`` filled in, else None."""
    m = _regex(template, table).fullmatch(text)
    return None if m is None else {k[2:]: v for k, v in m.groupdict().items()}


def _number(token: str) -> int | None:
    value = as_number(token)
    return value if value is not None and value <= MAX_NUMBER else None


def _numbers(text: str) -> list[int] | None:
    values = [_number(t) for t in text.split()]
    return None if None in values else values  # type: ignore[return-value]


# -- reading the content of each family's prompts ------------------------------------------------
# Each reader yields (knobs the prompt shows, content) for every template the text matches.
Reading = Iterator[tuple[dict[str, Any], dict[str, Any]]]


def _read_sort(fam: Family, text: str) -> Reading:
    for (items, order), templates in fam.TEMPLATES.items():
        for template in templates:
            fields = _match(template, text)
            if fields is None:
                continue
            values = _numbers(fields["items"]) if items == "numbers" else fields["items"].split()
            if values is not None:
                yield {"length": len(values), "items": items, "order": order}, {"values": values}


def _read_extremum(fam: Family, text: str) -> Reading:
    for which, templates in fam.TEMPLATES.items():
        for template in templates:
            fields = _match(template, text)
            values = None if fields is None else _numbers(fields["items"])
            if values is not None:
                yield {"length": len(values), "which": which}, {"values": values}


def _read_count(fam: Family, text: str) -> Reading:
    for what, templates in fam.TEMPLATES.items():
        for template in templates:
            fields = _match(template, text)
            if fields is not None:
                items = fields["items"].split()
                yield {"length": len(items), "what": what}, {"target": fields["t"], "items": items}


def _read_arithmetic(fam: Family, text: str) -> Reading:
    for op, templates in fam.BINARY.items():
        for template in templates:
            fields = _match(template, text)
            if fields is not None:
                start, value = _number(fields["a"]), _number(fields["b"])
                if start is not None and value is not None:
                    yield {"n_terms": 2}, {"start": start, "steps": [[op, value]]}
    for template in fam.CHAIN:
        fields = _match(template, text)
        if fields is None or _number(fields["a"]) is None:
            continue
        steps = []
        for part in fields["steps"].split(fam.THEN):
            step = None
            for op, phrase in fam.STEP.items():
                found = _match(phrase, part)
                if found is not None and _number(found["0"]) is not None:
                    step = [op, _number(found["0"])]
            if step is None:
                break
            steps.append(step)
        else:
            yield {"n_terms": len(steps) + 1}, {"start": _number(fields["a"]), "steps": steps}


def _read_edit(fam: Family, text: str) -> Reading:
    for template in fam.TEMPLATES:
        fields = _match(template, text)
        if fields is None:
            continue
        steps = []
        for part in fields["ops"].split(fam.THEN):
            step = None
            for kind, phrase in fam.PHRASES.items():
                found = _match(phrase, part)
                if found is not None:
                    step = [kind] + [found[k] for k in sorted(found)]
            if step is None:
                break
            steps.append(step)
        else:
            items = fields["items"].split()
            yield {"length": len(items), "n_ops": len(steps)}, {"items": items, "steps": steps}


def _read_lookup(fam: Family, text: str) -> Reading:
    for template in fam.TEMPLATES:
        fields = _match(template, text)
        if fields is not None:
            reading = _lookup_content(fam, fields["facts"], fields["question"])
            if reading is not None:
                yield reading


def _lookup_content(fam: Family, facts_text: str, question_text: str):
    pet_facts, facts, relations = [], [], set()
    for sentence in facts_text[:-2].split(" . "):
        found = _match(fam.PET_FACT, sentence, "fact")
        if found is not None:
            if facts:  # the pet facts come first
                return None
            pet_facts.append((found["p"], found["pet"]))
            continue
        for relation, (fact, _, _) in fam.RELATIONS.items():
            found = _match(fact, sentence, "fact")
            if found is not None:
                facts.append((found["s"], found["v"]))
                relations.add(relation)
                break
        else:
            return None
    question = None
    for relation, (_, asked, _) in fam.RELATIONS.items():
        found = _match(asked, question_text, "fact")
        if found is not None:
            question = found["s"]
            relations.add(relation)
            break
    if question is None or len(relations) != 1 or not facts:
        return None
    relation, n = relations.pop(), len(facts)
    if not pet_facts:
        people = [s for s, _ in facts]
        if question not in people:
            return None
        content = {"people": people, "pets": [], "values": [v for _, v in facts],
                   "order": list(range(n)), "query": people.index(question)}
    else:
        people, pets = [p for p, _ in pet_facts], [pet for _, pet in pet_facts]
        subjects = [s[len("the "):] if s.startswith("the ") else None for s, _ in facts]
        if len(pets) != n or any(s not in pets for s in subjects) or len(set(subjects)) != n:
            return None
        order = [pets.index(s) for s in subjects]
        values = [""] * n
        for k, (_, v) in zip(order, facts):
            values[k] = v
        asked = question[len("the pet of "):] if question.startswith("the pet of ") else None
        if asked not in people:
            return None
        content = {"people": people, "pets": pets, "values": values, "order": order,
                   "query": people.index(asked)}
    return {"n_facts": n, "hops": 2 if pet_facts else 1, "relation": relation}, content


_READERS = {"sort": _read_sort, "arithmetic": _read_arithmetic, "lookup": _read_lookup,
            "count": _read_count, "edit": _read_edit, "extremum": _read_extremum}


# -- inferring the hidden knobs -------------------------------------------------------------------
def _widen(name: str, knobs: dict[str, Any], content: dict[str, Any]) -> dict[str, Any]:
    """Hidden knobs raised along the families' own ladders until they cover the content."""
    knobs = dict(knobs)
    if name in ("sort", "extremum") and knobs.get("items", "numbers") == "numbers":
        need = max(content["values"], default=0)
        if need > knobs["max_value"]:
            knobs["max_value"] = next((m for m in _MAGNITUDES if m >= need), need)
    elif name == "arithmetic":
        need = max([content["start"]] + [v for op, v in content["steps"] if op != "times"])
        if need > knobs["max_value"]:
            knobs["max_value"] = next((m for m in _ARITHMETIC_TOPS if m >= need), need)
        used = {op for op, _ in content["steps"]}
        if not used <= set(knobs["ops"]):
            wanted = used | set(knobs["ops"])
            knobs["ops"] = next((list(ops) for ops in _ARITHMETIC_OPS if wanted <= set(ops)), knobs["ops"])
    return knobs


def _fit(fam: Family, shown: dict[str, Any], content: dict[str, Any]) -> dict[str, Any] | None:
    """A complete spec (without ``template``) for the shown knobs and content, or None if invalid."""
    defaults = {d: fam.default_knobs(d, random.Random(0)) for d in DIFFICULTIES}

    def attempt(d: int, widen: bool) -> dict[str, Any] | None:
        knobs = {**defaults[d], **shown}
        if widen:
            knobs = _widen(fam.name, knobs, content)
        try:
            fam.check_knobs(knobs)
            spec = {"difficulty": d, **knobs, **content}
            return spec if fam.admits(spec) else None
        except (ValueError, TypeError, KeyError, IndexError):
            return None

    for d in DIFFICULTIES:  # a difficulty whose defaults fit exactly, lowest (likeliest) first
        if all(defaults[d][k] == v for k, v in shown.items() if k not in fam.variant_knobs):
            spec = attempt(d, widen=False)
            if spec is not None:
                return spec
    size = _SIZE_KNOB[fam.name]  # a new combination: the nearest difficulty in size
    for d in sorted(DIFFICULTIES, key=lambda d: (abs(defaults[d][size] - shown[size]), d)):
        spec = attempt(d, widen=True)
        if spec is not None:
            return spec
    return None


def normalize_prompt(text: object) -> str | None:
    """``text`` as world text (lowercase, single spaces, canonical numbers), or None if it is too long."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text[: 4 * MAX_PROMPT_CHARS]).decode("utf-8", errors="replace")
    if not isinstance(text, str) or len(text) > MAX_PROMPT_CHARS:
        return None
    tokens = [canonical(t) for t in tokenize(text)]
    if not tokens or len(tokens) > MAX_PROMPT_TOKENS:
        return None
    return join(tokens)


def split_task_list(text: object, first: int = 1) -> list[str]:
    """The prompts of a numbered task list, in world text and in order (none if there is no list).

    Reads the corpus's task lists (``"here are some tasks : 1 . <prompt> 2 . <prompt> ..."``) and a
    model's continuation of one (pass the number it continues from as ``first``). An item number is
    ``"k ."`` at the start of the text or after ``.``, ``?`` or ``:``; where a prompt itself could end
    in such a pair ("add 4 and 2 . 2 . ..."), the shortest span that `parse_prompt` accepts is taken.
    The last prompt runs to the end of the text and may be cut off (then it does not parse). Never
    raises; the prompts are not checked (pass each to `parse_prompt`).
    """
    try:
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8", errors="replace")
        if not isinstance(text, str) or isinstance(first, bool) or not isinstance(first, int):
            return []
        tokens = [canonical(t) for t in tokenize(text[: 50 * MAX_PROMPT_CHARS])]
        markers: dict[int, list[int]] = {}  # item number -> token positions of "k ."
        for i in range(len(tokens) - 1):
            if tokens[i + 1] == "." and (i == 0 or tokens[i - 1] in (".", "?", ":")):
                value = _number(tokens[i])
                if value is not None:
                    markers.setdefault(value, []).append(i)
        if not markers.get(first):
            return []
        prompts, k, start = [], first, markers[first][0] + 2
        while start < len(tokens):
            ends = [i for i in markers.get(k + 1, []) if i > start] + [len(tokens)]
            pick = ends[0]
            for end in ends:
                if end - start > MAX_PROMPT_TOKENS:
                    break
                if parse_prompt(join(tokens[start:end])) is not None:
                    pick = end
                    break
            prompts.append(join(tokens[start:pick]))
            start, k = pick + 2, k + 1
        return prompts
    except Exception:
        return []


def parse_prompt(text: object) -> Task | None:
    """The task of the world that ``text`` expresses, or None (see the module docstring).

    Never raises: any input that is not the prompt of a valid task (other phrasing, inconsistent
    content, empty or too long, not text at all) gives None.
    """
    try:
        normal = normalize_prompt(text)
        if normal is None:
            return None
        for name, read in _READERS.items():
            fam = REGISTRY[name]
            for shown, content in read(fam, normal):
                spec = _fit(fam, shown, content)
                if spec is None:
                    continue
                for template in range(len(fam.templates(spec))):
                    spec["template"] = template
                    if fam.render(spec) == normal:
                        return task_from_spec(name, spec)
        return None
    except Exception:  # a safety net: parsing must never take a caller down
        return None
