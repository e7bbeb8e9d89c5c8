"""The RLAIF preference labeller: which of two summaries is better, read from token probabilities.

Lee et al. (2023) prompt an LLM with a preamble, optional few-shot exemplars, the text and two
summaries, and an answer cue after which the model would write "1" or "2". Instead of sampling an
answer they read the log-probabilities of the tokens "1" and "2" in one forward pass and take their
softmax as a *soft label*. This module builds those prompts and reads them out, in batches:

- preambles ``"base"`` (one sentence) and ``"detailed"`` (what makes a good summary: coherence,
  accuracy, coverage, overall quality), each in two wordings: ``plain`` English for real models
  and ``compact`` in the tiny world's words (every word a token of the word-level tokenizer, see
  `template_words`);
- k-shot exemplars (`Exemplar`), optionally with a rationale each;
- **both orders**: every pair is read as (A, B) and as (B, A); the label is the average of the two
  distributions, and the per-order results are kept so that position bias can be measured;
- **chain of thought**: a rationale is generated first (greedy), appended to the prompt, and the
  answer cue read after it; **self-consistency**: several rationales sampled at a temperature, their
  distributions averaged;
- **d-RLAIF** (`direct_scores`): the labeller rates one summary from 1 to 10; the reward is the
  expected score under the token probabilities, rescaled to [-1, 1]; a read-out that gives no
  probabilities gets the lowest score's reward (`UNREADABLE_REWARD`), never NaN.

A read-out is *unreadable* when the model's log-probabilities give no distribution (all ``-inf``,
NaN, ``+inf``). Unreadable read-outs are counted, never silently turned into a preference: their
label is -1, and they are left out of the position-bias figures (`same_position`).

Any generator with ``generate`` and ``score_next_token_logprobs`` (`repro.generation.HFGenerator`, `VLLMGenerator`)
serves; the read-out never samples.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from repro.generation.base import GenerationSpec

PREAMBLES = {
    "plain": {
        "base": "Read the text and the two summaries of it below, and decide which summary is better.",
        "detailed": (
            "A good summary is a short piece of writing that gives the most important points of a text to "
            "someone who has not read it. Judge each summary on four things. Coherence: it reads clearly "
            "and makes sense on its own. Accuracy: every statement in it is supported by the text. "
            "Coverage: it keeps the points that matter most and leaves out what does not. Overall quality: "
            "taking everything together, how useful it is as a summary of this text. Read the text and the "
            "two summaries below, and decide which summary is better."),
    },
    "compact": {
        "base": "which summary of the text is better ?",
        "detailed": (
            "a good summary keeps the main facts of the text , says nothing the text does not say , and "
            "adds no other facts . which summary of the text is better ?"),
    },
}
LAYOUT = {  # the parts of a prompt, per wording
    "plain": {"text": "Text - {text}", "first": "Summary 1 - {s1}", "second": "Summary 2 - {s2}",
              "ask_rationale": "Explain which summary is better and why.\nRationale:", "cue": "Preferred Summary=",
              "score_preamble": "Rate how good the summary of the text below is, from 1 (worst) to 10 (best).",
              "summary": "Summary - {s1}", "score_cue": "Score="},
    "compact": {"text": "text : {text}", "first": "summary 1 : {s1}", "second": "summary 2 : {s2}",
                "ask_rationale": "explain which summary is better . rationale :", "cue": "better summary :",
                "score_preamble": "rate the summary of the text from 1 to 10 .",
                "summary": "summary : {s1}", "score_cue": "score :"},
}
ANSWERS = ("1", "2")
SCORES = tuple(str(i) for i in range(1, 11))
#: The d-RLAIF reward of a summary whose score read-out is unreadable: that of the lowest score, 1
#: (see `direct_scores`).
UNREADABLE_REWARD = -1.0


@dataclass(frozen=True)
class Exemplar:
    """A worked example for few-shot prompts: a text, two summaries, the preferred one (1 or 2)."""

    text: str
    first: str
    second: str
    preferred: int
    rationale: str | None = None

    def __post_init__(self) -> None:
        if self.preferred not in (1, 2):
            raise ValueError(f"an exemplar's preferred summary is 1 or 2, got {self.preferred!r}")


@dataclass(frozen=True)
class LabelSpec:
    """How pairs are labelled (the paper's techniques).

    Attributes:
        preamble: ``"base"`` or ``"detailed"``.
        wording: ``"plain"`` (real models) or ``"compact"`` (the tiny world's words).
        exemplars: the few-shot examples (empty: 0-shot).
        cot: write a rationale first (chain of thought).
        rationales: rationales per prompt with ``cot`` (1: greedy; more: self-consistency, sampled).
        temperature: sampling temperature of the rationales when ``rationales > 1``.
        max_rationale_tokens: longest rationale.
        both_orders: also read each pair swapped and average (position-bias mitigation).
        seed: sampling seed.
        batch_size: prompts per forward pass.
    """

    preamble: str = "base"
    wording: str = "plain"
    exemplars: tuple[Exemplar, ...] = ()
    cot: bool = False
    rationales: int = 1
    temperature: float = 0.7
    max_rationale_tokens: int = 64
    both_orders: bool = True
    seed: int = 0
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.wording not in PREAMBLES:
            raise ValueError(f"unknown wording {self.wording!r}; valid: {', '.join(PREAMBLES)}")
        if self.preamble not in PREAMBLES[self.wording]:
            raise ValueError(f"unknown preamble {self.preamble!r}; valid: {', '.join(PREAMBLES[self.wording])}")
        if self.rationales < 1:
            raise ValueError(f"rationales must be at least 1, got {self.rationales}")

    @property
    def name(self) -> str:
        """The technique as the paper names it, e.g. ``Detailed + CoT 1-shot``."""
        return technique_name(self.preamble, len(self.exemplars), self.cot, self.rationales, self.temperature)


def technique_name(preamble: str, shots: int, cot: bool, rationales: int = 1, temperature: float = 0.0) -> str:
    """A labelling technique as the paper names it, e.g. ``Detailed + CoT 1-shot`` (with the sampled
    rationales of self-consistency when there are several)."""
    return (f"{preamble.capitalize()}{' + CoT' if cot else ''} {shots}-shot"
            + (f", {rationales} samples at T {temperature:g}" if cot and rationales > 1 else ""))


def labeller_prompt(text: str, first: str, second: str, config: LabelSpec = LabelSpec(), *,
                    rationale: str | None = None, for_rationale: bool = False) -> str:
    """The labeller's prompt for one ordered pair: preamble, exemplars, the text and the two summaries,
    then the answer cue. With ``for_rationale`` it ends in the request for a rationale instead; with
    ``rationale``, that request, the rationale and then the answer cue (the paper's two-step chain of
    thought: the read-out continues the text in which the rationale was written)."""
    parts = LAYOUT[config.wording]
    blocks = [PREAMBLES[config.wording][config.preamble]]
    for ex in config.exemplars:
        lines = _pair_lines(parts, ex.text, ex.first, ex.second)
        if config.cot and ex.rationale:
            lines.append(f"{parts['ask_rationale']} {ex.rationale.strip()}")
        lines.append(f"{parts['cue']}{' ' if config.wording == 'compact' else ''}{ex.preferred}")
        blocks.append("\n".join(lines))
    lines = _pair_lines(parts, text, first, second)
    if for_rationale:
        lines.append(parts["ask_rationale"])
    else:
        if rationale is not None:
            lines.append(f"{parts['ask_rationale']} {rationale.strip()}")
        lines.append(parts["cue"])
    blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _pair_lines(parts: dict, text: str, first: str, second: str) -> list[str]:
    return [parts["text"].format(text=text), parts["first"].format(s1=first), parts["second"].format(s2=second)]


def score_prompt(text: str, summary: str, wording: str = "plain") -> str:
    """The d-RLAIF prompt: rate one summary of the text from 1 to 10, ending in the score cue."""
    if wording not in LAYOUT:
        raise ValueError(f"unknown wording {wording!r}; valid: {', '.join(LAYOUT)}")
    parts = LAYOUT[wording]
    return "\n".join([parts["score_preamble"], parts["text"].format(text=text), parts["summary"].format(s1=summary),
                      parts["score_cue"]])


def rationale_before_cue(rationale: str, config: LabelSpec) -> str:
    """A generated rationale cut where the model starts answering by itself (at the answer cue)."""
    return rationale.split(LAYOUT[config.wording]["cue"])[0].strip()


def soft_labels(generator, prompts: Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
    """``(n, 2)`` probabilities of "1" and "2" after each prompt: the softmax of their log-probabilities
    (one batched forward pass; nothing is generated)."""
    if not prompts:
        return np.zeros((0, 2))
    return _candidate_probabilities(generator, prompts, ANSWERS, batch_size)


def _candidate_probabilities(generator, prompts, candidates, batch_size) -> np.ndarray:
    """Softmax over the candidates' next-token log-probabilities (renormalised over the candidates)."""
    logprobs = np.asarray(generator.score_next_token_logprobs(list(prompts), list(candidates), batch_size=batch_size),
                          dtype=float)
    with np.errstate(invalid="ignore", over="ignore"):  # an unreadable row (no finite maximum) becomes NaN
        probs = np.exp(logprobs - logprobs.max(axis=1, keepdims=True))
        probs = probs / probs.sum(axis=1, keepdims=True)
    probs[~np.isfinite(probs).all(axis=1)] = np.nan
    return probs


def _read_ordered(generator, pairs: Sequence[tuple[str, str, str]], config: LabelSpec) -> tuple[np.ndarray, list]:
    """P(the first shown summary is better) for each ordered pair, averaged over rationales."""
    if not config.cot:
        prompts = [labeller_prompt(t, a, b, config) for t, a, b in pairs]
        return soft_labels(generator, prompts, batch_size=config.batch_size)[:, 0], [None] * len(pairs)
    asks = [labeller_prompt(t, a, b, config, for_rationale=True) for t, a, b in pairs]
    sampled = config.rationales > 1
    generation = GenerationSpec(max_new_tokens=config.max_rationale_tokens, n=config.rationales,
                                temperature=config.temperature if sampled else 0.0, top_p=1.0, seed=config.seed,
                                batch_size=config.batch_size)
    rationales = generator.generate(asks, generation)
    rationales = [[rationale_before_cue(r, config) for r in rs] for rs in rationales]
    prompts = [labeller_prompt(t, a, b, config, rationale=r) for (t, a, b), rs in zip(pairs, rationales) for r in rs]
    probs = soft_labels(generator, prompts, batch_size=config.batch_size)[:, 0]
    return probs.reshape(len(pairs), config.rationales).mean(axis=1), rationales


@dataclass
class Labels:
    """Soft labels for pairs ``(text, summary_a, summary_b)``.

    ``frame`` has, per pair: ``p_ab`` (P(A better) read in the order A, B), ``p_ba`` (P(A better) read
    in the order B, A, i.e. one minus the swapped read-out's first-position probability; NaN when only
    one order is read), ``p_a`` (their average, or ``p_ab``), ``label`` (0 if A is preferred, 1 if B,
    -1 if the read-out gave no probability: ``readable`` is False, e.g. a model whose log-probabilities
    are all ``-inf`` or NaN) and ``same_position`` (the same *position* won in both orders: the
    position-bias indicator; a nullable boolean, ``<NA>`` when either order is unreadable or only one
    order is read, so that an unreadable pair never counts as position bias, see `same_position`).
    """

    frame: pd.DataFrame
    config: LabelSpec
    rationales: list = field(default_factory=list, repr=False)


def label_pairs(generator, pairs: Sequence[tuple[str, str, str]], config: LabelSpec = LabelSpec()) -> Labels:
    """Label ``(text, summary_a, summary_b)`` pairs with soft labels (see `Labels`)."""
    pairs = list(pairs)
    p_ab, rationales = _read_ordered(generator, pairs, config)
    frame = pd.DataFrame({"p_ab": p_ab})
    if config.both_orders:
        first_when_swapped, swapped_rationales = _read_ordered(generator, [(t, b, a) for t, a, b in pairs], config)
        frame["p_ba"] = 1.0 - first_when_swapped
        frame["p_a"] = (frame.p_ab + frame.p_ba) / 2
        same = pd.Series((frame.p_ab > 0.5).to_numpy() == (first_when_swapped > 0.5), dtype="boolean")
        frame["same_position"] = same.mask(frame.p_ab.isna() | frame.p_ba.isna())
        rationales = list(zip(rationales, swapped_rationales))
    else:
        frame["p_ba"] = np.nan
        frame["p_a"] = frame.p_ab
        frame["same_position"] = pd.Series(pd.NA, index=frame.index, dtype="boolean")
    frame["readable"] = frame.p_a.notna()
    frame["label"] = np.where(frame.p_a >= 0.5, 0, np.where(frame.readable, 1, -1))
    return Labels(frame, config, rationales)


def same_position(frame: pd.DataFrame) -> pd.Series:
    """Per pair of a `Labels` frame, 1.0 when the same position won in both orders, 0.0 when not, and
    NaN when there is no such reading: either order unreadable (``p_ab`` or ``p_ba`` NaN) or only one
    order read. Position-bias figures are means over the non-NaN pairs, with the NaN ones counted as
    unreadable beside them. Reads frames written before ``same_position`` was nullable too (in which
    an unreadable pair was marked as the same position)."""
    readable = frame.p_ab.notna() & frame.p_ba.notna()
    return frame.same_position.astype("boolean").astype(float).where(readable)


def direct_scores(generator, items: Sequence[tuple[str, str]], *, wording: str = "plain",
                  batch_size: int | None = None, tally: Counter | None = None) -> np.ndarray:
    """d-RLAIF rewards for ``(text, summary)`` items: the labeller's expected 1-10 score, from the
    softmax over the ten score tokens after the cue, rescaled linearly to [-1, 1]. Every score must be
    a single token of the tokenizer (the read-out raises otherwise).

    An unreadable read-out (log-probabilities that give no distribution: all ``-inf``, NaN, ``+inf``)
    gets `UNREADABLE_REWARD`, the reward of the lowest score (1 -> -1), never NaN, which would poison
    the RL update. The lowest score, not the midpoint, because in d-RLAIF the labeller's score is the
    only reward: a summary the labeller cannot rate earns no credit, as a judge's answer without a
    readable score earns none, and the policy can never gain by writing text that breaks the read-out
    (with the midpoint, a policy rated below average would). ``tally``, when given, counts the items
    under ``"scored"`` and the unreadable ones under ``"unreadable"``.
    """
    prompts = [score_prompt(t, s, wording) for t, s in items]
    if not prompts:
        return np.zeros(0)
    expected = _candidate_probabilities(generator, prompts, SCORES, batch_size) @ np.arange(1, 11)
    readable = np.isfinite(expected)
    if tally is not None:
        tally.update(scored=len(prompts), unreadable=int((~readable).sum()))
    return np.where(readable, (expected - 5.5) / 4.5, UNREADABLE_REWARD)


def template_words() -> set[str]:
    """Every word of the compact wording outside its placeholders (for the word-level tokenizer)."""
    texts = list(PREAMBLES["compact"].values()) + list(LAYOUT["compact"].values())
    return {w for text in texts for w in re.sub(r"\{\w+\}", " ", text).split()} | set(ANSWERS) | set(SCORES)
