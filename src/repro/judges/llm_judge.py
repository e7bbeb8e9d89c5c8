"""LLM-as-a-Judge: a model scores (instruction, response) pairs on the additive 0-5 rubric.

As in Self-Rewarding Language Models, each pair is judged ``samples`` times (K = 3 in the paper) by
sampling, every judgment's ``Score: N`` is parsed, and the parsed scores are averaged. Judgments whose
score cannot be read are counted (by reason, see `repro.judges.parsing`) and left out of the
average; a pair with no readable judgment has no score (NaN), never a silent 0.

All judgments of a batch come from ONE call to the generator: the K samples of a pair share one
prompt as K return sequences (``n=K``), so the prompt is encoded once per pair.

**Reading a judgment that gives no score** (``JudgeSpec.readout``). ``"parse"`` (the paper's reading, the
default) leaves it unscored. ``"cue"`` completes it in the format the rubric asked for: the judge's own
text is continued with ``Score: `` (`SCORE_CUE`) as the start of its reply, and the score is the most
probable of the tokens ``0`` to ``5`` after it, read in one forward pass as the RLAIF labeller reads its
answer. Small real models often write a justification and stop, or ramble past the token limit, without
the final ``Score:`` line; the cue asks the same model, after the same justification, for the number
the rubric wanted. Scores read this way are counted apart (``read_at_cue``), so a reader sees how many
judgments needed it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from repro.generation import GenerationSpec, Generator
from repro.judges.parsing import ScoreTally
from repro.judges.rubric import DEFAULT_TEMPLATE, judge_messages


READOUTS = ("parse", "cue")
#: What the cue read-out appends to a judgment that gives no score, as the start of the judge's reply.
SCORE_CUE = "Score: "
#: The scores the cue read-out chooses among (the rubric's 0 to 5 points), one token each.
SCORE_TOKENS = tuple(str(points) for points in range(6))


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
        readout: ``"parse"`` (a judgment without a readable score is unscored) or ``"cue"`` (it is
            completed with `SCORE_CUE` and the score read from the next token's probabilities).
    """

    samples: int = 3
    temperature: float = 0.7
    top_p: float = 0.9
    max_new_tokens: int = 40
    template: str = DEFAULT_TEMPLATE
    seed: int = 0
    batch_size: int = 64
    readout: str = "parse"

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise ValueError(f"JudgeSpec.samples must be >= 1, got {self.samples}")
        if self.readout not in READOUTS:
            raise ValueError(f"unknown judge read-out {self.readout!r}; valid: {', '.join(READOUTS)}")

    def key(self) -> dict:
        """The settings as they enter stage keys: ``readout`` only when it is not the default, so that
        stages keyed before it existed keep their keys."""
        out = asdict(self)
        if out["readout"] == "parse":
            del out["readout"]
        return out

    def generation(self) -> GenerationSpec:
        return GenerationSpec(max_new_tokens=self.max_new_tokens, temperature=self.temperature,
                              top_p=self.top_p, n=self.samples, seed=self.seed, batch_size=self.batch_size)


@dataclass
class Judgments:
    """The judge's output for a list of pairs.

    Attributes:
        frame: one row per pair: ``score`` (mean of the readable scores, NaN if none), ``parsed`` (how
            many of the K judgments had a readable score), ``scores`` (the K values, None where
            unreadable), ``judgments`` (the K texts) and ``read_at_cue`` (how many of the scores the cue
            read-out gave; 0 with ``readout="parse"``).
        tally: counts of every parse status over all judgments (as written, before any cue read-out).
        read_at_cue: judgments whose score came from the cue read-out.
    """

    frame: pd.DataFrame
    tally: ScoreTally
    read_at_cue: int = 0

    @property
    def scores(self) -> list[float]:
        return self.frame["score"].tolist()


def cue_scores(generator, prompts: Sequence, judgments: Sequence[str], *, batch_size: int | None = None) -> list[int]:
    """The cue read-out: for each judge prompt (a conversation) and the judgment written for it, the most
    probable score token after the judgment continued with `SCORE_CUE` (one batched forward pass)."""
    if not prompts:
        return []
    continued = [[*prompt, {"role": "assistant", "content": f"{text.rstrip()}\n{SCORE_CUE}"}]
                 for prompt, text in zip(prompts, judgments, strict=True)]
    logprobs = np.asarray(generator.score_next_token_logprobs(continued, list(SCORE_TOKENS), batch_size=batch_size))
    return [int(points) for points in logprobs.argmax(axis=1)]


def judge(generator: Generator, pairs: Sequence[tuple[str, str]], config: JudgeSpec = JudgeSpec()) -> Judgments:
    """Score each ``(instruction, response)`` pair with the judge model behind ``generator``."""
    prompts = [judge_messages(instruction, response, config.template) for instruction, response in pairs]
    outputs = generator.generate(prompts, config.generation()) if prompts else []
    tally = ScoreTally()
    values = [[tally.parse(text).value for text in texts] for texts in outputs]
    cued = [[False] * len(texts) for texts in outputs]
    if config.readout == "cue":
        missing = [(i, j) for i, row in enumerate(values) for j, value in enumerate(row) if value is None]
        read = cue_scores(generator, [prompts[i] for i, _ in missing], [outputs[i][j] for i, j in missing],
                          batch_size=config.batch_size)
        for (i, j), points in zip(missing, read):
            values[i][j], cued[i][j] = float(points), True
    rows = []
    for texts, row, row_cued in zip(outputs, values, cued):
        readable = [v for v in row if v is not None]
        rows.append({
            "score": sum(readable) / len(readable) if readable else math.nan,
            "parsed": len(readable),
            "scores": row,
            "judgments": list(texts),
            "read_at_cue": sum(row_cued),
        })
    frame = pd.DataFrame(rows, columns=["score", "parsed", "scores", "judgments", "read_at_cue"])
    return Judgments(frame, tally, int(frame.read_at_cue.sum()) if len(frame) else 0)
