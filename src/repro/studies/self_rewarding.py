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
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from repro import world
from repro.judges.rubric import judge_messages

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


def chat(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


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


# -- stages: the SFT baseline, EFT, M1 ---------------------------------------------------------------
STAGE_VERSION = "sr-2"


@dataclass(frozen=True)
class FinetuneSpec:
    """Supervised fine-tuning of the seed models (the paper: lr 5.5e-6 -> 1.1e-6 for 70B; far larger
    steps suit models of a million parameters trained from scratch)."""

    learning_rate: float = 5e-4
    epochs: float = 3.0
    batch_size: int = 16
    seed: int = 0


def launch_param(accelerate_config: str | None) -> dict:
    """``{"launch": launch_key(...)}`` for a stage key when there is a launch, else nothing: stages that
    gained a launch option later keep their in-process keys."""
    return {"launch": launch_key(accelerate_config)} if accelerate_config else {}


def launch_key(accelerate_config: str | None) -> dict | None:
    """The part of a training stage's key that says how it was launched: the config file's content,
    and that the batch size is the global batch, split over the processes (`repro.studies.jobs`;
    launched stages of before, whose batch size was per process, are not taken for these)."""
    from pathlib import Path

    from repro.runs.store import params_hash

    if not accelerate_config:
        return None
    path = Path(accelerate_config)
    return {"accelerate_config": path.name, "content": params_hash(path.read_text()) if path.is_file() else None,
            "batch": "global"}


def finetune_stage(store, name: str, start, records: list[dict], tune: FinetuneSpec, data_key: dict,
                   *, upstream=(), accelerate_config: str | None = None, progress: bool | None = None):
    """A model fine-tuned with trl SFT from the model of stage ``start`` on ``records`` (in this
    process, or under ``accelerate launch`` with ``accelerate_config``; `repro.studies.jobs`).

    ``data_key`` identifies the records (their generating parameters) in the stage key, so that the
    records themselves need not be hashed.
    """
    from dataclasses import asdict

    from repro.progress import show_progress
    from repro.studies.base import model_location
    from repro.studies.jobs import run_job
    from repro.training import SFTParams

    params = {"version": STAGE_VERSION, "tune": asdict(tune), "data": data_key, "examples": len(records),
              "launch": launch_key(accelerate_config)}

    def compute(workdir):
        train = SFTParams(learning_rate=tune.learning_rate, num_train_epochs=tune.epochs,
                          batch_size=tune.batch_size, seed=tune.seed, progress=show_progress(progress))
        summary = run_job("sft", model_location(start), records, train, workdir, accelerate_config=accelerate_config)
        return {**summary, "examples": len(records)}

    return store.run(name, params, compute, upstream=[start, *upstream], seed=tune.seed)


def judge_with_stage(stage, frame: pd.DataFrame, config, *, engine=None, progress: bool | None = None):
    """Judge the ``(prompt, response)`` rows of ``frame`` with the model of a stage."""
    from repro.judges.llm_judge import judge
    from repro.studies.base import DEFAULT_ENGINE

    generator = (engine or DEFAULT_ENGINE).generator(stage, progress=progress)
    return judge(generator, list(zip(frame.prompt, frame.response)), config)


def world_eft_frames(spec: SeedDataSpec, exclude: set[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """World EFT candidates: train and held-out eval sets, no prompt in both or in ``exclude``."""
    train = eft_candidates(spec, spec.eft_train_prompts, stream=0, exclude=set(exclude))
    evaluation = eft_candidates(spec, spec.eft_eval_prompts, stream=1, exclude=set(exclude) | set(train.prompt_id))
    return train, evaluation


def eft_stage(store, spec: SeedDataSpec, writer, judge_config, *, source: str = "model",
              exclude: set[str] = frozenset(), frames: tuple[pd.DataFrame, pd.DataFrame, dict] | None = None,
              engine=None, progress: bool | None = None):
    """EFT train and eval sets (``eft_train.parquet``, ``eft_eval.parquet``).

    ``source="model"``: the model of stage ``writer`` judges every train candidate once; a prompt's
    judgments are kept when their scores rank its responses as the gold ranking does; the kept
    judgments are rebalanced. The paper's writer is the SFT baseline. On the tiny world, instruction
    tuning makes the model answer the judge prompt as if it were a task (no judgment, no score), so
    the study passes the base model M0, which learnt the judgment format from the corpus's reviews.
    ``source="oracle"``: every train candidate gets the world's judgment of its true quality.
    The eval set is never filtered: it measures reward modelling against the gold ranking.

    The candidates are the world's (`world_eft_frames`) unless ``frames`` gives ``(train, eval,
    data_key)`` from real data (`oasst_seed_data`; ``gold`` is then the human ranking, higher better).
    """
    from dataclasses import asdict, replace

    from repro.studies.base import DEFAULT_ENGINE

    if source not in ("model", "oracle"):
        raise ValueError(f"EFT source must be 'model' or 'oracle', got {source!r}")
    if source == "oracle" and frames is not None:
        raise ValueError("EFT source 'oracle' needs the world's candidates; real data has no oracle")
    engine = engine or DEFAULT_ENGINE
    data = {"seed_data": asdict(spec), "exclude": sorted(exclude)} if frames is None else {"data": frames[2]}
    params = {"version": STAGE_VERSION, **data, "judge": asdict(replace(judge_config, samples=1)),
              "source": source, "engine": engine.key()}

    def compute(workdir):
        train, evaluation = world_eft_frames(spec, set(exclude)) if frames is None else (frames[0].copy(), frames[1])
        results = {"candidate_prompts": int(train.prompt_id.nunique()), "candidates": len(train)}
        if source == "model":
            judged = judge_with_stage(writer, train, replace(judge_config, samples=1), engine=engine, progress=progress)
            train["judgment"] = [texts[0] for texts in judged.frame.judgments]
            train["judge"] = judged.frame.score.to_numpy()
            agree = rankings_agree(train)
            kept = train[train.prompt_id.map(agree)]
            results.update(parse=judged.tally.as_dict(), agreeing_prompts=int(agree.sum()))
            train = rebalance(kept, "judge", seed=judge_config.seed)
        else:
            train["judgment"] = oracle_judgments(train, seed=judge_config.seed)
            train["judge"] = train.gold.astype(float)
        train.to_parquet(workdir / "eft_train.parquet", index=False)
        evaluation.to_parquet(workdir / "eft_eval.parquet", index=False)
        score_counts = {str(int(k)): int(v) for k, v in train.judge.value_counts().sort_index().items()}
        return {**results, "train_examples": len(train), "train_scores": score_counts,
                "eval_prompts": int(evaluation.prompt_id.nunique()), "eval_responses": len(evaluation)}

    upstream = [writer] if source == "model" else []
    return store.run("sr-eft", params, compute, upstream=upstream, seed=judge_config.seed)


def oasst_seed_data(source, *, ift_size: int | None = 3200, eft_train_prompts: int | None = None,
                    eft_eval_prompts: int | None = None, seed: int = 0, lang: str = "en"):
    """The paper's seed data from Open Assistant (a hub id, file or folder; `repro.data.oasst`):
    IFT records, and EFT train / eval candidate frames (one row per ranked reply, ``gold`` = higher
    for a better human rank), split so that no conversation tree is in two of them. Returns
    ``(ift, eft_train, eft_eval, data_key)``."""
    from repro.data import oasst

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


# -- one self-rewarding iteration: new prompts -> candidates -> self-judgment -> pairs -> DPO ---------
@dataclass(frozen=True)
class IterationSpec:
    """One iteration of self-rewarding training (the paper's values in comments).

    The tiny profile lowers the few-shot count: M0's corpus lists hold 2 to 4 tasks and its context
    is 256 tokens, where the paper's 8-shot prompts fit a 4k-token Llama 2. ``prompt_style`` is
    ``"world"`` (a task list continued by a base model, kept only if it is a valid world task) or
    ``"chat"`` (an instruction-tuned generator asked for one new task, Self-Instruct's keyword
    filter; the paper-scale path).
    """

    prompts: int = 1000  # new prompts per iteration (the paper: as many as the filters keep, ~4-7k pairs)
    shots: int = 4  # paper: 8
    seed_shots: int = 3  # paper: 6
    prompt_temperature: float = 0.6
    prompt_top_p: float = 0.9
    prompt_max_new_tokens: int = 48
    rouge_threshold: float = 0.7
    prompt_style: str = "world"
    candidates: int = 4  # N
    temperature: float = 0.7
    top_p: float = 0.9
    max_new_tokens: int = 48
    judge_samples: int = 3  # K
    judge_temperature: float = 0.7
    judge_max_new_tokens: int = 40
    method: str = "dpo"
    beta: float = 0.1
    learning_rate: float = 5e-5
    epochs: float = 2.0
    batch_size: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        if self.prompt_style not in ("world", "chat"):
            raise ValueError(f"prompt_style must be 'world' or 'chat', got {self.prompt_style!r}")


#: Self-instruct rounds (generate calls of 64 few-shot prompts) allowed per wanted prompt: 8
#: candidates each, twice what an acceptance rate of 1 in 4 needs (the tiny profile accepts about 1 in
#: 2 and stops after about 16 of its 63 rounds), and at least `SELF_INSTRUCT_MIN_ROUNDS`. The cap grows
#: with the prompts asked for; a generator that cannot write valid prompts (the smoke profile's M0)
#: stops after a budget proportional to the request instead of a fixed 50 rounds.
SELF_INSTRUCT_CANDIDATES_PER_PROMPT = 8
SELF_INSTRUCT_MIN_ROUNDS = 4


def self_instruct_rounds(prompts: int, batch_size: int = 64) -> int:
    """The most self-instruct rounds for ``prompts`` wanted prompts (`SELF_INSTRUCT_CANDIDATES_PER_PROMPT`)."""
    return max(SELF_INSTRUCT_MIN_ROUNDS, -(-SELF_INSTRUCT_CANDIDATES_PER_PROMPT * prompts // batch_size))


def self_instruct_stage(store, generator_stage, seed_prompts: list[str], spec: IterationSpec, iteration: int,
                        *, exclude_prompts: set[str] = frozenset(), data_key: dict | None = None,
                        engine=None, progress: bool | None = None):
    """New prompts written by the fixed prompt-generator model (``prompts.parquet``: uid, family, prompt)."""
    from dataclasses import asdict

    from repro.data.records import text_id
    from repro.studies.base import DEFAULT_ENGINE
    from repro.studies.self_instruct import generate_prompts, keyword_check

    engine = engine or DEFAULT_ENGINE
    fields = ("prompts", "shots", "seed_shots", "prompt_temperature", "prompt_top_p", "prompt_max_new_tokens",
              "rouge_threshold", "prompt_style", "seed")
    params = {"version": STAGE_VERSION, "iteration": iteration, **{k: asdict(spec)[k] for k in fields},
              "seeds": data_key or len(seed_prompts), "exclude": len(exclude_prompts), "engine": engine.key()}
    keywords = keyword_check()

    def valid_new(text: str):
        if spec.prompt_style == "world":
            task = world.parse_prompt(text)
            return task if task is not None and task.prompt not in exclude_prompts else None
        return text if text not in exclude_prompts and keywords(text) else None

    def compute(workdir):
        result = generate_prompts(
            engine.generator(generator_stage, progress=progress), seed_prompts, spec.prompts,
            shots=spec.shots, seed_shots=spec.seed_shots, temperature=spec.prompt_temperature,
            top_p=spec.prompt_top_p, max_new_tokens=spec.prompt_max_new_tokens,
            seed=spec.seed * 1000 + iteration, rouge_threshold=spec.rouge_threshold, validate=valid_new,
            style="list" if spec.prompt_style == "world" else "chat", max_rounds=self_instruct_rounds(spec.prompts))
        if spec.prompt_style == "world":
            tasks = [world.parse_prompt(p) for p in result.prompts]
            rows = [{"uid": t.uid, "family": t.family, "prompt": t.prompt} for t in tasks]
        else:
            rows = [{"uid": text_id(p), "family": "", "prompt": p} for p in result.prompts]
        pd.DataFrame(rows, columns=["uid", "family", "prompt"]).to_parquet(workdir / "prompts.parquet", index=False)
        return {"accepted": len(result.prompts), "candidates": result.candidates, "rounds": result.rounds,
                "rejections": result.rejections}

    return store.run("sr-prompts", params, compute, upstream=[generator_stage], seed=spec.seed)


def preference_pairs(candidates: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Highest- vs lowest-scored candidate per prompt (the paper's pairs); prompts whose scores tie,
    or with fewer than two scored candidates, give no pair. Returns the pairs and the counts."""
    pairs, ties, unscored = [], 0, 0
    for prompt_id_, group in candidates.groupby("prompt_id", sort=False):
        scored = group.dropna(subset=["judge"])
        if len(scored) < 2:
            unscored += 1
            continue
        best, worst = scored.loc[scored.judge.idxmax()], scored.loc[scored.judge.idxmin()]
        if best.judge == worst.judge:
            ties += 1
            continue
        pairs.append({"prompt_id": prompt_id_, "prompt": best.prompt, "chosen": best.response,
                      "rejected": worst.response, "chosen_judge": best.judge, "rejected_judge": worst.judge,
                      "chosen_oracle": best.oracle, "rejected_oracle": worst.oracle})
    counts = {"prompts": int(candidates.prompt_id.nunique()), "pairs": len(pairs), "ties": ties,
              "unscored": unscored}
    columns = ["prompt_id", "prompt", "chosen", "rejected", "chosen_judge", "rejected_judge", "chosen_oracle",
               "rejected_oracle"]
    return pd.DataFrame(pairs, columns=columns), counts


def oracle_agreement(pairs: pd.DataFrame) -> dict[str, float | None]:
    """Among the preference pairs whose two responses both have a gold score: the share whose chosen
    response the gold judge scores higher (``pairs_oracle_agree``) and equal (``pairs_oracle_equal``);
    None without such pairs."""
    right = pairs.dropna(subset=["chosen_oracle", "rejected_oracle"])
    if not len(right):
        return {"pairs_oracle_agree": None, "pairs_oracle_equal": None}
    return {"pairs_oracle_agree": float((right.chosen_oracle > right.rejected_oracle).mean()),
            "pairs_oracle_equal": float((right.chosen_oracle == right.rejected_oracle).mean())}


def prompt_rows(stage, file: str = "prompts.parquet") -> pd.DataFrame:
    """A prompts stage's rows as ``prompt_id, family, prompt`` (the columns every response row carries)."""
    frame = pd.read_parquet(stage / file)
    return frame.rename(columns={"uid": "prompt_id"})[["prompt_id", "family", "prompt"]]


def _gold_key(gold) -> dict:
    from repro.evaluation.gold import ORACLE

    return (gold or ORACLE).key()


def aift_stage(store, model_stage, prompts_stage, spec: IterationSpec, iteration: int,
               *, gold=None, engine=None, progress: bool | None = None):
    """AI feedback training data of one iteration: N candidates per prompt from the current model,
    judged K times each by the same model, turned into preference pairs (``candidates.parquet``,
    ``pairs.parquet``). The gold score of each candidate (the oracle's; at paper scale the gold
    judge's, or none with ``gold=repro.evaluation.gold.NO_GOLD``) is kept alongside, for measurement
    only."""
    from dataclasses import asdict

    from repro.generation import GenerationConfig
    from repro.judges.llm_judge import JudgeConfig, judge
    from repro.studies.base import DEFAULT_ENGINE, respond_and_score

    engine = engine or DEFAULT_ENGINE
    fields = ("candidates", "temperature", "top_p", "max_new_tokens", "judge_samples", "judge_temperature",
              "judge_max_new_tokens", "seed")
    params = {"version": STAGE_VERSION, "iteration": iteration, **{k: asdict(spec)[k] for k in fields},
              "gold": _gold_key(gold), "engine": engine.key()}

    def compute(workdir):
        clock = [time.perf_counter()]

        def lap() -> float:
            clock.append(time.perf_counter())
            return round(clock[-1] - clock[-2], 3)

        generator = engine.generator(model_stage, progress=progress)
        frame = respond_and_score(generator, prompt_rows(prompts_stage), GenerationConfig(
            n=spec.candidates, temperature=spec.temperature, top_p=spec.top_p,
            max_new_tokens=spec.max_new_tokens, seed=spec.seed * 1000 + iteration),
            gold=gold, sample="candidate")
        seconds = {"generation": lap()}  # loading the model, sampling, gold scores
        judged = judge(generator, list(zip(frame.prompt, frame.response)), JudgeConfig(
            samples=spec.judge_samples, temperature=spec.judge_temperature,
            max_new_tokens=spec.judge_max_new_tokens, seed=spec.seed * 1000 + iteration))
        seconds["judging"] = lap()
        frame["judge"] = judged.frame.score.to_numpy()
        frame["parsed"] = judged.frame.parsed.to_numpy()
        frame.to_parquet(workdir / "candidates.parquet", index=False)
        pairs, counts = preference_pairs(frame)
        pairs.to_parquet(workdir / "pairs.parquet", index=False)
        seconds["pairs"] = lap()
        agreement = frame[["judge", "oracle"]].dropna()
        enough = len(agreement) > 2 and agreement.judge.nunique() > 1 and agreement.oracle.nunique() > 1
        return {**counts, "candidates": len(frame), "parse": judged.tally.as_dict(),
                "judge_oracle_correlation": float(agreement.judge.corr(agreement.oracle)) if enough else None,
                **oracle_agreement(pairs), "seconds": seconds}

    return store.run("sr-aift", params, compute, upstream=[model_stage, prompts_stage], seed=spec.seed)


def train_on_pairs(model_stage, pairs: pd.DataFrame, workdir, *, method: str, beta: float, learning_rate: float,
                   epochs: float, batch_size: int, seed: int, accelerate_config: str | None = None,
                   progress: bool | None = None) -> dict:
    """Preference optimisation from the model of ``model_stage`` on ``pairs`` (columns prompt, chosen,
    rejected), saved into ``workdir`` (``model/``, ``log_history.json``); returns the training summary.
    No pairs: the model is saved unchanged, with zero steps (nothing to learn from, said in the results)."""
    from repro.progress import show_progress
    from repro.studies.base import load_stage_model, model_location
    from repro.studies.jobs import run_job
    from repro.training import PreferenceParams

    if pairs.empty:
        from repro.models import save_model

        model, tokenizer = load_stage_model(model_stage)
        save_model(model, tokenizer, workdir / "model")
        (workdir / "log_history.json").write_text("[]")
        return {"pairs": 0, "steps": 0}
    records = [{"prompt": chat(r.prompt), "chosen": [{"role": "assistant", "content": r.chosen}],
                "rejected": [{"role": "assistant", "content": r.rejected}]} for r in pairs.itertuples()]
    train = PreferenceParams(method=method, beta=beta, learning_rate=learning_rate, num_train_epochs=epochs,
                             batch_size=batch_size, seed=seed, progress=show_progress(progress))
    summary = run_job("preference", model_location(model_stage), records, train, workdir,
                      accelerate_config=accelerate_config)
    return {**summary, "pairs": len(pairs)}


def preference_stage(store, model_stage, aift, spec: IterationSpec, iteration: int, *,
                     accelerate_config: str | None = None, progress: bool | None = None):
    """The next model: preference optimisation (DPO by default) from the current model on its pairs."""
    from dataclasses import asdict

    fields = ("method", "beta", "learning_rate", "epochs", "batch_size", "seed")
    params = {"version": STAGE_VERSION, "iteration": iteration, **{k: asdict(spec)[k] for k in fields},
              "launch": launch_key(accelerate_config)}

    def compute(workdir):
        return train_on_pairs(model_stage, pd.read_parquet(aift / "pairs.parquet"), workdir, method=spec.method,
                              beta=spec.beta, learning_rate=spec.learning_rate, epochs=spec.epochs,
                              batch_size=spec.batch_size, seed=spec.seed, accelerate_config=accelerate_config,
                              progress=progress)

    return store.run("sr-model", params, compute, upstream=[model_stage, aift], seed=spec.seed)


def self_rewarding_iteration(store, model_stage, generator_stage, seed_prompts, spec: IterationSpec, iteration: int,
                             *, exclude_prompts: set[str] = frozenset(), data_key: dict | None = None,
                             gold=None, engine=None, accelerate_config: str | None = None,
                             progress: bool | None = None):
    """One full iteration: returns ``(next_model_stage, prompts_stage, aift_stage)``."""
    prompts = self_instruct_stage(store, generator_stage, seed_prompts, spec, iteration,
                                  exclude_prompts=exclude_prompts, data_key=data_key, engine=engine, progress=progress)
    aift = aift_stage(store, model_stage, prompts, spec, iteration, gold=gold, engine=engine, progress=progress)
    return preference_stage(store, model_stage, aift, spec, iteration, accelerate_config=accelerate_config,
                            progress=progress), prompts, aift


# -- evaluation against the gold judge (the oracle: the analog of GPT-4 and human raters) ------------
@dataclass(frozen=True)
class EvalSpec:
    """Held-out evaluation: prompts per family, responses sampled per prompt, and how."""

    prompts_per_family: int = 40
    samples: int = 4
    temperature: float = 0.7
    top_p: float = 0.9
    max_new_tokens: int = 48
    judge_samples: int = 3
    seed: int = 0


def world_prompts_stage(store, corpus_stage, base_spec, spec: EvalSpec):
    """The held-out world prompts (``prompts.parquet``: uid, family, prompt): tasks from a seed stream
    of their own, none in the corpus."""
    from repro.studies.base import held_out_tasks

    params = {"version": STAGE_VERSION, "world": world.WORLD_VERSION, "world_seed": base_spec.world_seed,
              "per_family": spec.prompts_per_family, "difficulty": list(base_spec.difficulty)}

    def compute(workdir):
        tasks = held_out_tasks(base_spec.world_seed, spec.prompts_per_family, corpus_stage,
                               difficulty=tuple(base_spec.difficulty))
        pd.DataFrame([{"uid": t.uid, "family": t.family, "prompt": t.prompt} for t in tasks],
                     columns=["uid", "family", "prompt"]).to_parquet(workdir / "prompts.parquet", index=False)
        return {"prompts": len(tasks)}

    return store.run("sr-eval-prompts", params, compute, upstream=[corpus_stage])


def file_prompts_stage(store, source: str):
    """Held-out prompts with a reference model's outputs from an AlpacaEval-format file or hub id
    (`repro.data.alpaca_eval`; ``prompts.parquet``: uid, family, prompt, reference, generator)."""
    import hashlib
    from pathlib import Path

    from repro.data.alpaca_eval import load_alpaca_eval

    path = Path(source)
    params = {"version": STAGE_VERSION, "source": str(path.resolve()) if path.exists() else source,
              "content": hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None}

    def compute(workdir):
        frame = load_alpaca_eval(source)
        frame.to_parquet(workdir / "prompts.parquet", index=False)
        return {"prompts": len(frame), "generators": sorted(set(frame.generator))}

    return store.run("sr-eval-prompts", params, compute)


def evaluate_stage(store, model_stage, prompts_stage, spec: EvalSpec, *, gold=None, engine=None,
                   progress: bool | None = None):
    """The model's responses to held-out prompts, scored by the gold judge and by the model itself as
    judge (``responses.parquet``: prompt, sample, response, gold score ``oracle``, self-judged score,
    words)."""
    from dataclasses import asdict

    from repro.generation import GenerationConfig
    from repro.judges.llm_judge import JudgeConfig, judge
    from repro.studies.base import DEFAULT_ENGINE, respond_and_score

    engine = engine or DEFAULT_ENGINE
    params = {"version": STAGE_VERSION, **asdict(spec), "gold": _gold_key(gold), "engine": engine.key()}

    def compute(workdir):
        generator = engine.generator(model_stage, progress=progress)
        frame = respond_and_score(generator, prompt_rows(prompts_stage), GenerationConfig(
            n=spec.samples, temperature=spec.temperature, top_p=spec.top_p, max_new_tokens=spec.max_new_tokens,
            seed=spec.seed), gold=gold)
        judged = judge(generator, list(zip(frame.prompt, frame.response)),
                       JudgeConfig(samples=spec.judge_samples, seed=spec.seed))
        frame["self_judge"] = judged.frame.score.to_numpy()
        frame.to_parquet(workdir / "responses.parquet", index=False)
        return {"prompts": int(frame.prompt_id.nunique()), "responses": len(frame),
                "accuracy": float((frame.oracle == 5).mean()), "mean_oracle": float(frame.oracle.mean()),
                "mean_words": float(frame.words.mean()), "self_judge_parse": judged.tally.as_dict()}

    return store.run("sr-evaluate", params, compute, upstream=[model_stage, prompts_stage], seed=spec.seed)


def head_to_head(responses_a: pd.DataFrame, responses_b: pd.DataFrame):
    """Win / tie / loss of model A against model B on the same prompts, judged by the gold score: per
    prompt, the mean gold score of each model's sampled responses; higher wins, equal ties. Prompts
    where the gold judge scored none of a model's responses (paper scale only) are left out."""
    from repro.evaluation.metrics import win_tie_loss

    a = responses_a.groupby("prompt_id").oracle.mean()
    b = responses_b.groupby("prompt_id").oracle.mean()
    common = a.index.intersection(b.index)
    if len(common) != len(a) or len(common) != len(b):
        raise ValueError("head_to_head needs both models' responses to the same prompts")
    scored = common[a.loc[common].notna().to_numpy() & b.loc[common].notna().to_numpy()]  # a gold judge may fail
    return win_tie_loss(a.loc[scored].to_numpy(), b.loc[scored].to_numpy())


def reward_modelling_stage(store, model_stage, eft, judge_config, *, engine=None, progress: bool | None = None):
    """The model as a reward model on the held-out EFT set: its averaged judge scores against the
    gold ranking (``judged.parquet``; the report in the results)."""
    from dataclasses import asdict

    from repro.evaluation.metrics import reward_model_report
    from repro.studies.base import DEFAULT_ENGINE

    engine = engine or DEFAULT_ENGINE
    params = {"version": STAGE_VERSION, "judge": asdict(judge_config), "engine": engine.key()}

    def compute(workdir):
        frame = pd.read_parquet(eft / "eft_eval.parquet")
        judged = judge_with_stage(model_stage, frame, judge_config, engine=engine, progress=progress)
        frame["judge"] = judged.frame.score.to_numpy()
        frame["response_id"] = range(len(frame))
        frame.to_parquet(workdir / "judged.parquet", index=False)
        report = reward_model_report(frame[["prompt_id", "response_id", "gold", "judge"]])
        return {**report.as_dict(), "parse": judged.tally.as_dict()}

    return store.run("sr-reward-modelling", params, compute, upstream=[model_stage, eft], seed=judge_config.seed)


# -- choosing the near-duplicate threshold for the world ---------------------------------------------
CALIBRATION_SEED_OFFSET = 4_000_037


def rouge_calibration(seed_prompts: list[str], *, world_seed: int = 0, difficulty=(1, 2), fresh: int = 300,
                      thresholds=(0.7, 0.8, 0.9, 0.95)) -> pd.DataFrame:
    """How a ROUGE-L near-duplicate filter treats *genuinely new* world tasks: ``fresh`` tasks from
    a seed stream of their own, none equal to a seed prompt, each compared with all ``seed_prompts``.
    One row per threshold: the share of the fresh tasks it would reject (max ROUGE-L above it)."""
    from repro.studies.self_instruct import RougeIndex

    index = RougeIndex(seed_prompts)
    known = set(seed_prompts)
    tasks = [t for t in world.sample_tasks(fresh, seed=world_seed + CALIBRATION_SEED_OFFSET, difficulty=difficulty)
             if t.prompt not in known]
    best = np.array([index.nearest(t.prompt)[0] for t in tasks])
    return pd.DataFrame({"threshold": list(thresholds), "rejected": [float((best > th).mean()) for th in thresholds],
                         "fresh_tasks": len(tasks), "seed_prompts": len(seed_prompts)})
