"""The RLAIF study as the two chapters run it: inputs, the runs over seeds, and their tables.

`prepare` builds (or, at paper scale, loads) the data, the evaluation split and the labellers;
`label_runs` measures alignment per labeller, technique and seed; `policy_runs` trains the reward
models and the policies of one seed and judges them. The tables summarise over seeds:

- alignment: the share of evaluation comparisons where the labeller agrees with the human, averaged
  over seeds per comparison, with a 95% percentile bootstrap interval over the comparisons (seeds
  vary only the few-shot exemplars and the sampled rationales; the evaluation set is fixed);
- reward-model accuracy and win rates: mean over seeds with a Student-t interval (`seed_ci`), each
  seed a whole run (reward-model initialisation and data order, SFT, RL sampling, the raters' draws).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from repro.evaluation import controls, gates, reported
from repro.evaluation.claims import part as claim_part
from repro.evaluation.metrics import win_rate, win_tie_loss
from repro.evaluation.stats import Estimate, bootstrap_ci, seed_ci
from repro.generation import DEFAULT_ENGINE, Engine, external_model_stage
from repro.judges import labeller as lb
from repro.runs.store import RunStore, Stage
from repro.studies.rlaif import stages as rl
from repro.training.reward import RewardSpec
from repro.training.rl import RLSpec
from repro.training.sft import SFTSpec


@dataclass
class Inputs:
    data: rl.SummaryData
    train: pd.DataFrame
    evaluation: pd.DataFrame
    labellers: dict[str, Stage]  # smallest first
    tokenizer: Stage | None = None
    corpus: Stage | None = None


def prepare(store: RunStore, world: rl.WorldSpec, labeller: rl.LabellerSpec, sizes: list[str], *,
            eval_fraction: float = 0.15, comparisons_path: str = "", tldr_path: str = "",
            labeller_paths: dict[str, str] | None = None, accelerate_config: str = "",
            progress: bool | None = None) -> Inputs:
    """The data (the world's, or real files when both paths are given), the paper's evaluation split,
    and the labellers: trained tiny Llamas of ``sizes`` (in this process, or under ``accelerate
    launch`` with ``accelerate_config``), or the models of ``labeller_paths`` (name -> folder or hub
    id, smallest first)."""
    if bool(comparisons_path) != bool(tldr_path):
        raise ValueError("give both comparisons_path and tldr_path for real data, or neither for the world")
    data = (rl.file_data(comparisons_path, tldr_path, eval_posts=world.eval_posts) if comparisons_path
            else rl.world_data(store, world))
    train, evaluation = rl.split(data, fraction=eval_fraction, seed=world.world_seed)
    if labeller_paths:
        labellers = {name: external_model_stage(store, path, name=f"rlaif-labeller-{name}")
                     for name, path in labeller_paths.items()}
        return Inputs(data, train, evaluation, labellers)
    if not data.world:
        raise ValueError("real comparisons need labellers given by path (labeller_paths)")
    corpus = rl.corpus_stage(store, data, labeller, world)
    tokenizer = rl.tokenizer_stage(store, labeller.max_length)
    labellers = {size: rl.labeller_stage(store, size, corpus, tokenizer, labeller,
                                         accelerate_config=accelerate_config or None, progress=progress)
                 for size in sizes}
    return Inputs(data, train, evaluation, labellers, tokenizer, corpus)


def inputs_from_parameters(store: RunStore, p: Mapping[str, Any]) -> Inputs:
    """`prepare` with the world, the labellers and the paths of an RLAIF notebook's parameters."""
    return prepare(store, rl.WorldSpec.from_parameters(p), rl.LabellerSpec.from_parameters(p), p["labeller_sizes"],
                   eval_fraction=p["eval_fraction"], comparisons_path=p["comparisons_path"], tldr_path=p["tldr_path"],
                   labeller_paths=p["labeller_paths"], accelerate_config=p["accelerate_config_path"])


def label_runs(store: RunStore, inputs: Inputs, labeller: str, techniques: list[str], seeds: list[int], *,
               wording: str = "compact", engine: Engine = DEFAULT_ENGINE, max_rationale_tokens: int = 48,
               progress: bool | None = None) -> pd.DataFrame:
    """One row per (technique, seed): the alignment stage and its metrics."""
    rows = []
    for code in techniques:
        technique = rl.Technique.parse(code)
        for seed in seeds:
            # without exemplars or sampled rationales the labels do not depend on the seed: read once
            used = seed if technique.shots or technique.rationales > 1 else seeds[0]
            stage = rl.alignment_stage(store, inputs.labellers[labeller], inputs.data, inputs.train, inputs.evaluation,
                                       technique, wording=wording, seed=used, engine=engine,
                                       max_rationale_tokens=max_rationale_tokens, progress=progress)
            rows.append({"labeller": labeller, "technique": technique.code, "name": technique.name,
                         "seed": seed, "stage": stage, **stage.results})
    return pd.DataFrame(rows)


def pair_agreement(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (labeller, technique) and evaluation comparison, averaged over seeds: agreement with the
    human with both orders averaged (``agree``) and from the first order alone (``agree_one_order``),
    whether the same position won after swapping, whether the first position won, and whether the
    read-out was unreadable (``unreadable``). An unreadable read-out does not agree, and has no position
    reading (NaN, left out of the mean over seeds; `lb.same_position`)."""
    frames = []
    for row in runs.itertuples():
        labels = pd.read_parquet(row.stage / "labels.parquet")
        same = lb.same_position(labels)
        frames.append(pd.DataFrame({"labeller": row.labeller, "technique": row.technique, "name": row.name,
                                    "pair": np.arange(len(labels)),
                                    "agree": rl.agrees(labels).astype(float),
                                    "agree_one_order": rl.agrees(labels, "p_ab").astype(float),
                                    "same_position": same,
                                    "first_wins": (labels.p_ab >= 0.5).astype(float).where(same.notna()),
                                    "unreadable": labels.p_a.isna().astype(float)}))
    pairs = pd.concat(frames)
    return pairs.groupby(["labeller", "technique", "name", "pair"], sort=False).mean().reset_index()


def _bootstrap(values) -> tuple[float, float, float]:
    estimate = bootstrap_ci(np.asarray(values, dtype=float))
    return estimate.value, estimate.low, estimate.high


def alignment_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Alignment per labeller and technique with its bootstrap interval (see the module docstring),
    alignment from the first order alone, and position bias: the share of pairs where the same
    position wins after swapping, and of those where it is the first position, both over the pairs
    with a readable position reading; ``unreadable`` is the number of unreadable pairs (averaged
    over seeds)."""
    rows = []
    for (labeller, code, name), group in pair_agreement(runs).groupby(["labeller", "technique", "name"], sort=False):
        value, low, high = _bootstrap(group.agree)
        o_value, o_low, o_high = _bootstrap(group.agree_one_order)
        same = group.same_position
        read = same.notna()
        rows.append({"labeller": labeller, "technique": code, "name": name, "alignment": value,
                     "alignment_low": low, "alignment_high": high, "one_order": o_value, "one_order_low": o_low,
                     "one_order_high": o_high, "same_position": float(same[read].mean()),
                     "same_position_first": float(((same == 1) & (group.first_wins == 1))[read].mean()),
                     "pairs": len(group), "unreadable": float(group.unreadable.sum()),
                     "pairs_per_second": float(runs[(runs.labeller == labeller) & (runs.technique == code)]
                                               .pairs_per_second.mean())})
    return pd.DataFrame(rows)


# -- reward models and policies -----------------------------------------------------------------------------
@dataclass(frozen=True)
class PolicySpec:
    labeller: str = "S"  # which labeller labels the RM data and scores d-RLAIF
    policy_base: str = ""  # which labeller's weights the policy starts from ("": the smallest)
    reward_base: str = ""  # which labeller's weights the reward models start from ("": the smallest)
    technique: str = "detailed+cot/0"  # or "auto": the best of ``candidates`` on validation comparisons
    candidates: tuple[str, ...] = ("base/0", "detailed/0", "detailed+cot/0")
    validation_pairs: int = 300
    wording: str = "compact"
    reward: RewardSpec = field(default_factory=lambda: RewardSpec(num_train_epochs=1.0))  # trl's settings
    data_sizes: tuple[int, ...] = (128, 512, 2048)
    sft: SFTSpec = field(default_factory=lambda: SFTSpec(num_train_epochs=2.0))
    rl: RLSpec = field(default_factory=RLSpec)
    rl_prompts: int = 512  # RL prompts, from the SFT posts
    max_new_tokens: int = 32
    max_rationale_tokens: int = 48
    engine: Engine = DEFAULT_ENGINE
    accelerate_config: str = ""  # train RMs and policies under accelerate launch with this config ("": here)
    controls: bool = True  # also train the controls' policies (in the world only: they need its oracle)

    @classmethod
    def from_parameters(cls, p: Mapping[str, Any]) -> PolicySpec:
        """The policies of ``21_rlaif_rl``'s parameters."""
        return cls(
            labeller=p["labeller"], policy_base=p["policy_base"], reward_base=p["reward_base"], technique=p["technique"],
            candidates=tuple(p["technique_candidates"]), validation_pairs=p["validation_pairs"], wording=p["wording"],
            reward=RewardSpec(num_train_epochs=p["rm_epochs"], learning_rate=p["rm_learning_rate"]),
            data_sizes=tuple(p["rm_data_sizes"]),
            sft=SFTSpec(num_train_epochs=p["sft_epochs"], learning_rate=p["sft_learning_rate"]),
            rl=RLSpec(num_train_epochs=p["rl_epochs"], learning_rate=p["rl_learning_rate"],
                      num_generations=p["rl_generations"], beta=p["rl_beta"], temperature=p["rl_temperature"],
                      max_completion_length=p["max_new_tokens"]),
            rl_prompts=p["rl_prompts"], max_new_tokens=p["max_new_tokens"], max_rationale_tokens=p["max_rationale_tokens"],
            engine=Engine.from_parameters(p), accelerate_config=p["accelerate_config_path"], controls=p["controls"])


POLICIES = ("SFT", "RLAIF", "RLHF", "d-RLAIF")
PAIRS = (("RLAIF", "SFT"), ("RLHF", "SFT"), ("RLAIF", "RLHF"), ("d-RLAIF", "SFT"), ("d-RLAIF", "RLAIF"))


@dataclass
class PolicyRun:
    seed: int
    labels: Stage
    reward_models: pd.DataFrame  # labels, examples, accuracy, stage
    policies: dict[str, Stage]
    summaries: dict[str, pd.DataFrame]
    controls: dict[str, Stage] = field(default_factory=dict)  # the controls' policies, by the controls' names
    oracle_rm_accuracy: float | None = None  # the oracle-label RM's accuracy on the oracle's held-out labels


def policy_run(store: RunStore, inputs: Inputs, spec: PolicySpec, seed: int, *, base: Stage | None = None,
               sft_seed: int = 0, progress: bool | None = None) -> PolicyRun:
    """One seed of the RL chapter: AI labels (shared by all seeds: the labeller reads greedily),
    reward models (AI soft, AI hard and human labels on all comparisons; AI soft and human on the
    ``data_sizes`` subsets), the SFT policy (trained once, with ``sft_seed``: every seed starts RL
    from the same policy, as the paper's one SFT model), RL against each reward, and the held-out
    summaries. ``base`` is the model the reward models and the policy start from at paper scale (a
    model given by path); in the world they start from the labellers named by ``spec.policy_base``
    and ``spec.reward_base``."""
    data, train, evaluation = inputs.data, inputs.train, inputs.evaluation
    launch = spec.accelerate_config or None  # d-RLAIF's RL stays in this process (`rl.rl_stage`)
    labeller = inputs.labellers[spec.labeller]
    reward_base = start_model(inputs, spec.reward_base, base)
    technique = rl.Technique.parse(choose_technique(store, inputs, spec, progress=progress)[0])
    labels_stage = rl.ai_labels_stage(store, labeller, data, train, technique, wording=spec.wording, seed=0,
                                      engine=spec.engine, max_rationale_tokens=spec.max_rationale_tokens,
                                      progress=progress)
    ai = pd.read_parquet(labels_stage / "labels.parquet")
    order = np.random.default_rng(seed).permutation(len(train))
    rows = []
    sizes = [n for n in spec.data_sizes if n < len(train)] + [len(train)]
    for kind in ("ai_soft", "human", "ai_hard"):
        for n in (sizes if kind != "ai_hard" else [len(train)]):
            subset = order[:n]
            records = rl.reward_records(train.iloc[subset], kind, ai.iloc[subset] if kind != "human" else None)
            stage = rl.reward_model_stage(store, reward_base, records, evaluation, spec.reward, labels=kind,
                                          data_key={**data.key, "labels": labels_stage.key if kind != "human" else None,
                                                    "order_seed": seed},
                                          seed=seed, accelerate_config=launch, progress=progress,
                                          upstream=[labels_stage] if kind != "human" else [])
            rows.append({"seed": seed, "labels": kind, "examples": n, "accuracy": stage.results["accuracy"],
                         "stage": stage})
    rms = pd.DataFrame(rows)
    full = rms[rms.examples == len(train)].set_index("labels").stage
    sft = sft_policy(store, inputs, spec, base=base, sft_seed=sft_seed, progress=progress)
    policies = {"SFT": sft}
    for name, reward, kind in (("RLAIF", full["ai_soft"], "rm"), ("RLHF", full["human"], "rm"),
                               ("d-RLAIF", labeller, "direct")):
        policies[name] = rl_policy(store, inputs, spec, sft, reward, kind, seed, progress=progress)
    arms, oracle_rm_accuracy = {}, None
    if spec.controls and data.world:
        arms, oracle_rm_accuracy = control_policies(store, inputs, spec, seed, sft, reward_base, progress=progress)
    summaries = {name: rl.read_summaries(rl.summaries_stage(store, stage, data, max_new_tokens=spec.max_new_tokens,
                                                            engine=spec.engine, progress=progress))
                 for name, stage in {**policies, **arms}.items()}
    return PolicyRun(seed, labels_stage, rms, policies, summaries, arms, oracle_rm_accuracy)


def start_model(inputs: Inputs, labeller: str, base: Stage | None = None) -> Stage:
    """What a reward model or the policy starts from: ``base`` (a model given by path, at paper scale), else
    the labeller named ``labeller``, else (unnamed) the smallest labeller."""
    return base or (inputs.labellers[labeller] if labeller else next(iter(inputs.labellers.values())))


def sft_policy(store: RunStore, inputs: Inputs, spec: PolicySpec, *, base: Stage | None = None, sft_seed: int = 0,
               progress: bool | None = None) -> Stage:
    """The chapter's SFT policy: ``base`` (a model given by path, at paper scale) or the labeller named by
    ``spec.policy_base`` (the smallest when unnamed), fine-tuned on the reference TL;DRs. `policy_run` and
    `dev_control` both get it here, so the development control starts from the very stage the chapter does."""
    return rl.sft_stage(store, start_model(inputs, spec.policy_base, base), inputs.data, spec.sft, seed=sft_seed,
                        accelerate_config=spec.accelerate_config or None, progress=progress)


def rl_policy(store: RunStore, inputs: Inputs, spec: PolicySpec, sft: Stage, reward: Stage | None, kind: str, seed: int,
              *, progress: bool | None = None) -> Stage:
    """RL from ``sft`` against one reward (``kind``: `rl.RL_KINDS`) with the chapter's RL settings: every arm,
    control and development control is trained by this one call."""
    return rl.rl_stage(store, sft, reward, kind, inputs.data, spec.rl, n_prompts=spec.rl_prompts, seed=seed,
                       wording=spec.wording, engine=spec.engine, accelerate_config=spec.accelerate_config or None,
                       progress=progress)


#: The controls' policies (the ``policy`` of the RLAIF controls in ``reported.yaml``).
ORACLE_RM, ORACLE_REWARD, RANDOM_REWARD = "RL (oracle-label RM)", "RL (oracle reward)", "RL (random reward)"


def control_policies(store: RunStore, inputs: Inputs, spec: PolicySpec, seed: int, sft: Stage, reward_base: Stage, *,
                     progress: bool | None = None) -> tuple[dict[str, Stage], float]:
    """The controls' policies, RL from the same SFT policy with the same settings as the AI-feedback arms:
    against a reward model trained on the oracle's labels of the very comparisons the other reward
    models learn from, against the world's summary quality itself, and against random rewards. Also
    the oracle-label RM's accuracy on the oracle's labels of the held-out comparisons."""
    data, launch = inputs.data, spec.accelerate_config or None
    train = inputs.train.assign(oracle_choice=rl.oracle_choice(inputs.train, data))
    evaluation = inputs.evaluation.assign(choice=rl.oracle_choice(inputs.evaluation, data))
    rm = rl.reward_model_stage(store, reward_base, rl.reward_records(train, "oracle"), evaluation, spec.reward,
                               labels="oracle", data_key={**data.key, "order_seed": seed}, seed=seed,
                               accelerate_config=launch, progress=progress)
    return {ORACLE_RM: rl_policy(store, inputs, spec, sft, rm, "rm", seed, progress=progress),
            ORACLE_REWARD: rl_policy(store, inputs, spec, sft, None, "oracle", seed, progress=progress),
            RANDOM_REWARD: rl_policy(store, inputs, spec, sft, None, "random", seed, progress=progress)}, rm.results["accuracy"]


def dev_control(store: RunStore, inputs: Inputs, spec: PolicySpec, seed: int, dev_posts: Stage, *,
                sft_seed: int = 0, progress: bool | None = None) -> dict:
    """The RL positive control (RLOO against the world's summary quality, with ``spec.rl``'s settings, from
    the chapter's SFT policy) measured on the development posts (`rl.dev_posts_stage`): its oracle win rate
    against the SFT policy there, and both mean qualities. Its policy is the very stage `policy_run` trains
    for the control; no held-out post is read."""
    sft = sft_policy(store, inputs, spec, sft_seed=sft_seed, progress=progress)
    policy = rl_policy(store, inputs, spec, sft, None, "oracle", seed, progress=progress)
    dev = rl.dev_view(inputs.data, dev_posts)
    read = {name: rl.read_summaries(rl.summaries_stage(store, stage, dev, max_new_tokens=spec.max_new_tokens,
                                                       engine=spec.engine, progress=progress))
            for name, stage in (("control", policy), ("SFT", sft))}
    return {"seed": seed, "win_rate": oracle_win_rate(read["control"], read["SFT"]),
            "quality": float(read["control"].quality.mean()), "sft_quality": float(read["SFT"].quality.mean()),
            "first_reward": policy.results.get("first_reward"), "final_reward": policy.results.get("final_reward")}


def oracle_win_rate(a: pd.DataFrame, b: pd.DataFrame) -> float:
    """Share of held-out posts where policy A's summary has the higher world quality than B's (ties half)."""
    return win_rate(win_tie_loss(a.quality.to_numpy(), b.set_index("id").loc[a.id].quality.to_numpy()))


def base_gates(runs: list[PolicyRun]) -> list[dict]:
    """The gate on this chapter's starting policy (`repro.evaluation.gates.summariser`), measured on the SFT
    policy's held-out summaries. Every seed starts RL from the same SFT policy, so one seed's summaries
    are all of them; without the world's oracle (real data) it is not measured."""
    return [gates.summariser(runs[0].summaries["SFT"], policy="SFT")] if runs else []


def control_results(runs: list[PolicyRun], notebook: str = "21_rlaif_rl") -> list[dict]:
    """Every control of ``notebook`` (`repro.evaluation.controls`), judged on the oracle's held-out win
    rate of its policy against its start, one value per seed that ran it."""
    return controls.measure(notebook, lambda c: [
        oracle_win_rate(run.summaries[c.policy], run.summaries[c.start])
        for run in runs if c.policy in run.summaries and c.start in run.summaries])


def choose_technique(store: RunStore, inputs: Inputs, spec: PolicySpec, *,
                     progress: bool | None = None) -> tuple[str, pd.DataFrame]:
    """The labelling technique of the RM data: ``spec.technique``, or with ``"auto"`` the candidate
    whose labels agree best with the human labels on ``validation_pairs`` *training* comparisons (the
    evaluation set is never looked at). Returns the technique and the validation table."""
    if spec.technique != "auto":
        return rl.Technique.parse(spec.technique).code, pd.DataFrame()
    validation = inputs.train.sample(n=min(spec.validation_pairs, len(inputs.train)), random_state=0)
    rows = []
    for code in spec.candidates:
        stage = rl.ai_labels_stage(store, inputs.labellers[spec.labeller], inputs.data, validation,
                                   rl.Technique.parse(code), wording=spec.wording, engine=spec.engine,
                                   max_rationale_tokens=spec.max_rationale_tokens, progress=progress)
        rows.append({"technique": rl.Technique.parse(code).code, "name": rl.Technique.parse(code).name,
                     "agreement": stage.results["agreement_with_humans"], "pairs": stage.results["pairs"]})
    table = pd.DataFrame(rows)
    return table.technique[table.agreement.idxmax()], table


def reward_model_table(runs: list[PolicyRun]) -> pd.DataFrame:
    """RM accuracy on the held-out human preferences per label kind and training size, over seeds."""
    frame = pd.concat([r.reward_models for r in runs])
    rows = []
    for (kind, n), group in frame.groupby(["labels", "examples"]):
        e = seed_ci(group.accuracy, bounds=(0, 1))
        rows.append({"labels": kind, "examples": n, "accuracy": e.value, "low": e.low, "high": e.high, "seeds": e.n})
    return pd.DataFrame(rows)


def win_rates_per_seed(runs: list[PolicyRun], data: rl.SummaryData, judge=None,
                       judge_config: lb.LabelSpec | None = None) -> pd.DataFrame:
    """Per pair of policies and seed: win rate (both orders) and length-controlled win rate, judged by
    the world's simulated raters or, at paper scale, by ``judge`` (a labeller's generator)."""
    if not data.world and judge is None:
        raise ValueError("real data has no simulated raters: give a judge (a labeller) for the win rates")
    rows = []
    for a, b in PAIRS:
        for run in runs:
            if data.world:
                judgments = rl.human_judgments(run.summaries[a], run.summaries[b], data, seed=run.seed)
            else:
                judgments = rl.labeller_judgments(run.summaries[a], run.summaries[b], data, judge,
                                                  judge_config or lb.LabelSpec())
            rows.append({"comparison": f"{a} vs {b}", "a": a, "b": b, "seed": run.seed, "win_rate": rl.win_rate(judgments),
                         "length_controlled": rl.length_controlled_win_rate(judgments)})
    return pd.DataFrame(rows)


def win_rate_table(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Win rates and length-controlled win rates per pair of policies (`win_rates_per_seed`): mean
    over seeds, t interval."""
    rows = []
    for comparison, group in per_seed.groupby("comparison", sort=False):
        e, c = seed_ci(group.win_rate, bounds=(0, 1)), seed_ci(group.length_controlled, bounds=(0, 1))
        rows.append({"comparison": comparison, "a": group.a.iloc[0], "b": group.b.iloc[0], "win_rate": e.value,
                     "low": e.low, "high": e.high, "length_controlled": c.value, "lc_low": c.low, "lc_high": c.high,
                     "seeds": e.n})
    return pd.DataFrame(rows)


def policy_table(runs: list[PolicyRun]) -> pd.DataFrame:
    """Per policy, over seeds: mean summary length (words, characters) and, in the world, the oracle's
    reading of the summaries (quality, coverage, hallucinated clauses)."""
    rows = []
    for run in runs:
        for name, frame in ((n, run.summaries[n]) for n in run.policies):
            row = {"policy": name, "seed": run.seed, "characters": frame.characters.mean(), "words": frame.words.mean()}
            for column in ("quality", "coverage", "hallucinated", "filler"):
                if column in frame:
                    row[column] = frame[column].mean()
            rows.append(row)
    return pd.DataFrame(rows)


# -- claims ------------------------------------------------------------------------------------------------------
def paired_difference(pairs: pd.DataFrame, a: tuple[str, str], b: tuple[str, str], column: str = "agree"):
    """``a - b`` of a per-comparison quantity for two (labeller, technique) cells on the same
    evaluation comparisons, with a paired percentile bootstrap interval over the comparisons."""
    def cell(key):
        found = pairs[(pairs.labeller == key[0]) & (pairs.technique == key[1])].sort_values("pair")
        if found.empty:
            raise KeyError(f"no alignment measured for labeller {key[0]!r} with technique {key[1]!r}")
        return found[column].to_numpy(dtype=float)

    difference = cell(a) - cell(b)
    difference = difference[~np.isnan(difference)]  # a comparison without a reading in either cell
    return bootstrap_ci(difference) if difference.size else Estimate(*[float("nan")] * 3, 0, 0.95)


def labelling_findings(runs: pd.DataFrame, *, largest: str, smallest: str, technique: str,
                       self_consistency: str | None = None) -> pd.DataFrame:
    """The paper's labelling claims with computed verdicts (`repro.evaluation.stats.verdict`)."""
    pairs = pair_agreement(runs)
    by_size = reported.values("rlaif", "alignment_by_size")
    position = reported.values("rlaif", "same_position_after_swap")
    techniques = reported.values("rlaif", "alignment")
    best = rl.Technique.parse(technique)
    claims = [
        ("A larger labeller aligns better with humans", f"L {by_size['L']}% vs XS {by_size['XS']}%",
         paired_difference(pairs, (largest, best.code), (smallest, best.code)), 0.0, "greater", "points of alignment",
         "rlaif-size-alignment", f"{largest} - {smallest}"),
        ("Position bias shrinks with size (same position wins after swapping)",
         f"L {position['L']}% vs XS {position['XS']}%",
         paired_difference(pairs, (largest, best.code), (smallest, best.code), "same_position"), 0.0, "less",
         "points of same-position share", "rlaif-size-position-bias", f"{largest} - {smallest}"),
    ]
    base = rl.Technique("base", 0)
    if ((pairs.labeller == largest) & (pairs.technique == base.code)).any() and best.code != base.code:
        claims.append((f"{best.name} beats Base 0-shot", f"{techniques.get(best.name)}% vs {techniques['Base 0-shot']}%",
                       paired_difference(pairs, (largest, best.code), (largest, base.code)), 0.0, "greater",
                       "points of alignment", "rlaif-detailed-cot", f"{best.name} - Base 0-shot"))
    sc_code = rl.Technique.parse(self_consistency).code if self_consistency else None
    if sc_code and ((pairs.labeller == largest) & (pairs.technique == sc_code)).any():
        sc_values = reported.values("rlaif", "self_consistency_alignment")
        claims.append(("Self-consistency (sampled rationales) is worse than one greedy rationale",
                       f"{sc_values['16 samples, T 1.0']}% (16 samples, T 1.0) vs {sc_values['greedy']}%",
                       paired_difference(pairs, (largest, sc_code), (largest, best.code)), 0.0, "less",
                       "points of alignment", "rlaif-self-consistency", f"{self_consistency} - {best.name}"))
    human = reported.entries("rlaif", "human_inter_annotator_agreement")[0]
    top = pairs[(pairs.labeller == largest) & (pairs.technique == best.code)].agree
    claims.append((f"The largest labeller with {best.name} reaches human inter-annotator agreement "
                   f"({human['low']}-{human['high']}%)",
                   f"{techniques.get(best.name)}%", bootstrap_ci(top.to_numpy()), human["low"] / 100, "greater",
                   "alignment", "rlaif-human-agreement", f"{largest}, {best.name}"))
    rows = []
    for claim, paper, estimate, null, expect, unit, cid, label in claims:
        scale = 100
        measured = (f"{estimate.value * scale:+.1f} [{estimate.low * scale:+.1f}, {estimate.high * scale:+.1f}] {unit}"
                    if unit != "alignment" else f"{estimate.value:.1%} [{estimate.low:.1%}, {estimate.high:.1%}]")
        row = claim_part(cid, estimate, null, expect, label=label, measured=measured, interval="bootstrap")
        rows.append({"claim": claim, "paper": paper, "measured": measured, "comparisons": estimate.n,
                     "verdict": row.pop("verdict"), **row})
    return pd.DataFrame(rows)


def policy_findings(runs: list[PolicyRun], per_seed: pd.DataFrame) -> pd.DataFrame:
    """The paper's reward-model and policy claims with computed verdicts, over seeds (``per_seed``:
    the judgments' `win_rates_per_seed`)."""
    wins, lc = reported.values("rlaif", "win_rate"), reported.values("rlaif", "length_controlled_win_rate")
    claims = []
    ids = {"RLAIF vs SFT": "rlaif-beats-sft", "RLHF vs SFT": "rlhf-beats-sft", "RLAIF vs RLHF": "rlaif-equals-rlhf",
           "d-RLAIF vs SFT": "rlaif-direct-beats-sft", "d-RLAIF vs RLAIF": "rlaif-direct-beats-rlaif"}
    for comparison, expect in (("RLAIF vs SFT", "greater"), ("RLHF vs SFT", "greater"), ("RLAIF vs RLHF", "equal"),
                               ("d-RLAIF vs SFT", "greater"), ("d-RLAIF vs RLAIF", "greater")):
        paper = wins["d-RLAIF vs same-size RLAIF" if comparison == "d-RLAIF vs RLAIF" else comparison]
        group = per_seed[per_seed.comparison == comparison]
        shown = "d-RLAIF vs RLAIF (paper: vs same-size RLAIF)" if comparison == "d-RLAIF vs RLAIF" else comparison
        claims.append((f"{shown}: win rate {'about' if expect == 'equal' else 'above'} 50%", f"{paper}%",
                       seed_ci(group.win_rate, bounds=(0, 1)), 0.5, expect, "%", ids[comparison]))
    group = per_seed[per_seed.comparison == "RLAIF vs SFT"]
    claims.append(("RLAIF vs SFT, length-controlled: above 50%", f"{lc['RLAIF vs SFT']}%",
                   seed_ci(group.length_controlled, bounds=(0, 1)), 0.5, "greater", "%", "rlaif-length-controlled"))
    rm = pd.concat([r.reward_models for r in runs])
    full = rm[rm.examples == rm.examples.max()].pivot(index="seed", columns="labels", values="accuracy")
    paper_rm = reported.values("rlaif", "rm_accuracy")
    claims.append(("The AI-label RM is less accurate on human preferences than the human-label RM",
                   f"{paper_rm['AI-label RM']}% vs {paper_rm['human-label RM']}%",
                   seed_ci(full.ai_soft - full.human), 0.0, "less", "points", "rlaif-rm-accuracy"))
    lengths = policy_table(runs).pivot(index="seed", columns="policy", values="characters")
    paper_len = reported.values("rlaif", "summary_length")
    claims.append(("RLAIF writes longer summaries than SFT", f"{paper_len['RLAIF']} vs {paper_len['SFT']} characters",
                   seed_ci(lengths["RLAIF"] - lengths["SFT"]), 0.0, "greater", "characters", "rlaif-longer"))
    rows = []
    for claim, paper, estimate, null, expect, unit, cid in claims:
        if unit == "%":
            measured = f"{estimate.value:.1%} [{estimate.low:.1%}, {estimate.high:.1%}]"
        elif unit == "points":
            measured = f"{estimate.value * 100:+.1f} [{estimate.low * 100:+.1f}, {estimate.high * 100:+.1f}] points"
        else:
            measured = f"{estimate.value:+.1f} [{estimate.low:+.1f}, {estimate.high:+.1f}] {unit}"
        row = claim_part(cid, estimate, null, expect, measured=measured)
        rows.append({"claim": claim, "paper": paper, "measured": measured, "seeds": estimate.n,
                     "verdict": row.pop("verdict"), **row})
    return pd.DataFrame(rows)
