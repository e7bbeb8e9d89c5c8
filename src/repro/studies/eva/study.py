"""The eva study (Ye et al., 2024): the paper's protocol over the pieces of `repro.studies.eva`, and
the tables that compare seeds and runs.

For one seed, `run_seed` follows the paper:

    theta_0 (the SFT policy) --solver on chunk 1--> theta_1
    theta_1 --creator(theta_1, chunk 1) = X_2--> solver on X_2 --> theta_1 + eva        (iteration 1)
    theta_1 --solver on chunk 2--> theta_1 + new human prompts                           (the baseline)

and for ``iterations`` K > 1 continues both arms: eva evolves its own latest prompt set with its
latest policy; the baseline takes the next chunk of human prompts. Every model is evaluated on the
held-out sets (standard, hard, two-turn) by the gold judge against a fixed reference.

What a seed varies: the sampling of responses, the creator's draws (selection and evolution), the
order of training data. What it does not vary: the world's prompt sets, the SFT policy, the reward
model and the reference, which are the environment. The intervals over seeds measure the method.

`run_metrics` turns one seed's run into the long results table (one row per model, set and metric)
that a notebook writes for `repro sweep`; `summarise` gives means with Student-t intervals over seeds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from repro.evaluation import controls
from repro.evaluation.claims import part as claim_part
from repro.evaluation.gold import JudgeGold
from repro.evaluation.stats import seed_ci
from repro.generation import Engine, external_model_stage
from repro.judges.llm_judge import JudgeSpec
from repro.runs.store import RunStore, Stage
from repro.studies.base import BaseSpec
from repro.studies.eva import stages as eva
from repro.studies.self_rewarding import study as srs
from repro.studies.self_rewarding.data import SeedDataSpec
from repro.studies.self_rewarding.stages import EvalSpec
from repro.training.preference import PreferenceSpec
from repro.training.reward import RewardSpec

#: The arms of the protocol, in the order the book shows them, with the book's names.
ARM_NAMES = {"sft": "SFT (θ0)", "theta_1": "θ1 (chunk 1)", "eva": "θ1 + eva",
             "human": "θ1 + new human prompts", "theta_1-oracle": "control: θ1 (oracle RM)",
             "eva-oracle": "control: θ1 + eva (oracle RM)", "theta_1-random": "control: θ1 (random rewards)"}
SET_NAMES = {"hard": "hard (Arena-Hard analog)", "standard": "standard (AlpacaEval analog)",
             "turn_1": "two-turn: turn 1", "turn_2": "two-turn: turn 2"}


@dataclass(frozen=True)
class EvaSpec:
    """Everything that determines one seed's run, apart from the seed.

    ``solver``: the solver's preference optimisation (`repro.training.preference`: DPO with trl's
    `DPOTrainer`; SPPO as trl's DPO ``loss_type="sppo_hard"``; SimPO as trl's `CPOTrainer` with
    ``loss_type="simpo"``; ORPO with trl's `ORPOTrainer`), by default the paper's DPO: beta 0.05, 2 epochs,
    at the learning rate of the self-rewarding chapter's DPO.
    """

    prompts: eva.PromptSpec = eva.PromptSpec()
    reward: str = "trained@4000"
    reward_training: RewardSpec = field(default_factory=eva.default_reward_training)
    sampling: eva.SamplingSpec = eva.SamplingSpec()
    creator: eva.CreatorSpec = eva.CreatorSpec()
    solver: PreferenceSpec = field(default_factory=lambda: PreferenceSpec(beta=0.05))
    evaluation: eva.HeldOutSpec = eva.HeldOutSpec()
    iterations: int = 1
    human_prompts: bool = True
    controls: bool = True  # also run the controls (in the world: they need its oracle)

    @classmethod
    def from_parameters(cls, p: Mapping[str, Any]) -> EvaSpec:
        """The protocol of ``30_eva``'s parameters (``p``: the notebook's resolved parameters)."""
        return cls(
            prompts=eva.PromptSpec(world_seed=p["world_seed"], difficulty=tuple(p["difficulty"]),
                                   chunk_size=p["chunk_size"], chunks=p["chunks"], standard_prompts=p["standard_prompts"],
                                   hard_prompts=p["hard_prompts"], hard_difficulty=p["hard_difficulty"],
                                   two_turn_prompts=p["two_turn_prompts"]),
            reward=p["reward_model"],
            reward_training=replace(eva.default_reward_training(), num_train_epochs=p["reward_pairs_epochs"]),
            sampling=eva.SamplingSpec(n=p["responses"], temperature=p["temperature"], top_p=p["top_p"],
                                      max_new_tokens=p["max_new_tokens"]),
            creator=eva.CreatorSpec(metric=p["informativeness"], selection=p["selection"], fraction=p["keep_fraction"],
                                    evolve=p["evolve"], evolutions=p["evolutions"], evolved_share=p["evolved_share"]),
            solver=PreferenceSpec(method=p["method"], beta=p["dpo_beta"], learning_rate=p["solver_learning_rate"],
                                  num_train_epochs=p["solver_epochs"], batch_size=p["solver_batch_size"]),
            evaluation=eva.HeldOutSpec(samples=p["eval_samples"], temperature=p["temperature"], top_p=p["top_p"],
                                       max_new_tokens=p["max_new_tokens"]),
            iterations=p["iterations"], human_prompts=p["human_prompts"], controls=p["controls"])

    def __post_init__(self) -> None:
        eva.parse_reward(self.reward)
        if self.iterations < 1:
            raise ValueError(f"iterations must be at least 1, got {self.iterations}")
        if self.human_prompts and self.prompts.chunks < self.iterations + 1:
            raise ValueError(f"{self.iterations} iterations of the new-human-prompts baseline need "
                             f"{self.iterations + 1} chunks of prompts; the prompt sets have {self.prompts.chunks}")


@dataclass
class Inputs:
    """What every seed shares: the SFT policy, the prompt sets, the reward model, the reference, the
    evolver, the gold judge and the generation engine."""

    sft: Stage
    prompts: Stage
    reward: Stage
    reference: Stage
    evolver: object = eva.WORLD_EVOLVER
    gold: object = None
    engine: object = None
    control_rewards: dict[str, Stage] = field(default_factory=dict)  # "oracle" and "random", in the world


def sft_policy_spec(p: Mapping[str, Any]) -> srs.StudySpec:
    """The self-rewarding study as far as it makes eva's SFT policy (its SFT baseline, seed 0), from
    ``30_eva``'s parameters: the same M0, seed data and SFT settings, and the self-rewarding chapter's
    held-out prompts (``sr_eval_prompts_per_family``), which the SFT data leave out."""
    return srs.StudySpec(base=BaseSpec.from_parameters(p), seed_data=SeedDataSpec.from_parameters(p),
                         tune=srs.sft_settings(p), evaluation=EvalSpec(prompts_per_family=p["sr_eval_prompts_per_family"]),
                         accelerate_config=p["accelerate_config_path"])


def inputs_from_parameters(store: RunStore, spec: EvaSpec, p: Mapping[str, Any]) -> Inputs:
    """`prepare` with the SFT policy, the paths and the engine of ``30_eva``'s parameters."""
    engine = Engine.from_parameters(p)
    return prepare(store, spec, sft_policy_spec(p), policy_path=p["policy_path"], engine=engine,
                   trust_remote_code=p["trust_remote_code"], accelerate_config=p["accelerate_config_path"] or None,
                   **paper_scale_inputs(store, prompts_path=p["prompts_path"], chunk_size=p["chunk_size"],
                                        chunks=p["chunks"], standard=p["standard_prompts_path"],
                                        hard=p["hard_prompts_path"], two_turn=p["two_turn_path"],
                                        evolver_path=p["evolver_path"], gold_judge_path=p["gold_judge_path"],
                                        gold_judge=JudgeSpec(template=p["judge_template"],
                                                             max_new_tokens=p["judge_max_new_tokens"],
                                                             readout=p["judge_readout"]),
                                        engine=engine))


def prepare(store: RunStore, spec: EvaSpec, sr_spec, *, policy_path: str = "", reward_base: Stage | None = None,
            evolver=None, file_sets: dict | None = None, gold=None, engine=None, trust_remote_code: bool = False,
            accelerate_config: str | None = None, progress: bool | None = None) -> Inputs:
    """The shared inputs. In the world: the self-rewarding chapter's SFT baseline (seed 0 of
    ``sr_spec``, the same cached stage), the world's prompt sets (none an IFT prompt), a world reward
    model. At paper scale: ``policy_path`` (a checkpoint or hub id),
    ``file_sets`` (keyword arguments of `eva.file_prompt_sets_stage`), the reward model by path in
    ``spec.reward`` (``path@MODEL``), an LLM ``evolver`` and a ``gold`` judge. The reference of the
    win rates is the SFT policy itself, sampled once (`eva.reference_stage`), at both scales.
    ``accelerate_config``: train a ``trained@`` reward model under ``accelerate launch`` (the SFT
    baseline is launched as ``sr_spec.accelerate_config`` says, so that it stays the chapter's stage)."""
    ift: list[dict] = []
    if policy_path:
        sft = external_model_stage(store, policy_path)
    else:
        sr_inputs = srs.prepare_inputs(store, sr_spec, progress=progress)
        sft, ift = srs.sft_baseline(store, sr_spec, sr_inputs, progress=progress)
        reward_base = reward_base or sr_inputs.m0
    if file_sets:
        prompts = eva.file_prompt_sets_stage(store, **file_sets)
    else:
        exclude = {r["prompt"][0]["content"] for r in ift}
        prompts = eva.prompt_sets_stage(store, spec.prompts, exclude=exclude, exclude_key=sft.key, upstream=[sft])
    reference = eva.reference_stage(store, sft, prompts, spec.evaluation, gold=gold, engine=engine, progress=progress)
    reward = eva.reward_stage(store, spec.reward, base=reward_base, world_seed=spec.prompts.world_seed,
                              difficulty=spec.prompts.difficulty, training=spec.reward_training,
                              trust_remote_code=trust_remote_code, accelerate_config=accelerate_config,
                              progress=progress)
    control_rewards = {} if file_sets or gold is not None or not spec.controls else {
        name: eva.reward_stage(store, name, base=None, world_seed=spec.prompts.world_seed,
                               difficulty=spec.prompts.difficulty) for name in ("oracle", "random")}
    return Inputs(sft=sft, prompts=prompts, reward=reward, reference=reference, evolver=evolver or eva.WORLD_EVOLVER,
                  gold=gold, engine=engine, control_rewards=control_rewards)


@dataclass
class SeedRun:
    """The finished stages of one seed: models by (arm, iteration), their evaluations, and the
    creator's and solver's stages."""

    seed: int
    spec: EvaSpec
    models: dict[tuple[str, int], Stage] = field(default_factory=dict)
    evaluations: dict[tuple[str, int], Stage] = field(default_factory=dict)
    creators: dict[int, Stage] = field(default_factory=dict)
    samples: dict[tuple[str, int], Stage] = field(default_factory=dict)
    solvers: dict[tuple[str, int], Stage] = field(default_factory=dict)
    control_stages: dict[str, Stage] = field(default_factory=dict)  # the controls' creator
    _responses: dict[tuple[str, int], pd.DataFrame] = field(default_factory=dict, repr=False, compare=False)

    def responses(self, key: tuple[str, int]) -> pd.DataFrame:
        """The held-out responses of the evaluation ``key`` (arm, iteration), read once per run."""
        if key not in self._responses:
            self._responses[key] = pd.read_parquet(self.evaluations[key] / "responses.parquet")
        return self._responses[key]

    def stages(self) -> list[Stage]:
        out = [*self.models.values(), *self.evaluations.values(), *self.creators.values(), *self.samples.values(),
               *self.control_stages.values()]
        return list({s.key: s for s in out}.values())


def first_solver(store: RunStore, spec: EvaSpec, seed: int, inputs: Inputs, reward: Stage | None = None, *,
                 accelerate_config: str | None = None, progress: bool | None = None) -> tuple[Stage, Stage]:
    """theta_1's samples and solver: the SFT policy's answers to the first chunk, scored by ``reward`` (the
    chapter's reward model when None; a control's reward otherwise), and the solver trained on their pairs.
    `run_seed` and `dev_control` both build theta_1 and its controls through it, so the development
    control is the very stage the chapter trains."""
    samples = eva.samples_stage(store, inputs.sft, inputs.prompts, "chunks.parquet", reward or inputs.reward,
                                spec.sampling, seed=seed, chunk=1, engine=inputs.engine, progress=progress)
    return samples, eva.solver_stage(store, inputs.sft, samples, spec.solver, seed=seed,
                                     accelerate_config=accelerate_config, progress=progress)


def run_seed(store: RunStore, spec: EvaSpec, seed: int, inputs: Inputs, *, accelerate_config: str | None = None,
             progress: bool | None = None) -> SeedRun:
    """Every stage of the protocol for one seed (each cached; see the module)."""
    run = SeedRun(seed=seed, spec=spec)
    kw = {"engine": inputs.engine, "progress": progress}

    def sample(policy: Stage, prompts: Stage, file: str, chunk: int | None, tag: tuple[str, int],
               reward: Stage | None = None) -> Stage:
        run.samples[tag] = eva.samples_stage(store, policy, prompts, file, reward or inputs.reward, spec.sampling,
                                             seed=seed, chunk=chunk, **kw)
        return run.samples[tag]

    def solve(policy: Stage, samples: Stage, tag: tuple[str, int]) -> Stage:
        run.solvers[tag] = eva.solver_stage(store, policy, samples, spec.solver, seed=seed,
                                            accelerate_config=accelerate_config, progress=progress)
        return run.solvers[tag]

    def first(reward: Stage | None, samples_tag: tuple[str, int], solver_tag: tuple[str, int]) -> Stage:
        run.samples[samples_tag], run.solvers[solver_tag] = first_solver(
            store, spec, seed, inputs, reward, accelerate_config=accelerate_config, progress=progress)
        run.models[solver_tag] = run.solvers[solver_tag]
        return run.solvers[solver_tag]

    run.models[("sft", 0)] = inputs.sft
    theta_1 = first(None, ("sft", 0), ("theta_1", 1))

    policy, prompt_stage, file, chunk = theta_1, inputs.prompts, "chunks.parquet", 1
    for t in range(1, spec.iterations + 1):
        current = sample(policy, prompt_stage, file, chunk, ("estimate", t))
        run.creators[t] = eva.creator_stage(store, current, spec.creator, seed=seed, iteration=t,
                                            evolver=inputs.evolver, held_out=inputs.prompts)
        policy = solve(policy, sample(policy, run.creators[t], "prompts.parquet", None, ("eva", t)), ("eva", t))
        run.models[("eva", t)] = policy
        prompt_stage, file, chunk = run.creators[t], "prompts.parquet", None

    for name, reward in inputs.control_rewards.items():
        # The controls: theta_1 on the same chunk with this reward; with the oracle's, one eva iteration more.
        control = first(reward, (f"sft-{name}", 0), (CONTROL_ARMS[name], 1))
        if name == "oracle":
            current = sample(control, inputs.prompts, "chunks.parquet", 1, (f"estimate-{name}", 1), reward)
            creator = eva.creator_stage(store, current, spec.creator, seed=seed, iteration=1, evolver=inputs.evolver,
                                        held_out=inputs.prompts)
            run.control_stages[EVA_ORACLE] = creator
            run.models[(EVA_ORACLE, 1)] = solve(control, sample(control, creator, "prompts.parquet", None,
                                                                (EVA_ORACLE, 1), reward), (EVA_ORACLE, 1))

    if spec.human_prompts:
        policy = theta_1
        for t in range(1, spec.iterations + 1):
            policy = solve(policy, sample(policy, inputs.prompts, "chunks.parquet", t + 1, ("human", t)), ("human", t))
            run.models[("human", t)] = policy

    for tag, model in run.models.items():
        run.evaluations[tag] = eva.evaluate_stage(store, model, inputs.prompts, spec.evaluation, seed=seed,
                                                  gold=inputs.gold, **kw)
    return run


def dev_control(store: RunStore, spec: EvaSpec, seed: int, inputs: Inputs, dev_prompts: Stage, *,
                accelerate_config: str | None = None, progress: bool | None = None) -> dict:
    """The positive control theta_1 (oracle RM) (the solver from the SFT policy on the first chunk, its
    pairs picked by the oracle, with ``spec.solver``'s settings) measured on the development prompts
    (`eva.dev_prompts_stage`): its oracle win rate against the SFT policy there and both mean scores. Its
    stages are the very ones `run_seed` makes for the control; no held-out prompt is read."""
    if "oracle" not in inputs.control_rewards:
        raise ValueError("the development control needs the world's oracle reward (controls on, in the world)")
    kw = {"engine": inputs.engine, "progress": progress}
    _, control = first_solver(store, spec, seed, inputs, inputs.control_rewards["oracle"],
                              accelerate_config=accelerate_config, progress=progress)
    read = {name: pd.read_parquet(eva.evaluate_stage(store, model, dev_prompts, spec.evaluation, seed=seed,
                                                     gold=inputs.gold, **kw) / "responses.parquet")
            for name, model in (("control", control), ("SFT", inputs.sft))}
    rates = eva.win_rates(read["control"], read["SFT"]).set_index("set")
    return {"seed": seed, "win_rate": float(rates.win_rate.get("hard", np.nan)),
            "mean_oracle": float(read["control"].oracle.mean()), "sft_mean_oracle": float(read["SFT"].oracle.mean()),
            "pairs": control.results.get("pairs"), "steps": control.results.get("steps")}


#: The controls' arms (models by (arm, iteration), as the chapter's own arms are).
CONTROL_ARMS = {"oracle": "theta_1-oracle", "random": "theta_1-random"}
EVA_ORACLE = "eva-oracle"
#: The controls' policies in ``reported.yaml``, as (arm, iteration).
CONTROL_POLICIES = {"SFT policy": ("sft", 0), "theta_1 (oracle RM)": (CONTROL_ARMS["oracle"], 1),
                    "theta_1 + eva (oracle RM)": (EVA_ORACLE, 1), "theta_1 (random rewards)": (CONTROL_ARMS["random"], 1)}


def control_results(runs: list[SeedRun], notebook: str = "30_eva", set_name: str = "hard") -> list[dict]:
    """Every control of ``notebook`` (`repro.evaluation.controls`), judged on the oracle's win rate of its
    policy against its start on the held-out ``set_name`` prompts (the claims' set), one value per seed."""
    def rates(c: controls.Control) -> list[float]:
        policy, start = CONTROL_POLICIES[c.policy], CONTROL_POLICIES[c.start]
        out = []
        for run in runs:
            if policy in run.evaluations and start in run.evaluations:
                out.append(eva.win_rates(run.responses(policy), run.responses(start)).set_index("set").win_rate.get(set_name, np.nan))
        return out

    return controls.measure(notebook, rates)


def run_study(store: RunStore, spec: EvaSpec, seeds: list[int], inputs: Inputs, **kw) -> list[SeedRun]:
    return [run_seed(store, spec, s, inputs, **kw) for s in seeds]


# -- one run's metrics (the table a notebook writes for `repro sweep`) -----------------------------------
def run_metrics(run: SeedRun, inputs: Inputs, reference: pd.DataFrame | None = None) -> pd.DataFrame:
    """Long table of one seed: ``seed, arm, iteration, set, metric, value``. Metrics per held-out set:
    win rate against the reference (both orders), mean gold score, share of perfect responses; plus
    ``set="training"`` rows: the reward model's agreement with the oracle on the pairs the solver
    trained on, the number of pairs, and for eva the creator's counts; ``set="reward_model"``: the
    reward model's pairwise accuracy on fresh world pairs. ``reference``: the reference's responses,
    when the caller has read them already."""
    if reference is None:
        reference = pd.read_parquet(inputs.reference / "responses.parquet")
    rows = []

    def add(arm: str, t: int, set_name: str, metric: str, value) -> None:
        rows.append({"arm": arm, "iteration": t, "set": set_name, "metric": metric,
                     "value": float(value) if value is not None else np.nan})

    for arm, t in run.evaluations:
        responses = run.responses((arm, t))
        for rec in eva.win_rates(responses, reference).to_dict("records"):
            for metric in ("win_rate", "mean_score", "accuracy"):
                add(arm, t, rec["set"], metric, rec[metric])
        add(arm, t, "all", "mean_words", responses.words.mean())
    for (arm, t), stage in run.solvers.items():
        for metric in ("pairs", "pairs_oracle_agree"):
            add(arm, t, "training", metric, stage.results.get(metric))
    for t, stage in run.creators.items():
        for metric in ("selected_mean_gap", "mean_gap", "evolved", "new_prompts", "mean_difficulty"):
            add("eva", t, "creator", metric, stage.results.get(metric))
    add("sft", 0, "reward_model", "accuracy", inputs.reward.results.get("accuracy"))
    frame = pd.DataFrame(rows)
    frame.insert(0, "seed", run.seed)
    return frame


def study_metrics(runs: list[SeedRun], inputs: Inputs) -> pd.DataFrame:
    """`run_metrics` of every seed, the reference read once."""
    reference = pd.read_parquet(inputs.reference / "responses.parquet")
    return pd.concat([run_metrics(r, inputs, reference) for r in runs], ignore_index=True)


# -- summaries over seeds --------------------------------------------------------------------------------
def share_bounds(metric: str) -> tuple[float, float] | None:
    """The range a t interval of ``metric`` is cut to: [0, 1] for a share, none otherwise."""
    return (0.0, 1.0) if metric in ("win_rate", "accuracy") else None


def summarise(metrics: pd.DataFrame, by: list[str], *, metric: str = "win_rate") -> pd.DataFrame:
    """Mean over seeds with a 95% Student-t interval (`seed_ci`) of one metric, per group of ``by``."""
    rows = []
    picked = metrics[metrics.metric == metric]
    bounds = share_bounds(metric)
    for key, group in picked.groupby(by, sort=False, dropna=False):
        est = seed_ci(group.value.to_numpy(), bounds=bounds)
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))), "mean": est.value, "low": est.low,
                     "high": est.high, "seeds": est.n})
    return pd.DataFrame(rows)


def arm_label(arm: str, iteration: int) -> str:
    """The book's name of a model: ``θ1 + eva`` for iteration 1, ``... (iteration 2)`` after."""
    name = ARM_NAMES[arm]
    return name if arm in ("sft", "theta_1") or iteration == 1 else f"{name} (iteration {iteration})"


def with_names(table: pd.DataFrame) -> pd.DataFrame:
    out = table.copy()
    if "arm" in out and "iteration" in out:
        out.insert(0, "model", [arm_label(a, int(t)) for a, t in zip(out.arm, out.iteration)])
    if "set" in out:
        out["set"] = out["set"].map(lambda s: SET_NAMES.get(s, s))
    return out



# -- claims --------------------------------------------------------------------------------------------
def claim(claim: str, paper: str, estimate, expect: str, null: float = 0.0, *, cid: str | None = None,
          label: str = "") -> dict:
    """One row of a claims table: the claim, the paper's finding, ours, and the verdict; with ``cid``
    also a measured part of that claim of the ledger (`repro.evaluation.claims.part`, labelled ``label``)."""
    measured = (f"{estimate.value:+.1%} [{estimate.low:+.1%}, {estimate.high:+.1%}] ({estimate.n} seeds)"
                if estimate.n else "no data")
    row = claim_part(cid or "", estimate, null, expect, label=label, measured=measured)
    return {"claim": claim, "paper": paper, "measured": measured, "verdict": row.pop("verdict"),
            **(row if cid else {})}


def selected(results: pd.DataFrame, config: dict | None = None) -> pd.DataFrame:
    """The rows of a results table whose columns equal ``config``'s values (all rows for None)."""
    mask = pd.Series(True, index=results.index)
    for column, value in (config or {}).items():
        mask &= results[column] == value
    return results[mask]


def gain_per_seed(results: pd.DataFrame, config: dict | None = None, *, arm: str = "eva", against: str = "theta_1",
                  set_name: str = "hard", metric: str = "win_rate", iteration: int = 1,
                  against_iteration: int = 1) -> pd.Series:
    """Per seed, for the runs of ``config``: ``metric`` on ``set_name`` of ``arm`` at ``iteration``
    minus that of ``against`` at ``against_iteration`` (two models of the same run)."""
    picked = selected(results, config)
    picked = picked[(picked.metric == metric) & (picked.set == set_name)]
    a = picked[(picked.arm == arm) & (picked.iteration == iteration)].groupby("seed").value.mean()
    b = picked[(picked.arm == against) & (picked.iteration == against_iteration)].groupby("seed").value.mean()
    common = a.index.intersection(b.index)
    return a.loc[common] - b.loc[common]


def gain_estimate(results: pd.DataFrame, config: dict | None = None, **kw):
    """`gain_per_seed` as a mean over seeds with a 95% t interval (`seed_ci`)."""
    return seed_ci(gain_per_seed(results, config, **kw).to_numpy())


def level_estimate(results: pd.DataFrame, config: dict | None = None, *, arm: str = "eva", set_name: str = "hard",
                   metric: str = "win_rate", iteration: int = 1):
    """One model's ``metric`` over seeds for the runs of ``config`` (mean, 95% t interval)."""
    picked = selected(results, config)
    picked = picked[(picked.metric == metric) & (picked.set == set_name) & (picked.arm == arm)
                    & (picked.iteration == iteration)]
    return seed_ci(picked.groupby("seed").value.mean().to_numpy(), bounds=share_bounds(metric))


def findings(metrics: pd.DataFrame, paper_hard: dict[str, float] | None = None, method: str = "DPO") -> pd.DataFrame:
    """The paper's claims that one configuration can test, each as a paired difference over seeds of
    win rates against the reference (mean, 95% t interval) and a verdict by the book's rule
    (`repro.evaluation.stats.verdict`)."""
    paper_hard = paper_hard or {}
    before, after = paper_hard.get(method), paper_hard.get(f"{method} + eva")
    paper_gain = f"{method}: {before} -> {after}" if before is not None and after is not None else "yes"
    rows = [
        claim("eva lifts the hard-set (Arena-Hard) win rate over θ1", paper_gain,
              gain_estimate(metrics), "greater", cid="eva-dpo-gain" if method == "DPO" else None,
              label=method),
        claim("eva beats training on new human prompts (hard set)", "matches or beats",
              gain_estimate(metrics, against="human"), "greater", cid="eva-vs-human", label=method),
        claim("new human prompts lower the first turn (two-turn set)", "yes (MT-Bench)",
              gain_estimate(metrics, arm="human", set_name="turn_1"), "less", cid="eva-human-turn-1", label=method),
        claim("eva lifts the second turn (two-turn set)", "yes (MT-Bench)",
              gain_estimate(metrics, set_name="turn_2"), "greater", cid="eva-turn-2", label=method),
    ]
    iterations = sorted(metrics[metrics.arm == "eva"].iteration.unique())
    for t in iterations[1:]:
        rows.append(claim(f"continual training: eva iteration {t} beats iteration {t - 1} (hard set)", "monotonic gains",
                          gain_estimate(metrics, against="eva", iteration=t, against_iteration=t - 1), "greater"))
    return pd.DataFrame(rows)


def eva_gains(results: pd.DataFrame, by: list[str], *, set_name: str = "hard", metric: str = "win_rate",
              against: str = "theta_1") -> pd.DataFrame:
    """Per configuration (the columns ``by`` of a sweep's results): the win rate of ``against``
    (iteration 1) and of theta_1 + eva, and eva's paired gain, each a mean over seeds with a 95% t
    interval."""
    rows = []
    for key in results[by].drop_duplicates().itertuples(index=False):
        config = dict(zip(by, key))
        b = level_estimate(results, config, arm=against, set_name=set_name, metric=metric)
        e = level_estimate(results, config, set_name=set_name, metric=metric)
        g = gain_estimate(results, config, against=against, set_name=set_name, metric=metric)
        rows.append({**config, "without": b.value, "without_low": b.low, "without_high": b.high,
                     "with_eva": e.value, "with_low": e.low, "with_high": e.high,
                     "gain": g.value, "gain_low": g.low, "gain_high": g.high, "seeds": g.n})
    return pd.DataFrame(rows)


def config_difference(results: pd.DataFrame, column: str, a, b, *, set_name: str = "hard", metric: str = "win_rate",
                      arm: str = "eva", iteration: int = 1):
    """The paired difference over seeds (same seed, so the same theta_1) of ``arm``'s ``metric``
    between two configurations of a sweep: ``column == a`` minus ``column == b``."""
    picked = results[(results.metric == metric) & (results.set == set_name) & (results.arm == arm)
                     & (results.iteration == iteration)]
    va = picked[picked[column] == a].groupby("seed").value.mean()
    vb = picked[picked[column] == b].groupby("seed").value.mean()
    common = va.index.intersection(vb.index)
    return seed_ci((va.loc[common] - vb.loc[common]).to_numpy())


def paper_scale_inputs(store: RunStore, *, prompts_path: str = "", chunk_size: int = 10_000, chunks: int = 6,
                       standard: str = "", hard: str = "", two_turn: str = "", evolver_path: str = "",
                       gold_judge_path: str = "", gold_judge: JudgeSpec = JudgeSpec(), engine=None) -> dict:
    """The keyword arguments of `prepare` that the notebook's paper-scale paths give: real prompt sets
    (UltraFeedback chunks and the held-out question files), an LLM evolver (``evolver_path``) and a
    gold judge by path, judging as ``gold_judge`` says (its template and length). Empty paths give
    ``{}``: the world."""
    out: dict = {}
    if prompts_path:
        if not evolver_path:
            raise ValueError("real prompts need a language model to evolve them: set evolver_path")
        out["file_sets"] = {"train": prompts_path, "standard": standard, "hard": hard, "two_turn": two_turn,
                            "chunk_size": chunk_size, "chunks": chunks}
    elif standard or hard or two_turn:
        raise ValueError("held-out prompt files need the training prompts too: set prompts_path")
    if evolver_path:
        out["evolver"] = eva.LLMEvolver(external_model_stage(store, evolver_path, name="external-evolver"), engine)
    if gold_judge_path:
        out["gold"] = JudgeGold(external_model_stage(store, gold_judge_path, name="external-judge"), engine, gold_judge)
    return out
