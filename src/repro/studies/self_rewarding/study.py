"""The whole Self-Rewarding study for one seed, and the tables that compare seeds.

`run_seed` chains the stages of `repro.studies.self_rewarding` as the paper does:

    M0 --IFT--> SFT baseline
    M0 --IFT + EFT--> M1 --AIFT(M1), DPO--> M2 --AIFT(M2), DPO--> M3 ...

plus the two ablations of the paper (self-rewarding without EFT: the SFT baseline judges its own
candidates; and SFT on the model's own top-scored responses instead of DPO), the controls
(`repro.evaluation.controls`: the same iterations on the oracle's picks among the same candidates, and
one on M1's pairs shuffled), the held-out evaluation of every model and the reward-modelling
evaluation of every judge. Every step is a cached stage of
the run store, so a second call with the same parameters returns at once.

What a seed varies: the order of fine-tuning data, the sampling of prompts, candidates and
judgments, and the sampling of the evaluation responses. What it does not vary: the world (IFT, EFT
and held-out tasks), M0 and the fixed reference. So the intervals over seeds measure how much the
*method* varies on a fixed base model, which is the variation the paper's single run cannot show.

The report functions (`head_to_head_table`, `reference_win_rates`, `reward_modelling_table`,
`iteration_table`, `length_table`, `judge_vs_oracle`) take the finished runs and return long
frames (one row per seed), which `summarise_over_seeds` turns into a mean with a 95% Student-t
interval over seeds.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from repro import world
from repro.evaluation import controls, gates, reported
from repro.evaluation.claims import part as claim_part
from repro.evaluation.gold import ORACLE, JudgeGold
from repro.evaluation.metrics import win_rate
from repro.evaluation.sizing import evaluation_variance
from repro.evaluation.stats import seed_ci
from repro.generation import DEFAULT_ENGINE, Engine, external_model_stage
from repro.judges.llm_judge import JudgeSpec
from repro.runs.store import RunStore, Stage
from repro.studies import base
from repro.studies.base import BaseSpec
from repro.studies.common import chat
from repro.studies.self_rewarding import stages as sr
from repro.studies.self_rewarding.data import SeedDataSpec, eft_records, ift_records, oasst_seed_data
from repro.training.preference import REFERENCE_METHODS, PreferenceSpec
from repro.training.sft import SFTSpec
from repro.world.corpus import DEFAULT_QUALITY_WEIGHTS

#: Ablation model names (the book's labels).
NO_EFT = "SFT+DPO (no EFT)"
TOP_SCORED_SFT = "M1+SFT (score 5)"
#: Control model names (the ``policy`` of the controls in ``reported.yaml``).
SHUFFLED = "M2 (shuffled pairs)"


def oracle_name(iteration: int) -> str:
    """The positive control's model after ``iteration`` iterations on oracle pairs."""
    return f"M{iteration + 1} (oracle pairs)"


@dataclass(frozen=True)
class StudySpec:
    """Everything that determines one seed's run, apart from the seed.

    ``eft_writer``: which model writes the EFT judgments: ``"SFT"`` (the paper) or ``"M0"``.
    ``iterations``: self-rewarding iterations after M1 (the paper: 2, giving M2 and M3).
    ``score_threshold``: the self-judged average a response needs for the top-scored-SFT ablation.
    ``accelerate_config``: train under ``accelerate launch`` with this config (paper scale).
    ``controls``: also run the controls (they need gold scores of the candidates).
    """

    base: BaseSpec = BaseSpec()
    seed_data: SeedDataSpec = SeedDataSpec()
    tune: SFTSpec = field(default_factory=SFTSpec)
    iteration: sr.IterationSpec = sr.IterationSpec()
    evaluation: sr.EvalSpec = sr.EvalSpec()
    judge: JudgeSpec = JudgeSpec()
    eft_source: str = "model"
    eft_writer: str = "M0"
    iterations: int = 2
    ablations: bool = True
    score_threshold: float = 5.0
    accelerate_config: str = ""
    controls: bool = True

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise ValueError(f"iterations must be at least 1, got {self.iterations}")
        if self.eft_writer not in ("SFT", "M0"):
            raise ValueError(f"eft_writer must be 'SFT' or 'M0', got {self.eft_writer!r}")

    def seeded(self, seed: int) -> StudySpec:
        """The same study with every stochastic step seeded by ``seed``."""
        return replace(self, tune=replace(self.tune, seed=seed), iteration=replace(self.iteration, seed=seed),
                       evaluation=replace(self.evaluation, seed=seed), judge=replace(self.judge, seed=seed))

    @classmethod
    def from_parameters(cls, p: Mapping[str, Any]) -> StudySpec:
        """The study of ``10_self_rewarding``'s parameters (``p``: the notebook's resolved parameters,
        `repro.book.notebook.parameters`)."""
        return cls(
            base=BaseSpec.from_parameters(p), seed_data=SeedDataSpec.from_parameters(p), tune=sft_settings(p),
            iteration=sr.IterationSpec(
                prompts=p["new_prompts"], prompt_style=p["prompt_style"], shots=p["shots"], seed_shots=p["seed_shots"],
                prompt_temperature=p["prompt_temperature"], prompt_top_p=p["prompt_top_p"],
                prompt_max_new_tokens=p["prompt_max_new_tokens"], rouge_threshold=p["rouge_threshold"],
                candidates=p["candidates"], temperature=p["temperature"], top_p=p["top_p"],
                max_new_tokens=p["max_new_tokens"], judge_samples=p["judge_samples"],
                judge_temperature=p["judge_temperature"], judge_max_new_tokens=p["judge_max_new_tokens"],
                judge_template=p["judge_template"], judge_readout=p["judge_readout"],
                preference=PreferenceSpec(method=p["method"], beta=p["dpo_beta"], learning_rate=p["dpo_learning_rate"],
                                          num_train_epochs=p["dpo_epochs"], batch_size=p["dpo_batch_size"],
                                          # the NLL term is for the methods with a reference (ORPO has its own)
                                          sft_weight=p["dpo_sft_weight"] if p["method"] in REFERENCE_METHODS else 0.0)),
            evaluation=sr.EvalSpec(prompts_per_family=p["eval_prompts_per_family"], samples=p["eval_samples"],
                                   temperature=p["temperature"], top_p=p["top_p"], max_new_tokens=p["max_new_tokens"],
                                   judge_samples=p["judge_samples"], judge_max_new_tokens=p["judge_max_new_tokens"],
                                   judge_template=p["judge_template"], judge_readout=p["judge_readout"]),
            judge=JudgeSpec(samples=p["judge_samples"], temperature=p["judge_temperature"],
                            max_new_tokens=p["judge_max_new_tokens"], template=p["judge_template"],
                            readout=p["judge_readout"]),
            eft_source=p["eft_source"], eft_writer=p["eft_writer"], iterations=p["iterations"], ablations=p["ablations"],
            accelerate_config=p["accelerate_config_path"], controls=p["controls"])

    @property
    def model_names(self) -> list[str]:
        """The main line of models: SFT, M1, M2, ... M(iterations + 1)."""
        return ["SFT"] + [f"M{i}" for i in range(1, self.iterations + 2)]


@dataclass
class SeedRun:
    """The finished stages of one seed."""

    seed: int
    spec: StudySpec
    models: dict[str, Stage] = field(default_factory=dict)
    eft: Stage | None = None
    prompts: dict[int, Stage] = field(default_factory=dict)  # iteration -> self-instructed prompts
    aift: dict[str, Stage] = field(default_factory=dict)  # model whose candidates and judgments -> stage
    evaluations: dict[str, Stage] = field(default_factory=dict)
    control_models: dict[str, Stage] = field(default_factory=dict)  # the controls' models, by policy name
    reward_modelling: dict[str, Stage] = field(default_factory=dict)
    _responses: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    def responses(self, name: str) -> pd.DataFrame:
        """A model's held-out responses (read once; every table of the chapter uses them)."""
        if name not in self._responses:
            self._responses[name] = pd.read_parquet(self.evaluations[name] / "responses.parquet")
        return self._responses[name]

    def stages(self) -> list[Stage]:
        """Every stage of the run (for provenance: durations, keys)."""
        out = [*self.models.values(), *self.control_models.values(), *self.prompts.values(), *self.aift.values(),
               *self.evaluations.values(), *self.reward_modelling.values()]
        if self.eft is not None:
            out.append(self.eft)
        return list({s.key: s for s in out}.values())


def sft_settings(p: Mapping[str, Any]) -> SFTSpec:
    """The SFT baseline's and M1's training (trl's SFT settings) from a notebook's ``sft_*`` parameters."""
    return SFTSpec(learning_rate=p["sft_learning_rate"], num_train_epochs=p["sft_epochs"],
                   batch_size=p["sft_batch_size"])


def top_scored_records(aift: Stage, threshold: float = 5.0) -> list[dict]:
    """SFT records from a model's own candidates whose self-judged average reaches ``threshold``
    (the paper's "SFT on score-5 self-generated responses" ablation); one per (prompt, response)."""
    frame = pd.read_parquet(aift / "candidates.parquet")
    kept = frame[frame.judge >= threshold].drop_duplicates(subset=["prompt", "response"])
    return [{"uid": f"{row.prompt_id}-{row.candidate}", "prompt": chat(row.prompt),
             "completion": [{"role": "assistant", "content": row.response}]} for row in kept.itertuples()]


def instruction_data(spec: StudySpec, eval_prompts: Stage, real_data: tuple | None = None):
    """The IFT records (the world's, none of them a held-out prompt, or the real seed data's), their
    key in the run store, and the real EFT frames (None in the world)."""
    if real_data is None:
        held_out = sr.prompt_rows(eval_prompts)
        ift = ift_records(spec.seed_data, exclude=set(held_out.prompt_id))
        return ift, {"ift": asdict(spec.seed_data), "held_out": eval_prompts.key}, None
    ift, eft_train, eft_eval, data_key = real_data
    return ift, {"ift": data_key}, (eft_train, eft_eval, data_key)


def sft_baseline(store: RunStore, spec: StudySpec, inputs: StudyInputs, *, seed: int = 0,
                 progress: bool | None = None) -> tuple[Stage, list[dict]]:
    """The SFT baseline of ``seed`` (M0 fine-tuned on the IFT data; the very stage `run_seed` makes) and
    its IFT records. The eva chapter starts from it."""
    spec = spec.seeded(seed)
    ift, ift_key, _ = instruction_data(spec, inputs.eval_prompts, inputs.real_data)
    return sr.finetune_stage(store, "sr-sft", inputs.m0, ift, spec.tune, ift_key,
                             accelerate_config=spec.accelerate_config or None, progress=progress), ift


def starting_models(store: RunStore, spec: StudySpec, *, m0: Stage, eval_prompts: Stage,
                    real_data: tuple | None = None, engine=None, progress: bool | None = None):
    """The IFT records and their key, the SFT baseline, the EFT stage and M1 of an already seeded spec:
    ``(ift, ift_key, sft, eft, m1)``."""
    held_out = sr.prompt_rows(eval_prompts)
    ift, ift_key, frames = instruction_data(spec, eval_prompts, real_data)
    launch = spec.accelerate_config or None
    sft = sr.finetune_stage(store, "sr-sft", m0, ift, spec.tune, ift_key, accelerate_config=launch, progress=progress)
    writer = sft if spec.eft_writer == "SFT" else m0
    eft = sr.eft_stage(store, spec.seed_data, writer, spec.judge, source=spec.eft_source,
                       exclude={r["uid"] for r in ift} | set(held_out.prompt_id), frames=frames,
                       engine=engine, progress=progress)
    eft_train_records = eft_records(pd.read_parquet(eft / "eft_train.parquet"))
    m1 = sr.finetune_stage(store, "sr-m1", m0, ift + eft_train_records, spec.tune, {**ift_key, "eft": eft.key},
                           upstream=[eft], accelerate_config=launch, progress=progress)
    return ift, ift_key, sft, eft, m1


def run_seed(store: RunStore, spec: StudySpec, seed: int, *, m0: Stage, prompt_generator: Stage,
             eval_prompts: Stage, real_data: tuple | None = None, gold=None, engine=None,
             progress: bool | None = None) -> SeedRun:
    """Every stage of the study for one seed (each cached): models, evaluations, reward modelling.

    ``eval_prompts``: a stage with ``prompts.parquet`` (`sr.world_prompts_stage`, or real prompts at
    paper scale); none of them is used for training. ``real_data``: ``(ift, eft_train, eft_eval,
    key)`` from `oasst_seed_data` instead of the world's seed data. ``gold``: the gold judge
    (default the oracle); ``engine``: the generation backend (`repro.generation.Engine`).
    """
    spec = spec.seeded(seed)
    run = SeedRun(seed=seed, spec=spec)
    held_out = sr.prompt_rows(eval_prompts)
    ift, ift_key, sft, run.eft, m1 = starting_models(store, spec, m0=m0, eval_prompts=eval_prompts,
                                                     real_data=real_data, engine=engine, progress=progress)
    launch = spec.accelerate_config or None
    run.models.update(SFT=sft, M1=m1)

    seed_prompts = [r["prompt"][0]["content"] for r in ift]
    current = m1
    for i in range(1, spec.iterations + 1):
        nxt, prompts, aift = sr.self_rewarding_iteration(
            store, current, prompt_generator, seed_prompts, spec.iteration, i,
            exclude_prompts=set(held_out.prompt), data_key=ift_key, gold=gold, engine=engine,
            accelerate_config=launch, progress=progress)
        run.prompts[i], run.aift[f"M{i}"], run.models[f"M{i + 1}"] = prompts, aift, nxt
        current = nxt

    if spec.ablations:
        # Without EFT: the SFT baseline is both the policy and the judge of iteration 1's prompts.
        aift_sft = sr.aift_stage(store, sft, run.prompts[1], spec.iteration, 1, gold=gold, engine=engine,
                                 progress=progress)
        run.aift["SFT"] = aift_sft
        run.models[NO_EFT] = sr.preference_stage(store, sft, aift_sft, spec.iteration, 1, accelerate_config=launch,
                                                 progress=progress)
        # SFT on M1's own top-scored responses instead of DPO on its pairs.
        records = top_scored_records(run.aift["M1"], spec.score_threshold)
        run.models[TOP_SCORED_SFT] = (sr.finetune_stage(
            store, "sr-sft-top", m1, records, spec.tune, {"aift": run.aift["M1"].key, "threshold": spec.score_threshold},
            upstream=[run.aift["M1"]], accelerate_config=launch, progress=progress) if records else m1)

    if spec.controls:
        run.control_models.update(control_models(store, spec, run, gold=gold, engine=engine, launch=launch,
                                                 progress=progress))

    for name, model in run.models.items():
        run.evaluations[name] = sr.evaluate_stage(store, model, eval_prompts, spec.evaluation, gold=gold,
                                                  engine=engine, progress=progress)
    oracle_only = replace(spec.evaluation, judge_samples=0)  # a control is measured by the oracle alone
    for name, model in run.control_models.items():
        run.evaluations[name] = sr.evaluate_stage(store, model, eval_prompts, oracle_only, gold=gold,
                                                  engine=engine, progress=progress)
    judges = spec.model_names + ([NO_EFT] if spec.ablations else [])
    for name in judges:
        run.reward_modelling[name] = sr.reward_modelling_stage(store, run.models[name], run.eft, spec.judge,
                                                               engine=engine, progress=progress)
    return run


def control_models(store: RunStore, spec: StudySpec, run: SeedRun, *, gold=None, engine=None,
                   launch: str | None = None, progress: bool | None = None) -> dict[str, Stage]:
    """The controls' models (`repro.evaluation.controls`), from M1 and the main line's prompts:

    - positive: DPO on the oracle's best-vs-worst picks among M1's own candidates (the very candidates
      M1 judged), then each later iteration on the oracle's picks among its own model's candidates
      (sampled, not judged), on the main line's prompts of that iteration;
    - negative: DPO on M1's self-judged pairs with chosen and rejected swapped by a fair coin.
    """
    out, current = {}, run.models["M1"]
    for i in range(1, spec.iterations + 1):
        aift = run.aift["M1"] if i == 1 else sr.aift_stage(store, current, run.prompts[i], spec.iteration, i, gold=gold,
                                                             feedback="oracle", engine=engine, progress=progress)
        current = out[oracle_name(i)] = sr.preference_stage(store, current, aift, spec.iteration, i, feedback="oracle",
                                                            accelerate_config=launch, progress=progress)
    out[SHUFFLED] = sr.preference_stage(store, run.models["M1"], run.aift["M1"], spec.iteration, 1, feedback="shuffled",
                                        accelerate_config=launch, progress=progress)
    return out


def dev_prompts(store: RunStore, spec: StudySpec, inputs: StudyInputs, per_family: int) -> Stage:
    """The world's development prompts, ``per_family`` per task family: none in the corpus, none among
    the held-out prompts (`sr.dev_prompts_stage`). Real prompts have no development split here."""
    if inputs.real_data is not None or inputs.gold is not ORACLE:
        raise ValueError("development prompts exist only in the world (no real-data split is defined)")
    return sr.dev_prompts_stage(store, base.corpus_stage(store, spec.base), spec.base,
                                replace(spec.evaluation, prompts_per_family=per_family), inputs.eval_prompts)


def dev_responses(store: RunStore, spec: StudySpec, seed: int, inputs: StudyInputs, dev_prompts: Stage, *,
                  progress: bool | None = None) -> tuple[Stage, pd.DataFrame, pd.DataFrame]:
    """The positive control's first iteration (DPO from M1 on the oracle's picks among M1's candidates,
    with ``spec.iteration.preference``'s settings) and its and M1's responses to the development prompts,
    scored by the oracle: ``(control stage, control's responses, M1's responses)``. Every stage but the
    control's model and the development evaluations is the very stage `run_seed` makes; no held-out
    prompt is read."""
    spec = spec.seeded(seed)
    held_out = sr.prompt_rows(inputs.eval_prompts)
    ift, ift_key, _, _, m1 = starting_models(store, spec, m0=inputs.m0, eval_prompts=inputs.eval_prompts,
                                             real_data=inputs.real_data, engine=inputs.engine, progress=progress)
    prompts = sr.self_instruct_stage(store, inputs.prompt_generator, [r["prompt"][0]["content"] for r in ift],
                                     spec.iteration, 1, exclude_prompts=set(held_out.prompt), data_key=ift_key,
                                     engine=inputs.engine, progress=progress)
    aift = sr.aift_stage(store, m1, prompts, spec.iteration, 1, gold=inputs.gold, engine=inputs.engine,
                         progress=progress)
    control = sr.preference_stage(store, m1, aift, spec.iteration, 1, feedback="oracle",
                                  accelerate_config=spec.accelerate_config or None, progress=progress)
    dev_eval = replace(spec.evaluation, judge_samples=0)  # the oracle scores; the model does not judge
    control_frame, m1_frame = (pd.read_parquet(sr.evaluate_stage(store, model, dev_prompts, dev_eval, gold=inputs.gold,
                                                                 engine=inputs.engine, progress=progress)
                                               / "responses.parquet") for model in (control, m1))
    return control, control_frame, m1_frame


def dev_control(store: RunStore, spec: StudySpec, seed: int, inputs: StudyInputs, dev_prompts: Stage, *,
                progress: bool | None = None) -> dict:
    """The positive control measured on the development prompts (`dev_responses`): its win rate against M1
    there, the variance of that win rate that sampling the responses alone makes (``eval_var``,
    `repro.evaluation.sizing.evaluation_variance`: what the chapter's seeds are sized from), its mean
    oracle score and accuracy, and its training's pairs, steps and final loss."""
    control, frame, m1_frame = dev_responses(store, spec, seed, inputs, dev_prompts, progress=progress)
    return {"seed": seed, "win_rate": compare(frame, m1_frame)["win_rate"],
            "eval_var": evaluation_variance(frame, m1_frame, seed=seed),
            "mean_oracle": float(frame.oracle.mean()), "accuracy": float((frame.oracle == 5).mean()),
            "pairs": control.results.get("pairs"), "steps": control.results.get("steps"),
            "final_loss": control.results.get("final_loss")}


def with_eval_var(store: RunStore, params: Mapping[str, Any], results: pd.DataFrame, *,
                  progress: bool | None = None) -> pd.DataFrame:
    """A development sweep's per-run ``results`` with every run's ``eval_var`` (`dev_control`). A sweep
    resumes the runs it finished before, so a run recorded before `dev_control` measured it lacks it: it is
    measured here from that run's stored development responses, every stage reused. The run's settings are
    the columns of its row that are parameters of the chapter (``params``, the chapter's own values: the
    swept settings and the preference method's others, which every run records)."""
    out = results.copy()
    if "eval_var" not in out.columns:
        out["eval_var"] = np.nan
    stale = out[out.eval_var.isna()]
    if stale.empty:
        return out
    spec = StudySpec.from_parameters(params)
    inputs = inputs_from_parameters(store, spec, params)
    dev = dev_prompts(store, spec, inputs, params["dev_prompts_per_family"])
    for index, row in stale.iterrows():
        setting = {k: row[k].item() if hasattr(row[k], "item") else row[k] for k in results.columns if k in params}
        run_spec = StudySpec.from_parameters({**params, **setting})
        _, frame, m1_frame = dev_responses(store, run_spec, int(row.seed), inputs, dev, progress=progress)
        out.loc[index, "eval_var"] = evaluation_variance(frame, m1_frame, seed=int(row.seed))
    return out


# -- the fixed reference (the analog of AlpacaEval's GPT-4 Turbo) ----------------------------------
REFERENCE_VERSION = "sr-reference-1"


def reference_stage(store: RunStore, eval_prompts: Stage, *, samples: int, world_seed: int = 0,
                    quality_weights: dict[int, float] | None = None) -> Stage:
    """A fixed, stronger reference: the world's writer answering every held-out prompt ``samples``
    times at qualities drawn from the corpus's mixed-quality distribution
    (`repro.world.corpus.DEFAULT_QUALITY_WEIGHTS`: about a third perfect, mean score 3.2), the
    assistant that M0 learnt to imitate. It does not depend on the seed of the study, as AlpacaEval's
    reference outputs do not depend on the model evaluated. Same columns as the models' evaluations."""
    weights = dict(quality_weights or DEFAULT_QUALITY_WEIGHTS)
    params = {"version": REFERENCE_VERSION, "world": world.WORLD_VERSION, "world_seed": world_seed,
              "samples": samples, "weights": {str(k): v for k, v in weights.items()}}

    def compute(workdir):
        rng = random.Random(world_seed)
        levels, probs = zip(*sorted(weights.items()))
        rows = []
        for prompt in sr.prompt_rows(eval_prompts).itertuples():
            task = world.parse_prompt(prompt.prompt)
            if task is None:
                raise ValueError(f"the world's reference can only answer world prompts, not {prompt.prompt!r}")
            for sample in range(samples):
                response = world.write_response(task, rng.choices(levels, probs)[0], rng)
                rows.append({"prompt_id": prompt.prompt_id, "family": prompt.family, "prompt": prompt.prompt,
                             "sample": sample, "response": response, "oracle": world.oracle_score(task, response),
                             "words": len(response.split())})
        frame = pd.DataFrame(rows)
        frame.to_parquet(workdir / "responses.parquet", index=False)
        return {"prompts": int(frame.prompt_id.nunique()), "responses": len(frame),
                "mean_oracle": float(frame.oracle.mean()), "accuracy": float((frame.oracle == 5).mean())}

    return store.run("sr-reference", params, compute, upstream=[eval_prompts], seed=world_seed)


def file_reference_stage(store: RunStore, eval_prompts: Stage, gold) -> Stage:
    """The paper-scale reference: the reference outputs that come with the evaluation prompts
    (AlpacaEval 2.0: GPT-4 Turbo's), scored by the gold judge. Same columns as the models' evaluations."""
    params = {"version": REFERENCE_VERSION, "gold": gold.key()}

    def compute(workdir):
        frame = pd.read_parquet(eval_prompts / "prompts.parquet").rename(columns={"uid": "prompt_id"})
        out = pd.DataFrame({"prompt_id": frame.prompt_id, "family": frame.family, "prompt": frame.prompt,
                            "sample": 0, "response": frame.reference,
                            "words": frame.reference.str.split().str.len()})
        out["oracle"] = gold.score(out.prompt.tolist(), out.response.tolist())
        out.to_parquet(workdir / "responses.parquet", index=False)
        return {"prompts": len(out), "mean_oracle": float(out.oracle.mean()), "unscored": int(out.oracle.isna().sum())}

    return store.run("sr-reference", params, compute, upstream=[eval_prompts])


@dataclass
class StudyInputs:
    """What every seed of the study shares: the base model, the prompt generator, the held-out prompts
    and the fixed reference, the seed data (None: the world's), the gold judge and the engine."""

    m0: Stage
    prompt_generator: Stage
    eval_prompts: Stage
    reference: Stage
    real_data: tuple | None
    gold: object
    engine: object


def prepare_inputs(store: RunStore, spec: StudySpec, *, base_model_path: str = "", prompt_generator_path: str = "",
                   seed_data_path: str = "", eval_prompts_path: str = "", gold_judge_path: str = "",
                   engine=None, progress: bool | None = None) -> StudyInputs:
    """The shared inputs, at either scale. Empty paths mean the tiny world's: M0 pre-trained on the
    world's corpus (`repro.studies.base`), M0 as prompt generator, world seed data, held-out world
    prompts with the world's writer as reference, and the oracle as gold judge. At paper scale each
    path names the real thing: a checkpoint folder or hub id for the models, an oasst1 source for the
    seed data (`oasst_seed_data`), an AlpacaEval-format source for the prompts and their reference
    outputs, and a judge model standing in for GPT-4."""
    engine = engine or DEFAULT_ENGINE
    m0 = external_model_stage(store, base_model_path) if base_model_path else base.base_model(
        store, spec.base, accelerate_config=spec.accelerate_config or None, progress=progress)
    generator = (external_model_stage(store, prompt_generator_path, name="external-generator")
                 if prompt_generator_path else m0)
    gold = (JudgeGold(external_model_stage(store, gold_judge_path, name="external-judge"), engine,
                      replace(spec.judge, seed=0)) if gold_judge_path else ORACLE)
    if eval_prompts_path:
        eval_prompts = sr.file_prompts_stage(store, eval_prompts_path)
        reference = file_reference_stage(store, eval_prompts, gold)
    else:
        corpus = base.corpus_stage(store, spec.base)
        eval_prompts = sr.world_prompts_stage(store, corpus, spec.base, spec.evaluation)
        reference = reference_stage(store, eval_prompts, samples=spec.evaluation.samples,
                                    world_seed=spec.base.world_seed)
    real_data = None
    if seed_data_path:
        sd = spec.seed_data
        real_data = oasst_seed_data(seed_data_path, ift_size=sd.ift_size, eft_train_prompts=sd.eft_train_prompts,
                                    eft_eval_prompts=sd.eft_eval_prompts, seed=sd.world_seed)
    return StudyInputs(m0, generator, eval_prompts, reference, real_data, gold, engine)


def inputs_from_parameters(store: RunStore, spec: StudySpec, p: Mapping[str, Any]) -> StudyInputs:
    """`prepare_inputs` with the paths and the engine of ``10_self_rewarding``'s parameters."""
    return prepare_inputs(store, spec, base_model_path=p["base_model_path"],
                          prompt_generator_path=p["prompt_generator_path"], seed_data_path=p["seed_data_path"],
                          eval_prompts_path=p["eval_prompts_path"], gold_judge_path=p["gold_judge_path"],
                          engine=Engine.from_parameters(p))


def run_study(store: RunStore, spec: StudySpec, seeds: list[int], inputs: StudyInputs,
              progress: bool | None = None) -> list[SeedRun]:
    """`run_seed` for every seed, on the shared inputs."""
    return [run_seed(store, spec, s, m0=inputs.m0, prompt_generator=inputs.prompt_generator,
                     eval_prompts=inputs.eval_prompts, real_data=inputs.real_data, gold=inputs.gold,
                     engine=inputs.engine, progress=progress) for s in seeds]


# -- tables over seeds -------------------------------------------------------------------------------
def base_gates(runs: list[SeedRun]) -> list[dict]:
    """The gates on the base (`repro.evaluation.gates`), measured on the SFT baseline, the starting policy
    of this chapter and of eva's: its held-out responses of every seed, pooled (a prompt of one seed is
    one prompt)."""
    responses = pd.concat([run.responses("SFT").assign(prompt_key=lambda f, s=run.seed: f"{s}/" + f.prompt_id.astype(str))
                           for run in runs], ignore_index=True)
    return [gates.capability(responses, policy="SFT baseline"),
            gates.diversity(responses, policy="SFT baseline", prompt="prompt_key")]


def control_results(runs: list[SeedRun], notebook: str = "10_self_rewarding") -> list[dict]:
    """Every control of ``notebook`` (`repro.evaluation.controls`), judged on the held-out win rate of its
    policy against its start, one value per seed that ran it."""
    return controls.measure(notebook, lambda c: [
        compare(run.responses(c.policy), run.responses(c.start))["win_rate"]
        for run in runs if c.policy in run.evaluations and c.start in run.evaluations])


def head_to_head_pairs(spec: StudySpec) -> list[tuple[str, str]]:
    """The paper's head-to-head table generalised to any number of iterations: every M_i against the
    SFT baseline, then every later M_i against every earlier M_j (for 2 iterations: M1/M2/M3 vs SFT,
    M2 vs M1, M3 vs M2, M3 vs M1), then the ablations against what they replace."""
    models = spec.model_names[1:]
    pairs = [(m, "SFT") for m in models]
    pairs += [(models[i], models[i - 1]) for i in range(1, len(models))]
    pairs += [(models[i], models[j]) for i in range(2, len(models)) for j in range(i - 1)]
    if spec.ablations:
        pairs += [(NO_EFT, "SFT"), (TOP_SCORED_SFT, "M1"), ("M2", TOP_SCORED_SFT)]
    return pairs


def _per_prompt(frame: pd.DataFrame) -> pd.Series:
    return frame.groupby("prompt_id").oracle.mean()


def compare(responses_a: pd.DataFrame, responses_b: pd.DataFrame) -> dict[str, float]:
    """Win / tie / loss shares and win rate (ties count half) of A against B on the same prompts,
    judged by the oracle on each model's mean score per prompt (`repro.evaluation.metrics`)."""
    result = sr.head_to_head(responses_a, responses_b)
    n = result.n or float("nan")
    return {"win": result.wins / n, "tie": result.ties / n, "loss": result.losses / n,
            "win_rate": win_rate(result), "prompts": result.n}


def head_to_head_table(runs: list[SeedRun]) -> pd.DataFrame:
    """One row per (pair, seed): win, tie, loss shares and win rate of A vs B by the oracle."""
    rows = []
    for run in runs:
        for a, b in head_to_head_pairs(run.spec):
            rows.append({"pair": f"{a} vs {b}", "a": a, "b": b, "seed": run.seed,
                         **compare(run.responses(a), run.responses(b))})
    return pd.DataFrame(rows)


def reference_win_rates(runs: list[SeedRun], reference: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, seed): win rate of the model against the fixed reference's responses."""
    return pd.DataFrame([{"model": name, "seed": run.seed, **compare(run.responses(name), reference)}
                         for run in runs for name in run.models])


def unparsable_share(tally: dict) -> float:
    """Share of judgments without a usable score, from a `repro.judges.parsing.ScoreTally` dict."""
    return 1 - tally["ok"] / tally["total"] if tally["total"] else float("nan")


REWARD_METRICS = ("pairwise_accuracy", "five_best", "exact_match", "spearman", "kendall_tau")


def reward_modelling_table(runs: list[SeedRun]) -> pd.DataFrame:
    """One row per (judge, seed): the reward-modelling metrics on the held-out EFT set."""
    rows = []
    for run in runs:
        for name, stage in run.reward_modelling.items():
            res = stage.results
            rows.append({"model": name, "seed": run.seed, **{m: res[m] for m in REWARD_METRICS},
                         "unparsable": unparsable_share(res["parse"])})
    return pd.DataFrame(rows)


def iteration_table(runs: list[SeedRun]) -> pd.DataFrame:
    """One row per (model whose AI feedback it is, seed): prompts written and kept, candidates,
    pairs, ties, unparsable judgments, and how often the self-judge's choice is right by the oracle."""
    rows = []
    for run in runs:
        for name, aift in run.aift.items():
            iteration = 1 if name == "SFT" else int(name[1:])
            prompts = run.prompts[iteration].results
            res = aift.results
            rows.append({"feedback": f"AIFT({name})", "model": name, "seed": run.seed,
                         "prompts_written": prompts["candidates"], "prompts_kept": prompts["accepted"],
                         "candidates": res["candidates"], "pairs": res["pairs"], "ties": res["ties"],
                         "no_score": res["unscored"],
                         "unparsable": unparsable_share(res["parse"]),
                         "judge_oracle_correlation": res["judge_oracle_correlation"],
                         "pairs_right_by_oracle": res["pairs_oracle_agree"],
                         "pairs_equal_by_oracle": res.get("pairs_oracle_equal"),
                         "right_where_oracle_differs": right_where_oracle_differs(res)})
    return pd.DataFrame(rows)


def right_where_oracle_differs(results: Mapping[str, Any]) -> float:
    """The self-judge's pairwise accuracy on its own candidates: among the pairs whose two answers the oracle
    scores differently, the share whose chosen answer is the better one (chance: 50%). NaN without such pairs."""
    right, equal = results.get("pairs_oracle_agree"), results.get("pairs_oracle_equal")
    if right is None or equal is None or equal >= 1:
        return np.nan
    return right / (1 - equal)


def self_judged_scores(run: SeedRun, name: str) -> pd.Series:
    """The averaged self-judged scores of one model's candidates in its AI-feedback stage."""
    return pd.read_parquet(run.aift[name] / "candidates.parquet").judge


def length_table(runs: list[SeedRun]) -> pd.DataFrame:
    """One row per (model, seed): mean response length in words on the held-out prompts, mean oracle
    score and accuracy (share of perfect responses)."""
    rows = []
    for run in runs:
        for name in run.models:
            frame = run.responses(name)
            rows.append({"model": name, "seed": run.seed, "words": frame.words.mean(),
                         "oracle": frame.oracle.mean(), "accuracy": (frame.oracle == 5).mean()})
    return pd.DataFrame(rows)


def judge_vs_oracle(runs: list[SeedRun]) -> pd.DataFrame:
    """One row per (model, seed): how the model judges its own held-out responses against the oracle:
    Pearson correlation, mean self-judged minus mean oracle score (over-rating), the share of
    self-judgments that could be read, and the correlation of the self-judged score with length
    (length exploitation)."""
    rows = []
    for run in runs:
        for name in run.models:
            frame = run.responses(name)
            scored = frame.dropna(subset=["self_judge"])
            enough = len(scored) > 2 and scored.self_judge.nunique() > 1
            rows.append({"model": name, "seed": run.seed,
                         "correlation": scored.self_judge.corr(scored.oracle) if enough else np.nan,
                         "overrating": scored.self_judge.mean() - scored.oracle.mean() if len(scored) else np.nan,
                         "parsed": len(scored) / len(frame),
                         "length_correlation": scored.self_judge.corr(scored.words) if enough else np.nan})
    return pd.DataFrame(rows)


#: The range of each bounded quantity of the study's tables (intervals are cut to it).
BOUNDS = {**{m: (0.0, 1.0) for m in ("win", "tie", "loss", "win_rate", "pairwise_accuracy", "five_best",
                                     "exact_match", "unparsable", "parsed", "accuracy", "pairs_right_by_oracle",
                                     "pairs_equal_by_oracle", "right_where_oracle_differs")},
          **{m: (-1.0, 1.0) for m in ("spearman", "kendall_tau", "correlation", "judge_oracle_correlation",
                                      "length_correlation")}}


def summarise_over_seeds(frame: pd.DataFrame, by: str | list[str], metrics: list[str] | tuple[str, ...],
                         *, order: list[str] | None = None) -> pd.DataFrame:
    """Mean and 95% Student-t interval over seeds (`repro.evaluation.stats.seed_ci`) of each metric,
    one row per group: ``<metric>``, ``<metric>_low``, ``<metric>_high``, and ``seeds``. Intervals of
    bounded quantities (`BOUNDS`: shares, correlations) are cut to their range."""
    by = [by] if isinstance(by, str) else list(by)
    rows = []
    for key, group in frame.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key))
        for metric in metrics:
            est = seed_ci(group[metric].astype(float), bounds=BOUNDS.get(metric))
            row.update({metric: est.value, f"{metric}_low": est.low, f"{metric}_high": est.high})
        row["seeds"] = group.seed.nunique()
        rows.append(row)
    out = pd.DataFrame(rows)
    if order is not None and len(by) == 1:
        rank = {name: i for i, name in enumerate(order)}
        out = out.sort_values(by[0], key=lambda s: s.map(lambda v: rank.get(v, len(rank)))).reset_index(drop=True)
    return out


def with_interval(summary: pd.DataFrame, metrics, *, percent: bool = False, digits: int = 2) -> pd.DataFrame:
    """A readable table: each metric as ``value [low, high]`` text; with ``percent``, shares are shown
    as percentages to one decimal and their columns renamed ``<metric> %``."""
    out = summary.drop(columns=[c for c in summary.columns if c.endswith(("_low", "_high"))]).copy()
    scale, digits = (100, 1) if percent else (1, digits)
    for metric in metrics:
        out[metric] = [f"{scale * v:.{digits}f} [{scale * lo:.{digits}f}, {scale * hi:.{digits}f}]"
                       if not np.isnan(v) else "n/a"
                       for v, lo, hi in zip(summary[metric], summary[f"{metric}_low"], summary[f"{metric}_high"])]
    return out.rename(columns={m: f"{m} %" for m in metrics}) if percent else out


# -- the paper's findings, tested ---------------------------------------------------------------------
def per_seed_difference(frame: pd.DataFrame, metric: str, a: str, b: str, by: str = "model") -> pd.Series:
    """``metric`` of ``a`` minus that of ``b``, seed by seed (rows matched on ``seed``)."""
    pivot = frame.pivot_table(index="seed", columns=by, values=metric, aggfunc="mean")
    return (pivot[a] - pivot[b]).rename(f"{a} - {b}")


def describe(estimate, unit: str) -> str:
    """An estimate with its interval in the claim's unit: a share in %, a difference of shares in
    percentage points, anything else as a number of its unit."""
    if np.isnan(estimate.value):
        return "n/a"
    if unit == "share":
        return f"{estimate.value:.1%} [{estimate.low:.1%}, {estimate.high:.1%}]"
    if unit == "difference":
        return f"{100 * estimate.value:+.1f} pts [{100 * estimate.low:+.1f}, {100 * estimate.high:+.1f}]"
    return f"{estimate.value:+.1f} {unit} [{estimate.low:+.1f}, {estimate.high:+.1f}]"


def findings(runs: list[SeedRun], reference: pd.DataFrame) -> pd.DataFrame:
    """The paper's main claims, each measured over seeds with a verdict by the book's rule (one row per part
    of a claim of the ledger, `repro.evaluation.claims.part`)."""
    spec = runs[0].spec
    last, first = spec.model_names[-1], "M1"
    h2h, ref, rm = head_to_head_table(runs), reference_win_rates(runs, reference), reward_modelling_table(runs)
    lengths, iters = length_table(runs), iteration_table(runs)
    rows = []

    def add(claim, values, null, paper, expect="greater", unit="share", *, cid, label=""):
        est = seed_ci(values, bounds=(0.0, 1.0) if unit == "share" else None)
        rows.append({"claim": claim, "paper": paper, "ours": est.value, "seeds": est.n, "unit": unit,
                     **claim_part(cid, est, null, expect, label=label, measured=describe(est, unit))})

    def pair_rate(a, b):
        return h2h[(h2h.a == a) & (h2h.b == b)].sort_values("seed").win_rate

    paper_h2h = reported.head_to_head()
    for a, b in head_to_head_pairs(replace(spec, ablations=False)):  # the paper's table
        paper = paper_h2h.get(f"{a} vs {b}")
        paper_text = f"{paper['win']}% win / {paper['loss']}% loss" if paper else "-"
        if (a, b) == ("M1", "SFT"):  # the paper finds M1 on par with the SFT baseline
            add("M1 is on par with the SFT baseline (win rate, ties half)", pair_rate(a, b), 0.5, paper_text,
                expect="equal", cid="sr-m1-on-par")
        else:
            add(f"{a} beats {b} head to head (win rate, ties half)", pair_rate(a, b), 0.5, paper_text,
                cid="sr-beats-sft" if b == "SFT" else "sr-iterations-improve", label=f"{a} vs {b}")
    ref_paper = reported.values("self_rewarding", "alpacaeval2_win_rate")
    add(f"The win rate against a fixed reference rises from M1 to {last}",
        per_seed_difference(ref, "win_rate", last, first), 0.0,
        f"{ref_paper['M1']}% -> {ref_paper.get(last, ref_paper['M3'])}%", unit="difference",
        cid="sr-reference-rises", label=f"{last} - M1")
    acc = reported.values("self_rewarding", "pairwise_accuracy")
    add("EFT makes a better judge: pairwise accuracy of M1 above the SFT baseline's",
        per_seed_difference(rm, "pairwise_accuracy", "M1", "SFT"), 0.0, f"{acc['SFT']}% -> {acc['M1']}%",
        unit="difference", cid="sr-eft-judge")
    add(f"Judging improves with iterations: pairwise accuracy of {last} above M1's",
        per_seed_difference(rm, "pairwise_accuracy", last, "M1"), 0.0, f"{acc['M1']}% -> {acc['M3']}%",
        unit="difference", cid="sr-judge-improves", label=f"{last} - M1")
    length = reported.values("self_rewarding", "response_length")
    add(f"Responses grow longer from M1 to {last} (words)", per_seed_difference(lengths, "words", last, first), 0.0,
        f"{length['M1']} -> {length['M3']}", unit="words", cid="sr-longer", label=f"{last} - M1")
    if spec.ablations:
        pairs = reported.values("self_rewarding", "aift_pairs")
        without = reported.values("self_rewarding", "aift_pairs_without_eft")
        add("Without EFT, self-judging yields fewer preference pairs (AIFT(SFT) vs AIFT(M1))",
            per_seed_difference(iters, "pairs", "SFT", "M1"), 0.0,
            f"{without['M1']} vs {pairs['M1']} pairs", expect="less", unit="pairs", cid="sr-eft-pairs")
    return pd.DataFrame(rows)


def verdict_summary(claims: pd.DataFrame) -> str:
    """The claims grouped by verdict, in words (Markdown), for the chapter's text."""
    parts = []
    for name in ("reproduced", "not reproduced at this scale", "opposite", "not testable"):
        listed = claims[claims.verdict == name].claim.tolist()
        if listed:
            parts.append(f"**{name}** ({len(listed)}): " + "; ".join(listed))
    return "\n\n".join(parts) if parts else "No claim was measured."
