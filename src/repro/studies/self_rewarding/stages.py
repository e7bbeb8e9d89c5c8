"""The stages of Self-Rewarding Language Models: the seed models (SFT baseline, M1), EFT, one
self-rewarding iteration (self-instruct -> N candidates -> K self-judgments -> pairs -> preference
optimisation), and the evaluation against the gold judge.

Each function is one cached stage of the run store. The study (`repro.studies.self_rewarding.study`)
chains them into M1 -> M2 -> M3 and the ablations; the seed data are in
`repro.studies.self_rewarding.data`.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from repro import world
from repro.data.alpaca_eval import load_alpaca_eval
from repro.data.records import text_id
from repro.evaluation.gold import ORACLE
from repro.evaluation.metrics import reward_model_report, win_tie_loss
from repro.generation import DEFAULT_ENGINE, GenerationSpec, model_location
from repro.judges.llm_judge import JudgeSpec, judge
from repro.judges.rubric import DEFAULT_TEMPLATE, TEMPLATES
from repro.progress import show_progress
from repro.runs.launch import launch_key
from repro.studies.base import held_out_tasks
from repro.studies.common import oracle_agreement, preference_key, respond_and_score, settings_key, train_on_pairs
from repro.studies.self_rewarding.data import (
    SeedDataSpec,
    oracle_judgments,
    rankings_agree,
    rebalance,
    world_eft_frames,
)
from repro.studies.self_rewarding.self_instruct import RougeIndex, echoes_request, generate_prompts, keyword_check
from repro.training.jobs import run_job, sft_job
from repro.training.preference import PreferenceSpec
from repro.training.sft import SFTSpec

# -- stages: the SFT baseline, EFT, M1 ---------------------------------------------------------------
STAGE_VERSION = "sr-2"
#: The version of the chat-style prompt reader in the keys of chat self-instruction stages.
CHAT_READER = 4


def finetune_stage(store, name: str, start, records: list[dict], tune: SFTSpec, data_key: dict,
                   *, upstream=(), accelerate_config: str | None = None, progress: bool | None = None):
    """A model fine-tuned with trl SFT (``tune``: trl's settings, the seed included) from the model of
    stage ``start`` on ``records`` (in this
    process, or under ``accelerate launch`` with ``accelerate_config``; `repro.training.jobs`).

    ``data_key`` identifies the records (their generating parameters) in the stage key, so that the
    records themselves need not be hashed.
    """
    params = {"version": STAGE_VERSION, "tune": settings_key(tune, ("learning_rate", "num_train_epochs", "batch_size",
                                                                    "seed")),
              "data": data_key, "examples": len(records), "launch": launch_key(accelerate_config)}

    def compute(workdir):
        train = replace(tune, progress=show_progress(progress))
        summary = run_job(sft_job, model_location(start), records, train, workdir, accelerate_config=accelerate_config)
        return {**summary, "examples": len(records)}

    return store.run(name, params, compute, upstream=[start, *upstream], seed=tune.seed)


def judge_with_stage(stage, frame: pd.DataFrame, config, *, engine=None, progress: bool | None = None):
    """Judge the ``(prompt, response)`` rows of ``frame`` with the model of a stage."""
    generator = (engine or DEFAULT_ENGINE).generator(stage, progress=progress)
    return judge(generator, list(zip(frame.prompt, frame.response)), config)


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
    if source not in ("model", "oracle"):
        raise ValueError(f"EFT source must be 'model' or 'oracle', got {source!r}")
    if source == "oracle" and frames is not None:
        raise ValueError("EFT source 'oracle' needs the world's candidates; real data has no oracle")
    engine = engine or DEFAULT_ENGINE
    data = {"seed_data": asdict(spec), "exclude": sorted(exclude)} if frames is None else {"data": frames[2]}
    params = {"version": STAGE_VERSION, **data, "judge": replace(judge_config, samples=1).key(),
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


# -- one self-rewarding iteration: new prompts -> candidates -> self-judgment -> pairs -> DPO ---------
@dataclass(frozen=True)
class IterationSpec:
    """One iteration of self-rewarding training (the paper's values in comments).

    The tiny profile lowers the few-shot count: M0's corpus lists hold 2 to 4 tasks and its context
    is 256 tokens, where the paper's 8-shot prompts fit a 4k-token Llama 2. ``prompt_style`` is
    ``"world"`` (a task list continued by a base model, kept only if it is a valid world task) or
    ``"chat"`` (an instruction-tuned generator asked for one new task, Self-Instruct's keyword
    filter; the paper-scale path). ``judge_template`` is the judge's prompt (`repro.judges.rubric`):
    ``"compact"`` in the world's words, ``"full"`` in plain English for real models; ``judge_readout``
    how a judgment without a score is read (`repro.judges.llm_judge.JudgeSpec`).
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
    judge_template: str = DEFAULT_TEMPLATE
    judge_readout: str = "parse"
    preference: PreferenceSpec = field(default_factory=PreferenceSpec)  # the method and trl's settings
    seed: int = 0

    def __post_init__(self) -> None:
        if self.prompt_style not in ("world", "chat"):
            raise ValueError(f"prompt_style must be 'world' or 'chat', got {self.prompt_style!r}")
        _check_template(self.judge_template)


def _check_template(template: str) -> None:
    if template not in TEMPLATES:
        raise ValueError(f"unknown judge template {template!r}; valid: {', '.join(TEMPLATES)}")


def later_fields(spec, defaults: dict) -> dict:
    """The fields of ``spec`` named in ``defaults`` that differ from those defaults: fields added to a
    spec after stores were made enter a stage's key only when set, so that those stores' stages (made
    at the defaults) keep their keys."""
    return {name: getattr(spec, name) for name, default in defaults.items() if getattr(spec, name) != default}


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
    engine = engine or DEFAULT_ENGINE
    fields = ("prompts", "shots", "seed_shots", "prompt_temperature", "prompt_top_p", "prompt_max_new_tokens",
              "rouge_threshold", "prompt_style", "seed")
    params = {"version": STAGE_VERSION, "iteration": iteration, **{k: asdict(spec)[k] for k in fields},
              "seeds": data_key or len(seed_prompts), "exclude": len(exclude_prompts), "engine": engine.key()}
    if spec.prompt_style == "chat":  # 4: the first line only, "New task:" labels, echoes of the request refused
        params["chat_reader"] = CHAT_READER
    keywords = keyword_check()

    def valid_new(text: str):
        if spec.prompt_style == "world":
            task = world.parse_prompt(text)
            return task if task is not None and task.prompt not in exclude_prompts else None
        return text if text not in exclude_prompts and keywords(text) and not echoes_request(text) else None

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


#: Where a preference stage's pairs come from: the model's own judgments (the method), the oracle's
#: scores of the same candidates (the positive control), or the model's pairs with chosen and rejected
#: swapped by a fair coin (the negative control: an order that carries no information).
FEEDBACK = ("self", "oracle", "shuffled")


def preference_pairs(candidates: pd.DataFrame, by: str = "judge") -> tuple[pd.DataFrame, dict]:
    """Highest- vs lowest-scored candidate per prompt (the paper's pairs), scored by the column ``by``
    (the self-judge's mean score, or ``"oracle"`` for the positive control); prompts whose scores tie,
    or with fewer than two scored candidates, give no pair. Returns the pairs and the counts."""
    pairs, ties, unscored = [], 0, 0
    for prompt_id_, group in candidates.groupby("prompt_id", sort=False):
        scored = group.dropna(subset=[by])
        if len(scored) < 2:
            unscored += 1
            continue
        best, worst = scored.loc[scored[by].idxmax()], scored.loc[scored[by].idxmin()]
        if best[by] == worst[by]:
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


def shuffled_pairs(pairs: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The pairs with chosen and rejected (and their scores) swapped by a fair coin, row by row."""
    swap = np.random.default_rng(seed).random(len(pairs)) < 0.5
    out = pairs.copy()
    for a, b in (("chosen", "rejected"), ("chosen_judge", "rejected_judge"), ("chosen_oracle", "rejected_oracle")):
        out.loc[swap, a], out.loc[swap, b] = pairs.loc[swap, b].to_numpy(), pairs.loc[swap, a].to_numpy()
    return out


def feedback_pairs(aift, feedback: str, seed: int) -> pd.DataFrame:
    """The pairs a preference stage learns from, by its ``feedback`` (`FEEDBACK`)."""
    if feedback == "self":
        return pd.read_parquet(aift / "pairs.parquet")
    if feedback == "oracle":
        return preference_pairs(pd.read_parquet(aift / "candidates.parquet"), by="oracle")[0]
    if feedback == "shuffled":
        return shuffled_pairs(pd.read_parquet(aift / "pairs.parquet"), seed)
    raise ValueError(f"feedback must be one of {FEEDBACK}, got {feedback!r}")


def _feedback_key(feedback: str) -> dict:
    """The feedback in a stage's key; the method's own ("self") adds nothing, so its keys stay as they were."""
    if feedback not in FEEDBACK:
        raise ValueError(f"feedback must be one of {FEEDBACK}, got {feedback!r}")
    return {} if feedback == "self" else {"feedback": feedback}


def prompt_rows(stage, file: str = "prompts.parquet") -> pd.DataFrame:
    """A prompts stage's rows as ``prompt_id, family, prompt`` (the columns every response row carries)."""
    frame = pd.read_parquet(stage / file)
    return frame.rename(columns={"uid": "prompt_id"})[["prompt_id", "family", "prompt"]]


def _gold_key(gold) -> dict:
    return (gold or ORACLE).key()


def aift_stage(store, model_stage, prompts_stage, spec: IterationSpec, iteration: int,
               *, gold=None, feedback: str = "self", engine=None, progress: bool | None = None):
    """AI feedback training data of one iteration: N candidates per prompt from the current model,
    judged K times each by the same model, turned into preference pairs (``candidates.parquet``,
    ``pairs.parquet``). The gold score of each candidate (the oracle's; at paper scale the gold
    judge's, or none with ``gold=repro.evaluation.gold.NO_GOLD``) is kept alongside, for measurement
    only. With ``feedback="oracle"`` (the positive control's later iterations) the model does not
    judge: the pairs are the oracle's picks among the same candidates."""
    engine = engine or DEFAULT_ENGINE
    fields = ("candidates", "temperature", "top_p", "max_new_tokens", "judge_samples", "judge_temperature",
              "judge_max_new_tokens", "seed")
    params = {"version": STAGE_VERSION, "iteration": iteration, **{k: asdict(spec)[k] for k in fields},
              "gold": _gold_key(gold), "engine": engine.key(), **_feedback_key(feedback),
              **later_fields(spec, {"judge_template": DEFAULT_TEMPLATE, "judge_readout": "parse"})}
    if feedback == "shuffled":
        raise ValueError("the shuffled control shuffles the self-judged pairs: use aift_stage's 'self' feedback")

    def compute(workdir):
        clock = [time.perf_counter()]

        def lap() -> float:
            clock.append(time.perf_counter())
            return round(clock[-1] - clock[-2], 3)

        generator = engine.generator(model_stage, progress=progress)
        frame = respond_and_score(generator, prompt_rows(prompts_stage), GenerationSpec(
            n=spec.candidates, temperature=spec.temperature, top_p=spec.top_p,
            max_new_tokens=spec.max_new_tokens, seed=spec.seed * 1000 + iteration),
            gold=gold, sample="candidate")
        seconds = {"generation": lap()}  # loading the model, sampling, gold scores
        if feedback == "oracle":
            frame["judge"], frame["parsed"], tally = np.nan, False, {}
        else:
            judged = judge(generator, list(zip(frame.prompt, frame.response)), JudgeSpec(
                samples=spec.judge_samples, temperature=spec.judge_temperature,
                max_new_tokens=spec.judge_max_new_tokens, template=spec.judge_template, readout=spec.judge_readout,
                seed=spec.seed * 1000 + iteration))
            seconds["judging"] = lap()
            frame["judge"] = judged.frame.score.to_numpy()
            frame["parsed"] = judged.frame.parsed.to_numpy()
            # the K texts and their readings, for reading what a judge wrote (stores made before lack them)
            frame["judge_scores"] = judged.frame.scores.to_numpy()
            frame["judgments"] = judged.frame.judgments.to_numpy()
            frame["read_at_cue"] = judged.frame.read_at_cue.to_numpy()
            tally = {**judged.tally.as_dict(), "read_at_cue": judged.read_at_cue}
        frame.to_parquet(workdir / "candidates.parquet", index=False)
        pairs, counts = preference_pairs(frame, by="oracle" if feedback == "oracle" else "judge")
        pairs.to_parquet(workdir / "pairs.parquet", index=False)
        seconds["pairs"] = lap()
        agreement = frame[["judge", "oracle"]].dropna()
        enough = len(agreement) > 2 and agreement.judge.nunique() > 1 and agreement.oracle.nunique() > 1
        return {**counts, "candidates": len(frame), "parse": tally,
                "judge_oracle_correlation": float(agreement.judge.corr(agreement.oracle)) if enough else None,
                **oracle_agreement(pairs), "seconds": seconds}

    return store.run("sr-aift", params, compute, upstream=[model_stage, prompts_stage], seed=spec.seed)


def preference_stage(store, model_stage, aift, spec: IterationSpec, iteration: int, *, feedback: str = "self",
                     accelerate_config: str | None = None, progress: bool | None = None):
    """The next model: preference optimisation (``spec.preference``, DPO by default) from the current model
    on its pairs, chosen by ``feedback`` (`FEEDBACK`: the self-judge's, the oracle's, or shuffled)."""
    params = {"version": STAGE_VERSION, "iteration": iteration, **preference_key(spec.preference), "seed": spec.seed,
              "launch": launch_key(accelerate_config), **_feedback_key(feedback)}

    def compute(workdir):
        preference = replace(spec.preference, seed=spec.seed, progress=show_progress(progress))
        pairs = feedback_pairs(aift, feedback, seed=spec.seed * 1000 + iteration)
        return train_on_pairs(model_stage, pairs, workdir, preference, accelerate_config=accelerate_config)

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
    judge_max_new_tokens: int = 40
    judge_template: str = DEFAULT_TEMPLATE
    judge_readout: str = "parse"
    seed: int = 0

    def __post_init__(self) -> None:
        _check_template(self.judge_template)


#: `EvalSpec`'s fields that came after the stores of the tiny study, with their defaults (`later_fields`).
EVAL_LATER_FIELDS = {"judge_max_new_tokens": 40, "judge_template": DEFAULT_TEMPLATE, "judge_readout": "parse"}


def _write_prompts(workdir, tasks) -> dict:
    pd.DataFrame([{"uid": t.uid, "family": t.family, "prompt": t.prompt} for t in tasks],
                 columns=["uid", "family", "prompt"]).to_parquet(workdir / "prompts.parquet", index=False)
    return {"prompts": len(tasks)}


def world_prompts_stage(store, corpus_stage, base_spec, spec: EvalSpec):
    """The held-out world prompts (``prompts.parquet``: uid, family, prompt): tasks from a seed stream
    of their own, none in the corpus."""
    params = {"version": STAGE_VERSION, "world": world.WORLD_VERSION, "world_seed": base_spec.world_seed,
              "per_family": spec.prompts_per_family, "difficulty": list(base_spec.difficulty)}

    def compute(workdir):
        return _write_prompts(workdir, held_out_tasks(base_spec.world_seed, spec.prompts_per_family, corpus_stage,
                                                      difficulty=tuple(base_spec.difficulty)))

    return store.run("sr-eval-prompts", params, compute, upstream=[corpus_stage])


def dev_prompts_stage(store, corpus_stage, base_spec, spec: EvalSpec, held_out):
    """Development prompts (``prompts.parquet``, as `world_prompts_stage`): tasks from a seed stream of
    their own, none in the corpus and none among the held-out prompts of ``held_out``. Settings are
    chosen on them; no claim is measured on them."""
    params = {"version": STAGE_VERSION, "world": world.WORLD_VERSION, "world_seed": base_spec.world_seed,
              "per_family": spec.prompts_per_family, "difficulty": list(base_spec.difficulty), "split": "dev"}

    def compute(workdir):
        exclude = set(pd.read_parquet(held_out / "prompts.parquet").uid)
        return _write_prompts(workdir, held_out_tasks(base_spec.world_seed, spec.prompts_per_family, corpus_stage,
                                                      difficulty=tuple(base_spec.difficulty), split="dev",
                                                      exclude=exclude))

    return store.run("sr-dev-prompts", params, compute, upstream=[corpus_stage, held_out])


def file_prompts_stage(store, source: str):
    """Held-out prompts with a reference model's outputs from an AlpacaEval-format file or hub id
    (`repro.data.alpaca_eval`; ``prompts.parquet``: uid, family, prompt, reference, generator)."""

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
    words). ``spec.judge_samples=0``: the model does not judge (development evaluations)."""
    engine = engine or DEFAULT_ENGINE
    params = {"version": STAGE_VERSION, **{k: v for k, v in asdict(spec).items() if k not in EVAL_LATER_FIELDS},
              **later_fields(spec, EVAL_LATER_FIELDS), "gold": _gold_key(gold), "engine": engine.key()}

    def compute(workdir):
        generator = engine.generator(model_stage, progress=progress)
        frame = respond_and_score(generator, prompt_rows(prompts_stage), GenerationSpec(
            n=spec.samples, temperature=spec.temperature, top_p=spec.top_p, max_new_tokens=spec.max_new_tokens,
            seed=spec.seed), gold=gold)
        tally = {}
        if spec.judge_samples:
            judged = judge(generator, list(zip(frame.prompt, frame.response)),
                           JudgeSpec(samples=spec.judge_samples, max_new_tokens=spec.judge_max_new_tokens,
                                     template=spec.judge_template, readout=spec.judge_readout, seed=spec.seed))
            frame["self_judge"], tally = judged.frame.score.to_numpy(), judged.tally.as_dict()
        else:
            frame["self_judge"] = np.nan
        frame.to_parquet(workdir / "responses.parquet", index=False)
        return {"prompts": int(frame.prompt_id.nunique()), "responses": len(frame),
                "accuracy": float((frame.oracle == 5).mean()), "mean_oracle": float(frame.oracle.mean()),
                "mean_words": float(frame.words.mean()), "self_judge_parse": tally}

    return store.run("sr-evaluate", params, compute, upstream=[model_stage, prompts_stage], seed=spec.seed)


def head_to_head(responses_a: pd.DataFrame, responses_b: pd.DataFrame):
    """Win / tie / loss of model A against model B on the same prompts, judged by the gold score: per
    prompt, the mean gold score of each model's sampled responses; higher wins, equal ties. Prompts
    where the gold judge scored none of a model's responses (paper scale only) are left out."""
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
    engine = engine or DEFAULT_ENGINE
    params = {"version": STAGE_VERSION, "judge": judge_config.key(), "engine": engine.key()}

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
    index = RougeIndex(seed_prompts)
    known = set(seed_prompts)
    tasks = [t for t in world.sample_tasks(fresh, seed=world_seed + CALIBRATION_SEED_OFFSET, difficulty=difficulty)
             if t.prompt not in known]
    best = np.array([index.nearest(t.prompt)[0] for t in tasks])
    return pd.DataFrame({"threshold": list(thresholds), "rejected": [float((best > th).mean()) for th in thresholds],
                         "fresh_tasks": len(tasks), "seed_prompts": len(seed_prompts)})
