"""The base model M0 of every study: the world's corpus, a word-level tokenizer, pre-training, and an
oracle measurement of what M0 can do.

Each function is one cached stage of the run store: asked again with the same inputs it returns the
finished stage at once. The three studies call `base_model` with their own parameters, so they share
M0 whenever their parameters agree.

Paper scale: M0 is a real model given by path (``base_model_path``) and these stages are skipped;
`load_base` loads it with `repro.models.load_model`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from repro import world
from repro.evaluation.stats import bootstrap_ci
from repro.generation import DEFAULT_ENGINE, GenerationSpec
from repro.judges.rubric import judge_messages, template_words
from repro.models import build_tokenizer, count_parameters, make_llama
from repro.progress import show_progress
from repro.runs.launch import launch_param
from repro.runs.store import RunStore, Stage, params_hash
from repro.studies.common import respond_and_score
from repro.training import PretrainSpec
from repro.training.jobs import pretrain_job, run_job, save_fresh_model

# Bump when the code of a stage changes what it produces (the world has its own WORLD_VERSION).
STAGE_VERSION = "base-1"
HELD_OUT_SEED_OFFSET = 1_000_003  # held-out tasks come from a seed stream the corpus never uses
DEV_SEED_OFFSET = 2_000_029  # development tasks (choosing settings) from another one
SPLIT_OFFSETS = {"held_out": HELD_OUT_SEED_OFFSET, "dev": DEV_SEED_OFFSET}


@dataclass(frozen=True)
class BaseSpec:
    """Everything that determines M0 (and so the key of its stages)."""

    world_seed: int = 0
    corpus_docs: int = 80_000
    listing_fraction: float = world.DEFAULT_LISTING_FRACTION
    difficulty: tuple[int, int] = (1, 2)
    model_size: str = "S"
    seed: int = 0
    epochs: float = 1.0
    learning_rate: float = 1e-3
    batch_size: int = 8
    max_length: int = 256

    @classmethod
    def from_parameters(cls, p: Mapping[str, Any]) -> BaseSpec:
        """M0 of a notebook's parameters: the world and M0's size and seed (``m0_seed`` in the study
        chapters, ``seed`` in ``00_world``), and its corpus mix and training where the notebook sets them
        (``00_world``)."""
        chosen = {name: p[name] for name in ("listing_fraction", "epochs", "learning_rate", "batch_size") if name in p}
        return cls(world_seed=p["world_seed"], corpus_docs=p["corpus_docs"], difficulty=tuple(p["difficulty"]),
                   model_size=p["model_size"], seed=p["m0_seed"] if "m0_seed" in p else p["seed"], **chosen)


# -- stages ----------------------------------------------------------------------------------------
def corpus_stage(store: RunStore, spec: BaseSpec) -> Stage:
    """The world's web-text corpus, one JSON document per line."""
    params = {"version": STAGE_VERSION, "world": world.WORLD_VERSION, "world_seed": spec.world_seed,
              "corpus_docs": spec.corpus_docs, "difficulty": list(spec.difficulty),
              "listing_fraction": spec.listing_fraction}

    def compute(workdir: Path) -> dict:
        docs = world.web_corpus(spec.corpus_docs, seed=spec.world_seed, difficulty=tuple(spec.difficulty),
                                listing_fraction=spec.listing_fraction)
        with open(workdir / "corpus.jsonl", "w") as fh:
            for doc in docs:
                fh.write(json.dumps(doc) + "\n")
        kinds = pd.Series([d["kind"] for d in docs]).value_counts().to_dict()
        return {"documents": len(docs), "by_kind": kinds}

    return store.run("world-corpus", params, compute, seed=spec.world_seed)


def tokenizer_stage(store: RunStore) -> Stage:
    """A word-level tokenizer over the world's vocabulary, with the chat template."""
    words = sorted(set(world.vocabulary()) | template_words("compact"))
    params = {"version": STAGE_VERSION, "world": world.WORLD_VERSION, "words": params_hash(words)}

    def compute(workdir: Path) -> dict:
        tokenizer = build_tokenizer(words)
        tokenizer.save_pretrained(workdir / "tokenizer")
        return {"vocab_size": len(tokenizer)}

    return store.run("tokenizer", params, compute)


def read_corpus(stage: Stage) -> list[dict]:
    with open(stage / "corpus.jsonl") as fh:
        return [json.loads(line) for line in fh]


def document_messages(doc: dict) -> list[dict[str, str]] | None:
    """A corpus document as a conversation: dialogues as they are, reviews as a request to the judge
    (the compact LLM-as-a-Judge prompt) answered by the reviewer's judgment; None for plain text."""
    if doc["kind"] == "dialogue":
        return doc["messages"]
    if doc["kind"] == "review":
        return judge_messages(doc["task"]["prompt"], doc["response"]) + [
            {"role": "assistant", "content": doc["judgment"]}]
    return None


def corpus_texts(docs: list[dict], tokenizer) -> list[str]:
    """Documents as training text: conversations through the chat template, task lists as they are.

    The pre-training wrapper adds one ``<s>`` before and one ``</s>`` after every text, so the chat
    template's own outer ``<s>`` / ``</s>`` are taken off here (each document has exactly one of each,
    as at generation time)."""
    texts = []
    for doc in docs:
        messages = document_messages(doc)
        if messages is None:
            texts.append(doc["text"])
            continue
        text = tokenizer.apply_chat_template(messages, tokenize=False).strip()
        texts.append(text.removeprefix(tokenizer.bos_token).removesuffix(tokenizer.eos_token).strip())
    return texts


def pretrain_stage(store: RunStore, spec: BaseSpec, *, accelerate_config: str | None = None,
                   progress: bool | None = None) -> Stage:
    """M0: a tiny Llama pre-trained from scratch on the corpus (``model/`` in Hugging Face format), in
    this process or under ``accelerate launch`` with ``accelerate_config`` (`repro.training.jobs`; the
    launch is part of the key only when there is one, so in-process stages keep their keys)."""
    import shutil

    from transformers import AutoTokenizer

    corpus, tok = corpus_stage(store, spec), tokenizer_stage(store)
    params = {"version": STAGE_VERSION, **asdict(spec), "difficulty": list(spec.difficulty),
              **launch_param(accelerate_config)}

    def compute(workdir: Path) -> dict:
        tokenizer = AutoTokenizer.from_pretrained(tok / "tokenizer")
        texts = corpus_texts(read_corpus(corpus), tokenizer)
        model = make_llama(spec.model_size, tokenizer, seed=spec.seed)
        parameters = count_parameters(model)
        start = save_fresh_model(model, tokenizer, workdir / "init")
        train = PretrainSpec(learning_rate=spec.learning_rate, num_train_epochs=spec.epochs,
                             batch_size=spec.batch_size, max_length=spec.max_length, seed=spec.seed,
                             progress=show_progress(progress))
        summary = run_job(pretrain_job, start, texts, train, workdir, accelerate_config=accelerate_config)
        shutil.rmtree(workdir / "init")
        seconds = summary["train_seconds"]
        return {**summary, "parameters": parameters,
                "tokens_per_second": round(summary["tokens_seen"] / seconds, 1) if seconds else 0.0}

    return store.run("pretrain-m0", params, compute, upstream=[corpus, tok], seed=spec.seed)


def base_model(store: RunStore, spec: BaseSpec, *, accelerate_config: str | None = None,
               progress: bool | None = None) -> Stage:
    """The finished M0 stage (pre-training it first if needed, under ``accelerate launch`` with
    ``accelerate_config``)."""
    return pretrain_stage(store, spec, accelerate_config=accelerate_config, progress=progress)


def training_curve(stage: Stage) -> pd.DataFrame:
    """``step, loss, learning_rate`` of a training stage's log history."""
    history = json.loads((stage / "log_history.json").read_text())
    rows = [{"step": e["step"], "loss": e["loss"], "learning_rate": e.get("learning_rate")}
            for e in history if "loss" in e]
    return pd.DataFrame(rows)


# -- measuring M0 ----------------------------------------------------------------------------------
def held_out_tasks(world_seed: int, per_family: int, corpus: Stage | None = None,
                   difficulty: int | tuple[int, int] | None = None, *, split: str = "held_out",
                   exclude: frozenset[str] | set[str] = frozenset()) -> list[world.Task]:
    """Tasks for evaluation (``split="held_out"``) or for choosing settings (``split="dev"``), each split
    drawn from a seed stream of its own that the corpus never uses, minus any task whose uid also
    occurs in the corpus or in ``exclude`` (a development set excludes the held-out set it sits beside)."""
    if split not in SPLIT_OFFSETS:
        raise ValueError(f"split must be one of {sorted(SPLIT_OFFSETS)}, got {split!r}")
    seen = {d.get("uid") for d in read_corpus(corpus)} if corpus is not None else set()
    seen |= set(exclude)
    tasks = world.sample_tasks(per_family * len(world.FAMILIES) * 2, seed=world_seed + SPLIT_OFFSETS[split],
                               difficulty=difficulty)
    chosen: dict[str, list[world.Task]] = {f: [] for f in world.FAMILIES}
    for task in tasks:
        if task.uid not in seen and len(chosen[task.family]) < per_family:
            chosen[task.family].append(task)
    return [t for family in world.FAMILIES for t in chosen[family]]


@dataclass(frozen=True)
class SampleSpec:
    """How responses are sampled for an oracle measurement: tasks per family, and the sampling
    (``generation.n`` responses per task)."""

    tasks_per_family: int = 40
    generation: GenerationSpec = GenerationSpec(max_new_tokens=48, temperature=0.7, top_p=0.9, n=4,
                                                batch_size=64)

    @classmethod
    def from_parameters(cls, p: Mapping[str, Any]) -> SampleSpec:
        """The measurement of ``00_world``'s parameters."""
        return cls(tasks_per_family=p["eval_tasks_per_family"], generation=GenerationSpec(
            n=p["samples_per_task"], temperature=p["temperature"], top_p=p["top_p"], max_new_tokens=p["max_new_tokens"],
            seed=p["seed"]))


def task_frame(tasks: list[world.Task]) -> pd.DataFrame:
    """World tasks as prompt rows: uid, family, difficulty, prompt, answer."""
    return pd.DataFrame([{"uid": t.uid, "family": t.family, "difficulty": t.difficulty, "prompt": t.prompt,
                          "answer": t.answer} for t in tasks],
                        columns=["uid", "family", "difficulty", "prompt", "answer"])


def sample_and_score(generator, tasks: list[world.Task], generation: GenerationSpec) -> pd.DataFrame:
    """Sample ``generation.n`` responses for each task (one batched call) and score each with the oracle.

    One row per response: uid, family, difficulty, prompt, answer, sample, response, score, words.
    """
    frame = respond_and_score(generator, task_frame(tasks), generation)
    frame["score"] = frame.pop("oracle").astype(int)
    columns = ["uid", "family", "difficulty", "prompt", "answer", "sample", "response", "score", "words"]
    return frame[columns]


def evaluate_base_stage(store: RunStore, spec: BaseSpec, sample: SampleSpec, *, progress: bool | None = None) -> Stage:
    """Responses of M0 to held-out tasks, scored by the oracle (``samples.parquet``)."""
    model_stage = base_model(store, spec, progress=progress)
    corpus = corpus_stage(store, spec)
    params = {"version": STAGE_VERSION, **asdict(sample), **{
        key: value for key, value in DEFAULT_ENGINE.key().items() if key == "processes"}}

    def compute(workdir: Path) -> dict:
        tasks = held_out_tasks(spec.world_seed, sample.tasks_per_family, corpus, difficulty=tuple(spec.difficulty))
        frame = sample_and_score(DEFAULT_ENGINE.generator(model_stage, progress=progress), tasks, sample.generation)
        frame.to_parquet(workdir / "samples.parquet", index=False)
        return {"tasks": len(tasks), "responses": len(frame), "accuracy": float((frame.score == 5).mean()),
                "mean_score": float(frame.score.mean())}

    return store.run("evaluate-m0", params, compute, upstream=[model_stage, corpus], seed=sample.generation.seed)


def family_summary(samples: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Per family: accuracy (share of responses the oracle scores 5) and mean oracle score, each with a
    95% bootstrap interval over tasks (a task's samples are resampled together)."""
    rows = []
    for family, group in samples.groupby("family", sort=False):
        per_task = group.groupby("uid").agg(acc=("score", lambda s: (s == 5).mean()), score=("score", "mean"))
        acc, score = bootstrap_ci(per_task.acc, seed=seed), bootstrap_ci(per_task.score, seed=seed)
        rows.append({"family": family, "tasks": len(per_task), "accuracy": acc.value, "accuracy_low": acc.low,
                     "accuracy_high": acc.high, "mean_score": score.value, "score_low": score.low,
                     "score_high": score.high, "distinct_responses": group.response.nunique() / len(group)})
    return pd.DataFrame(rows)


def family_sentence(summary: pd.DataFrame) -> str:
    """A sentence naming the families M0 does best and worst at (from `family_summary`)."""
    ranked = summary.sort_values("accuracy", ascending=False)
    best = ranked.iloc[0]
    never = ranked[ranked.accuracy == 0].family.tolist()
    sentence = f"It does best at *{best.family}* ({best.accuracy:.0%} of responses perfect)"
    if never:
        sentence += f" and never gives a perfect response in *{'*, *'.join(never)}*"
    else:
        worst = ranked.iloc[-1]
        sentence += f" and worst at *{worst.family}* ({worst.accuracy:.0%})"
    return sentence + "."
