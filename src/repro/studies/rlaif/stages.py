"""RLAIF (Lee et al., 2023) as cached stages: labellers, AI labels, reward models, RL policies, win rates.

The chain, for the world and for real data alike:

1. **Data** (`world_data` or `file_data`): human comparisons in the summarize-from-feedback schema,
   TL;DR posts for the policy (SFT and RL prompts) and held-out posts for evaluating policies. The
   paper's evaluation set (15% of the train posts, confident comparisons only) is cut from the
   comparisons by `repro.data.summarize.evaluation_split`; the rest trains reward models.
2. **Labellers** (`labeller_stage`): tiny Llamas of several sizes pre-trained on the summarisation
   world's web text (`repro.world.summary_corpus`: forum TL;DRs, critics comparing and rating
   summaries, about fresh posts, never the study's comparisons). At paper scale: a model path.
3. **Alignment** (`alignment_stage`): the labeller's soft labels on the evaluation comparisons with one
   technique (`Technique`), both orders kept; alignment = share of pairs where the labeller prefers
   the summary the human preferred.
4. **AI labels** (`ai_labels_stage`) for the reward-model comparisons, with one technique.
5. **Reward models** (`reward_model_stage`): a tiny Llama with a scalar head, from the smallest
   labeller's pre-trained weights (the paper's RMs start from PaLM 2 XS), trained with trl's
   `RewardTrainer` on AI soft labels, AI hard labels or human labels; accuracy on the evaluation set.
6. **Policies**: SFT on TL;DR references (`sft_stage`), then RLOO (`rl_stage`) against the AI-label
   RM (RLAIF), the human-label RM (RLHF) or the labeller's d-RLAIF scores.
7. **Evaluation** (`summaries_stage`, `win_rates`): greedy summaries of held-out posts, judged by the
   world's simulated human raters in both orders; length-controlled win rates by logistic regression
   of the preference on the length difference (the paper's appendix).
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from repro.data.summarize import evaluation_split, load_comparisons, load_tldr, tldr_prompt
from repro.errors import ReproError
from repro.generation import DEFAULT_ENGINE, Engine, GenerationSpec, model_location
from repro.judges import labeller as lb
from repro.models import build_tokenizer, count_parameters, load_model, make_llama
from repro.progress import show_progress
from repro.runs.launch import launch_param
from repro.runs.store import RunStore, Stage, params_hash
from repro.studies.common import settings_key
from repro.training import PretrainSpec, SFTSpec
from repro.training.jobs import pretrain_job, reward_job, rl_job, run_job, save_fresh_model, save_training, sft_job
from repro.training.reward import RewardSpec, load_reward_model, reward_scores
from repro.training.rl import RLSpec, train_rloo
from repro.world import summaries as ws
from repro.world import summary_corpus as sc

STAGE_VERSION = "rlaif-1"
SFT_POSTS_OFFSET = 1_000_003  # seed streams of the policy's posts, apart from the comparisons' posts
EVAL_POSTS_OFFSET = 2_000_003
DEV_POSTS_OFFSET = 3_000_003  # the development posts: settings are chosen on them, never on the held-out posts
CRITIC_SEED_OFFSET = 17
TLDR_WORDS = ("SUBREDDIT:", "TITLE:", "POST:", "TL;DR:", ":")


# -- 1. data ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WorldSpec:
    """The summarisation world's data: human comparisons, the policy's posts, held-out posts."""

    world_seed: int = 0
    posts: int = 3000
    comparisons_per_post: int = 2
    workers: int = 8
    target_agreement: float = 0.75
    sft_posts: int = 2000
    eval_posts: int = 200

    @classmethod
    def from_parameters(cls, p: Mapping[str, Any]) -> WorldSpec:
        """The world of an RLAIF notebook's parameters (the policy's posts where the notebook sets them)."""
        posts = {name: p[name] for name in ("sft_posts", "eval_posts") if name in p}
        return cls(world_seed=p["world_seed"], posts=p["posts"], workers=p["workers"],
                   target_agreement=p["target_agreement"], **posts)


@dataclass
class SummaryData:
    """What every later stage reads: comparisons (`load_comparisons` columns), TL;DR frames for the
    policy (``tldr_train``: SFT and RL prompts) and for evaluation (``tldr_eval``), and, in the world,
    the posts and the human raters behind them (None for real data). ``key`` identifies the data in
    stage keys."""

    comparisons: pd.DataFrame
    tldr_train: pd.DataFrame
    tldr_eval: pd.DataFrame
    key: dict
    posts: dict[str, ws.Post] | None = None
    raters: list[ws.Rater] | None = None
    noise: float | None = None
    upstream: list[Stage] = field(default_factory=list)

    @property
    def world(self) -> bool:
        return self.posts is not None


def _fresh_posts(n: int, seed: int, prefix: str) -> list[ws.Post]:
    rng = random.Random(seed)
    return [replace(ws.make_post(rng, i), id=f"{prefix}_{i:06d}") for i in range(n)]


def world_data_stage(store: RunStore, spec: WorldSpec) -> Stage:
    """The world's comparisons (``comparisons.jsonl``, the real schema), TL;DR posts (``tldr_train.jsonl``,
    ``tldr_eval.jsonl``), every post (``posts.jsonl``, for the oracle) and the raters (``raters.json``)."""
    params = {"version": STAGE_VERSION, **asdict(spec)}

    def compute(workdir: Path) -> dict:
        data = ws.world_comparisons(spec.posts, comparisons_per_post=spec.comparisons_per_post, workers=spec.workers,
                                    target_agreement=spec.target_agreement, seed=spec.world_seed)
        sft_posts = _fresh_posts(spec.sft_posts, spec.world_seed + SFT_POSTS_OFFSET, "w3sft")
        eval_posts = _fresh_posts(spec.eval_posts, spec.world_seed + EVAL_POSTS_OFFSET, "w3eval")
        _write_jsonl(workdir / "comparisons.jsonl", data.records)
        _write_jsonl(workdir / "tldr_train.jsonl", ws.tldr_records(sft_posts))
        _write_jsonl(workdir / "tldr_eval.jsonl", ws.tldr_records(eval_posts))
        _write_jsonl(workdir / "posts.jsonl", [sc.post_to_dict(p) for p in [*data.posts.values(), *sft_posts, *eval_posts]])
        (workdir / "raters.json").write_text(json.dumps({"noise": data.noise, "raters": [asdict(r) for r in data.raters]}))
        agree = ws.agreement(data.qualities, data.raters)
        return {"comparisons": len(data.records), "noise": data.noise, "rater_agreement": agree,
                "sft_posts": len(sft_posts), "eval_posts": len(eval_posts)}

    return store.run("rlaif-world-data", params, compute, seed=spec.world_seed)


def _read_posts(stage: Stage) -> dict[str, ws.Post]:
    """A stage's ``posts.jsonl``, by post id."""
    with open(stage / "posts.jsonl") as fh:
        return {p.id: p for p in (sc.post_from_dict(json.loads(line)) for line in fh)}


def world_data(store: RunStore, spec: WorldSpec) -> SummaryData:
    stage = world_data_stage(store, spec)
    raters = json.loads((stage / "raters.json").read_text())
    posts = _read_posts(stage)
    return SummaryData(load_comparisons(stage / "comparisons.jsonl"), load_tldr(stage / "tldr_train.jsonl"),
                       load_tldr(stage / "tldr_eval.jsonl"), {"world": stage.key}, posts,
                       [ws.Rater(**r) for r in raters["raters"]], raters["noise"], [stage])


def dev_posts_stage(store: RunStore, spec: WorldSpec, n: int) -> Stage:
    """``n`` development posts of the world (``tldr_dev.jsonl``, ``posts.jsonl``): a seed stream of their own,
    apart from the comparisons', the policy's and the held-out posts, so that learner settings chosen on
    them never read a held-out post."""
    params = {"version": STAGE_VERSION, "world_seed": spec.world_seed, "posts": n}

    def compute(workdir: Path) -> dict:
        posts = _fresh_posts(n, spec.world_seed + DEV_POSTS_OFFSET, "w3dev")
        _write_jsonl(workdir / "tldr_dev.jsonl", ws.tldr_records(posts))
        _write_jsonl(workdir / "posts.jsonl", [sc.post_to_dict(p) for p in posts])
        return {"dev_posts": len(posts)}

    return store.run("rlaif-dev-posts", params, compute, seed=spec.world_seed)


def dev_view(data: SummaryData, dev: Stage) -> SummaryData:
    """``data`` with the development posts in place of the held-out ones, for `summaries_stage` only (its key
    says so); the stages that train keep ``data`` and so the keys of the chapter's own stages."""
    if not data.world:
        raise ValueError("development posts exist only in the world (no real-data split is defined)")
    posts = _read_posts(dev)
    if clash := sorted(set(posts) & set(data.posts)):
        raise ValueError(f"development posts share ids with the data: {clash[:3]}")
    return replace(data, tldr_eval=load_tldr(dev / "tldr_dev.jsonl"), key={**data.key, "dev": dev.key},
                   posts={**data.posts, **posts}, upstream=[*data.upstream, dev])


def file_data(comparisons: str, tldr: str, *, tldr_train_split: str = "train", tldr_eval_split: str = "test",
              comparisons_split: str | None = None, eval_posts: int | None = None) -> SummaryData:
    """Real data: summarize-from-feedback comparisons (files, folder or hub id) and the filtered TL;DR
    set, as a hub id with splits or a folder holding OpenAI's per-split files (``train.jsonl``,
    ``test.jsonl``, ...), so that the policy's training and evaluation posts never mix."""
    frame = load_comparisons(comparisons, split=comparisons_split)
    sources = []
    for split_name in (tldr_train_split, tldr_eval_split):
        folder = Path(tldr)
        if folder.is_file():
            raise ReproError(f"tldr_path {tldr} is one file; give a folder with {tldr_train_split}.jsonl and "
                             f"{tldr_eval_split}.jsonl (OpenAI's layout) or a hub id with those splits")
        if folder.is_dir():
            found = sorted(folder.glob(f"{split_name}.*"))
            if not found:
                raise ReproError(f"tldr_path {tldr} has no {split_name}.jsonl (or .parquet)")
            sources.append((str(found[0]), None))
        else:
            sources.append((tldr, split_name))
    train, test = (load_tldr(source, split=split_name) for source, split_name in sources)
    if eval_posts:
        test = test.head(eval_posts)
    key = {"comparisons": str(comparisons), "tldr": str(tldr), "rows": [len(frame), len(train), len(test)],
           "hash": params_hash([frame.id.tolist()[:1000], train.id.tolist()[:1000], test.id.tolist()])}
    return SummaryData(frame, train, test, key)


def _write_jsonl(path: Path, rows) -> None:
    with open(path, "w") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")


def split(data: SummaryData, *, fraction: float = 0.15, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(train, evaluation)`` comparisons: the paper's filter (see `evaluation_split`)."""
    return evaluation_split(data.comparisons, fraction=fraction, seed=seed)


def frame_key(frame: pd.DataFrame) -> str:
    """A content hash of a set of comparisons (which pairs, in which order, with which human choice),
    for stage keys: the evaluation split and any subset change it."""
    return params_hash(frame[["id", "summary_0", "summary_1", "choice"]].astype(str).to_numpy().tolist())


def pair_text(row) -> str:
    """The text a labeller reads for a comparison row or a TL;DR row."""
    return sc.post_text(row.title, row.post)


def comparison_pairs(frame: pd.DataFrame) -> list[tuple[str, str, str]]:
    return [(pair_text(r), r.summary_0, r.summary_1) for r in frame.itertuples()]


def policy_prompts(frame: pd.DataFrame) -> list[str]:
    """The TL;DR prompt of every row of a frame with ``subreddit``, ``title`` and ``post`` (TL;DR posts
    or comparisons)."""
    return [tldr_prompt(r.subreddit, r.title, r.post) for r in frame.itertuples()]


# -- 2. labellers ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LabellerSpec:
    """How the tiny labellers are made (one per size, all on the same corpus)."""

    corpus_docs: int = 20_000
    epochs: float = 1.0
    learning_rate: float = 1e-3
    batch_size: int = 16
    max_length: int = 512
    instruct_epochs: float = 1.0
    instruct_learning_rate: float = 5e-4
    context: int = 1024  # positions the model can attend over (few-shot prompts with rationales run long)
    seed: int = 0

    @classmethod
    def from_parameters(cls, p: Mapping[str, Any]) -> LabellerSpec:
        """The labellers of an RLAIF notebook's parameters."""
        return cls(corpus_docs=p["corpus_docs"], epochs=p["pretrain_epochs"], instruct_epochs=p["instruct_epochs"],
                   batch_size=p["labeller_batch_size"])


def tokenizer_words() -> list[str]:
    subreddits = sorted({f"r/{s}" for s in ws.SUBJECTS.values()})
    return sorted(set(ws.summary_vocabulary()) | lb.template_words() | sc.rationale_words() | set(TLDR_WORDS)
                  | set(subreddits))


def tokenizer_stage(store: RunStore, max_length: int = 512) -> Stage:
    """The summarisation world's word-level tokenizer (words of posts, summaries, prompts, rationales)."""
    words = tokenizer_words()
    params = {"version": STAGE_VERSION, "words": params_hash(words), "max_length": max_length}

    def compute(workdir: Path) -> dict:
        # the tokenizer's limit only governs warnings and explicit truncation; a few 2-shot documents
        # with rationales run past the model's context and are cut by the trainers
        tokenizer = build_tokenizer(words, model_max_length=2 * max_length)
        tokenizer.save_pretrained(workdir / "tokenizer")
        return {"vocab_size": len(tokenizer)}

    return store.run("rlaif-tokenizer", params, compute)


def corpus_stage(store: RunStore, data: SummaryData, spec: LabellerSpec, world: WorldSpec) -> Stage:
    """The labellers' corpus: critics with the human workers' noise, on fresh posts."""
    params = {"version": STAGE_VERSION, "docs": spec.corpus_docs, "world_seed": world.world_seed,
              "workers": world.workers, "noise": round(data.noise, 9)}

    def compute(workdir: Path) -> dict:
        critics = ws.make_raters(world.workers, data.noise, seed=world.world_seed + CRITIC_SEED_OFFSET)
        docs = sc.labeller_corpus(spec.corpus_docs, critics=critics, seed=world.world_seed)
        _write_jsonl(workdir / "corpus.jsonl", docs)
        return {"documents": len(docs), "by_kind": pd.Series([d["kind"] for d in docs]).value_counts().to_dict()}

    return store.run("rlaif-labeller-corpus", params, compute, seed=world.world_seed)


def _exemplar(shot: dict) -> lb.Exemplar:
    post = sc.post_from_dict(shot["post"])
    return lb.Exemplar(sc.post_text(post.title, post.body), shot["first"], shot["second"], shot["preferred"],
                       shot["rationale"])


def render_document(doc: dict) -> tuple[str, str]:
    """A corpus document as ``(prompt, completion)`` text in the labeller's own prompt formats (compact
    wording): the completion is what the writer of the document contributes (the TL;DR, the rating,
    the rationale and the choice). Pre-training reads ``prompt + completion``; instruction tuning takes
    the loss on the completion only."""
    post = sc.post_from_dict(doc["post"])
    text = sc.post_text(post.title, post.body)
    if doc["kind"] == "tldr":
        return tldr_prompt(post.subreddit, post.title, post.body), f" {doc['summary']}"
    if doc["kind"] == "rating":
        return lb.score_prompt(text, doc["summary"], "compact"), f" {doc['score']}"
    config = lb.LabelSpec(preamble=doc["preamble"], wording="compact", cot=doc["with_rationale"],
                          exemplars=tuple(_exemplar(s) for s in doc["shots"]))
    if doc["with_rationale"]:
        cue = lb.LAYOUT["compact"]["cue"]
        return (lb.labeller_prompt(text, doc["first"], doc["second"], config, for_rationale=True),
                f" {doc['rationale']}\n{cue} {doc['preferred']}")
    return lb.labeller_prompt(text, doc["first"], doc["second"], config), f" {doc['preferred']}"


def labeller_stage(store: RunStore, size: str, corpus: Stage, tokenizer: Stage, spec: LabellerSpec, *,
                   accelerate_config: str | None = None, progress: bool | None = None) -> Stage:
    """A tiny labeller of ``size``: pre-trained from scratch on the corpus, then instruction-tuned on
    the same documents with the loss on the writers' contributions only (``model/``). Both trainings
    run in this process or under ``accelerate launch`` with ``accelerate_config`` (`repro.training.jobs`)."""
    import shutil

    params = {"version": STAGE_VERSION, "size": size, **asdict(spec), **launch_param(accelerate_config)}

    def compute(workdir: Path) -> dict:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(tokenizer / "tokenizer")
        with open(corpus / "corpus.jsonl") as fh:
            documents = [render_document(json.loads(line)) for line in fh]
        model = make_llama(size, tok, seed=spec.seed, max_position_embeddings=spec.context)
        parameters = count_parameters(model)
        start = save_fresh_model(model, tok, workdir / "init")
        read = PretrainSpec(learning_rate=spec.learning_rate, num_train_epochs=spec.epochs,
                            batch_size=spec.batch_size, max_length=spec.max_length, seed=spec.seed,
                            progress=show_progress(progress))
        # without instruction tuning the pre-trained model is the labeller (``model/``)
        read_dir = workdir / "pretrain" if spec.instruct_epochs > 0 else workdir
        result = run_job(pretrain_job, start, [p + c for p, c in documents], read, read_dir,
                         accelerate_config=accelerate_config)
        shutil.rmtree(workdir / "init")
        summary = {"pretrain": _training(result), "tokens_seen": result["tokens_seen"]}
        if spec.instruct_epochs > 0:
            tune = SFTSpec(learning_rate=spec.instruct_learning_rate, num_train_epochs=spec.instruct_epochs,
                           batch_size=spec.batch_size, max_length=spec.max_length, seed=spec.seed,
                           progress=show_progress(progress))
            records = [{"prompt": p, "completion": c} for p, c in documents]
            summary["instruct"] = _training(run_job(sft_job, str(read_dir / "model"), records, tune, workdir,
                                                    accelerate_config=accelerate_config))
            shutil.rmtree(read_dir / "model")  # the pre-trained weights: only the labeller is kept
        return {**summary, "parameters": parameters}

    return store.run(f"rlaif-labeller-{size}", params, compute, upstream=[corpus, tokenizer], seed=spec.seed)


def _training(summary: dict) -> dict:
    """The fields of `repro.training.jobs.training_summary` in a job's summary."""
    return {k: summary[k] for k in ("steps", "train_seconds", "first_loss", "final_loss")}


# -- 3. techniques and alignment --------------------------------------------------------------------------
TECHNIQUE = re.compile(r"^(base|detailed)(\+cot)?/(\d+)(?:/sc(\d+)@([0-9.]+))?$")


@dataclass(frozen=True)
class Technique:
    """A prompting technique, written ``preamble[+cot]/shots[/scN@T]``: e.g. ``base/0``,
    ``detailed+cot/1``, ``detailed+cot/0/sc4@0.7`` (self-consistency: 4 rationales sampled at T 0.7)."""

    preamble: str = "base"
    shots: int = 0
    cot: bool = False
    rationales: int = 1
    temperature: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Technique:
        match = TECHNIQUE.match(str(text).strip().lower())
        if match is None:
            raise ValueError(f"technique {text!r} is not preamble[+cot]/shots[/scN@T], e.g. 'detailed+cot/0' "
                             "or 'detailed+cot/0/sc4@0.7'")
        preamble, cot, shots, samples, temperature = match.groups()
        if samples and not cot:
            raise ValueError(f"technique {text!r}: self-consistency samples rationales, so it needs +cot")
        return cls(preamble, int(shots), bool(cot), int(samples or 1), float(temperature or 0.0))

    @property
    def name(self) -> str:
        """The paper's name, e.g. ``Detailed + CoT 0-shot``."""
        return lb.technique_name(self.preamble, self.shots, self.cot, self.rationales, self.temperature)

    @property
    def code(self) -> str:
        sc_part = f"/sc{self.rationales}@{self.temperature:g}" if self.rationales > 1 else ""
        return f"{self.preamble}{'+cot' if self.cot else ''}/{self.shots}{sc_part}"

    def config(self, exemplars: Sequence[lb.Exemplar], *, wording: str, seed: int = 0, both_orders: bool = True,
               max_rationale_tokens: int = 48, batch_size: int = 64) -> lb.LabelSpec:
        return lb.LabelSpec(preamble=self.preamble, wording=wording, exemplars=tuple(exemplars[:self.shots]),
                            cot=self.cot, rationales=self.rationales,
                            temperature=self.temperature if self.rationales > 1 else 0.7,
                            max_rationale_tokens=max_rationale_tokens, both_orders=both_orders, seed=seed,
                            batch_size=batch_size)


def exemplars(train: pd.DataFrame, data: SummaryData, n: int, seed: int) -> list[lb.Exemplar]:
    """``n`` worked examples drawn from the training comparisons (never the evaluation set), with the
    human's choice; in the world, with the critics' kind of rationale (for CoT exemplars)."""
    if n <= 0:
        return []
    rows = train.sample(n=min(n, len(train)), random_state=seed)
    shots = []
    for r in rows.itertuples():
        reason = sc.rationale(data.posts[r.id], r.summary_0, r.summary_1) if data.world else None
        shots.append(lb.Exemplar(pair_text(r), r.summary_0, r.summary_1, int(r.choice) + 1, reason))
    return shots


def alignment_stage(store: RunStore, labeller: Stage, data: SummaryData, train: pd.DataFrame,
                    evaluation: pd.DataFrame, technique: Technique, *, wording: str = "compact", seed: int = 0,
                    engine: Engine = DEFAULT_ENGINE, max_rationale_tokens: int = 48,
                    progress: bool | None = None) -> Stage:
    """Soft labels of the evaluation comparisons (``labels.parquet``: ``p_ab``, ``p_ba``, ``p_a``,
    ``same_position``, the human ``choice``) and the alignment with the human labels."""
    params = {"version": STAGE_VERSION, "technique": technique.code, "wording": wording, "seed": seed,
              "data": data.key, "pairs": frame_key(evaluation), "shots_from": frame_key(train) if technique.shots else None,
              "engine": engine.key(), "rationale": max_rationale_tokens, "metrics": ALIGNMENT_METRICS}

    def compute(workdir: Path) -> dict:
        labels, frame, seconds = _label(labeller, data, train, evaluation, technique, wording=wording, seed=seed,
                                        engine=engine, max_rationale_tokens=max_rationale_tokens, progress=progress)
        frame.to_parquet(workdir / "labels.parquet")
        if technique.cot:
            (workdir / "rationales.json").write_text(json.dumps(labels.rationales[:20], indent=1))
        return {**alignment_metrics(frame), "seconds": round(seconds, 2),
                "pairs_per_second": round(len(frame) / seconds, 2)}

    return store.run("rlaif-alignment", params, compute, upstream=[labeller, *data.upstream], seed=seed)


def _label(labeller: Stage, data: SummaryData, shots_from: pd.DataFrame, comparisons: pd.DataFrame,
           technique: Technique, *, wording: str, seed: int, engine: Engine, max_rationale_tokens: int,
           progress: bool | None) -> tuple[lb.Labels, pd.DataFrame, float]:
    """Label ``comparisons`` with a technique (exemplars drawn from ``shots_from``): the labels, their
    frame with the human ``choice`` and the post ``id``, and the seconds the labelling took."""
    generator = engine.generator(labeller, progress=progress)
    config = technique.config(exemplars(shots_from, data, technique.shots, seed), wording=wording, seed=seed,
                              max_rationale_tokens=max_rationale_tokens)
    start = time.perf_counter()
    labels = lb.label_pairs(generator, comparison_pairs(comparisons), config)
    seconds = time.perf_counter() - start
    return labels, labels.frame.assign(choice=comparisons.choice.to_numpy(), id=comparisons.id.to_numpy()), seconds


#: The version of `alignment_metrics` in the keys of the stages that store them: 2 counts an unreadable
#: read-out as not aligned and computes position bias over the pairs read in both orders.
ALIGNMENT_METRICS = 2


def agrees(labels: pd.DataFrame, column: str = "p_a") -> np.ndarray:
    """Per comparison: whether the labeller's probability in ``column`` (``p_a``: both orders averaged;
    ``p_ab``: the first order alone) prefers the human's choice; an unreadable one (NaN) does not."""
    probability = labels[column].to_numpy(dtype=float)
    return ~np.isnan(probability) & ((probability >= 0.5) == (labels.choice.to_numpy() == 0))


def alignment_metrics(frame: pd.DataFrame) -> dict:
    """Alignment (labeller prefers the human's choice; both orders averaged, and the first order
    alone), the share of pairs where the same position wins after swapping, and which position.

    A pair the labeller gave no probability for (``unreadable``) counts as not aligned. It has no
    position reading: the position-bias figures are shares of the pairs read in both orders
    (``same_position_unreadable`` counts the others), and are left out only when no swapped read-out
    is readable at all (one order read)."""
    out = {"pairs": int(len(frame)), "unreadable": int(frame.p_a.isna().sum()),
           "alignment": float(np.mean(agrees(frame))), "alignment_one_order": float(np.mean(agrees(frame, "p_ab")))}
    if frame.p_ba.notna().any():
        same = lb.same_position(frame)
        read = same.notna()
        out["same_position_unreadable"] = int((~read).sum())
        if read.any():
            same, first = same[read] == 1, frame.p_ab[read] >= 0.5
            out["same_position"] = float(same.mean())
            out["same_position_first"] = float((same & first).mean())
            out["same_position_second"] = float((same & ~first).mean())
    return out


# -- 4. AI labels and reward models ----------------------------------------------------------------------
def ai_labels_stage(store: RunStore, labeller: Stage, data: SummaryData, train: pd.DataFrame, technique: Technique,
                    *, wording: str = "compact", seed: int = 0, engine: Engine = DEFAULT_ENGINE,
                    max_rationale_tokens: int = 48, progress: bool | None = None) -> Stage:
    """AI soft labels of the reward-model comparisons (``labels.parquet``, with the human choice)."""
    params = {"version": STAGE_VERSION, "technique": technique.code, "wording": wording, "seed": seed,
              "data": data.key, "pairs": frame_key(train), "engine": engine.key(), "rationale": max_rationale_tokens,
              "metrics": ALIGNMENT_METRICS}

    def compute(workdir: Path) -> dict:
        _, frame, seconds = _label(labeller, data, train, train, technique, wording=wording, seed=seed, engine=engine,
                                   max_rationale_tokens=max_rationale_tokens, progress=progress)
        frame.to_parquet(workdir / "labels.parquet")
        metrics = alignment_metrics(frame)
        return {"pairs": len(frame), "agreement_with_humans": metrics["alignment"], "unreadable": metrics["unreadable"],
                "seconds": round(seconds, 2), "pairs_per_second": round(len(frame) / seconds, 2)}

    return store.run("rlaif-ai-labels", params, compute, upstream=[labeller, *data.upstream], seed=seed)


def oracle_choice(comparisons: pd.DataFrame, data: SummaryData) -> np.ndarray:
    """The oracle's choice of each comparison (0 or 1: the summary of higher world quality; a tie, 0)."""
    if not data.world:
        raise ValueError("the oracle's summary quality exists only in the world")
    posts = [data.posts[i] for i in comparisons.id]
    q0 = np.array([ws.summary_quality(p, s) for p, s in zip(posts, comparisons.summary_0)])
    q1 = np.array([ws.summary_quality(p, s) for p, s in zip(posts, comparisons.summary_1)])
    return (q1 > q0).astype(int)


def reward_records(comparisons: pd.DataFrame, labels: str, ai: pd.DataFrame | None = None) -> list[dict]:
    """Preference records on TL;DR texts: ``human`` (hard, the human's choice), ``ai_hard`` (the AI's
    choice), ``ai_soft`` (summary 0 as chosen, the AI's P(summary 0 better) as soft label) or ``oracle``
    (hard, the ``oracle_choice`` column that `oracle_choice` fills in: the positive control's labels)."""
    texts = list(zip(policy_prompts(comparisons), comparisons.summary_0, comparisons.summary_1))
    if labels == "human":
        first = comparisons.choice.to_numpy() == 0
    elif labels == "oracle":
        first = comparisons.oracle_choice.to_numpy() == 0
    elif labels in ("ai_soft", "ai_hard"):
        if ai is None or len(ai) != len(comparisons):
            raise ValueError("AI labels must be given for every comparison")
        first = ai.p_a.to_numpy() >= 0.5
        readable = ai.p_a.notna().to_numpy()  # no label, no record (alignment_metrics counts them)
        texts, first, soft = ([x for x, r in zip(texts, readable) if r], first[readable], ai.p_a.to_numpy()[readable])
    else:
        raise ValueError(f"unknown labels {labels!r}; valid: human, oracle, ai_soft, ai_hard")
    if labels == "ai_soft":
        return [{"chosen": f"{p} {a}", "rejected": f"{p} {b}", "soft_label": float(q)}
                for (p, a, b), q in zip(texts, soft)]
    return [{"chosen": f"{p} {a if f else b}", "rejected": f"{p} {b if f else a}"} for (p, a, b), f in zip(texts, first)]


def reward_model_stage(store: RunStore, base: Stage, records: list[dict], evaluation: pd.DataFrame, spec: RewardSpec,
                       *, labels: str, data_key: dict, seed: int = 0, accelerate_config: str | None = None,
                       progress: bool | None = None, upstream: Sequence[Stage] = ()) -> Stage:
    """A reward model from ``base`` trained on ``records`` (in this process or under ``accelerate
    launch`` with ``accelerate_config``); its accuracy on the human evaluation set."""
    params = {"version": STAGE_VERSION, "labels": labels, "examples": len(records), "data": data_key,
              "records": params_hash(records), "evaluation": frame_key(evaluation), "seed": seed,
              **settings_key(spec, ("num_train_epochs", "learning_rate", "batch_size", "max_length")),
              **launch_param(accelerate_config)}

    def compute(workdir: Path) -> dict:
        train = replace(spec, seed=seed, progress=show_progress(progress))
        summary = run_job(reward_job, model_location(base), records, train, workdir, accelerate_config=accelerate_config,
                          options={"head_seed": seed})
        model, tokenizer = load_reward_model(workdir / "model", device="auto")
        return {**summary, "examples": len(records), "accuracy": reward_accuracy(model, tokenizer, evaluation)}

    return store.run("rlaif-reward-model", params, compute, upstream=[base, *upstream], seed=seed)


def reward_accuracy(model, tokenizer, evaluation: pd.DataFrame) -> float:
    """Share of evaluation comparisons where the RM scores the human-preferred summary higher."""
    texts = policy_prompts(evaluation)
    s0 = np.array(reward_scores(model, tokenizer, [f"{p} {s}" for p, s in zip(texts, evaluation.summary_0)]))
    s1 = np.array(reward_scores(model, tokenizer, [f"{p} {s}" for p, s in zip(texts, evaluation.summary_1)]))
    return float(np.mean((s0 > s1) == (evaluation.choice.to_numpy() == 0)))


# -- 5. policies --------------------------------------------------------------------------------------------------
def sft_stage(store: RunStore, base: Stage, data: SummaryData, spec: SFTSpec, *, seed: int = 0,
              accelerate_config: str | None = None, progress: bool | None = None) -> Stage:
    """The SFT policy: ``base`` fine-tuned with trl SFT on TL;DR prompts and their reference summaries
    (in this process or under ``accelerate launch`` with ``accelerate_config``)."""
    records = [{"prompt": p, "completion": f" {s}"} for p, s in zip(policy_prompts(data.tldr_train), data.tldr_train.summary)]
    params = {"version": STAGE_VERSION, "data": data.key, "seed": seed,
              **settings_key(spec, ("num_train_epochs", "learning_rate", "batch_size")), **launch_param(accelerate_config)}

    def compute(workdir: Path) -> dict:
        train = replace(spec, seed=seed, progress=show_progress(progress))
        summary = run_job(sft_job, model_location(base), records, train, workdir, accelerate_config=accelerate_config)
        return {**summary, "examples": len(records)}

    return store.run("rlaif-sft-policy", params, compute, upstream=[base, *data.upstream], seed=seed)


def direct_reward(labeller: Stage, data: SummaryData, *, wording: str = "compact", engine: Engine = DEFAULT_ENGINE):
    """The labeller's d-RLAIF score as a reward function (the post is found from its TL;DR prompt)."""
    generator = engine.generator(labeller, progress=False)
    texts = {p: sc.post_text(r.title, r.post) for p, r in zip(policy_prompts(data.tldr_train), data.tldr_train.itertuples())}

    def reward(prompts: list[str], completions: list[str]) -> list[float]:
        return lb.direct_scores(generator, [(texts[p], c.strip()) for p, c in zip(prompts, completions)],
                                wording=wording).tolist()

    return reward


def oracle_reward(data: SummaryData):
    """The world's own summary quality (`repro.world.summaries.summary_quality`) as a reward function: the
    positive control's reward, which no model stands between."""
    if not data.world:
        raise ValueError("the oracle's summary quality exists only in the world")
    posts = {p: data.posts[i] for p, i in zip(policy_prompts(data.tldr_train), data.tldr_train.id)}

    def reward(prompts: list[str], completions: list[str]) -> list[float]:
        return [ws.summary_quality(posts[p], c.strip()) for p, c in zip(prompts, completions)]

    return reward


def random_reward(seed: int):
    """Uniform random rewards in [0, 1), one per completion, from a seeded stream: the negative
    control's reward, which carries no information about the summary."""
    rng = np.random.default_rng(seed)

    def reward(prompts: list[str], completions: list[str]) -> list[float]:
        return rng.random(len(completions)).tolist()

    return reward


#: What a policy's RL stage learns from: a reward model, the labeller's direct scores (d-RLAIF), the
#: world's summary quality (the positive control) or random rewards (the negative control).
RL_KINDS = ("rm", "direct", "oracle", "random")


def rl_stage(store: RunStore, sft: Stage, reward_stage: Stage | None, kind: str, data: SummaryData, spec: RLSpec, *,
             n_prompts: int = 512, seed: int = 0, wording: str = "compact", engine: Engine = DEFAULT_ENGINE,
             accelerate_config: str | None = None, progress: bool | None = None) -> Stage:
    """A policy trained with RLOO (``spec``: trl's settings) from the SFT policy on ``n_prompts`` of its
    posts, against a reward model (``kind`` ``"rm"``), the labeller's d-RLAIF scores (``kind``
    ``"direct"``, ``reward_stage`` the labeller), the world's summary quality (``"oracle"``) or random
    rewards (``"random"``; ``reward_stage`` None for these two).

    With ``accelerate_config`` the reward-model runs are launched (`repro.training.jobs`, the reward
    model given by its folder). d-RLAIF stays in this process whatever the config: its reward runs the
    labeller's generator (a live engine, not a serializable job), and its stage key says so (no launch)."""
    if kind not in RL_KINDS:
        raise ValueError(f"unknown reward kind {kind!r}; valid: {', '.join(RL_KINDS)}")
    if (reward_stage is None) != (kind in ("oracle", "random")):
        raise ValueError(f"RL against {kind!r} {'takes no' if kind in ('oracle', 'random') else 'needs a'} reward stage")
    launch = accelerate_config if kind == "rm" else None
    prompts = policy_prompts(data.tldr_train)
    prompts = [prompts[i] for i in np.random.default_rng(seed).permutation(len(prompts))[:n_prompts]]
    params = {"version": STAGE_VERSION, "kind": kind, "data": data.key, "seed": seed, "wording": wording,
              "engine": engine.key() if kind == "direct" else None, "prompts": n_prompts,
              **({"unreadable_reward": lb.UNREADABLE_REWARD} if kind == "direct" else {}),
              **settings_key(spec, ("num_train_epochs", "learning_rate", "batch_size", "num_generations", "beta",
                                    "temperature", "max_completion_length")), **launch_param(launch)}

    def compute(workdir: Path) -> dict:
        from transformers import AutoTokenizer

        train = replace(spec, seed=seed, progress=show_progress(progress))
        if kind == "rm":
            summary = run_job(rl_job, model_location(sft), prompts, train, workdir, accelerate_config=launch,
                              options={"reward": {"reward_model": model_location(reward_stage)},
                                       "reference_path": model_location(sft)})
        else:
            reward = {"direct": lambda: direct_reward(reward_stage, data, wording=wording, engine=engine),
                      "oracle": lambda: oracle_reward(data), "random": lambda: random_reward(seed)}[kind]()
            model, _ = load_model(model_location(sft))
            tokenizer = AutoTokenizer.from_pretrained(model_location(sft))
            result = train_rloo(model, tokenizer, prompts, reward, train, workdir / "trainer",
                                reference_path=model_location(sft))
            summary = save_training(workdir, result, tokenizer)
        rewards = [e.get("reward") for e in json.loads((workdir / "log_history.json").read_text()) if "reward" in e]
        return {**summary, "prompts": len(prompts),
                "first_reward": rewards[0] if rewards else None, "final_reward": rewards[-1] if rewards else None}

    upstream = [sft, *([reward_stage] if reward_stage is not None else []), *data.upstream]
    return store.run(f"rlaif-rl-{kind}", params, compute, upstream=upstream, seed=seed)


# -- 6. evaluation -------------------------------------------------------------------------------------------------
def summaries_stage(store: RunStore, policy: Stage, data: SummaryData, *, max_new_tokens: int = 32,
                    engine: Engine = DEFAULT_ENGINE, progress: bool | None = None) -> Stage:
    """Greedy summaries of the held-out posts (``summaries.parquet``: id, summary, words, characters,
    and in the world the oracle's reading: quality, coverage, filler, hallucinated)."""
    params = {"version": STAGE_VERSION, "data": data.key, "max_new_tokens": max_new_tokens, "engine": engine.key()}

    def compute(workdir: Path) -> dict:
        generator = engine.generator(policy, progress=progress)
        config = GenerationSpec(max_new_tokens=max_new_tokens, temperature=0.0)
        texts = [c[0].strip() for c in generator.generate(policy_prompts(data.tldr_eval), config)]
        frame = pd.DataFrame({"id": data.tldr_eval.id.to_numpy(), "summary": texts})
        frame["words"] = frame.summary.str.split().str.len()
        frame["characters"] = frame.summary.str.len()
        if data.world:
            details = pd.DataFrame([ws.summary_details(data.posts[i], t) for i, t in zip(frame.id, frame.summary)])
            frame = pd.concat([frame, details[["quality", "coverage", "filler", "hallucinated"]]], axis=1)
        frame.to_parquet(workdir / "summaries.parquet")
        return {"summaries": len(frame), "mean_words": float(frame.words.mean()),
                **({"mean_quality": float(frame.quality.mean())} if data.world else {})}

    return store.run("rlaif-summaries", params, compute, upstream=[policy, *data.upstream])


def read_summaries(stage: Stage) -> pd.DataFrame:
    return pd.read_parquet(stage / "summaries.parquet")


def human_judgments(a: pd.DataFrame, b: pd.DataFrame, data: SummaryData, *, seed: int = 0) -> pd.DataFrame:
    """The world's human raters compare policy A's and B's summaries of each held-out post, in both
    orders (a worker drawn at random for each showing): one row per judgment with ``a_wins`` and the
    length difference in characters (A minus B)."""
    if not data.world:
        raise ValueError("simulated human raters exist only in the world; at paper scale judge with a labeller")
    b = b.set_index("id").loc[a.id]
    rng = random.Random(seed)
    rows = []
    for (post_id, qa, la), qb, lb_ in zip(a[["id", "quality", "characters"]].itertuples(index=False), b.quality,
                                          b.characters):
        for a_first in (True, False):
            rater = data.raters[rng.randrange(len(data.raters))]
            choice, _ = rater.rate(qa, qb, rng) if a_first else rater.rate(qb, qa, rng)
            rows.append({"id": post_id, "a_first": a_first, "a_wins": (choice == 0) == a_first,
                         "length_difference": la - lb_})
    return pd.DataFrame(rows)


def labeller_judgments(a: pd.DataFrame, b: pd.DataFrame, data: SummaryData, judge, config: lb.LabelSpec) -> pd.DataFrame:
    """Paper scale, where no simulated raters exist: a labeller (a generator) compares policy A's and
    B's summaries of each held-out post in both orders; rows as in `human_judgments`. A judgment whose
    read-out is unreadable (no probability) is left out, rather than counted as a win for B."""
    b = b.set_index("id").loc[a.id]
    texts = data.tldr_eval.set_index("id").loc[a.id]
    pairs = [(sc.post_text(t.title, t.post), sa, sb) for t, sa, sb in zip(texts.itertuples(), a.summary, b.summary)]
    frame = lb.label_pairs(judge, pairs, replace(config, both_orders=True)).frame
    difference = a.characters.to_numpy() - b.characters.to_numpy()
    probability = np.column_stack([frame.p_ab.to_numpy(dtype=float), frame.p_ba.to_numpy(dtype=float)]).ravel()
    judgments = pd.DataFrame({"id": np.repeat(a.id.to_numpy(), 2), "a_first": np.tile([True, False], len(a)),
                              "a_wins": probability >= 0.5, "length_difference": np.repeat(difference, 2)})
    return judgments[~np.isnan(probability)].reset_index(drop=True)


def win_rate(judgments: pd.DataFrame) -> float:
    return float(judgments.a_wins.mean())


def length_controlled_win_rate(judgments: pd.DataFrame) -> float:
    """The paper's length correction: a logistic regression of A's win on the length difference
    (statsmodels ``Logit``, with an intercept); the win rate it predicts at equal lengths,
    ``sigmoid(intercept)``. NaN when the fit is impossible (one outcome only, or no length variation)."""
    import warnings

    with warnings.catch_warnings():  # statsmodels 0.14 uses a helper that pandas 3 deprecates, at import
        warnings.filterwarnings("ignore", message="(Appender|Substitution) is deprecated")
        from statsmodels.discrete.discrete_model import Logit
        from statsmodels.tools.tools import add_constant

    y = judgments.a_wins.astype(float).to_numpy()
    x = judgments.length_difference.astype(float).to_numpy()
    if y.min() == y.max() or x.std() == 0:
        return float("nan")
    scale = x.std()
    try:
        fit = Logit(y, add_constant(x / scale)).fit(disp=0)
    except Exception:  # perfect separation and friends: no estimate
        return float("nan")
    return float(1 / (1 + np.exp(-fit.params[0])))


__all__ = [
    "LabellerSpec", "SummaryData", "Technique", "WorldSpec", "ai_labels_stage",
    "agrees", "alignment_metrics", "alignment_stage", "comparison_pairs", "corpus_stage", "direct_reward", "exemplars",
    "file_data", "human_judgments", "labeller_judgments", "labeller_stage", "length_controlled_win_rate", "policy_prompts",
    "read_summaries", "render_document", "reward_accuracy", "reward_model_stage", "reward_records", "rl_stage",
    "sft_stage", "split", "summaries_stage", "tokenizer_stage", "win_rate", "world_data",
    "world_data_stage",
]
