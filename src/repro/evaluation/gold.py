"""Gold judges: who scores responses for *measurement* (never for training).

At the tiny scale the gold judge is the world's oracle: exact, free, and order-free. At paper scale
the world cannot score real prompts, and the papers used GPT-4 or humans, which this project cannot
call; the stand-in is a strong open model given by path, scoring each response 0-5 with the same
additive rubric prompt as the self-judge (`repro.judges`), K samples averaged. Both give one float
per (prompt, response), NaN where there is no score, and a ``key`` for the run store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from repro import world
from repro.generation import DEFAULT_ENGINE
from repro.judges.llm_judge import JudgeSpec, judge


@dataclass(frozen=True)
class OracleGold:
    """The world's oracle (`repro.world.oracle_score`); NaN for a prompt that is not a world task."""

    def key(self) -> dict[str, Any]:
        return {"gold": "oracle", "world": world.WORLD_VERSION}

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        tasks: dict[str, Any] = {}
        out = np.full(len(prompts), np.nan)
        for i, (prompt, response) in enumerate(zip(prompts, responses, strict=True)):
            if prompt not in tasks:
                tasks[prompt] = world.parse_prompt(prompt)
            if tasks[prompt] is not None:
                out[i] = world.oracle_score(tasks[prompt], response)
        return out


@dataclass(frozen=True)
class JudgeGold:
    """An LLM judge used as the gold standard: the model of ``stage`` (usually an external-model
    stage) through ``engine``, scoring with ``config`` (samples averaged; unreadable -> NaN)."""

    stage: Any
    engine: Any = None
    config: Any = None

    def key(self) -> dict[str, Any]:
        return {"gold": "judge", "model": self.stage.key, "judge": (self.config or JudgeSpec()).key(),
                "engine": (self.engine or DEFAULT_ENGINE).key()}

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        generator = (self.engine or DEFAULT_ENGINE).generator(self.stage)
        judged = judge(generator, list(zip(prompts, responses, strict=True)), self.config or JudgeSpec())
        return judged.frame.score.to_numpy(dtype=float)


@dataclass(frozen=True)
class NoGold:
    """No gold judge: every score NaN (paper-scale training data, measured by nobody)."""

    def key(self) -> dict[str, Any]:
        return {"gold": None}

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        return np.full(len(prompts), np.nan)


ORACLE = OracleGold()
NO_GOLD = NoGold()
