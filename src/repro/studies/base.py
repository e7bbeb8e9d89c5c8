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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from repro import world
from repro.generation import GenerationConfig
from repro.judges.rubric import judge_messages, template_words
from repro.progress import show_progress
from repro.runs.store import RunStore, Stage, params_hash

# Bump when the code of a stage changes what it produces (the world has its own WORLD_VERSION).
STAGE_VERSION = "base-1"
HELD_OUT_SEED_OFFSET = 1_000_003  # held-out tasks come from a seed stream the corpus never uses


@dataclass(frozen=True)
class BaseSpec:
    """Everything that determines M0 (and so the key of its stages)."""

    world_seed: int = 0
    corpus_docs: int = 80_000
    difficulty: tuple[int, int] = (1, 2)
    model_size: str = "S"
    seed: int = 0
    epochs: float = 1.0
    learning_rate: float = 1e-3
    batch_size: int = 8
    max_length: int = 256


# -- stages ----------------------------------------------------------------------------------------
def corpus_stage(store: RunStore, spec: BaseSpec) -> Stage:
    """The world's web-text corpus, one JSON document per line."""
    params = {"version": STAGE_VERSION, "world": world.WORLD_VERSION, "world_seed": spec.world_seed,
              "corpus_docs": spec.corpus_docs, "difficulty": list(spec.difficulty)}

    def compute(workdir: Path) -> dict:
        docs = world.web_corpus(spec.corpus_docs, seed=spec.world_seed, difficulty=tuple(spec.difficulty))
        with open(workdir / "corpus.jsonl", "w") as fh:
            for doc in docs:
                fh.write(json.dumps(doc) + "\n")
        kinds = pd.Series([d["kind"] for d in docs]).value_counts().to_dict()
        return {"documents": len(docs), "by_kind": kinds}

    return store.run("world-corpus", params, compute, seed=spec.world_seed)


def tokenizer_stage(store: RunStore) -> Stage:
    """A word-level tokenizer over the world's vocabulary, with the chat template."""
    from repro.models import build_tokenizer

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
    this process or under ``accelerate launch`` with ``accelerate_config`` (`repro.studies.jobs`; the
    launch is part of the key only when there is one, so in-process stages keep their keys)."""
    import shutil

    from transformers import AutoTokenizer

    from repro.models import count_parameters, make_llama
    from repro.studies.jobs import run_job, save_fresh_model
    from repro.studies.self_rewarding import launch_param
    from repro.training import PretrainParams

    corpus, tok = corpus_stage(store, spec), tokenizer_stage(store)
    params = {"version": STAGE_VERSION, **asdict(spec), "difficulty": list(spec.difficulty),
              **launch_param(accelerate_config)}

    def compute(workdir: Path) -> dict:
        tokenizer = AutoTokenizer.from_pretrained(tok / "tokenizer")
        texts = corpus_texts(read_corpus(corpus), tokenizer)
        model = make_llama(spec.model_size, tokenizer, seed=spec.seed)
        parameters = count_parameters(model)
        start = save_fresh_model(model, tokenizer, workdir / "init")
        train = PretrainParams(learning_rate=spec.learning_rate, num_train_epochs=spec.epochs,
                               batch_size=spec.batch_size, max_length=spec.max_length, seed=spec.seed,
                               progress=show_progress(progress))
        summary = run_job("pretrain", start, texts, train, workdir, accelerate_config=accelerate_config)
        shutil.rmtree(workdir / "init")
        seconds = summary["train_seconds"]
        return {**summary, "parameters": parameters,
                "tokens_per_second": round(summary["tokens_seen"] / seconds, 1) if seconds else 0.0}

    return store.run("pretrain-m0", params, compute, upstream=[corpus, tok], seed=spec.seed)


def save_training(workdir: Path, result, tokenizer) -> dict:
    """Save a training stage's model (``model/``) and log history; its summary for the manifest."""
    from repro.models import save_model

    save_model(result.model, tokenizer, workdir / "model")
    (workdir / "log_history.json").write_text(json.dumps(result.log_history, indent=1))
    return training_summary(result)


def training_summary(result) -> dict:
    """Steps, seconds and first and last training loss of a `repro.training.TrainResult`."""
    losses = result.losses
    return {"steps": result.steps, "train_seconds": round(result.wall_time_s, 2),
            "first_loss": losses[0][1] if losses else None, "final_loss": losses[-1][1] if losses else None}


def base_model(store: RunStore, spec: BaseSpec, *, accelerate_config: str | None = None,
               progress: bool | None = None) -> Stage:
    """The finished M0 stage (pre-training it first if needed, under ``accelerate launch`` with
    ``accelerate_config``)."""
    return pretrain_stage(store, spec, accelerate_config=accelerate_config, progress=progress)


MODEL_REF = "model_ref.json"


def external_model_stage(store: RunStore, model: str, *, name: str = "external-model") -> Stage:
    """A stage standing for a model that lives outside the run store (paper scale: a local checkpoint
    folder or a hub id such as ``meta-llama/Llama-2-70b-hf``), so that stages built on it chain and
    cache like those built on the tiny M0. Nothing is copied: the stage records where the model is
    (``model_ref.json``). A local folder must hold a ``config.json`` (whose content is part of the
    key); anything else is taken as a hub id, whose weights may change under the same name: to pin a
    version, download a snapshot and give its folder."""
    from repro.errors import ReproError

    path = Path(model).expanduser()
    local = path.exists()
    if local and not (path / "config.json").is_file():
        raise ReproError(f"model folder {path} has no config.json (not a Hugging Face checkpoint)")
    where = str(path.resolve()) if local else model
    params = {"version": STAGE_VERSION, "model": where,
              "config": params_hash((path / "config.json").read_text()) if local else None}

    def compute(workdir: Path) -> dict:
        (workdir / MODEL_REF).write_text(json.dumps({"model": where}))
        return {"model": where, "local": local}

    return store.run(name, params, compute)


def model_location(stage: Stage, subdir: str = "model") -> str:
    """Where a stage's model is: its own ``model/`` folder, or the path or hub id it refers to."""
    if (stage / subdir).is_dir():
        return str(stage / subdir)
    ref = stage / MODEL_REF
    if ref.is_file():
        return json.loads(ref.read_text())["model"]
    raise FileNotFoundError(f"stage {stage.name}/{stage.key} holds no model ({subdir}/ or {MODEL_REF})")


def load_stage_model(stage: Stage, subdir: str = "model"):
    """``(model, tokenizer)`` saved by a stage (or referred to by an external-model stage)."""
    from repro.models import load_model

    return load_model(model_location(stage, subdir))


@dataclass(frozen=True)
class Engine:
    """The generation backend every stage of a study uses: ``"transformers"`` (batched ``generate``,
    the tiny default) or ``"vllm"`` (paper scale), with the backend's engine options (for vLLM:
    ``tensor_parallel_size``, ``gpu_memory_utilization``, ``max_model_len``, ``dtype``, any other
    ``vllm.LLM`` argument). Part of every generating stage's key (`key`), since backends sample
    differently.

    Under ``accelerate launch`` (several processes), every generator it builds is sharded: each process
    generates and judges its slice of the prompts and all get the results in order
    (`repro.generation.sharded`). In one process nothing changes."""

    backend: str = "transformers"
    options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        from repro.generation import BACKENDS

        if self.backend not in BACKENDS:
            raise ValueError(f"unknown generation backend {self.backend!r}; valid backends: {', '.join(BACKENDS)}")

    @classmethod
    def of(cls, backend: str = "transformers", **options: Any) -> Engine:
        return cls(backend, tuple(sorted(options.items())))

    @classmethod
    def from_parameters(cls, backend: str = "transformers", tensor_parallel_size: int = 1,
                        vllm_options: dict | None = None) -> Engine:
        """The engine of a notebook's parameters ``generation_backend``, ``tensor_parallel_size`` and
        ``vllm_options`` (any other ``vllm.LLM`` argument). With the transformers backend
        ``tensor_parallel_size`` is ignored, as before, and ``vllm_options`` must be empty.

        Raises:
            ValueError: ``vllm_options`` with the transformers backend, or a ``tensor_parallel_size`` in
                ``vllm_options`` other than the parameter's.
        """
        options = dict(vllm_options or {})
        if backend != "vllm":
            if options:
                raise ValueError(f"vllm_options {options} are given, but generation_backend is {backend!r}, "
                                 "not 'vllm'")
            return cls.of(backend)
        if options.get("tensor_parallel_size", tensor_parallel_size) != tensor_parallel_size:
            raise ValueError(f"vllm_options sets tensor_parallel_size={options['tensor_parallel_size']}, but the "
                             f"tensor_parallel_size parameter is {tensor_parallel_size}: set it in one place")
        return cls.of(backend, **{**options, "tensor_parallel_size": tensor_parallel_size})

    def key(self) -> dict:
        """What of the engine goes into a generating stage's key: the backend and the options that can
        change the output. For vLLM, options that only schedule the work or size its memory
        (`repro.generation.vllm_backend.SCHEDULING_OPTIONS`: ``gpu_memory_utilization``,
        ``enforce_eager``, ``max_num_seqs``, ...) are left out; ``dtype``, ``max_model_len``,
        ``tensor_parallel_size`` and any other option stay in. With the transformers backend under
        ``accelerate launch``, the number of processes is added: sampled completions depend on how the
        prompts were split (`repro.generation.sharded`). vLLM seeds each prompt by its global index, so
        its key does not depend on the number of processes."""
        from repro.generation.sharded import launched_processes
        from repro.generation.vllm_backend import output_options

        options = dict(self.options)
        if self.backend == "vllm":
            options = output_options(options)
        key = {"backend": self.backend, **options}
        if self.backend == "transformers" and launched_processes() > 1:
            key["processes"] = launched_processes()
        return key

    def generator(self, stage: Stage, *, progress: bool | None = None):
        """A generator over the model of ``stage`` (sharded over the processes when launched)."""
        from repro.generation import HFGenerator, make_generator, shard
        from repro.generation.sharded import launched_state

        state = launched_state()
        show = show_progress(progress) and (state is None or state.is_main_process)
        options = dict(self.options)
        if self.backend == "transformers":
            model, tokenizer = load_stage_model(stage)
            if state is not None:  # each launched process runs its own copy on its own device
                options.setdefault("device", state.device)
            return shard(HFGenerator(model, tokenizer, progress=show, **options), state)
        if not show:
            options.setdefault("progress", False)
        return shard(make_generator(self.backend, model_location(stage), **options), state)


DEFAULT_ENGINE = Engine()


def training_curve(stage: Stage) -> pd.DataFrame:
    """``step, loss, learning_rate`` of a training stage's log history."""
    history = json.loads((stage / "log_history.json").read_text())
    rows = [{"step": e["step"], "loss": e["loss"], "learning_rate": e.get("learning_rate")}
            for e in history if "loss" in e]
    return pd.DataFrame(rows)


# -- measuring M0 ----------------------------------------------------------------------------------
def held_out_tasks(world_seed: int, per_family: int, corpus: Stage | None = None,
                   difficulty: int | tuple[int, int] | None = None) -> list[world.Task]:
    """Tasks for evaluation, drawn from a seed stream the corpus never uses, minus any task whose
    uid also occurs in the corpus."""
    seen = {d.get("uid") for d in read_corpus(corpus)} if corpus is not None else set()
    tasks = world.sample_tasks(per_family * len(world.FAMILIES) * 2, seed=world_seed + HELD_OUT_SEED_OFFSET,
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
    generation: GenerationConfig = GenerationConfig(max_new_tokens=48, temperature=0.7, top_p=0.9, n=4,
                                                    batch_size=64)


def respond_and_score(generator, prompts: pd.DataFrame, generation: GenerationConfig, gold=None,
                      sample: str = "sample") -> pd.DataFrame:
    """Sample ``generation.n`` responses to each prompt (one batched call) and score each with the gold
    judge (default: the world's oracle; `repro.evaluation.gold`).

    ``prompts`` has a ``prompt`` column and any others (ids, family, ...), which every response row
    carries along; added: ``sample`` (renamed as asked), ``response``, ``oracle`` (the gold score) and
    ``words``.
    """
    from repro.evaluation.gold import ORACLE

    outputs = generator.generate([[{"role": "user", "content": p}] for p in prompts.prompt], generation)
    rows = [{**record, sample: index, "response": response, "words": len(response.split())}
            for record, responses in zip(prompts.to_dict("records"), outputs)
            for index, response in enumerate(responses)]
    columns = [*prompts.columns, sample, "response", "words"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["oracle"] = (gold or ORACLE).score(frame.prompt.tolist(), frame.response.tolist()) if len(frame) else []
    return frame


def task_frame(tasks: list[world.Task]) -> pd.DataFrame:
    """World tasks as prompt rows: uid, family, difficulty, prompt, answer."""
    return pd.DataFrame([{"uid": t.uid, "family": t.family, "difficulty": t.difficulty, "prompt": t.prompt,
                          "answer": t.answer} for t in tasks],
                        columns=["uid", "family", "difficulty", "prompt", "answer"])


def sample_and_score(generator, tasks: list[world.Task], generation: GenerationConfig) -> pd.DataFrame:
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
    from repro.evaluation.stats import bootstrap_ci

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
