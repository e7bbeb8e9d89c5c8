"""Self-Rewarding Language Models on the verifiable world: seed data (IFT, EFT).

The paper's seed data come from Open Assistant: IFT = first-turn prompts with their best human reply;
EFT = prompts with several human-ranked replies, each judged by the SFT baseline (a justification and
``Score: N``), a judgment kept only when the scores rank the replies as the humans did, and the kept
set resampled so that the most frequent score does not dominate. Here the world plays Open Assistant:

- IFT: world tasks with a concise correct response (oracle quality 5);
- EFT candidates: tasks with several responses of *distinct* oracle qualities, so that their ranking is
  known exactly (the analog of human-ranked sibling replies);
- EFT judgments: written by the SFT baseline (``source="model"``, as in the paper) or, as a
  documented alternative for a base model that cannot judge at all, the world's own judgment of the
  true score (``source="oracle"``).

IFT, EFT-train, EFT-eval and the evaluation prompts come from separate seed streams and share no task.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from repro import world
from repro.data import oasst
from repro.judges.rubric import judge_messages
from repro.studies.common import chat

# Seed streams of the world, one per use, far apart from the corpus's (world_seed) and the
# held-out tasks' (`repro.studies.base.HELD_OUT_SEED_OFFSET`).
IFT_SEED_OFFSET = 2_000_003
EFT_SEED_OFFSET = 3_000_017


@dataclass(frozen=True)
class SeedDataSpec:
    """Sizes of the seed data (the paper: 3,200 IFT; 1,630 EFT train / 541 EFT eval examples)."""

    world_seed: int = 0
    difficulty: tuple[int, int] = (1, 2)
    ift_size: int = 3200
    eft_train_prompts: int = 1500
    eft_eval_prompts: int = 150
    responses_per_prompt: int = 3

    @classmethod
    def from_parameters(cls, p: Mapping[str, Any]) -> SeedDataSpec:
        """The seed data of a notebook's parameters (``10_self_rewarding``, and ``30_eva`` for its SFT policy)."""
        return cls(world_seed=p["world_seed"], difficulty=tuple(p["difficulty"]), ift_size=p["ift_size"],
                   eft_train_prompts=p["eft_train_prompts"], eft_eval_prompts=p["eft_eval_prompts"])


def _unique_tasks(n: int, seed: int, difficulty, exclude: set[str]) -> list[world.Task]:
    """``n`` tasks with distinct uids outside ``exclude`` (families balanced as far as they go)."""
    chosen, seen = [], set(exclude)
    attempt = 0
    while len(chosen) < n and attempt < 20:
        for task in world.sample_tasks(max(2 * (n - len(chosen)), 12), seed=seed + attempt, difficulty=difficulty):
            if task.uid not in seen and len(chosen) < n:
                seen.add(task.uid)
                chosen.append(task)
        attempt += 1
    return chosen


def ift_records(spec: SeedDataSpec, exclude: set[str] = frozenset()) -> list[dict]:
    """Instruction fine-tuning data: prompt -> a concise correct response (trl conversational format)."""
    rng = random.Random(spec.world_seed + IFT_SEED_OFFSET)
    tasks = _unique_tasks(spec.ift_size, spec.world_seed + IFT_SEED_OFFSET, spec.difficulty, set(exclude))
    return [{"uid": t.uid, "family": t.family, "prompt": chat(t.prompt),
             "completion": [{"role": "assistant", "content": world.write_response(t, 5, rng)}]} for t in tasks]


def eft_candidates(spec: SeedDataSpec, n_prompts: int, stream: int, exclude: set[str]) -> pd.DataFrame:
    """Tasks each with ``responses_per_prompt`` responses of distinct oracle qualities (known ranking).

    One row per response: ``prompt_id`` (the task uid), ``family``, ``prompt``, ``response``, ``gold``.
    """
    seed = spec.world_seed + EFT_SEED_OFFSET + stream
    rng = random.Random(seed)
    rows = []
    for task in _unique_tasks(n_prompts, seed, spec.difficulty, exclude):
        for quality in sorted(rng.sample(range(6), spec.responses_per_prompt), reverse=True):
            rows.append({"prompt_id": task.uid, "family": task.family, "prompt": task.prompt,
                         "response": world.write_response(task, quality, rng), "gold": quality})
    return pd.DataFrame(rows)


def rankings_agree(frame: pd.DataFrame, score: str = "judge") -> pd.Series:
    """Per prompt: True when the judge's scores order every pair of responses as the gold scores do
    (no reversed pair, and no tie between responses of different gold quality)."""

    def agree(group: pd.DataFrame) -> bool:
        g, j = group["gold"].to_numpy(), group[score].to_numpy()
        if pd.isna(j).any():
            return False
        return all((g[a] > g[b]) == (j[a] > j[b]) and (g[a] == g[b]) == (j[a] == j[b])
                   for a in range(len(g)) for b in range(a + 1, len(g)))

    return frame.groupby("prompt_id", sort=False).apply(agree, include_groups=False)


def rebalance(frame: pd.DataFrame, column: str = "judge", seed: int = 0) -> pd.DataFrame:
    """Downsample the most frequent score to the count of the second most frequent one, so that it
    does not dominate (the paper's EFT resampling; its most frequent score was 4)."""
    counts = Counter(frame[column])
    if len(counts) < 2:
        return frame
    (top, _), (_, second) = counts.most_common(2)
    keep = frame[frame[column] != top]
    sampled = frame[frame[column] == top].sample(n=second, random_state=seed)
    return pd.concat([keep, sampled]).sort_index()


def eft_records(frame: pd.DataFrame, judgment: str = "judgment") -> list[dict]:
    """Evaluation fine-tuning data: the judge prompt -> the kept judgment (trl conversational format)."""
    return [{"uid": f"{row.prompt_id}-{i}", "prompt": judge_messages(row.prompt, row.response),
             "completion": [{"role": "assistant", "content": getattr(row, judgment)}]}
            for i, row in enumerate(frame.itertuples(index=False))]


def oracle_judgments(frame: pd.DataFrame, seed: int = 0) -> list[str]:
    """The world's judgment of each response at its true quality (the ``source="oracle"`` EFT)."""
    rng = random.Random(seed)
    out = []
    for row in frame.itertuples(index=False):
        task = world.parse_prompt(row.prompt)
        out.append(world.judgment(task, row.response, row.gold, rng))
    return out


def world_eft_frames(spec: SeedDataSpec, exclude: set[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """World EFT candidates: train and held-out eval sets, no prompt in both or in ``exclude``."""
    train = eft_candidates(spec, spec.eft_train_prompts, stream=0, exclude=set(exclude))
    evaluation = eft_candidates(spec, spec.eft_eval_prompts, stream=1, exclude=set(exclude) | set(train.prompt_id))
    return train, evaluation


def oasst_seed_data(source, *, ift_size: int | None = 3200, eft_train_prompts: int | None = None,
                    eft_eval_prompts: int | None = None, seed: int = 0, lang: str = "en"):
    """The paper's seed data from Open Assistant (a hub id, file or folder; `repro.data.oasst`):
    IFT records, and EFT train / eval candidate frames (one row per ranked reply, ``gold`` = higher
    for a better human rank), split so that no conversation tree is in two of them. Returns
    ``(ift, eft_train, eft_eval, data_key)``."""
    messages = oasst.load_oasst_messages(source)
    split = oasst.split_by_tree(oasst.ift_examples(messages, lang=lang), oasst.eft_candidates(messages, lang=lang),
                                n_ift=ift_size, n_eft_train=eft_train_prompts, n_eft_eval=eft_eval_prompts, seed=seed)

    def frame(candidates) -> pd.DataFrame:
        rows = [{"prompt_id": c.prompt_id, "family": "", "prompt": c.prompt, "response": r.text,
                 "gold": float(max(x.rank for x in c.replies) - r.rank)} for c in candidates for r in c.replies]
        return pd.DataFrame(rows, columns=["prompt_id", "family", "prompt", "response", "gold"])

    ift = [{**r, "uid": r["id"]} for r in split.ift]
    key = {"oasst": str(source), "lang": lang, "seed": seed, **split.counts()}
    return ift, frame(split.eft_train), frame(split.eft_eval), key
