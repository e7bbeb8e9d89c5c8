"""LLM-as-a-Judge: a model scores (instruction, response) pairs on the additive 0-5 rubric.

As in Self-Rewarding Language Models, each pair is judged ``samples`` times (K = 3 in the paper) by
sampling, every judgment's ``Score: N`` is parsed, and the parsed scores are averaged. Judgments whose
score cannot be read are counted (by reason, see `repro.judges.parsing`) and left out of the
average; a pair with no readable judgment has no score (NaN), never a silent 0.

All judgments of a batch come from ONE call to the generator: the K samples of a pair share one
prompt as K return sequences (``n=K``), so the prompt is encoded once per pair.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from repro.generation import GenerationSpec, Generator
from repro.judges.parsing import ScoreTally
from repro.judges.rubric import DEFAULT_TEMPLATE, judge_messages


@dataclass(frozen=True)
class JudgeSpec:
    """How the judge samples its judgments.

    Attributes:
        samples: judgments per pair, averaged (the paper's K = 3).
        temperature, top_p: sampling of the judgments.
        max_new_tokens: longest judgment.
        template: the judge prompt (`repro.judges.rubric.TEMPLATES`).
        seed: sampling seed.
        batch_size: pairs per forward batch.
    """

    samples: int = 3
    temperature: float = 0.7
    top_p: float = 0.9
    max_new_tokens: int = 40
    template: str = DEFAULT_TEMPLATE
    seed: int = 0
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise ValueError(f"JudgeSpec.samples must be >= 1, got {self.samples}")

    def generation(self) -> GenerationSpec:
        return GenerationSpec(max_new_tokens=self.max_new_tokens, temperature=self.temperature,
                              top_p=self.top_p, n=self.samples, seed=self.seed, batch_size=self.batch_size)


@dataclass
class Judgments:
    """The judge's output for a list of pairs.

    Attributes:
        frame: one row per pair: ``score`` (mean of the parsed scores, NaN if none parsed),
            ``parsed`` (how many of the K judgments had a readable score), ``scores`` (the K parsed
            values, None where unreadable) and ``judgments`` (the K texts).
        tally: counts of every parse status over all judgments.
    """

    frame: pd.DataFrame
    tally: ScoreTally

    @property
    def scores(self) -> list[float]:
        return self.frame["score"].tolist()


def judge(generator: Generator, pairs: Sequence[tuple[str, str]], config: JudgeSpec = JudgeSpec()) -> Judgments:
    """Score each ``(instruction, response)`` pair with the judge model behind ``generator``."""
    prompts = [judge_messages(instruction, response, config.template) for instruction, response in pairs]
    outputs = generator.generate(prompts, config.generation()) if prompts else []
    tally = ScoreTally()
    rows = []
    for texts in outputs:
        parsed = [tally.parse(text) for text in texts]
        values = [p.value for p in parsed]
        readable = [v for v in values if v is not None]
        rows.append({
            "score": sum(readable) / len(readable) if readable else math.nan,
            "parsed": len(readable),
            "scores": values,
            "judgments": list(texts),
        })
    frame = pd.DataFrame(rows, columns=["score", "parsed", "scores", "judgments"])
    return Judgments(frame, tally)
