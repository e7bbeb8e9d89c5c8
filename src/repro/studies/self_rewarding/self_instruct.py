"""Self-instruction creation: new prompts written by a fixed model, filtered Self-Instruct style.

The Self-Rewarding LMs paper grows its prompt set with a fixed model prompted 8-shot (6 seed/IFT
prompts and 2 prompts it generated earlier), sampled at T=0.6, top-p 0.9, and filtered as in
Self-Instruct (ROUGE-L against everything kept so far, keywords, length). This module is that step
for any `repro.generation.Generator`:

- `few_shot_prompt`: the k-shot prompt. ``style="list"`` is a raw-text numbered task list in the
  format of the world corpus's task-list documents, ending with the next item number, so a base
  model (M0 of the tiny profile, which saw such lists in pre-training) writes the next task;
  ``style="chat"`` is one plain-English user message asking an instruction-tuned model for one new
  task (the paper-scale path: Llama 2-Chat 70B behind vLLM).
- `extract_prompt`: the first task a completion writes (cut at the next numbered marker).
- `rouge_l`: ROUGE-L F-measure (longest common subsequence) over whitespace tokens.
- `PromptFilter`: empty / length / exact-duplicate / validity / ROUGE-L near-duplicate filter that
  tallies why each candidate was rejected.
- `generate_prompts`: the batched loop (one ``generator.generate`` call per round).

>>> from repro.world import make_task
>>> few_shot_prompt(["what is 2 plus 3 ?", "sort these numbers from small to large : 4 1 ."])
'here are some tasks : 1 . what is 2 plus 3 ? 2 . sort these numbers from small to large : 4 1 . 3 .'
>>> extract_prompt("what is 7 plus 1 ? 4 . what is", number=3)
'what is 7 plus 1 ?'
>>> round(rouge_l("what is 2 plus 3 ?", "what is 4 plus 3 ?"), 3)
0.833

Cost of the ROUGE-L check. Comparing each candidate with every seed and accepted prompt is
O(N) LCS computations per candidate, O(N^2) for a run that keeps N prompts (Self-Instruct pays this
with a process pool). Here the result is exact but the work is pruned (`RougeIndex`):

1. a vectorised upper bound first: LCS(a, b) <= the multiset overlap of their tokens, so
   F <= 2 * overlap / (len(a) + len(b)); the overlaps with all references are accumulated with numpy
   from an inverted index (token -> references holding it, with counts), a few numpy operations per
   distinct token of the candidate;
2. the exact LCS only for the references whose bound exceeds the threshold, best bound first, with a
   bit-parallel LCS (Hyyro 2004: four big-integer operations per token), stopping at the first one
   over the threshold.

A few thousand prompts cost well under a millisecond of bound computation per candidate, and the
exact check runs on the few references that share most of their tokens with it.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from repro.generation.base import GenerationSpec, Generator, Prompt
from repro.world import Task, parse_prompt, split_task_list
from repro.world.corpus import TEXT_INTROS
from repro.world.text import as_number, canonical, join, tokenize

#: Self-Instruct's near-duplicate threshold: a candidate whose ROUGE-L with any kept prompt exceeds it is dropped.
DEFAULT_ROUGE_THRESHOLD = 0.7
#: Length limits in whitespace tokens (Self-Instruct keeps instructions of 3 to 150 words; the world's
#: prompts have 5 to about 140 tokens).
DEFAULT_MIN_TOKENS = 3
DEFAULT_MAX_TOKENS = 150
#: Intro of the list-style few-shot prompt: the first intro of the corpus's task lists.
DEFAULT_INTRO = TEXT_INTROS[0]
#: Reasons a candidate is rejected, in the order they are checked (each candidate gets the first that applies).
REASONS = ("empty", "too_short", "too_long", "exact_duplicate", "invalid", "near_duplicate")
#: Words that Self-Instruct-style keyword filters reject at paper scale: tasks a text-only model cannot
#: do (see `keyword_check`).
DEFAULT_BLACKLIST = (
    "image", "images", "picture", "pictures", "photo", "graph", "graphs", "plot", "draw", "diagram",
    "flowchart", "map", "maps", "file", "files", "video", "audio", "music", "go to",
)

Validate = Callable[[str], Any]


# -- ROUGE-L ---------------------------------------------------------------------------------------
def rouge_tokens(text: str | Sequence[str]) -> list[str]:
    """The tokens ROUGE-L and the length limits count: lowercased whitespace tokens (a token list
    is taken as it is). World text already has punctuation as separate tokens."""
    if isinstance(text, str):
        return text.lower().split()
    return list(text)


def _match_masks(tokens: Sequence[str]) -> dict[str, int]:
    masks: dict[str, int] = {}
    for i, token in enumerate(tokens):
        masks[token] = masks.get(token, 0) | (1 << i)
    return masks


def _lcs_masks(masks: dict[str, int], m: int, other: Sequence[str]) -> int:
    """LCS length of a sequence of ``m`` tokens (given by its match masks) and ``other``.

    Bit-parallel (Hyyro 2004): bit i of ``v`` is 0 where the LCS row grows at position i."""
    full = (1 << m) - 1
    v = full
    for token in other:
        u = v & masks.get(token, 0)
        v = ((v + u) | (v - u)) & full
    return m - v.bit_count()


def lcs_length(a: str | Sequence[str], b: str | Sequence[str]) -> int:
    """Length of the longest common subsequence of two token sequences (strings are split with
    `rouge_tokens`)."""
    a, b = rouge_tokens(a), rouge_tokens(b)
    if not a or not b:
        return 0
    return _lcs_masks(_match_masks(a), len(a), b)


def rouge_l(candidate: str | Sequence[str], reference: str | Sequence[str]) -> float:
    """ROUGE-L F-measure (beta = 1) between two texts over `rouge_tokens`:
    P = LCS / len(candidate), R = LCS / len(reference), F = 2PR / (P + R) = 2 LCS / (len(c) + len(r)).

    Symmetric; 0.0 when either text has no tokens. (Self-Instruct uses the ``rouge_score`` package's
    ROUGE-L F-measure, whose tokenizer also drops punctuation; here punctuation tokens count.)
    """
    a, b = rouge_tokens(candidate), rouge_tokens(reference)
    if not a or not b:
        return 0.0
    return 2.0 * lcs_length(a, b) / (len(a) + len(b))


class _Column:
    """A growable pair of int32 arrays (reference ids, token counts): one posting list."""

    __slots__ = ("ids", "counts", "size")

    def __init__(self) -> None:
        self.ids = np.empty(8, dtype=np.int32)
        self.counts = np.empty(8, dtype=np.int32)
        self.size = 0

    def append(self, ref: int, count: int) -> None:
        if self.size == len(self.ids):
            self.ids = np.concatenate([self.ids, np.empty_like(self.ids)])
            self.counts = np.concatenate([self.counts, np.empty_like(self.counts)])
        self.ids[self.size], self.counts[self.size] = ref, count
        self.size += 1


class RougeIndex:
    """Reference texts, searchable for the one most similar to a candidate by ROUGE-L.

    `nearest` is exact but prunes with the bag-of-tokens bound described in the module docstring.
    """

    def __init__(self, texts: Iterable[str] = ()) -> None:
        self.texts: list[str] = []
        self._tokens: list[list[str]] = []
        self._lengths = np.empty(64, dtype=np.int64)
        self._postings: dict[str, _Column] = {}
        self.exact_comparisons = 0  # LCS computations done, for measuring the pruning
        for text in texts:
            self.add(text)

    def __len__(self) -> int:
        return len(self.texts)

    def add(self, text: str) -> None:
        tokens = rouge_tokens(text)
        ref = len(self.texts)
        if ref == len(self._lengths):
            self._lengths = np.concatenate([self._lengths, np.empty_like(self._lengths)])
        self._lengths[ref] = len(tokens)
        self.texts.append(text)
        self._tokens.append(tokens)
        for token, count in Counter(tokens).items():
            self._postings.setdefault(token, _Column()).append(ref, count)

    def nearest(self, text: str, above: float = 0.0) -> tuple[float, int | None]:
        """``(score, reference index)`` of the reference with the highest ROUGE-L with ``text``,
        among those scoring strictly more than ``above``; ``(0.0, None)`` if there is none."""
        return self._search(text, above, first=False)

    def exceeds(self, text: str, threshold: float) -> tuple[float, int | None]:
        """Some reference whose ROUGE-L with ``text`` is strictly above ``threshold`` (the one found
        first, best bound first), as ``(score, index)``; ``(0.0, None)`` if there is none."""
        return self._search(text, threshold, first=True)

    def _search(self, text: str, above: float, first: bool) -> tuple[float, int | None]:
        tokens = rouge_tokens(text)
        n_refs, m = len(self.texts), len(tokens)
        if not m or not n_refs:
            return 0.0, None
        overlap = np.zeros(n_refs, dtype=np.int64)
        for token, count in Counter(tokens).items():
            column = self._postings.get(token)
            if column is not None:
                k = column.size
                overlap[column.ids[:k]] += np.minimum(column.counts[:k], count)
        bound = 2.0 * overlap / (m + self._lengths[:n_refs])
        candidates = np.flatnonzero(bound > above)
        if not len(candidates):
            return 0.0, None
        candidates = candidates[np.argsort(-bound[candidates], kind="stable")]
        masks = _match_masks(tokens)
        best, best_ref = above, None
        for ref in candidates:
            if bound[ref] <= best:
                break  # sorted: no later reference can beat the best found
            self.exact_comparisons += 1
            score = 2.0 * _lcs_masks(masks, m, self._tokens[ref]) / (m + len(self._tokens[ref]))
            if score > best:
                best, best_ref = score, int(ref)
                if first:
                    break
        return (best, best_ref) if best_ref is not None else (0.0, None)


# -- the few-shot prompt and reading the completion -----------------------------------------------
def few_shot_prompt(examples: Sequence[str], style: str = "list", *, intro: str = DEFAULT_INTRO) -> Prompt:
    """A k-shot prompt asking for one new task.

    Args:
        examples: the example prompts, in the order shown.
        style: ``"list"``: a raw string in the corpus's task-list format,
            ``"<intro> 1 . <p1> 2 . <p2> ... k . <pk> k+1 ."``, which a base model continues with task k+1
            (the tiny profile's M0). ``"chat"``: a conversation of one user message that shows the
            examples and asks, in plain English, for one new task (for an instruction-tuned model at
            paper scale; read its answer with ``extract_prompt(..., world_text=False)``).
        intro: the list's first words (list style; default the corpus's ``"here are some tasks :"``).

    Returns:
        A string (list style) or a list of one ``{"role": "user", "content": ...}`` message (chat style);
        both are prompts every `Generator` accepts.
    """
    examples = [str(e).strip() for e in examples]
    if not examples:
        raise ValueError("few_shot_prompt needs at least one example prompt")
    if style == "list":
        items = " ".join(f"{i} . {text}" for i, text in enumerate(examples, start=1))
        return f"{intro} {items} {len(examples) + 1} ."
    if style == "chat":
        shown = "\n".join(f"Task {i}: {text}" for i, text in enumerate(examples, start=1))
        content = (
            f"Here are {len(examples)} example tasks that users have given to an AI assistant.\n\n"
            f"{shown}\n\n"
            f"Write Task {len(examples) + 1}: {CHAT_REQUEST}"
        )
        return [{"role": "user", "content": content}]
    raise ValueError(f"unknown few-shot prompt style {style!r}; valid styles: 'list', 'chat'")


#: What the chat-style request asks for, after "Write Task k+1:".
CHAT_REQUEST = ("one new task of the same kind. It must differ from every example, be complete in itself, and be "
                "something an assistant can answer in text. Reply with the task only, on a single line, with no "
                "number, label or explanation.")
#: A written prompt most of whose words (this share, in order: the longest common subsequence over the
#: prompt's length) come from `CHAT_REQUEST` repeats the request rather than giving a task.
ECHO_THRESHOLD = 0.6

_LABEL = re.compile(r"^\s*(?:(?:one\s+)?(?:new\s+)?task\s*\d{0,3}|\d{1,3})\s*[.):]\**\s*", re.IGNORECASE)
_NEXT_ITEM = re.compile(r"(?:(?<=[.?!:])[ \t]+|\s*\n\s*)(?:task\s*)?\d{1,3}\s*[.):](?=\s|$)", re.IGNORECASE)


def _first_marker(tokens: list[str]) -> tuple[int, int] | None:
    """``(position, number)`` of the first item marker ``"k ."`` (at the start, or after . ? :)."""
    for i in range(len(tokens) - 1):
        if tokens[i + 1] == "." and (i == 0 or tokens[i - 1] in (".", "?", ":")):
            value = as_number(tokens[i])
            if value is not None:
                return i, value
    return None


def extract_prompt(completion: object, *, number: int | None = None, world_text: bool = True) -> str | None:
    """The first task a completion writes, or None if it writes none.

    Args:
        completion: the model's continuation of a few-shot prompt.
        number: the item number the prompt ended with (``k+1`` for a k-shot list); the task is cut at
            marker ``number + 1``. None: the task is cut at the first item marker of any number. A
            completion that starts with an item marker of its own (``"10 . <task> 11 . ..."``) is read
            from that item on, whatever ``number`` is.
        world_text: read the completion as world text with `repro.world.split_task_list` (tolerant
            tokens, lowercased; a prompt that could itself end in ``"k ."`` is cut where it parses).
            False (real text, chat style): keep the text as written, drop a leading ``"Task 9:"`` /
            ``"9."`` / ``"New task:"`` label, keep the first line (the request asks for one line; what
            small models add below it is commentary) and cut at the next sentence that starts with such
            a label.

    The result is trimmed; a task cut off by the token limit is returned as it is (the filter's
    validity check rejects it).
    """
    if isinstance(completion, (bytes, bytearray)):
        completion = bytes(completion).decode("utf-8", errors="replace")
    if not isinstance(completion, str) or not completion.strip():
        return None
    if not world_text:
        text = _LABEL.sub("", completion.strip().lstrip('"*# ').strip(), count=1).split("\n", 1)[0]
        head, colon, rest = text.partition(":")
        if colon and rest.strip() and echoes_request(head):  # "One new task of the same kind: <the task>"
            text = rest.strip().lstrip('"*# ')
        text = _NEXT_ITEM.split(text, maxsplit=1)[0].strip().strip('"').strip()
        return text or None
    tokens = [canonical(t) for t in tokenize(completion)]
    marker = _first_marker(tokens)
    if marker is not None and marker[0] == 0:  # the completion starts with an item number of its own
        items = split_task_list(completion, first=marker[1])
    elif number is not None:
        items = split_task_list(f"{number} . {completion}", first=number)
    elif marker is None:
        return join(tokens) or None
    else:
        previous = max(marker[1] - 1, 0)
        items = split_task_list(f"{previous} . {completion}", first=previous)
    return next((item for item in items if item.strip()), None)


def echoes_request(text: str, threshold: float = ECHO_THRESHOLD) -> bool:
    """Whether a written prompt repeats the chat request's own words (`CHAT_REQUEST`) rather than
    giving a task: small instruction-tuned models often answer "write one new task ..." with that very
    sentence, a part of it ("One new task of the same kind."), or that part over and over."""
    tokens = rouge_tokens(text)
    if not tokens:
        return False
    request = rouge_tokens(CHAT_REQUEST)
    in_order = lcs_length(tokens, request) / len(tokens)
    words = set(tokens)
    return in_order >= threshold or (len(words) >= 3 and len(words & set(request)) / len(words) >= threshold)


# -- the filter --------------------------------------------------------------------------------
def keyword_check(blacklist: Iterable[str] = DEFAULT_BLACKLIST) -> Validate:
    """A validity check for real text (paper scale): False if the text contains a blacklisted word
    or phrase (case-insensitive, whole words), or starts with punctuation or a non-ASCII character,
    as Self-Instruct filters; else True. Pass it as ``validate`` instead of the world check."""
    words = sorted({w.lower().strip() for w in blacklist if w.strip()})
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b") if words else None

    def check(text: str) -> bool:
        text = text.strip()
        if not text or not text[0].isascii() or not text[0].isalnum():
            return False
        return pattern is None or pattern.search(text.lower()) is None

    return check


@dataclass(frozen=True)
class Verdict:
    """What the filter decided about one candidate.

    Attributes:
        accepted: kept (and now a reference for later candidates).
        reason: None if accepted, else one of `REASONS`.
        value: what the validity check returned (the `Task` with the world check), for accepted or
            near-duplicate candidates; None otherwise.
        rouge_l: for a near duplicate, its ROUGE-L with the prompt it duplicates (else None).
        duplicate_of: the seed or accepted prompt it duplicates (exact or near), else None.
    """

    accepted: bool
    reason: str | None = None
    value: Any = None
    rouge_l: float | None = None
    duplicate_of: str | None = None


class PromptFilter:
    """Self-Instruct-style filter over candidate prompts, with a tally of why each was rejected.

    A candidate is checked in this order and rejected for the first reason that applies
    (`REASONS`): ``empty`` (no text), ``too_short`` / ``too_long`` (fewer than ``min_tokens`` / more
    than ``max_tokens`` whitespace tokens), ``exact_duplicate`` (same lowercased tokens as a seed or
    an accepted prompt), ``invalid`` (``validate`` returns a falsy value), ``near_duplicate``
    (ROUGE-L strictly above ``rouge_threshold`` with a seed or an accepted prompt, as Self-Instruct's
    ``> 0.7``). An accepted candidate becomes a reference for the later ones.

    Args:
        seed_prompts: the references at the start (the seed/IFT prompts).
        rouge_threshold: near-duplicate threshold (default 0.7; 1.0 turns the check off).
        min_tokens, max_tokens: length limits, inclusive (default 3 and 150).
        validate: ``text -> value``; a falsy value (None, False) marks the text invalid. Default
            `repro.world.parse_prompt` (valid = a task of the world; the value is the `Task`, kept in
            `values`). At paper scale pass e.g. `keyword_check()`; None accepts every text.
    """

    def __init__(
        self,
        seed_prompts: Iterable[str] = (),
        *,
        rouge_threshold: float = DEFAULT_ROUGE_THRESHOLD,
        min_tokens: int = DEFAULT_MIN_TOKENS,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        validate: Validate | None = parse_prompt,
    ) -> None:
        if isinstance(rouge_threshold, bool) or not isinstance(rouge_threshold, (int, float)) \
                or not 0.0 <= rouge_threshold <= 1.0:
            raise ValueError(f"rouge_threshold must be a number in [0, 1], got {rouge_threshold!r}")
        for name, value in (("min_tokens", min_tokens), ("max_tokens", max_tokens)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if min_tokens > max_tokens:
            raise ValueError(f"min_tokens ({min_tokens}) must not exceed max_tokens ({max_tokens})")
        if validate is not None and not callable(validate):
            raise TypeError(f"validate must be a callable text -> value (or None), got {validate!r}")
        self.rouge_threshold = float(rouge_threshold)
        self.min_tokens, self.max_tokens = min_tokens, max_tokens
        self.validate = validate
        self.index = RougeIndex()
        self._seen: dict[str, str] = {}  # exact-duplicate key -> the text it came from
        self.seeds: list[str] = []
        self.accepted: list[str] = []
        self.values: list[Any] = []
        self.rejections: Counter[str] = Counter({reason: 0 for reason in REASONS})
        for text in seed_prompts:
            self.add_seed(text)

    @staticmethod
    def key(text: str) -> str:
        """The exact-duplicate key: lowercased whitespace tokens, joined by single spaces."""
        return " ".join(rouge_tokens(text))

    def add_seed(self, text: str) -> None:
        """Add a reference without filtering it (a seed prompt)."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"seed prompts must be non-empty strings, got {text!r:.200}")
        self.seeds.append(text)
        self._remember(text)

    def _remember(self, text: str) -> None:
        key = self.key(text)
        if key not in self._seen:
            self._seen[key] = text
            self.index.add(text)

    def consider(self, text: str | None) -> Verdict:
        """Decide about one candidate; keep it if it passes, else tally the reason."""
        verdict = self._judge(text)
        if verdict.accepted:
            self.accepted.append(text)  # type: ignore[arg-type]
            self.values.append(verdict.value)
            self._remember(text)  # type: ignore[arg-type]
        else:
            self.rejections[verdict.reason] += 1  # type: ignore[index]
        return verdict

    def _judge(self, text: str | None) -> Verdict:
        tokens = rouge_tokens(text) if isinstance(text, str) else []
        if not tokens:
            return Verdict(False, "empty")
        if len(tokens) < self.min_tokens:
            return Verdict(False, "too_short")
        if len(tokens) > self.max_tokens:
            return Verdict(False, "too_long")
        same = self._seen.get(" ".join(tokens))
        if same is not None:
            return Verdict(False, "exact_duplicate", rouge_l=1.0, duplicate_of=same)
        value = True if self.validate is None else self.validate(text)
        if not value:
            return Verdict(False, "invalid")
        if self.rouge_threshold < 1.0:
            score, ref = self.index.exceeds(text, self.rouge_threshold)  # type: ignore[arg-type]
            if ref is not None:
                return Verdict(False, "near_duplicate", value=value, rouge_l=score,
                               duplicate_of=self.index.texts[ref])
        return Verdict(True, value=value)

    def tally(self) -> dict[str, int]:
        """Rejections by reason (every reason present, in the order checked)."""
        return {reason: int(self.rejections[reason]) for reason in REASONS}


# -- the generation loop -----------------------------------------------------------------------
@dataclass
class SelfInstructResult:
    """What `generate_prompts` produced.

    Attributes:
        prompts: the accepted prompts, in the order accepted (at most ``n_wanted``).
        tasks: the accepted prompts as world tasks when the validity check returns `Task` objects
            (the default world check), else None.
        rejections: rejected candidates by reason (every reason of `REASONS`, in order).
        rounds: rounds run (generate calls).
        candidates: completions generated.
        surplus: completions of the last round not examined because ``n_wanted`` was reached.
        n_wanted: the number asked for.
        log: one row per examined completion: ``round``, ``completion``, ``prompt`` (extracted, or None),
            ``verdict`` ("accepted" or the reason), ``rouge_l`` and ``duplicate_of`` (for duplicates).
    """

    prompts: list[str]
    tasks: list[Task] | None
    rejections: dict[str, int]
    rounds: int
    candidates: int
    surplus: int
    n_wanted: int
    log: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def complete(self) -> bool:
        """Whether ``n_wanted`` prompts were accepted (else ``max_rounds`` ran out)."""
        return len(self.prompts) >= self.n_wanted

    @property
    def acceptance_rate(self) -> float:
        examined = self.candidates - self.surplus
        return len(self.prompts) / examined if examined else 0.0

    def log_frame(self):
        """The log as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.log, columns=["round", "completion", "prompt", "verdict", "rouge_l", "duplicate_of"])


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def sample_examples(rng: random.Random, seeds: Sequence[str], generated: Sequence[str],
                    shots: int = 8, seed_shots: int = 6) -> list[str]:
    """The examples of one few-shot prompt: ``seed_shots`` seed prompts and ``shots - seed_shots``
    generated ones, drawn without replacement and shuffled; seed prompts stand in for the generated
    ones while fewer than ``shots - seed_shots`` have been generated (and fewer examples are used if
    there are not enough distinct seeds)."""
    n_generated = shots - seed_shots
    if n_generated > 0 and len(generated) >= n_generated:
        examples = rng.sample(list(seeds), min(seed_shots, len(seeds))) + rng.sample(list(generated), n_generated)
    else:
        examples = rng.sample(list(seeds), min(shots, len(seeds)))
    rng.shuffle(examples)
    return examples


def generate_prompts(
    generator: Generator,
    seed_prompts: Sequence[str],
    n_wanted: int,
    *,
    shots: int = 8,
    seed_shots: int = 6,
    temperature: float = 0.6,
    top_p: float = 0.9,
    max_new_tokens: int = 64,
    batch_size: int = 64,
    seed: int = 0,
    max_rounds: int = 50,
    validate: Validate | None = parse_prompt,
    style: str = "list",
    world_text: bool | None = None,
    rouge_threshold: float = DEFAULT_ROUGE_THRESHOLD,
    min_tokens: int = DEFAULT_MIN_TOKENS,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    intro: str = DEFAULT_INTRO,
) -> SelfInstructResult:
    """New prompts from a fixed model by few-shot prompting, filtered Self-Instruct style.

    Each round builds ``batch_size`` few-shot prompts, each with its own random examples
    (`sample_examples`: ``seed_shots`` seed prompts + ``shots - seed_shots`` accepted ones), calls
    ``generator.generate`` once for the whole batch (one completion per prompt), extracts the first
    task of each completion (`extract_prompt`) and passes it through a `PromptFilter` (seeds and all
    accepted prompts are its references). Rounds repeat until ``n_wanted`` prompts are accepted or
    ``max_rounds`` rounds have run; then it returns what it has (check ``result.complete``).

    Deterministic for a seed: the examples come from ``random.Random(seed)`` and each round's
    sampling seed from the same stream (given a deterministic generator).

    Tiny scale: an 8-shot list of difficulty 1-2 world prompts is about 150 tokens (median; 230 at
    most), so with ``max_new_tokens=64`` about 5% of prompts run past the tiny models' 256 positions;
    and M0's corpus lists hold only 2 to 4 tasks, so "9 ." is a longer list than it has seen.
    Lower ``shots`` (keeping the 6:2 ratio in spirit) if that matters for a run.

    Args:
        generator: any `Generator` (the tiny profile's M0 through `HFGenerator`; vLLM at paper scale).
        seed_prompts: the seed (IFT) prompts; at least one, duplicates are dropped.
        n_wanted: prompts to accept (0 returns at once).
        shots, seed_shots: examples per prompt and how many of them are seed prompts (paper: 8 and 6).
        temperature, top_p: sampling (paper: 0.6 and 0.9).
        max_new_tokens: completion length limit.
        batch_size: few-shot prompts per round (= per generate call; also the forward batch size).
        seed: the run's seed.
        max_rounds: most rounds (generate calls) to run.
        validate, rouge_threshold, min_tokens, max_tokens: the filter (see `PromptFilter`).
        style: ``"list"`` (raw task list, base model) or ``"chat"`` (a user message, chat model).
        world_text: how completions are read (see `extract_prompt`); default: world text for the list
            style, text as written for the chat style.
        intro: the list's first words (list style).
    """
    n_wanted = _positive_int("n_wanted", n_wanted, minimum=0)
    shots = _positive_int("shots", shots)
    seed_shots = _positive_int("seed_shots", seed_shots, minimum=0)
    if seed_shots > shots:
        raise ValueError(f"seed_shots ({seed_shots}) must not exceed shots ({shots})")
    batch_size = _positive_int("batch_size", batch_size)
    max_rounds = _positive_int("max_rounds", max_rounds, minimum=0)
    if style not in ("list", "chat"):
        raise ValueError(f"unknown few-shot prompt style {style!r}; valid styles: 'list', 'chat'")
    if isinstance(seed_prompts, str) or not isinstance(seed_prompts, Sequence):
        raise TypeError(f"seed_prompts must be a list of strings, got {type(seed_prompts).__name__}")
    filt = PromptFilter(rouge_threshold=rouge_threshold, min_tokens=min_tokens, max_tokens=max_tokens,
                        validate=validate)
    seeds: list[str] = []
    for text in seed_prompts:
        filt.add_seed(text)
        if text not in seeds:
            seeds.append(text)
    if not seeds:
        raise ValueError("generate_prompts needs at least one seed prompt")
    if world_text is None:
        world_text = style == "list"
    # Built here so that bad sampling parameters fail before any generation.
    GenerationSpec(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p)

    rng = random.Random(seed)
    log: list[dict[str, Any]] = []
    rounds = candidates = surplus = 0
    while len(filt.accepted) < n_wanted and rounds < max_rounds:
        batch = [sample_examples(rng, seeds, filt.accepted, shots, seed_shots) for _ in range(batch_size)]
        prompts = [few_shot_prompt(examples, style, intro=intro) for examples in batch]
        config = GenerationSpec(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, n=1,
                                seed=rng.randrange(2**31), batch_size=batch_size)
        outputs = generator.generate(prompts, config)
        if len(outputs) != len(prompts):
            raise RuntimeError(f"generator returned {len(outputs)} results for {len(prompts)} prompts")
        rounds += 1
        for index, (examples, completions) in enumerate(zip(batch, outputs)):
            for completion in completions:
                candidates += 1
                if len(filt.accepted) >= n_wanted:
                    surplus += 1
                    continue
                number = len(examples) + 1 if style == "list" else None
                text = extract_prompt(completion, number=number, world_text=world_text)
                verdict = filt.consider(text)
                log.append({"round": rounds, "completion": completion, "prompt": text,
                            "verdict": "accepted" if verdict.accepted else verdict.reason,
                            "rouge_l": verdict.rouge_l, "duplicate_of": verdict.duplicate_of})

    values = filt.values
    is_world = validate is parse_prompt or (values and all(isinstance(v, Task) for v in values))
    return SelfInstructResult(
        prompts=list(filt.accepted), tasks=list(values) if is_world else None, rejections=filt.tally(),
        rounds=rounds, candidates=candidates, surplus=surplus, n_wanted=n_wanted, log=log)
