"""A real model on the paper path: what a small pretrained, instruction-tuned Llama does with each template.

The chapters run on the tiny world, whose models write noise when a template asks them for prose. The
paper path (chat prompts, the plain-English judge rubric, the labeller's plain wording, the LLM evolver)
is meant for real models. This module sends one real model through each of those templates, with the
studies' own stages and the small samples in the real formats that the package ships, and measures
what comes back:

1. **Self-rewarding** (`repro.studies.self_rewarding.stages`): the model writes new prompts by
   few-shot self-instruction in chat form from the oasst1 sample's prompts (measured: how many it
   writes and why the others are rejected). It samples N answers to each prompt of the shipped samples
   (oasst1, AlpacaEval, UltraFeedback, Arena-Hard: a few dozen real prompts, the same whatever the
   self-instruction gives) and judges every answer K times with the additive five-point rubric in plain
   English. Measured: the share of judgments with a readable score, the scores' spread, and how many
   prompts get two or more different scores among their N answers (without that, no preference pair).
2. **RLAIF labelling** (`repro.studies.rlaif.stages.alignment_stage`): the model labels the shipped
   summarize-from-feedback comparisons in both orders, reading the probabilities of "1" and "2" after
   the answer cue, with each technique asked for. Measured: agreement with the human choice, position
   bias (the same position wins after swapping), unreadable read-outs, and the rationales.
3. **eva's creator** (`repro.studies.eva.stages.create` with `LLMEvolver`): the self-rewarding answers,
   scored by the model's own judgments (no reward model ships in a registry package, so the judge
   stands in for ArmoRM), give each prompt's informativeness; the creator keeps the most informative
   and the model rewrites them with the EvolInstruct-style templates. Measured: the rewrites accepted
   and each rejection's reason, with examples.

Nothing here trains a model; the chapters' paper path on the same model (the ``real-small`` profile)
covers training.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from repro.data import alpaca_eval, mt_bench, oasst, summarize, ultrafeedback
from repro.data.records import text_id
from repro.evaluation.gold import NO_GOLD
from repro.generation import DEFAULT_ENGINE, Engine, external_model_stage
from repro.judges.parsing import parse_score
from repro.runs.store import RunStore, Stage, params_hash
from repro.studies.eva import stages as eva
from repro.studies.rlaif import stages as rl
from repro.studies.self_rewarding import stages as sr

#: The stage version of `creator_stage`.
VERSION = "real-1"


@dataclass(frozen=True)
class ProbeSpec:
    """How much each probe asks of the model (the notebook's parameters; see the module)."""

    new_prompts: int = 16
    shots: int = 8
    seed_shots: int = 6
    prompt_max_new_tokens: int = 64
    candidates: int = 4
    max_new_tokens: int = 128
    judge_samples: int = 1
    judge_max_new_tokens: int = 160
    judge_readout: str = "cue"
    techniques: tuple[str, ...] = ("base/0", "detailed/0", "detailed+cot/0")
    max_rationale_tokens: int = 128
    keep_fraction: float = 0.5
    evolutions: int = 2
    evolver_max_new_tokens: int = 192
    max_prompts: int = 0  # answer and judge only the first this many shipped prompts (0: all of them)
    seed: int = 0

    @classmethod
    def from_parameters(cls, p) -> ProbeSpec:
        """The probes of ``40_real_model``'s parameters."""
        names = [f for f in cls.__dataclass_fields__ if f in p]
        return cls(**{name: tuple(p[name]) if name == "techniques" else p[name] for name in names})

    def iteration(self) -> sr.IterationSpec:
        """The self-rewarding iteration's settings for real models: chat self-instruction, the rubric in
        plain English."""
        return sr.IterationSpec(prompts=self.new_prompts, shots=self.shots, seed_shots=self.seed_shots,
                                prompt_max_new_tokens=self.prompt_max_new_tokens, prompt_style="chat",
                                candidates=self.candidates, max_new_tokens=self.max_new_tokens,
                                judge_samples=self.judge_samples, judge_max_new_tokens=self.judge_max_new_tokens,
                                judge_template="full", judge_readout=self.judge_readout, seed=self.seed)

    def creator(self) -> eva.CreatorSpec:
        return eva.CreatorSpec(fraction=self.keep_fraction, evolutions=self.evolutions, selection="greedy")


@dataclass
class Probes:
    """The stages of one model's probes: the converted model, the shipped prompts, the self-instructed
    prompts, the judged answers, one labelling stage per technique and the creator's step."""

    model: Stage
    prompts: Stage
    written: Stage
    judged: Stage
    labelling: dict[str, Stage]
    creator: Stage
    spec: ProbeSpec = field(default_factory=ProbeSpec)


def seed_prompts(source: str | Path | None = None) -> list[str]:
    """The first user turns of the oasst1 conversations in ``source`` (default: the shipped sample)."""
    messages = oasst.load_oasst_messages(str(source or oasst.sample_path()))
    prompts = [example["prompt"][0]["content"] for example in oasst.ift_examples(messages)]
    prompts += [candidate.prompt for candidate in oasst.eft_candidates(messages)]
    return list(dict.fromkeys(prompts))


def shipped_prompts() -> pd.DataFrame:
    """The real prompts the package ships (``uid``, ``family`` = their source, ``prompt``): the oasst1
    sample's first turns, AlpacaEval's, UltraFeedback's and Arena-Hard's samples, each prompt once."""
    frames = [pd.DataFrame({"family": "oasst1", "prompt": seed_prompts()}),
              alpaca_eval.load_alpaca_eval(alpaca_eval.sample_path()).assign(family="AlpacaEval"),
              ultrafeedback.load_prompts(str(ultrafeedback.sample_path())).assign(family="UltraFeedback"),
              mt_bench.load_arena_hard(str(mt_bench.arena_hard_sample_path())).assign(family="Arena-Hard")]
    frame = pd.concat([f[["family", "prompt"]] for f in frames], ignore_index=True).drop_duplicates("prompt")
    return frame.assign(uid=[text_id(p) for p in frame.prompt])[["uid", "family", "prompt"]].reset_index(drop=True)


def prompts_stage(store: RunStore, limit: int = 0) -> Stage:
    """`shipped_prompts` (the first ``limit`` of them; 0: all) as a prompts stage (``prompts.parquet``),
    keyed by their content."""
    frame = shipped_prompts()
    frame = frame.head(limit) if limit else frame

    def compute(workdir: Path) -> dict:
        frame.to_parquet(workdir / "prompts.parquet", index=False)
        return {"prompts": len(frame), "by_source": frame.family.value_counts().to_dict()}

    return store.run("real-prompts", {"version": VERSION, "prompts": params_hash(frame.to_numpy().tolist())}, compute)


def comparison_data(source: str | Path | None = None) -> rl.SummaryData:
    """The summarize-from-feedback comparisons in ``source`` (default: the shipped sample) as RLAIF's
    data, without TL;DR posts (the labeller reads only comparisons). The key names the shipped sample by its
    file name, not its place on disk, so a checkout in another folder reuses the stages built on it."""
    shipped = source is None
    source = str(source or summarize.sample_path("comparisons"))
    frame = summarize.load_comparisons(source)
    empty = frame.iloc[:0]
    name = f"shipped:{Path(source).name}" if shipped else source
    return rl.SummaryData(frame, empty, empty, {"comparisons": name, "hash": rl.frame_key(frame)})


def judged_responses(stage: Stage) -> pd.DataFrame:
    """The self-rewarding candidates with their judgments, one row per answer, in eva's shape
    (``uid``, ``sample``, ``prompt``, ``response``, ``reward`` = the mean readable judge score)."""
    frame = pd.read_parquet(stage / "candidates.parquet")
    return frame.rename(columns={"prompt_id": "uid", "judge": "reward", "candidate": "sample"})


def creator_stage(store: RunStore, model: Stage, judged: Stage, spec: ProbeSpec, *,
                  engine: Engine = DEFAULT_ENGINE) -> Stage:
    """One step of eva's creator on the judged answers: informativeness (reward gap) per prompt, the
    kept prompts, and the model's rewrites of them (``informativeness.parquet``, ``evolved.parquet``)."""
    evolver = eva.LLMEvolver(model, engine, max_new_tokens=spec.evolver_max_new_tokens)
    creator = spec.creator()
    params = {"version": VERSION, "creator": {"fraction": creator.fraction, "evolutions": creator.evolutions,
                                              "selection": creator.selection, "metric": creator.metric},
              "evolver": evolver.key(), "seed": spec.seed}

    def compute(workdir: Path) -> dict:
        responses = judged_responses(judged)
        scored = responses[responses.reward.notna()]
        # a prompt with fewer than two scored answers has no reward gap: the creator sees only the others
        counts = scored.groupby("uid").reward.transform("size")
        scored = scored[counts >= 2]
        if scored.empty:
            pd.DataFrame().to_parquet(workdir / "informativeness.parquet")
            pd.DataFrame().to_parquet(workdir / "evolved.parquet")
            return {"prompts_scored": 0, "selected": 0, "evolved": 0}
        mixed, info, report = eva.create(scored, creator, seed=spec.seed, evolver=evolver)
        info.to_parquet(workdir / "informativeness.parquet", index=False)
        mixed.to_parquet(workdir / "evolved.parquet", index=False)
        return {"prompts_scored": int(scored.uid.nunique()), **report}

    return store.run("real-creator", params, compute, upstream=[model, judged], seed=spec.seed)


def run_probes(store: RunStore, model_path: str, spec: ProbeSpec = ProbeSpec(), *,
               engine: Engine = DEFAULT_ENGINE, oasst_path: str | None = None,
               comparisons_path: str | None = None, progress: bool | None = None) -> Probes:
    """Every probe of the module on the model at ``model_path`` (a GGUF file, a checkpoint folder or a
    hub id), each a run-store stage."""
    model = external_model_stage(store, model_path)
    iteration = spec.iteration()
    written = sr.self_instruct_stage(store, model, seed_prompts(oasst_path), iteration, 1, engine=engine,
                                     progress=progress)
    prompts = prompts_stage(store, spec.max_prompts)
    judged = sr.aift_stage(store, model, prompts, iteration, 1, gold=NO_GOLD, engine=engine, progress=progress)
    data = comparison_data(comparisons_path)
    labelling = {code: rl.alignment_stage(store, model, data, data.comparisons, data.comparisons,
                                          rl.Technique.parse(code), wording="plain", seed=spec.seed, engine=engine,
                                          max_rationale_tokens=spec.max_rationale_tokens, progress=progress)
                 for code in spec.techniques}
    creator = creator_stage(store, model, judged, spec, engine=engine)
    return Probes(model, prompts, written, judged, labelling, creator, spec)


# -- what the notebook shows ------------------------------------------------------------------------------
def judge_summary(probes: Probes) -> dict:
    """The judge's figures: judgments asked for, the share that wrote a readable score, how many were
    read at the cue (`repro.judges.llm_judge`), the scores' mean, spread and counts by value, and the
    prompts whose N answers got two or more different scores."""
    frame = pd.read_parquet(probes.judged / "candidates.parquet")
    scores = [float(s) for row in frame.judge_scores for s in row if s is not None and np.isfinite(s)]
    asked = len(frame) * probes.spec.judge_samples
    distinct = frame.dropna(subset=["judge"]).groupby("prompt_id").judge.nunique()
    written = int(probes.judged.results.get("parse", {}).get("ok", 0))
    cued = int(frame.read_at_cue.sum()) if "read_at_cue" in frame.columns else 0
    return {
        "prompts": int(frame.prompt_id.nunique()),
        "answers": len(frame),
        "judgments": asked,
        "written_share": written / asked if asked else float("nan"),
        "read_at_cue": cued,
        "readable": len(scores),
        "readable_share": len(scores) / asked if asked else float("nan"),
        "score_mean": float(np.mean(scores)) if scores else float("nan"),
        "score_std": float(np.std(scores)) if scores else float("nan"),
        "score_counts": {str(k): int(v) for k, v in pd.Series(scores).value_counts().sort_index().items()},
        "prompts_with_spread": int((distinct >= 2).sum()),
        "pairs": int(probes.judged.results.get("pairs", 0)),
    }


def labelling_table(probes: Probes) -> pd.DataFrame:
    """One row per technique: pairs, agreement with the human choice (both orders; first order alone),
    position bias (the same position won in both orders, and which) and unreadable read-outs."""
    rows = []
    for code, stage in probes.labelling.items():
        r = stage.results
        rows.append({"technique": rl.Technique.parse(code).name, "pairs": r["pairs"],
                     "agreement with humans": r["alignment"], "agreement, one order": r["alignment_one_order"],
                     "same position after swap": r.get("same_position", float("nan")),
                     "... the first": r.get("same_position_first", float("nan")),
                     "... the second": r.get("same_position_second", float("nan")),
                     "unreadable": r["unreadable"]})
    return pd.DataFrame(rows)


def rationales(probes: Probes, limit: int = 3) -> list[dict]:
    """A few chain-of-thought rationales (the first order's), from the first technique that writes them."""
    for code, stage in probes.labelling.items():
        path = stage / "rationales.json"
        if path.is_file():
            pairs = json.loads(path.read_text())
            return [{"technique": code, "rationale": first[0] if isinstance(first, list) else first}
                    for first, _ in pairs[:limit]]
    return []


def judgment_examples(probes: Probes, limit: int = 4) -> pd.DataFrame:
    """Judgments beside the answer they judge: half with a score written as the rubric asks, half without
    one (scored at the cue, when the read-out is ``cue``); ``read`` says which."""
    frame = pd.read_parquet(probes.judged / "candidates.parquet")
    rows = []
    for row in frame.itertuples():
        for text, value in zip(row.judgments, row.judge_scores):
            written = parse_score(text).value is not None
            rows.append({"prompt": row.prompt, "answer": row.response, "judgment": text,
                         "read": "written" if written else ("at the cue" if value is not None else "none"),
                         "score": float(value) if value is not None else float("nan")})
    table = pd.DataFrame(rows, columns=["prompt", "answer", "judgment", "read", "score"])
    written = table[table.read == "written"].head(limit // 2 or 1)
    others = table[table.read != "written"].head(limit - len(written))
    return pd.concat([written, others], ignore_index=True)


def evolver_summary(probes: Probes) -> dict:
    """The creator's counts and the evolver's report (accepted rewrites, rejections by reason)."""
    return dict(probes.creator.results)


def rewrite_examples(probes: Probes, limit: int = 4) -> pd.DataFrame:
    """Accepted rewrites beside the prompt they came from."""
    evolved = pd.read_parquet(probes.creator / "evolved.parquet")
    if evolved.empty or "parent" not in evolved.columns:
        return pd.DataFrame(columns=["parent prompt", "operator", "rewrite"])
    evolved = evolved[evolved.origin == "evolved"] if "origin" in evolved.columns else evolved
    prompts = pd.read_parquet(probes.prompts / "prompts.parquet")  # the judged prompts, the creator's parents
    parents = dict(zip(prompts.uid, prompts.prompt))
    parents.update(zip(evolved.uid, evolved.prompt))
    rows = [{"parent prompt": parents.get(r.parent, ""), "operator": r.operator, "rewrite": r.prompt}
            for r in evolved.head(limit).itertuples()]
    return pd.DataFrame(rows)


def written_prompts(probes: Probes, limit: int = 5) -> tuple[dict, list[str]]:
    """Self-instruction's counts (accepted, candidates, rejections by reason) and a few accepted prompts."""
    frame = pd.read_parquet(probes.written / "prompts.parquet")
    return dict(probes.written.results), frame.prompt.head(limit).tolist()
