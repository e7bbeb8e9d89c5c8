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
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
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
from repro.runs.store import RunStore, Stage, params_hash, shipped_root, shipped_stage
from repro.studies.common import respond_and_score
from repro.training import PretrainSpec
from repro.training.jobs import pretrain_job, run_job, save_fresh_model

# Bump when the code of a stage changes what it produces (the world has its own WORLD_VERSION).
STAGE_VERSION = "base-1"
#: Optimiser steps after which M0's recipe records its weights (``snapshots/``): the first one for
#: `replay`, the others for accuracy against pre-training compute (``00_world``).
SNAPSHOT_STEPS = (20, 625, 1250, 2500, 5000)
REPLAY_STEP = SNAPSHOT_STEPS[0]
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
    epochs: float = 4.0
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


def pretrain_settings(spec: BaseSpec, **more) -> PretrainSpec:
    """M0's pre-training settings (trl's), with the weights after `SNAPSHOT_STEPS` recorded along the way."""
    return PretrainSpec(learning_rate=spec.learning_rate, num_train_epochs=spec.epochs, batch_size=spec.batch_size,
                        max_length=spec.max_length, seed=spec.seed, snapshot_steps=SNAPSHOT_STEPS, **more)


def pretrain_params(spec: BaseSpec, accelerate_config: str | None = None) -> dict:
    """The parameters of M0's stage key (its upstream, the corpus and the tokenizer, complete the key)."""
    return {"version": STAGE_VERSION, **asdict(spec), "difficulty": list(spec.difficulty),
            **launch_param(accelerate_config)}


def pretrain_key(store: RunStore, spec: BaseSpec) -> str:
    """The key M0's stage has (or would have) in ``store``, without pre-training it."""
    return store.key("pretrain-m0", pretrain_params(spec), [corpus_stage(store, spec), tokenizer_stage(store)])


def pretrain_stage(store: RunStore, spec: BaseSpec, *, accelerate_config: str | None = None,
                   progress: bool | None = None, rebuild: bool = False) -> Stage:
    """M0: a tiny Llama pre-trained from scratch on the corpus (``model/`` in Hugging Face format), in
    this process or under ``accelerate launch`` with ``accelerate_config`` (`repro.training.jobs`; the
    launch is part of the key only when there is one, so in-process stages keep their keys).

    The package ships the default M0 as the finished stage (`repro.runs.store`, shipped stages): a store
    that lacks it copies it in under its own key rather than pre-training for an hour. ``rebuild``:
    pre-train it from nothing even so (and replace the store's copy). Along the way the weights after
    each of `SNAPSHOT_STEPS` are kept in ``snapshots/``: a replay of the first steps checks the recipe
    (`replay`), and the others show what more pre-training buys."""
    corpus, tok = corpus_stage(store, spec), tokenizer_stage(store)
    params = pretrain_params(spec, accelerate_config)

    def compute(workdir: Path) -> dict:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tok / "tokenizer")
        texts = corpus_texts(read_corpus(corpus), tokenizer)
        model = make_llama(spec.model_size, tokenizer, seed=spec.seed)
        parameters = count_parameters(model)
        start = save_fresh_model(model, tokenizer, workdir / "init")
        summary = run_job(pretrain_job, start, texts, pretrain_settings(spec, progress=show_progress(progress)),
                          workdir, accelerate_config=accelerate_config)
        shutil.rmtree(workdir / "init")
        if (workdir / "trainer" / "snapshots").is_dir():
            shutil.move(workdir / "trainer" / "snapshots", workdir / "snapshots")
        seconds = summary["train_seconds"]
        return {**summary, "parameters": parameters, "snapshot_steps": list(SNAPSHOT_STEPS),
                "tokens_per_second": round(summary["tokens_seen"] / seconds, 1) if seconds else 0.0}

    return store.run("pretrain-m0", params, compute, upstream=[corpus, tok], seed=spec.seed, force=rebuild,
                     shipped=True)


def replay(store: RunStore, spec: BaseSpec, stage: Stage, step: int | None = None) -> dict:
    """Replay M0's recipe from its first weights for ``step`` optimiser steps, on the same corpus,
    tokenizer and schedule, and compare the weights with the
    snapshot the recipe recorded at that step in ``stage``: the largest absolute difference of any
    weight, and the largest one relative to the weight's own scale. Default step: `REPLAY_STEP`."""
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    step = step or REPLAY_STEP
    recorded = stage / "snapshots" / f"step-{step}.safetensors"
    if not recorded.is_file():
        raise FileNotFoundError(f"the stage {stage.name}/{stage.key} recorded no snapshot at step {step}")
    corpus, tok = corpus_stage(store, spec), tokenizer_stage(store)
    tokenizer = AutoTokenizer.from_pretrained(tok / "tokenizer")
    texts = corpus_texts(read_corpus(corpus), tokenizer)
    with tempfile.TemporaryDirectory() as folder:
        model = make_llama(spec.model_size, tokenizer, seed=spec.seed)
        start = save_fresh_model(model, tokenizer, Path(folder) / "init")
        run_job(pretrain_job, start, texts, replace(pretrain_settings(spec, stop_after=step), snapshot_steps=(step,)),
                Path(folder))
        replayed = load_file(Path(folder) / "trainer" / "snapshots" / f"step-{step}.safetensors")
    shipped = load_file(recorded)
    if replayed.keys() != shipped.keys():
        raise ValueError("the replayed and the recorded weights have different tensors")
    diff = {k: float((replayed[k] - shipped[k]).abs().max()) for k in shipped}
    scale = {k: float(shipped[k].abs().max()) or 1.0 for k in shipped}
    return {"step": step, "tensors": len(shipped), "max_abs_difference": max(diff.values()),
            "max_relative_difference": max(diff[k] / scale[k] for k in shipped)}


def origin(stage: Stage) -> dict:
    """Where M0's stage came from: adopted from the shipped copy, or pre-trained here; and, when a shipped
    copy of the same stage exists beside one pre-trained here, how far the two sets of weights are apart
    (the largest absolute difference of any weight)."""
    shipped = shipped_stage(stage.name, stage.key)
    out = {"adopted": bool(stage.manifest.get("adopted_from")), "shipped": shipped is not None}
    if shipped is not None and not out["adopted"]:
        from safetensors.torch import load_file

        ours, theirs = (load_file(folder / "model" / "model.safetensors") for folder in (stage.path, shipped))
        out["max_abs_difference"] = max(float((ours[k] - theirs[k]).abs().max()) for k in theirs)
        out["shipped_train_seconds"] = json.loads((shipped / "manifest.json").read_text())["results"]["train_seconds"]
    return out


def origin_sentence(stage: Stage) -> str:
    """`origin` in words, for the world chapter (Markdown)."""
    found = origin(stage)
    where = f"`repro/shipped/{stage.name}/{stage.key}`"
    if found["adopted"]:
        return (f"M0 was not pre-trained in this build: the run store adopted the finished stage the package ships "
                f"({where}, with its model card), under the key a rebuild gives it. "
                "`repro run 00_world -p rebuild_base=true` pre-trains it from nothing.")
    if found["shipped"]:
        return (f"M0 was pre-trained in this build; the package also ships this stage ({where}), and the two sets "
                f"of weights differ by at most {found['max_abs_difference']:.2g} in any weight.")
    return "M0 was pre-trained in this build (the package ships no copy of this recipe)."


def ship(stage: Stage, command: str, target: Path | None = None) -> Path:
    """Copy a finished M0 stage into the package's shipped stages (`repro.runs.store.shipped_root`), with a
    model card (``README.md``): the recipe, the data, the steps and tokens, the loss curve, the commit
    and the command that made it. Returns the shipped folder."""
    target = Path(target or shipped_root()) / stage.name / stage.key
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(stage.path, target, ignore=shutil.ignore_patterns("trainer"))
    (target / "README.md").write_text(model_card(stage, command))
    return target


def model_card(stage: Stage, command: str) -> str:
    """A Hugging Face model card for a shipped M0 stage, written from its manifest and log history."""
    m, r = stage.manifest, stage.results
    spec = {k: v for k, v in m["params"].items() if k != "version"}
    curve = training_curve(stage)
    every = max(1, len(curve) // 12)
    rows = "\n".join(f"| {int(row.step)} | {row.loss:.4f} |" for row in curve.iloc[::every].itertuples())
    recipe = "\n".join(f"- `{k}`: {v}" for k, v in spec.items())
    return f"""---
library_name: transformers
license: mit
tags: [llama, tiny, repro, synthetic-world]
---

# M0: the base model of the repro study ({spec.get("model_size")} preset)

A `LlamaForCausalLM` of {r.get("parameters"):,} parameters pre-trained from scratch by the `repro`
study (`repro.studies.base.pretrain_stage`) on its synthetic world's web-text corpus: task dialogues
answered at mixed quality, reviews, task lists and listings (a list and a rearranged copy of it). It
is the base model M0 of every chapter; the run store adopts this folder as the finished stage
`pretrain-m0/{stage.key}`, the key a rebuild from nothing would have.

## Recipe

{recipe}

Stage code `{m["params"].get("version")}`, world `{world.WORLD_VERSION}`; corpus stage `{m["upstream"].get("world-corpus")}`,
tokenizer stage `{m["upstream"].get("tokenizer")}`. Training: trl `SFTTrainer`, texts packed into blocks of
`max_length` tokens, AdamW with a cosine schedule and 5% warm-up.

## Run

- optimiser steps: {r.get("steps")}; tokens seen: {r.get("tokens_seen"):,}
- first and final training loss: {r.get("first_loss"):.4f}, {r.get("final_loss"):.4f}
- wall time: {r.get("train_seconds"):.0f} s ({r.get("tokens_per_second"):,.0f} tokens/s)
- weights recorded after steps {r.get("snapshot_steps")} (`snapshots/`), the first for a replay of the
  recipe's first steps (`repro.studies.base.replay`, run by the test suite)
- commit: `{m.get("git_commit")}`; packages: {", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items())}
- made by: `{command}`

## Loss curve (one logged entry in {every}; the trainer logs every 10 steps)

| step | loss |
|---|---|
{rows}
"""


def base_model(store: RunStore, spec: BaseSpec, *, accelerate_config: str | None = None,
               progress: bool | None = None) -> Stage:
    """The finished M0 stage (the shipped one, or pre-training it first if needed, under ``accelerate
    launch`` with ``accelerate_config``)."""
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


def evaluate_base_stage(store: RunStore, spec: BaseSpec, sample: SampleSpec, *, model_stage: Stage | None = None,
                        progress: bool | None = None) -> Stage:
    """Responses of M0 (or of ``model_stage``, one of its snapshots) to held-out tasks, scored by the oracle
    (``samples.parquet``)."""
    model_stage = model_stage or base_model(store, spec, progress=progress)
    corpus = corpus_stage(store, spec)
    params = {"version": STAGE_VERSION, **asdict(sample), **{
        key: value for key, value in DEFAULT_ENGINE.key().items() if key in ("processes", "sampler")}}

    def compute(workdir: Path) -> dict:
        tasks = held_out_tasks(spec.world_seed, sample.tasks_per_family, corpus, difficulty=tuple(spec.difficulty))
        frame = sample_and_score(DEFAULT_ENGINE.generator(model_stage, progress=progress), tasks, sample.generation)
        frame.to_parquet(workdir / "samples.parquet", index=False)
        return {"tasks": len(tasks), "responses": len(frame), "accuracy": float((frame.score == 5).mean()),
                "mean_score": float(frame.score.mean())}

    return store.run("evaluate-m0", params, compute, upstream=[model_stage, corpus], seed=sample.generation.seed)


def snapshot_stage(store: RunStore, m0: Stage, step: int) -> Stage:
    """M0's weights after ``step`` optimiser steps (its recorded snapshot) as a model folder (``model/``)."""
    if not (m0 / "snapshots" / f"step-{step}.safetensors").is_file():
        raise FileNotFoundError(f"M0 {m0.key} recorded no snapshot at step {step}")

    def compute(workdir: Path) -> dict:
        shutil.copytree(m0 / "model", workdir / "model")
        shutil.copy(m0 / "snapshots" / f"step-{step}.safetensors", workdir / "model" / "model.safetensors")
        return {"step": step}

    return store.run("m0-snapshot", {"version": STAGE_VERSION, "step": step}, compute, upstream=[m0])


def compute_curve(store: RunStore, spec: BaseSpec, sample: SampleSpec, m0: Stage, *,
                  progress: bool | None = None) -> pd.DataFrame:
    """Accuracy of M0 on the held-out tasks after each recorded snapshot and at the end, against the
    pre-training compute spent to get there: tokens seen (full packed blocks of ``max_length``) and
    FLOPs (6 x parameters x tokens, the usual estimate for a forward and backward pass)."""
    steps = [s for s in SNAPSHOT_STEPS[1:] if (m0 / "snapshots" / f"step-{s}.safetensors").is_file()]
    points = [(s, snapshot_stage(store, m0, s)) for s in steps] + [(m0.results["steps"], m0)]
    rows = []
    for step, stage in points:
        samples = pd.read_parquet(evaluate_base_stage(store, spec, sample, model_stage=stage, progress=progress)
                                  / "samples.parquet")
        tokens = step * spec.batch_size * spec.max_length
        rows.append({"step": step, "tokens": tokens, "flops": 6.0 * m0.results["parameters"] * tokens,
                     "accuracy": float((samples.score == 5).mean()), "mean_score": float(samples.score.mean()),
                     **{f"accuracy_{f}": float((g.score == 5).mean()) for f, g in samples.groupby("family")}})
    return pd.DataFrame(rows)


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
