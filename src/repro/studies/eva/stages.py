"""eva (Ye et al., 2024): the creator's estimate, sample and mix steps (issue 5 groundwork).

The creator looks at a reward matrix ``R`` of shape ``(prompts, responses)``: for each prompt, the
rewards of ``n`` responses sampled from the current policy. A prompt is *informative* when its
responses differ in reward, since a preference pair built from it (best vs worst) teaches the
solver something. `INFORMATIVENESS` names the metrics, each a non-negative function of one row:

- ``reward_gap`` (the paper's default): ``max(r) - min(r)``;
- ``advantage``: ``max(r) - mean(r)``, how far the best response stands out;
- ``std``: the standard deviation of the row (population, ``ddof=0``);
- ``low_mean``: ``max over prompts of mean(r) - mean(r)``, so that prompts the policy does worst on
  come first;
- ``uniform``: 1 for every prompt (the baseline without a signal).

`select` keeps a fraction of the prompts: ``"sample"`` draws them without replacement with
probability proportional to informativeness (the paper's choice), ``"greedy"`` takes the top ones,
``"uniform"`` ignores informativeness. `mix` adds old prompts to the evolved ones (the paper: 80%
evolved, 20% old).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from repro import world
from repro.data import alpaca_eval, mt_bench, ultrafeedback
from repro.evaluation.gold import ORACLE
from repro.evaluation.metrics import win_rate, win_tie_loss_both_orders
from repro.generation import DEFAULT_ENGINE, GenerationSpec, model_location
from repro.judges.sequence_rm import SequenceRewardModel
from repro.progress import show_progress
from repro.runs.launch import launch_key, launch_param
from repro.runs.store import RunStore, Stage, params_hash
from repro.studies.common import oracle_agreement, preference_key, respond_and_score, settings_key, train_on_pairs
from repro.studies.eva import evolver as eva_evolver
from repro.training.jobs import reward_job, run_job
from repro.training.preference import PreferenceSpec
from repro.training.reward import RewardSpec, load_reward_model, reward_scores
from repro.world import mutations

INFORMATIVENESS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "reward_gap": lambda r: r.max(axis=1) - r.min(axis=1),
    "advantage": lambda r: r.max(axis=1) - r.mean(axis=1),
    "std": lambda r: r.std(axis=1),
    "low_mean": lambda r: r.mean(axis=1).max() - r.mean(axis=1),
    "uniform": lambda r: np.ones(r.shape[0]),
}
SELECTIONS = ("sample", "greedy", "uniform")


def informativeness(rewards, metric: str = "reward_gap") -> np.ndarray:
    """One non-negative informativeness per prompt (row) of a reward matrix (see the module)."""
    if metric not in INFORMATIVENESS:
        raise ValueError(f"unknown informativeness metric {metric!r}; valid: {', '.join(INFORMATIVENESS)}")
    matrix = np.asarray(rewards, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise ValueError(f"rewards must be a non-empty (prompts, responses) matrix, got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ValueError("rewards must be finite (a NaN or inf reward cannot rank prompts)")
    # The mean of equal floats can exceed their maximum by one rounding step (max - mean = -5.6e-17
    # for six rewards of 0.3616): such round-off is clipped to the zero it stands for.
    return np.maximum(INFORMATIVENESS[metric](matrix), 0.0)


def select(scores: Sequence[float], fraction: float = 0.25, *, how: str = "sample", seed: int = 0) -> np.ndarray:
    """Indices of the prompts kept: ``round(fraction * n)`` of them (at least one), in the order
    drawn (``"sample"``), by decreasing informativeness with ties by index (``"greedy"``), or at
    random (``"uniform"``). Sampling gives every prompt a tiny floor weight, so prompts without any
    reward spread can still be drawn once the informative ones run out."""
    values = np.asarray(scores, dtype=float)
    if how not in SELECTIONS:
        raise ValueError(f"unknown selection {how!r}; valid: {', '.join(SELECTIONS)}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if values.ndim != 1 or values.size == 0 or (values < 0).any() or not np.isfinite(values).all():
        raise ValueError("scores must be a non-empty list of finite, non-negative informativeness values")
    k = max(1, round(fraction * values.size))
    rng = np.random.default_rng(seed)
    if how == "greedy":
        return np.argsort(-values, kind="stable")[:k]
    if how == "uniform":
        return rng.choice(values.size, size=k, replace=False)
    weights = values + 1e-12 * max(values.max(), 1.0)
    return rng.choice(values.size, size=k, replace=False, p=weights / weights.sum())


def mix(evolved: Sequence, old: Sequence, *, evolved_share: float = 0.8, seed: int = 0) -> list:
    """The evolved prompts plus enough old prompts, drawn uniformly without replacement, that the
    evolved ones make up ``evolved_share`` of the result (as far as ``old`` allows)."""
    if not 0 < evolved_share <= 1:
        raise ValueError(f"evolved_share must be in (0, 1], got {evolved_share}")
    wanted = round(len(evolved) * (1 - evolved_share) / evolved_share)
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(old), size=min(wanted, len(old)), replace=False) if len(old) else []
    return list(evolved) + [old[i] for i in picked]



# == the study's pieces: prompt sets, reward models, samples, creator, solver, evaluation ============
# Everything below is a cached stage of the run store (`repro.runs.store`), or a plain function one of
# them calls. `repro.studies.eva.study` chains them into the paper's protocol.
STAGE_VERSION = "eva-1"
#: Seed streams of the world's eva prompt sets (far from every other study's streams).
PROMPT_STREAMS = {"chunks": 7_000_001, "standard": 7_100_003, "hard": 7_200_007, "two_turn": 7_300_009,
                  "reward_data": 7_400_011, "calibration": 7_500_013, "dev": 7_600_017}
PROMPT_COLUMNS = ["uid", "family", "difficulty", "prompt"]


# -- prompt sets ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PromptSpec:
    """The world's prompt sets (the analogs of UltraFeedback's chunks, AlpacaEval, Arena-Hard, MT-Bench).

    ``chunks`` chunks of ``chunk_size`` training prompts at the SFT policy's difficulties; a
    *standard* evaluation set from the same distribution; a *hard* set one level or more above it
    (``hard_difficulty``); a *two-turn* set whose second turn asks a harder version of the first
    turn's task (an in-depth mutation: a follow-up that adds to what was asked).
    """

    world_seed: int = 0
    difficulty: tuple[int, int] = (1, 2)
    chunk_size: int = 200
    chunks: int = 4
    standard_prompts: int = 100
    hard_prompts: int = 100
    hard_difficulty: int = 3
    two_turn_prompts: int = 50

    def __post_init__(self) -> None:
        for name in ("chunk_size", "chunks", "standard_prompts", "hard_prompts", "two_turn_prompts"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.hard_difficulty not in world.DIFFICULTIES:
            raise ValueError(f"hard_difficulty must be one of {list(world.DIFFICULTIES)}, got {self.hard_difficulty}")


def _fresh(n: int, seed: int, difficulty, seen: set[str]) -> list[world.Task]:
    """``n`` tasks from a seed stream, none whose prompt is in ``seen`` (which grows)."""
    out: list[world.Task] = []
    batch = 0
    while len(out) < n:
        for task in world.sample_tasks(2 * n, seed=seed + batch, difficulty=difficulty):
            if task.prompt not in seen and len(out) < n:
                seen.add(task.prompt)
                out.append(task)
        batch += 1
        if batch > 50:
            raise ValueError(f"the world ran out of new tasks after {len(out)} of {n}")
    return out


def task_rows(tasks: list[world.Task], **extra) -> pd.DataFrame:
    return pd.DataFrame([{"uid": t.uid, "family": t.family, "difficulty": t.difficulty, "prompt": t.prompt, **extra}
                         for t in tasks], columns=[*PROMPT_COLUMNS, *extra])


def world_prompt_sets(spec: PromptSpec, exclude: set[str] = frozenset()) -> dict[str, pd.DataFrame]:
    """The prompt sets of `PromptSpec` as frames (``chunks`` with a ``chunk`` column 1..; ``standard``;
    ``hard``; ``two_turn`` with ``turn_1``/``turn_2`` prompts). No prompt is in two sets or in
    ``exclude`` (the SFT data's prompts)."""
    seen = set(exclude)
    ws = spec.world_seed
    evaluation = {
        "standard": task_rows(_fresh(spec.standard_prompts, ws + PROMPT_STREAMS["standard"], spec.difficulty, seen)),
        "hard": task_rows(_fresh(spec.hard_prompts, ws + PROMPT_STREAMS["hard"], spec.hard_difficulty, seen)),
    }
    firsts = _fresh(spec.two_turn_prompts, ws + PROMPT_STREAMS["two_turn"], spec.difficulty, seen)
    rng = random.Random(ws + PROMPT_STREAMS["two_turn"])
    rows = []
    for first in firsts:
        for _ in range(20):
            second = mutations.in_depth(first, rng)
            if second.prompt not in seen and mutations.valid(second):
                break
        else:
            continue
        seen.add(second.prompt)
        rows.append({"uid": first.uid, "family": first.family, "difficulty": first.difficulty, "turn_1": first.prompt,
                     "turn_2": second.prompt, "family_2": second.family, "difficulty_2": second.difficulty})
    evaluation["two_turn"] = pd.DataFrame(rows)
    chunks = [task_rows(_fresh(spec.chunk_size, ws + PROMPT_STREAMS["chunks"] + 1000 * c, spec.difficulty, seen),
                        chunk=c + 1) for c in range(spec.chunks)]
    return {"chunks": pd.concat(chunks, ignore_index=True), **evaluation}


def prompt_sets_stage(store: RunStore, spec: PromptSpec, *, exclude: set[str] = frozenset(),
                      exclude_key: Any = None, upstream=()) -> Stage:
    """`world_prompt_sets` written as ``chunks.parquet``, ``standard.parquet``, ``hard.parquet`` and
    ``two_turn.parquet`` (one stage, seed-independent: every seed of every run sees the same sets)."""
    params = {"version": STAGE_VERSION, "world": world.WORLD_VERSION, **asdict(spec),
              "exclude": exclude_key if exclude_key is not None else params_hash(sorted(exclude))}

    def compute(workdir: Path) -> dict:
        sets = world_prompt_sets(spec, set(exclude))
        for name, frame in sets.items():
            frame.to_parquet(workdir / f"{name}.parquet", index=False)
        return {name: len(frame) for name, frame in sets.items()}

    return store.run("eva-prompts", params, compute, upstream=list(upstream))


def dev_prompts_stage(store: RunStore, spec: PromptSpec, n: int, prompts: Stage) -> Stage:
    """``n`` development prompts, the analog of the hard set (its difficulty, a seed stream of their own),
    none in any set of ``prompts`` (training chunks and held-out sets) nor in the SFT data (at the policy's
    easier difficulties). Written as ``hard.parquet`` so that `evaluate_stage` reads them as it reads the
    held-out hard set; learner settings are chosen on them and never on a held-out prompt."""
    params = {"version": STAGE_VERSION, "world": world.WORLD_VERSION, "world_seed": spec.world_seed,
              "difficulty": spec.hard_difficulty, "prompts": n}

    def compute(workdir: Path) -> dict:
        seen: set[str] = set()
        for name in ("chunks", "standard", "hard"):
            if (frame := read_set(prompts, name)) is not None:
                seen.update(frame.prompt)
        if (two := read_set(prompts, "two_turn")) is not None and len(two):
            seen.update(two.turn_1)
            seen.update(two.turn_2)
        frame = task_rows(_fresh(n, spec.world_seed + PROMPT_STREAMS["dev"], spec.hard_difficulty, seen))
        frame.to_parquet(workdir / "hard.parquet", index=False)
        return {"prompts": len(frame)}

    return store.run("eva-dev-prompts", params, compute, upstream=[prompts])


def file_prompt_sets_stage(store: RunStore, *, train: str, standard: str = "", hard: str = "", two_turn: str = "",
                           chunk_size: int = 10_000, chunks: int = 2, seed: int = 0) -> Stage:
    """The paper-scale prompt sets: UltraFeedback prompts (`repro.data.ultrafeedback`) shuffled with
    ``seed`` and cut into ``chunks`` chunks of ``chunk_size``; AlpacaEval-format standard prompts,
    Arena-Hard questions and MT-Bench two-turn questions (`repro.data.alpaca_eval`,
    `repro.data.mt_bench`). An empty path leaves that set out."""
    def content(path: str) -> Any:
        p = Path(path)
        return hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else path or None

    params = {"version": STAGE_VERSION, "train": content(train), "standard": content(standard), "hard": content(hard),
              "two_turn": content(two_turn), "chunk_size": chunk_size, "chunks": chunks, "seed": seed}

    def compute(workdir: Path) -> dict:
        prompts = ultrafeedback.load_prompts(train).sample(frac=1.0, random_state=seed).reset_index(drop=True)
        if len(prompts) < chunk_size * chunks:
            raise ValueError(f"{train} holds {len(prompts)} distinct prompts, fewer than {chunks} chunks of {chunk_size}")
        prompts = prompts.head(chunk_size * chunks)
        frame = pd.DataFrame({"uid": prompts.uid.astype(str), "family": prompts.get("source", "ultrafeedback"),
                              "difficulty": None, "prompt": prompts.prompt,
                              "chunk": [i // chunk_size + 1 for i in range(len(prompts))]})
        sets = {"chunks": frame}
        if standard:
            std = alpaca_eval.load_alpaca_eval(standard)
            sets["standard"] = pd.DataFrame({"uid": std.uid, "family": std.family, "difficulty": None, "prompt": std.prompt})
        if hard:
            sets["hard"] = mt_bench.load_arena_hard(hard).assign(difficulty=None).rename(
                columns={"category": "family"})[PROMPT_COLUMNS]
        if two_turn:
            mt = mt_bench.load_mt_bench(two_turn)
            sets["two_turn"] = pd.DataFrame({"uid": mt.question_id.astype(str), "family": mt.category, "difficulty": None,
                                             "turn_1": mt.turn_1, "turn_2": mt.turn_2})
        for name, frame in sets.items():
            frame.to_parquet(workdir / f"{name}.parquet", index=False)
        return {name: len(frame) for name, frame in sets.items()}

    return store.run("eva-prompts", params, compute)


def read_set(stage: Stage, name: str) -> pd.DataFrame | None:
    path = stage / f"{name}.parquet"
    return pd.read_parquet(path) if path.exists() else None


# -- reward models -------------------------------------------------------------------------------------
REWARD_KINDS = ("oracle", "noisy", "trained", "path", "random")


def parse_reward(text: str) -> tuple[str, float | int | str | None]:
    """``"oracle"`` (the world's exact score), ``"noisy@0.8"`` (the oracle seen through Gaussian noise
    calibrated to 80% pairwise accuracy), ``"trained@4000"`` (a reward model trained with trl on 4,000
    world preference pairs), ``"path@MODEL"`` (a sequence-classification reward model by path or hub
    id, as the paper's ArmoRM), or ``"random"`` (a uniform random score per response, carrying no
    information: the negative control's reward)."""
    kind, _, arg = str(text).partition("@")
    if kind not in REWARD_KINDS or (kind in ("oracle", "random")) == bool(arg):
        raise ValueError(f"unknown reward model {text!r}; valid: oracle, random, noisy@ACCURACY, trained@PAIRS, "
                         f"path@MODEL")
    if kind == "noisy":
        try:
            value = float(arg)
        except ValueError:
            raise ValueError(f"a noisy oracle is named noisy@ACCURACY (a number), got {text!r}") from None
        if not 0.5 < value < 1:
            raise ValueError(f"a noisy oracle's accuracy must be in (0.5, 1), got {value}")
        return kind, value
    if kind == "trained":
        try:
            pairs = int(arg)
        except ValueError:
            raise ValueError(f"a trained reward model is named trained@PAIRS (a count), got {text!r}") from None
        if pairs < 1:
            raise ValueError(f"a trained reward model needs at least one pair, got {pairs}")
        return kind, pairs
    return kind, arg or None


def writer_pairs(n: int, seed: int, difficulty, exclude: set[str] = frozenset()) -> pd.DataFrame:
    """``n`` world preference pairs: a fresh task and two writer responses of different oracle quality
    (drawn from the corpus's quality mix); ``chosen`` is the better one. The data of the trained reward
    models and of the noisy oracle's calibration."""
    rng = random.Random(seed)
    levels, probs = zip(*sorted(world.DEFAULT_QUALITY_WEIGHTS.items()))
    tasks = _fresh(n, seed, difficulty, set(exclude))
    rows = []
    for task in tasks:
        for _ in range(20):
            a, b = (world.write_response(task, rng.choices(levels, probs)[0], rng) for _ in range(2))
            sa, sb = world.oracle_score(task, a), world.oracle_score(task, b)
            if sa != sb:
                break
        else:
            continue
        chosen, rejected = (a, b) if sa > sb else (b, a)
        rows.append({"uid": task.uid, "prompt": task.prompt, "chosen": chosen, "rejected": rejected,
                     "chosen_oracle": max(sa, sb), "rejected_oracle": min(sa, sb)})
    return pd.DataFrame(rows)


def noise_for_accuracy(gaps: np.ndarray, accuracy: float) -> float:
    """The standard deviation of Gaussian noise added to each score that leaves a pairwise accuracy of
    ``accuracy`` on pairs with score differences ``gaps``: mean Phi(gap / (sigma sqrt 2)) = accuracy,
    solved with scipy's ``brentq`` (exact in expectation, no sampling)."""
    from scipy.optimize import brentq
    from scipy.stats import norm

    gaps = np.abs(np.asarray(gaps, dtype=float))
    if gaps.size == 0 or (gaps == 0).all():
        raise ValueError("calibration needs pairs whose oracle scores differ")
    if not 0.5 < accuracy < norm.cdf(gaps / (1e-6 * np.sqrt(2))).mean():
        raise ValueError(f"no noise gives a pairwise accuracy of {accuracy} on these pairs")
    return float(brentq(lambda sigma: norm.cdf(gaps / (sigma * np.sqrt(2))).mean() - accuracy, 1e-6, 1e6, xtol=1e-10))


def _digest(prompt: str, response: str, salt: str) -> int:
    """64 bits fixed by (prompt, response): a pointwise RM gives one text one score."""
    return int.from_bytes(hashlib.blake2b(f"{salt}\x00{prompt}\x00{response}".encode(), digest_size=8).digest(),
                          "little")


def _noise(prompt: str, response: str, salt: str) -> float:
    """A standard normal draw fixed by (prompt, response)."""
    return float(np.random.default_rng(_digest(prompt, response, salt)).standard_normal())


def _uniform(prompt: str, response: str, salt: str) -> float:
    """A uniform draw on [0, 1) fixed by (prompt, response)."""
    return _digest(prompt, response, salt) / 2**64


@dataclass
class Rewarder:
    """A pointwise reward model: ``score(prompts, responses)`` -> one float each (higher is better).

    ``kind``: oracle, noisy (``sigma`` of the calibrated noise), trained (``model`` and ``tokenizer``
    of a trl reward model), path (``scorer``: `repro.judges.sequence_rm.SequenceRewardModel`), or random
    (uniform on [0, 1), fixed by the prompt and response as a pointwise reward model's score is)."""

    name: str
    kind: str
    sigma: float = 0.0
    model: Any = None
    tokenizer: Any = None
    scorer: Any = None
    batch_size: int = 64

    def score(self, prompts, responses) -> np.ndarray:
        prompts, responses = list(prompts), list(responses)
        if self.kind == "random":
            return np.array([_uniform(p, r, self.name) for p, r in zip(prompts, responses)])
        if self.kind in ("oracle", "noisy"):
            exact = ORACLE.score(prompts, responses)
            if self.kind == "oracle":
                return exact
            return exact + self.sigma * np.array([_noise(p, r, self.name) for p, r in zip(prompts, responses)])
        if self.kind == "trained":
            texts = [self.tokenizer.apply_chat_template([{"role": "user", "content": p},
                                                         {"role": "assistant", "content": r}], tokenize=False)
                     for p, r in zip(prompts, responses)]
            return np.array(reward_scores(self.model, self.tokenizer, texts, batch_size=self.batch_size))
        return np.asarray(self.scorer.score(prompts, responses), dtype=float)


def default_reward_training() -> RewardSpec:
    """How the world's trained reward models are trained by default (trl `RewardTrainer`, from the base
    model): one epoch in batches of 32."""
    return RewardSpec(num_train_epochs=1.0, batch_size=32)


def reward_stage(store: RunStore, reward: str, *, base: Stage | None, world_seed: int = 0, difficulty=(1, 2),
                 training: RewardSpec | None = None, calibration_pairs: int = 2000,
                 evaluation_pairs: int = 2000, trust_remote_code: bool = False, accelerate_config: str | None = None,
                 progress: bool | None = None) -> Stage:
    """What a reward model needs, as a stage: for ``noisy`` the calibrated sigma, for ``trained`` the
    model (``model/``), for ``oracle`` and ``path`` nothing but the name. Every kind is measured on
    ``evaluation_pairs`` fresh world pairs (pairwise accuracy against the oracle), so the book can
    order them by strength. Seed-independent: the reward model is part of the environment.
    ``trust_remote_code``: let a ``path`` reward model run the code its repository ships (ArmoRM
    needs it); off unless asked, and a warning when on. ``accelerate_config``: train a ``trained``
    reward model under ``accelerate launch`` with this config (`repro.training.jobs`). ``training``: trl's
    settings of a ``trained`` reward model (default `default_reward_training`)."""
    kind, arg = parse_reward(reward)
    training = training or default_reward_training()
    if kind == "trained" and base is None:
        raise ValueError(f"the reward model {reward!r} needs a base model to start from")
    params = {"version": STAGE_VERSION, "reward": reward, "world": world.WORLD_VERSION, "world_seed": world_seed,
              "difficulty": list(difficulty), "evaluation_pairs": evaluation_pairs}
    if kind == "noisy":
        params["calibration_pairs"] = calibration_pairs
    if kind == "trained":
        params["training"] = settings_key(training, ("num_train_epochs", "learning_rate", "batch_size", "max_length",
                                                     "seed"))
        params.update(launch_param(accelerate_config))
    if kind == "path":
        params["trust_remote_code"] = bool(trust_remote_code)
    upstream = [base] if kind == "trained" and base is not None else []

    def compute(workdir: Path) -> dict:
        results: dict[str, Any] = {"kind": kind}
        if kind == "path":  # measured on real data at paper scale, not on world pairs
            return {**results, "path": arg}
        evaluation = writer_pairs(evaluation_pairs, world_seed + PROMPT_STREAMS["calibration"] + 1, difficulty)
        evaluation.to_parquet(workdir / "evaluation_pairs.parquet", index=False)
        rewarder = Rewarder(reward, kind)
        if kind == "noisy":
            calib = writer_pairs(calibration_pairs, world_seed + PROMPT_STREAMS["calibration"], difficulty)
            rewarder.sigma = noise_for_accuracy(calib.chosen_oracle - calib.rejected_oracle, arg)
            results["sigma"] = rewarder.sigma
        elif kind == "trained":
            rewarder = _train_reward(base, arg, world_seed, difficulty, training, evaluation, workdir, progress,
                                     accelerate_config=accelerate_config if kind == "trained" else None)
            results.update(json.loads((workdir / "training.json").read_text()))
        chosen = rewarder.score(evaluation.prompt, evaluation.chosen)
        rejected = rewarder.score(evaluation.prompt, evaluation.rejected)
        results["accuracy"] = float(np.mean(chosen > rejected) + 0.5 * np.mean(chosen == rejected))
        return results

    return store.run("eva-reward-model", params, compute, upstream=upstream, seed=training.seed)


def _train_reward(base: Stage, pairs: int, world_seed: int, difficulty, training: RewardSpec,
                  evaluation: pd.DataFrame, workdir: Path, progress, *, accelerate_config: str | None = None) -> Rewarder:
    data = writer_pairs(pairs, world_seed + PROMPT_STREAMS["reward_data"], difficulty,
                        exclude=set(evaluation.prompt))
    records = [{"prompt": [{"role": "user", "content": r.prompt}],
                "chosen": [{"role": "assistant", "content": r.chosen}],
                "rejected": [{"role": "assistant", "content": r.rejected}]} for r in data.itertuples()]
    params = replace(training, progress=show_progress(progress))
    summary = run_job(reward_job, model_location(base), records, params, workdir, accelerate_config=accelerate_config,
                      options={"head_seed": training.seed})
    (workdir / "training.json").write_text(json.dumps({"pairs": len(records), **{
        k: v for k, v in summary.items() if isinstance(v, (int, float, str))}}))
    model, tokenizer = load_reward_model(workdir / "model", device="auto")
    return Rewarder(f"trained@{pairs}", "trained", model=model, tokenizer=tokenizer)


def load_rewarder(stage: Stage, *, device: str | None = None) -> Rewarder:
    """The reward model of a `reward_stage`, ready to score. A ``path@`` model goes to ``device``, by
    default the GPU in bfloat16 when there is one, else the CPU in float32."""
    reward = stage.manifest["params"]["reward"]
    kind, arg = parse_reward(reward)
    if kind == "noisy":
        return Rewarder(reward, kind, sigma=stage.results["sigma"])
    if kind == "trained":
        model, tokenizer = load_reward_model(model_location(stage))
        return Rewarder(reward, kind, model=model, tokenizer=tokenizer)
    if kind == "path":
        trust = bool(stage.manifest["params"].get("trust_remote_code", False))
        if device is None:  # a GPU when there is one, in bfloat16 (an 8B reward model on the CPU takes months)
            import torch

            device = "cuda" if torch.cuda.is_available() else None
        return Rewarder(reward, kind, scorer=SequenceRewardModel(arg, device=device, trust_remote_code=trust,
                                                                 dtype="bfloat16" if device else None))
    return Rewarder(reward, kind)



# -- responses sampled from a policy and scored --------------------------------------------------------
@dataclass(frozen=True)
class SamplingSpec:
    """The n responses per prompt that both the creator and the solver look at (the paper: 6, T 0.7,
    top-p 0.9)."""

    n: int = 6
    temperature: float = 0.7
    top_p: float = 0.9
    max_new_tokens: int = 48
    batch_size: int = 64


def samples_stage(store: RunStore, policy: Stage, prompts: Stage, prompts_file: str, reward: Stage,
                  spec: SamplingSpec, *, seed: int, chunk: int | None = None, engine=None,
                  progress: bool | None = None) -> Stage:
    """``spec.n`` responses of ``policy`` to each prompt of ``prompts/prompts_file`` (only chunk
    ``chunk`` when given), in one batched call, each scored by the reward model and by the gold judge
    (for measurement only): ``responses.parquet`` (prompt columns, sample, response, words, reward,
    oracle)."""
    engine = engine or DEFAULT_ENGINE
    params = {"version": STAGE_VERSION, "file": prompts_file, "chunk": chunk, **asdict(spec), "seed": seed,
              "engine": engine.key()}

    def compute(workdir: Path) -> dict:
        frame = pd.read_parquet(prompts / prompts_file)
        if chunk is not None:
            frame = frame[frame.chunk == chunk]
        frame = frame[[c for c in frame.columns if c in (*PROMPT_COLUMNS, "chunk", "origin")]]
        if frame.empty:  # a creator that kept or evolved nothing: nothing to sample, said in the results
            pd.DataFrame(columns=[*frame.columns, "sample", "response", "words", "oracle", "reward"]).to_parquet(
                workdir / "responses.parquet", index=False)
            return {"prompts": 0, "responses": 0, "mean_reward": None, "mean_oracle": None}
        generator = engine.generator(policy, progress=progress)
        out = respond_and_score(generator, frame.reset_index(drop=True), GenerationSpec(
            n=spec.n, temperature=spec.temperature, top_p=spec.top_p, max_new_tokens=spec.max_new_tokens,
            batch_size=spec.batch_size, seed=seed), gold=ORACLE)
        out["reward"] = load_rewarder(reward).score(out.prompt, out.response)
        out.to_parquet(workdir / "responses.parquet", index=False)
        return {"prompts": int(out.uid.nunique()), "responses": len(out), "mean_reward": float(out.reward.mean()),
                "mean_oracle": float(out.oracle.mean()) if out.oracle.notna().any() else None}

    return store.run("eva-samples", params, compute, upstream=[policy, prompts, reward], seed=seed)


def reward_matrix(responses: pd.DataFrame, column: str = "reward") -> tuple[list[str], np.ndarray]:
    """The (prompts, responses) matrix of ``column``, rows in first-seen prompt order."""
    order = list(dict.fromkeys(responses.uid))
    table = responses.pivot_table(index="uid", columns="sample", values=column, aggfunc="first").loc[order]
    return order, table.to_numpy(dtype=float)


def preference_pairs(responses: pd.DataFrame) -> pd.DataFrame:
    """The solver's pairs: per prompt, the highest-reward response as chosen and the lowest as rejected
    (first in sample order among equals); prompts whose responses all get the same reward give no pair."""
    rows = []
    for uid, group in responses.groupby("uid", sort=False):
        best, worst = group.reward.idxmax(), group.reward.idxmin()
        if group.reward[best] == group.reward[worst]:
            continue
        rows.append({"uid": uid, "prompt": group.prompt.iloc[0], "chosen": group.response[best],
                     "rejected": group.response[worst], "chosen_reward": group.reward[best],
                     "rejected_reward": group.reward[worst], "chosen_oracle": group.oracle[best],
                     "rejected_oracle": group.oracle[worst]})
    return pd.DataFrame(rows, columns=["uid", "prompt", "chosen", "rejected", "chosen_reward", "rejected_reward",
                                       "chosen_oracle", "rejected_oracle"])


# -- the creator: estimate, sample, evolve, mix --------------------------------------------------------
@dataclass(frozen=True)
class CreatorSpec:
    """The creator (the paper's defaults): informativeness ``metric``, ``selection`` of a ``fraction``
    of the prompts, ``evolutions`` chained evolutions of each kept prompt with ``operators``, then
    ``evolved_share`` of evolved prompts mixed with old ones. ``evolve=False`` is the ablation that
    trains on the selected prompts themselves (no evolution, no mix)."""

    metric: str = "reward_gap"
    selection: str = "sample"
    fraction: float = 0.25
    evolve: bool = True
    evolutions: int = 4
    operators: tuple[str, ...] = mutations.OPERATORS
    evolved_share: float = 0.8

    def __post_init__(self) -> None:
        if self.metric not in INFORMATIVENESS:
            raise ValueError(f"unknown informativeness metric {self.metric!r}; valid: {', '.join(INFORMATIVENESS)}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"unknown selection {self.selection!r}; valid: {', '.join(SELECTIONS)}")
        if not 0 < self.fraction <= 1 or not 0 < self.evolved_share <= 1:
            raise ValueError("fraction and evolved_share must be in (0, 1]")
        if self.evolutions < 1:
            raise ValueError(f"evolutions must be at least 1, got {self.evolutions}")


@dataclass(frozen=True)
class WorldEvolver:
    """Evolves world prompts with the world's mutation operators (`repro.world.mutations`)."""

    def key(self) -> dict:
        return {"evolver": "world", "world": world.WORLD_VERSION, "lineage": 2}

    def evolve(self, parents: pd.DataFrame, *, evolutions: int, operators, seed: int) -> tuple[pd.DataFrame, dict]:
        tasks = [world.parse_prompt(p) for p in parents.prompt]
        unreadable = sum(t is None for t in tasks)
        # A prompt read back is the same task, but its uid may be spelt from another spec: the lineage
        # names the parent as the prompt set knows it.
        uid_of = {t.uid: uid for t, uid in zip(tasks, parents.uid) if t is not None}
        records = mutations.evolve([t for t in tasks if t is not None], evolutions=evolutions,
                                   operators=tuple(operators), seed=seed)
        rows = task_rows([r["task"] for r in records]).assign(
            parent=[uid_of[r["parent"]] for r in records], operator=[r["operator"] for r in records],
            step=[r["step"] for r in records])
        report = {"unreadable_parents": unreadable, "asked": evolutions * (len(tasks) - unreadable),
                  "evolved": len(rows)}
        return rows, report


@dataclass(frozen=True)
class LLMEvolver:
    """Evolves real prompts with a language model and EvolInstruct-style rewriting templates
    (`repro.studies.eva.evolver`); the model is that of ``stage`` through ``engine``."""

    stage: Any
    engine: Any = None
    temperature: float = 0.7
    max_new_tokens: int = 512

    def key(self) -> dict:
        return {"evolver": "llm", "model": self.stage.key, "engine": (self.engine or DEFAULT_ENGINE).key(),
                "temperature": self.temperature, "max_new_tokens": self.max_new_tokens}

    def evolve(self, parents: pd.DataFrame, *, evolutions: int, operators, seed: int) -> tuple[pd.DataFrame, dict]:
        generator = (self.engine or DEFAULT_ENGINE).generator(self.stage)
        config = GenerationSpec(temperature=self.temperature, top_p=0.95, max_new_tokens=self.max_new_tokens, seed=seed)
        records, report = eva_evolver.llm_evolve(
            generator, [{"uid": u, "prompt": p} for u, p in zip(parents.uid, parents.prompt)],
            evolutions=evolutions, operators=tuple(operators), config=config, seed=seed)
        rows = [{"uid": r["uid"], "family": None, "difficulty": None,
                 "prompt": r["prompt"], "parent": r["parent"], "operator": r["operator"], "step": r["step"]}
                for r in records]
        summary = {"asked": evolutions * len(parents), "evolved": len(rows), **report.as_dict()}
        return pd.DataFrame(rows, columns=[*PROMPT_COLUMNS, "parent", "operator", "step"]), summary


WORLD_EVOLVER = WorldEvolver()


def create(responses: pd.DataFrame, spec: CreatorSpec, *, seed: int, evolver=WORLD_EVOLVER,
           exclude: set[str] = frozenset()) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """One creator step on a policy's scored responses to the current prompt set: informativeness per
    prompt, the selected prompts, their evolutions, and the mix with old prompts. Returns the new
    prompt set (``origin``: evolved / old / selected), the per-prompt informativeness (with
    ``selected``) and a report of the counts. An evolved prompt that is in ``exclude`` (the held-out
    sets) is dropped and counted: evaluation prompts never become training prompts."""
    uids, matrix = reward_matrix(responses)
    info = informativeness(matrix, spec.metric)
    prompts = responses.drop_duplicates("uid").set_index("uid").loc[uids].reset_index()
    prompts = prompts[[c for c in PROMPT_COLUMNS if c in prompts.columns]]
    chosen = select(info, spec.fraction, how=spec.selection, seed=seed)
    scores = prompts.assign(informativeness=info, reward_gap=matrix.max(1) - matrix.min(1),
                            mean_reward=matrix.mean(1), selected=False)
    scores.loc[chosen, "selected"] = True
    picked = prompts.iloc[chosen]
    report: dict[str, Any] = {"prompts": len(prompts), "selected": len(picked),
                              "selected_mean_gap": float(scores.reward_gap[scores.selected].mean()),
                              "mean_gap": float(scores.reward_gap.mean())}
    if not spec.evolve:
        new = picked.assign(origin="selected", parent=picked.uid, operator=None, step=0)
        return new.reset_index(drop=True), scores, {**report, "evolved": 0, "old": 0}
    evolved, evolve_report = evolver.evolve(picked, evolutions=spec.evolutions, operators=spec.operators, seed=seed)
    held_out = evolved.prompt.isin(exclude)
    evolved = evolved[~held_out].assign(origin="evolved")
    report["dropped_held_out"] = int(held_out.sum())
    old = prompts.assign(origin="old", parent=prompts.uid, operator=None, step=0)
    mixed = mix(list(evolved.to_dict("records")), list(old.to_dict("records")), evolved_share=spec.evolved_share,
                seed=seed)
    new = pd.DataFrame(mixed, columns=[*PROMPT_COLUMNS, "parent", "operator", "step", "origin"])
    return new, scores, {**report, **evolve_report, "old": int((new.origin == "old").sum())}


def held_out_prompts(prompts: Stage) -> set[str]:
    """Every prompt of a prompt-sets stage's held-out sets (both turns of the two-turn set)."""
    out: set[str] = set()
    for name, columns in (("standard", ["prompt"]), ("hard", ["prompt"]), ("two_turn", ["turn_1", "turn_2"])):
        frame = read_set(prompts, name)
        for column in columns if frame is not None else []:
            out.update(frame[column])
    return out


def creator_stage(store: RunStore, samples: Stage, spec: CreatorSpec, *, seed: int, iteration: int,
                  evolver=WORLD_EVOLVER, held_out: Stage | None = None) -> Stage:
    """`create` on a samples stage: ``prompts.parquet`` (the next prompt set) and
    ``informativeness.parquet``. ``held_out``: the prompt-sets stage whose evaluation prompts no
    evolved prompt may repeat."""
    params = {"version": STAGE_VERSION, **asdict(spec), "seed": seed, "iteration": iteration, "evolver": evolver.key(),
              "held_out": held_out.key if held_out is not None else None}

    def compute(workdir: Path) -> dict:
        exclude = held_out_prompts(held_out) if held_out is not None else set()
        new, scores, report = create(pd.read_parquet(samples / "responses.parquet"), spec,
                                     seed=seed * 1000 + iteration, evolver=evolver, exclude=exclude)
        new.to_parquet(workdir / "prompts.parquet", index=False)
        scores.to_parquet(workdir / "informativeness.parquet", index=False)
        difficulty = pd.to_numeric(new.difficulty, errors="coerce")
        return {**report, "new_prompts": len(new),
                "mean_difficulty": float(difficulty.mean()) if difficulty.notna().any() else None}

    upstream = [samples] + ([held_out] if held_out is not None else [])
    return store.run("eva-creator", params, compute, upstream=upstream, seed=seed)


# -- the solver ----------------------------------------------------------------------------------------
def solver_stage(store: RunStore, policy: Stage, samples: Stage, solver: PreferenceSpec, *, seed: int,
                 accelerate_config: str | None = None, progress: bool | None = None) -> Stage:
    """The next policy: ``solver.method`` from ``policy`` on the best-vs-worst pairs of ``samples``
    (``model/``, ``pairs.parquet``)."""
    params = {"version": STAGE_VERSION, **preference_key(solver), "seed": seed, "launch": launch_key(accelerate_config)}

    def compute(workdir: Path) -> dict:
        pairs = preference_pairs(pd.read_parquet(samples / "responses.parquet"))
        pairs.to_parquet(workdir / "pairs.parquet", index=False)
        preference = replace(solver, seed=seed, progress=show_progress(progress))
        summary = train_on_pairs(policy, pairs, workdir, preference, accelerate_config=accelerate_config)
        return {**summary, "pairs_oracle_agree": oracle_agreement(pairs)["pairs_oracle_agree"]}

    return store.run("eva-solver", params, compute, upstream=[policy, samples], seed=seed)


# -- evaluation (the gold judge: the world's oracle) ---------------------------------------------------
@dataclass(frozen=True)
class HeldOutSpec:
    """Responses sampled per held-out prompt, and how."""

    samples: int = 2
    temperature: float = 0.7
    top_p: float = 0.9
    max_new_tokens: int = 48
    batch_size: int = 64


def two_turn_conversations(rows: pd.DataFrame, first_answers: list[str]) -> list[list[dict[str, str]]]:
    """Second-turn conversations: the first question, the model's own first answer, the follow-up."""
    return [[{"role": "user", "content": t1}, {"role": "assistant", "content": a}, {"role": "user", "content": t2}]
            for t1, a, t2 in zip(rows.turn_1, first_answers, rows.turn_2)]


def evaluate_stage(store: RunStore, model: Stage, prompts: Stage, spec: HeldOutSpec, *, seed: int, gold=None,
                   engine=None, progress: bool | None = None) -> Stage:
    """The model's responses to every held-out set, scored by the gold judge: ``responses.parquet``
    (set, uid, family, difficulty, prompt, sample, response, words, oracle). The two-turn set gives
    rows of set ``turn_1`` and ``turn_2``: the second turn is asked after the model's own first
    answer (each sample its own conversation)."""
    engine = engine or DEFAULT_ENGINE
    gold = gold or ORACLE
    params = {"version": STAGE_VERSION, **asdict(spec), "seed": seed, "gold": gold.key(), "engine": engine.key()}

    def compute(workdir: Path) -> dict:
        generator = engine.generator(model, progress=progress)
        config = GenerationSpec(n=spec.samples, temperature=spec.temperature, top_p=spec.top_p,
                                max_new_tokens=spec.max_new_tokens, batch_size=spec.batch_size, seed=seed)
        sets = {name: read_set(prompts, name) for name in ("standard", "hard")}
        frames = [_respond(generator, rows, name, config) for name, rows in sets.items() if rows is not None]
        two = read_set(prompts, "two_turn")
        if two is not None and len(two):
            frames += _two_turns(generator, two, config)
        out = pd.concat(frames, ignore_index=True)
        out["oracle"] = gold.score(out.prompt.tolist(), out.response.tolist())
        out.to_parquet(workdir / "responses.parquet", index=False)
        return {name: float(group.oracle.mean()) for name, group in out.groupby("set")}

    return store.run("eva-evaluate", params, compute, upstream=[model, prompts], seed=seed)


def _respond(generator, rows: pd.DataFrame, name: str, config) -> pd.DataFrame:
    outputs = generator.generate([[{"role": "user", "content": p}] for p in rows.prompt], config)
    return pd.DataFrame([{"set": name, "uid": r.uid, "family": r.family, "difficulty": r.difficulty,
                          "prompt": r.prompt, "sample": i, "response": text, "words": len(text.split())}
                         for r, texts in zip(rows.itertuples(), outputs) for i, text in enumerate(texts)])


def _two_turns(generator, rows: pd.DataFrame, config) -> list[pd.DataFrame]:
    turn_1 = _respond(generator, rows.assign(prompt=rows.turn_1), "turn_1", config)
    repeated = rows.loc[rows.index.repeat(config.n)].reset_index(drop=True)
    conversations = two_turn_conversations(repeated, turn_1.response.tolist())
    second = generator.generate(conversations, replace(config, n=1))
    family_2 = repeated.family_2 if "family_2" in repeated else repeated.family
    difficulty_2 = repeated.difficulty_2 if "difficulty_2" in repeated else repeated.difficulty
    turn_2 = pd.DataFrame({"set": "turn_2", "uid": repeated.uid, "family": family_2, "difficulty": difficulty_2,
                           "prompt": repeated.turn_2, "sample": turn_1["sample"].to_numpy(),
                           "response": [t[0] for t in second], "words": [len(t[0].split()) for t in second]})
    return [turn_1, turn_2]


#: The fixed reference's sampling seed: none of the study's seeds (those are small integers).
REFERENCE_SEED = 1_000_000


def reference_stage(store: RunStore, sft: Stage, prompts: Stage, spec: HeldOutSpec, *, gold=None, engine=None,
                    progress: bool | None = None) -> Stage:
    """The fixed reference model of the win rates (the analog of Arena-Hard's GPT-4 baseline): the SFT
    policy's own responses to every held-out set, sampled once with `REFERENCE_SEED`. The same for
    every seed and run, so that every model is compared with one fixed opponent whose strength sits
    near the policies' own: a reference far stronger (the world's writer, mean score above 3) would
    leave every win rate near zero and blind to differences. `evaluate_stage` under another name."""
    return evaluate_stage(store, sft, prompts, spec, seed=REFERENCE_SEED, gold=gold, engine=engine, progress=progress)


def win_rates(model: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """Per evaluation set: the model's win rate against the reference (ties count half), judged on
    each prompt by the gold score (mean over the sampled responses), read in both orders (model
    first, then reference first) and averaged; plus the mean gold score and the share of perfect
    responses. The oracle scores each response on its own, so the two orders agree by construction;
    a pairwise gold judge at paper scale would differ between them."""
    rows = []
    for name, group in model.groupby("set", sort=False):
        ours = group.groupby("uid").oracle.mean()
        ref = reference[reference.set == name].groupby("uid").oracle.mean()
        common = ours.index.intersection(ref.index)
        common = common[ours.loc[common].notna().to_numpy() & ref.loc[common].notna().to_numpy()]
        a, b = ours.loc[common].to_numpy(), ref.loc[common].to_numpy()
        model_first = np.sign(a - b)  # the verdict with the model's answers shown first
        reference_first = -np.sign(b - a)  # shown second, written from the model's side
        rows.append({"set": name, "win_rate": win_rate(win_tie_loss_both_orders(model_first, reference_first)),
                     "order_disagreement": float(np.mean(model_first != reference_first)) if len(a) else np.nan,
                     "mean_score": float(group.oracle.mean()), "accuracy": float((group.oracle == 5).mean()),
                     "prompts": len(common)})
    return pd.DataFrame(rows)


__all__ = ["INFORMATIVENESS", "SELECTIONS", "informativeness", "mix", "select", "PromptSpec", "world_prompt_sets",
           "prompt_sets_stage", "file_prompt_sets_stage", "parse_reward", "Rewarder", "reward_stage", "load_rewarder",
           "SamplingSpec", "samples_stage", "preference_pairs", "CreatorSpec", "WorldEvolver", "LLMEvolver", "create",
           "creator_stage", "solver_stage", "HeldOutSpec", "evaluate_stage", "reference_stage",
           "win_rates"]
