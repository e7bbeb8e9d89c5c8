"""eva's evolve step with a real model: EvolInstruct-style rewriting of prompt strings (issue 5).

The world evolves its tasks with exact mutations (`repro.world.mutations.evolve`); at paper scale an
LLM rewrites the prompts, as eva does with EvolInstruct's method. `llm_evolve` has the same shape:
``evolutions`` chained rewrites of every parent (each step rewrites the previous step's prompt), the
operator drawn per parent and step from a seeded generator, records that keep the lineage.

Operators and templates (each an instruction to the rewriting model, the given prompt between
markers, and a request for the new prompt alone):

- ``in_depth``: a harder version of the prompt, by one of `DEPTH_TEMPLATES` drawn at random:
  ``add_constraint`` (one more requirement), ``more_reasoning`` (ask for several explicit steps of
  reasoning), ``concretize`` (general notions made specific), ``deepen`` (ask about the topic in
  more depth);
- ``in_breadth``: a new prompt in the same domain, on a rarer related topic (`BREADTH_TEMPLATE`).

All alive chains' step k go to the generator in ONE call. The model's reply is cleaned
(`parse_rewrite`: labels such as "Rewritten Prompt:", wrapping quotes, whitespace) and checked
(`check_rewrite`); the first valid one of the ``config.n`` completions is kept. A rewrite is
rejected, with its reason counted in the `EvolveReport`, when it is

- ``empty``;
- ``template_echo``: it contains the template's markers (``#Given Prompt#``, ...) or a sentence of
  its instructions;
- ``unchanged``: the same as the parent or the previous step, ignoring case and whitespace;
- ``too_short`` / ``too_long``: shorter than ``min_chars``, or longer than ``max_chars`` or than
  ``max_growth`` times the parent's length plus ``growth_slack`` characters;
- ``duplicate``: the same (ignoring case and whitespace) as any parent or any prompt evolved so far
  (public eva code never de-duplicated its evolved prompts).

A chain whose step has no valid rewrite ends there, so a parent may yield fewer than ``evolutions``
prompts (as in the world's evolver).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from repro.data.records import text_id
from repro.generation.base import GenerationSpec, Generator

OPERATORS = ("in_depth", "in_breadth")
REASONS = ("empty", "template_echo", "unchanged", "too_short", "too_long", "duplicate")
GIVEN, REWRITTEN, CREATED = "#Given Prompt#", "#Rewritten Prompt#", "#Created Prompt#"
MARKERS = (GIVEN, REWRITTEN, CREATED)

_DEPTH = f"""You are an expert at rewriting prompts. Rewrite the prompt below into a harder version of \
itself, one that even a strong AI assistant would need real effort to answer well.
The rewritten prompt must still make sense, and a person must be able to understand it and answer it.
Keep every part of the original that is not plain prose, such as code, tables or data, and keep any \
input it provides.
Make the prompt harder in this way: {{method}}
Keep the rewritten prompt concise: it may add only about 10 to 20 words to the original.
The rewritten prompt must not contain the phrases '{GIVEN}', '{REWRITTEN}', 'given prompt' or \
'rewritten prompt'.
Reply with the rewritten prompt only, without any explanation.

{GIVEN}:
{{prompt}}

{REWRITTEN}:
"""

#: In-depth methods, by name: how the prompt is to be made harder.
DEPTH_METHODS: dict[str, str] = {
    "add_constraint": "add one more constraint or requirement that a good answer has to satisfy.",
    "more_reasoning": "if the prompt can be answered with one or two simple steps of thinking, rewrite it so "
                      "that it explicitly asks for several steps of reasoning.",
    "concretize": "replace general notions in the prompt with more specific, concrete ones, such as "
                  "particular cases, quantities, names or settings.",
    "deepen": "if the prompt asks about some topic, ask about it in more depth: its causes, trade-offs, "
              "exceptions or consequences.",
}
#: The in-depth templates, by name (``{prompt}`` marks where the given prompt goes).
DEPTH_TEMPLATES: dict[str, str] = {name: _DEPTH.replace("{method}", method) for name, method in DEPTH_METHODS.items()}

#: The in-breadth template: a new prompt of the same domain, on a rarer topic.
BREADTH_TEMPLATE = f"""You are an expert at writing prompts. Taking the prompt below as inspiration, write a \
brand-new prompt.
The new prompt must belong to the same domain as the original but be about a rarer, less common topic \
within that domain.
It should be about as long and as difficult as the original.
The new prompt must make sense, and a person must be able to understand it and answer it.
The new prompt must not contain the phrases '{GIVEN}', '{CREATED}', 'given prompt' or 'created prompt'.
Reply with the new prompt only, without any explanation.

{GIVEN}:
{{prompt}}

{CREATED}:
"""

#: Every template by name, and the operator each belongs to.
TEMPLATES: dict[str, str] = {**DEPTH_TEMPLATES, "in_breadth": BREADTH_TEMPLATE}
TEMPLATE_OPERATOR: dict[str, str] = {**{name: "in_depth" for name in DEPTH_TEMPLATES}, "in_breadth": "in_breadth"}


def normalise(text: str) -> str:
    """A prompt's text for comparisons: case-folded, whitespace collapsed."""
    return " ".join(text.split()).casefold()


def _instruction_lines() -> set[str]:
    """Normalised sentences of the templates' instructions (not the markers, not the prompt)."""
    lines = set()
    for template in TEMPLATES.values():
        for line in template.splitlines():
            text = normalise(line)
            if len(text) >= 30 and "{prompt}" not in text and not any(m.casefold() in text for m in MARKERS):
                lines.add(text)
    return lines


INSTRUCTION_LINES = frozenset(_instruction_lines())


def render(template: str, prompt: str) -> str:
    """A template with the given prompt in place (prompts may hold braces, so no `str.format`)."""
    return template.replace("{prompt}", prompt.strip())


_LABEL = re.compile(
    r"""^\s*(?:[#*"'`_]+\s*)*                        # markdown or marker decoration
        (?:here(?:'s|\s+is)\s+(?:the\s+|a\s+|my\s+)?)?  # "Here is the ..."
        (?:(?:rewritten|new|created|evolved|revised|harder)\s+)+prompt[#*_`]*
        [^\S\n]*(?::[#*_`\s]*|\n\s*)                 # a colon or a line break ends the label""",
    re.IGNORECASE | re.VERBOSE,
)
_QUOTES = (('"', '"'), ("'", "'"), ("\u201c", "\u201d"), ("\u2018", "\u2019"), ("```", "```"), ("`", "`"),
           ("**", "**"))


def parse_rewrite(text: str) -> str:
    """The new prompt in a model's reply: leading labels ("Rewritten Prompt:", "#Created Prompt#:",
    "Here is the new prompt:"), wrapping quotes, code fences and surrounding whitespace taken off."""
    text = text.strip()
    while True:
        before = text
        match = _LABEL.match(text)
        if match and match.end() > 0:
            text = text[match.end():].strip()
        for left, right in _QUOTES:
            inner = text[len(left):len(text) - len(right)]
            if (len(text) >= len(left) + len(right) and text.startswith(left) and text.endswith(right)
                    and left not in inner and right not in inner):  # not "'a' and 'b'"
                text = inner.strip()
        if text == before:
            return text


def check_rewrite(text: str, *, parent: str, previous: str, seen: set[str], min_chars: int = 10,
                  max_chars: int = 4000, max_growth: float = 4.0, growth_slack: int = 200) -> str | None:
    """Why a parsed rewrite is rejected (one of `REASONS`), or None when it is valid. ``seen`` holds
    the normalised text of every parent and every prompt evolved so far."""
    norm = normalise(text)
    if not norm:
        return "empty"
    if any(m.casefold() in norm for m in MARKERS) or any(line in norm for line in INSTRUCTION_LINES):
        return "template_echo"
    if norm in (normalise(parent), normalise(previous)):
        return "unchanged"
    if len(text) < min_chars:
        return "too_short"
    if len(text) > max_chars or len(text) > max_growth * len(parent.strip()) + growth_slack:
        return "too_long"
    if norm in seen:
        return "duplicate"
    return None


@dataclass
class EvolveReport:
    """What an `llm_evolve` run did: generator calls (one per step with a chain alive), completions
    checked, rewrites accepted, rejections by reason (every reason of `REASONS`, zeros included), and
    how many chains ended before the last step."""

    parents: int
    evolutions: int
    calls: int = 0
    checked: int = 0
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    ended_early: int = 0

    @property
    def acceptance(self) -> float:
        """Accepted rewrites over the rewrites asked for (parents x evolutions)."""
        asked = self.parents * self.evolutions
        return self.accepted / asked if asked else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"parents": self.parents, "evolutions": self.evolutions, "calls": self.calls,
                "checked": self.checked, "accepted": self.accepted, "rejected": dict(self.rejected),
                "ended_early": self.ended_early, "acceptance": self.acceptance}


def _parents(parents: Iterable[str | Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(uid, prompt) of each parent: a string (uid = a hash of its text) or a record with uid and prompt."""
    if hasattr(parents, "to_dict"):  # a DataFrame: iterate its rows, not its column names
        parents = parents.to_dict("records")
    out, uids = [], set()
    for index, parent in enumerate(parents):
        if isinstance(parent, str):
            uid, prompt = text_id(parent.strip()), parent
        elif isinstance(parent, Mapping) and isinstance(parent.get("prompt"), str) and "uid" in parent:
            uid, prompt = str(parent["uid"]), parent["prompt"]
        else:
            raise TypeError(f"parent {index} must be a prompt string or a record with 'uid' and a string "
                            f"'prompt', got {parent!r:.120}")
        if not prompt.strip():
            raise ValueError(f"parent {index} ({uid}) has an empty prompt")
        if uid in uids:
            raise ValueError(f"parent {index}: uid {uid} appears twice (lineage would be ambiguous)")
        uids.add(uid)
        out.append((uid, prompt.strip()))
    return out


def draw_template(seed: int, uid: str, step: int, operators: tuple[str, ...]) -> tuple[str, str]:
    """(operator, template name) of one parent's step: drawn from a generator seeded by the seed, the
    parent's uid and the step, so a chain's draws do not depend on the other parents."""
    rng = random.Random(f"eva-evolve|{seed}|{uid}|{step}")
    operator = rng.choice(operators)
    name = rng.choice(sorted(DEPTH_TEMPLATES)) if operator == "in_depth" else "in_breadth"
    return operator, name


def llm_evolve(generator: Generator, parents: Iterable[str | Mapping[str, Any]], *, evolutions: int = 4,
               operators: tuple[str, ...] = OPERATORS, config: GenerationSpec, seed: int = 0,
               min_chars: int = 10, max_chars: int = 4000, max_growth: float = 4.0, growth_slack: int = 200,
               chat: bool = True) -> tuple[list[dict], EvolveReport]:
    """``evolutions`` chained LLM rewrites of every parent (see the module docstring).

    Args:
        generator: the rewriting model (any `repro.generation.Generator`).
        parents: prompt strings, or records with ``uid`` and ``prompt`` (a DataFrame of them too).
        evolutions: rewrites chained per parent.
        operators: some of `OPERATORS`, drawn uniformly per parent and step.
        config: sampling of the rewrites; with ``n > 1`` the first valid completion is kept.
        seed: draws the operators and templates (``config.seed`` seeds the sampler).
        min_chars, max_chars, max_growth, growth_slack: the length bounds (see `check_rewrite`).
        chat: send each request as a user message (chat template) rather than a raw string.

    Returns:
        ``(records, report)``: one record ``{"prompt", "uid", "parent", "operator", "template",
        "step"}`` per accepted rewrite, ordered by parent then step (``uid`` is a hash of the new
        prompt, ``parent`` the parent's uid), and the `EvolveReport`.
    """
    unknown = set(operators) - set(OPERATORS)
    if unknown or not operators:
        raise ValueError(f"operators must be some of {', '.join(OPERATORS)}, got {operators!r}")
    if evolutions < 1:
        raise ValueError(f"evolutions must be at least 1, got {evolutions}")
    if min_chars < 1 or max_chars < min_chars:
        raise ValueError(f"need 1 <= min_chars <= max_chars, got {min_chars} and {max_chars}")
    operators = tuple(operators)
    roots = _parents(parents)
    report = EvolveReport(parents=len(roots), evolutions=evolutions)
    seen = {normalise(prompt) for _, prompt in roots}
    current = {uid: prompt for uid, prompt in roots}  # the alive chains and their latest prompt
    originals = dict(roots)
    records: list[dict] = []
    for step in range(1, evolutions + 1):
        alive = [uid for uid, _ in roots if uid in current]
        if not alive:
            break
        draws = {uid: draw_template(seed, uid, step, operators) for uid in alive}
        requests = [render(TEMPLATES[draws[uid][1]], current[uid]) for uid in alive]
        outputs = generator.generate([[{"role": "user", "content": r}] for r in requests] if chat else requests,
                                     config)
        report.calls += 1
        if len(outputs) != len(alive):
            raise ValueError(f"the generator returned {len(outputs)} outputs for {len(alive)} prompts")
        for uid, completions in zip(alive, outputs):
            kept = None
            for completion in completions:
                text = parse_rewrite(completion if isinstance(completion, str) else "")
                report.checked += 1
                reason = check_rewrite(text, parent=originals[uid], previous=current[uid], seen=seen,
                                       min_chars=min_chars, max_chars=max_chars, max_growth=max_growth,
                                       growth_slack=growth_slack)
                if reason is None:
                    kept = text
                    break
                report.rejected[reason] += 1
            if kept is None:
                del current[uid]
                report.ended_early += 1
                continue
            seen.add(normalise(kept))
            current[uid] = kept
            operator, name = draws[uid]
            records.append({"prompt": kept, "uid": text_id(kept), "parent": uid, "operator": operator,
                            "template": name, "step": step})
            report.accepted += 1
    order = {uid: i for i, (uid, _) in enumerate(roots)}
    records.sort(key=lambda r: (order[r["parent"]], r["step"]))
    return records, report


__all__ = ["BREADTH_TEMPLATE", "DEPTH_METHODS", "DEPTH_TEMPLATES", "INSTRUCTION_LINES", "OPERATORS", "REASONS",
           "TEMPLATES", "TEMPLATE_OPERATOR", "EvolveReport", "check_rewrite", "draw_template", "llm_evolve",
           "normalise", "parse_rewrite", "render"]
