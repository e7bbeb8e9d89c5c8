"""The paper-scale paths of the self-rewarding and RLAIF studies: their profiles, their loaders, external models, and
the whole chain run on tiny stand-ins for every real thing (a saved tiny model as "Llama 2 70B" and
as the gold judge, the shipped oasst1 and AlpacaEval samples as the datasets)."""

import dataclasses
import json

import pandas as pd
import pytest

from repro import generation
from repro.data import alpaca_eval, oasst
from repro.errors import ReproError
from repro.evaluation import reported
from repro.runs import RunStore
from repro.runs.notebooks import load_profile, resolve_notebook, resolve_parameters
from repro.studies import base
from repro.studies.self_rewarding import data as sd
from repro.studies.self_rewarding import stages as sr
from repro.studies.self_rewarding import study as study
from repro.training.preference import PreferenceSpec
from repro.training.sft import SFTSpec


def paper_parameters():
    return resolve_parameters(resolve_notebook("10_self_rewarding"), load_profile("paper"), {})


def test_the_paper_profile_passes_validation_with_the_papers_sizes():

    params = paper_parameters()
    paper = {m: reported.value("self_rewarding", m) for m in ("ift_examples", "candidates_per_prompt",
                                                              "judge_samples", "dpo_beta", "rouge_l_threshold")}
    paper.update({m: reported.values("self_rewarding", m) for m in ("eft_examples", "learning_rate")})
    assert (params["ift_size"], params["eft_train_prompts"], params["eft_eval_prompts"]) == (
        paper["ift_examples"], paper["eft_examples"]["train"], paper["eft_examples"]["eval"])
    assert (params["candidates"], params["judge_samples"], params["dpo_beta"]) == (
        paper["candidates_per_prompt"], paper["judge_samples"], paper["dpo_beta"])
    assert (params["sft_learning_rate"], params["dpo_learning_rate"]) == (
        paper["learning_rate"]["SFT"], paper["learning_rate"]["DPO"])
    assert params["rouge_threshold"] == paper["rouge_l_threshold"]
    assert params["generation_backend"] == "vllm" and params["prompt_style"] == "chat"
    assert params["base_model_path"] == "meta-llama/Llama-2-70b-hf"
    config = params["accelerate_config_path"]
    assert config.startswith("/") and config.endswith("configs/accelerate/fsdp_8gpu.yaml")  # made absolute


def test_the_profiles_hub_sources_go_through_the_real_loaders(monkeypatch):
    import datasets

    params = paper_parameters()
    served = {params["seed_data_path"]: [json.loads(line) for line in oasst.sample_path().read_text().splitlines()],
              params["eval_prompts_path"]: json.loads(alpaca_eval.sample_path().read_text())}
    calls = []

    def fake_load_dataset(name, *args, split=None):
        calls.append(name)
        return datasets.Dataset.from_list(served[name])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    ift, train, evaluation, key = sd.oasst_seed_data(params["seed_data_path"], ift_size=None)
    assert key["oasst"] == "OpenAssistant/oasst1" and len(ift) >= 1 and len(train) and len(evaluation)
    assert not set(train.prompt_id) & set(evaluation.prompt_id)
    assert len(alpaca_eval.load_alpaca_eval(params["eval_prompts_path"])) == 6
    assert calls == ["OpenAssistant/oasst1", "tatsu-lab/alpaca_eval"]
    # the paper's sizes are more than the sample holds: a clear error, not a silent shortfall
    with pytest.raises(Exception, match="asked for"):
        sd.oasst_seed_data(params["seed_data_path"], ift_size=3200)


def test_external_models_are_referenced_not_copied(tmp_path):
    from repro.models import build_tokenizer, make_llama, save_model

    store = RunStore(tmp_path / "store")
    tokenizer = build_tokenizer(["a", "b"])
    folder = tmp_path / "llama"
    save_model(make_llama("XS", tokenizer, seed=0), tokenizer, folder)
    stage = generation.external_model_stage(store, str(folder))
    assert generation.model_location(stage) == str(folder.resolve()) and not (stage / "model").exists()
    model, _ = generation.load_stage_model(stage)
    assert model.config.model_type == "llama"
    hub = generation.external_model_stage(store, "meta-llama/Llama-2-70b-hf")
    assert generation.model_location(hub) == "meta-llama/Llama-2-70b-hf" and hub.key != stage.key
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReproError, match="no config.json"):
        generation.external_model_stage(store, str(tmp_path / "empty"))


def test_the_engine_names_its_backend_and_options():
    engine = generation.Engine.of("vllm", tensor_parallel_size=8, gpu_memory_utilization=0.9)
    # gpu_memory_utilization sizes the engine's memory, not what it generates: it stays out of the key
    assert engine.key() == {"backend": "vllm", "tensor_parallel_size": 8}
    assert generation.Engine().key() == {"backend": "transformers"}
    with pytest.raises(ValueError, match="unknown generation backend"):
        generation.Engine("tgi")


@pytest.mark.slow
def test_the_paper_path_runs_end_to_end_on_tiny_stand_ins(tmp_path):
    """Every paper-scale branch at once: external base model, chat-style self-instruction with the
    keyword filter, oasst1 seed data with EFT written by the SFT baseline, AlpacaEval prompts with
    reference outputs, an LLM gold judge, and training launched through accelerate."""
    from repro import paths
    from repro.judges.llm_judge import JudgeSpec

    store = RunStore(tmp_path / "store")
    m0 = base.base_model(store, base.BaseSpec(corpus_docs=300, model_size="XS"), progress=False)
    llama = generation.model_location(m0)  # a saved checkpoint folder, as a real model would be
    spec = study.StudySpec(
        seed_data=sd.SeedDataSpec(ift_size=None, eft_train_prompts=None, eft_eval_prompts=None),
        tune=SFTSpec(num_train_epochs=1.0),
        iteration=sr.IterationSpec(prompts=2, prompt_style="chat", candidates=2, judge_samples=1, max_new_tokens=8,
                                   judge_max_new_tokens=8, prompt_max_new_tokens=12,
                                   preference=PreferenceSpec(num_train_epochs=1.0)),
        evaluation=sr.EvalSpec(samples=1, max_new_tokens=8, judge_samples=1),
        judge=JudgeSpec(samples=1, max_new_tokens=8), eft_writer="SFT", iterations=1, ablations=False,
        accelerate_config=str(paths.project_root() / "configs" / "accelerate" / "cpu_1proc.yaml"))
    inputs = study.prepare_inputs(store, spec, base_model_path=llama, prompt_generator_path=llama,
                                  seed_data_path=str(oasst.sample_path()),
                                  eval_prompts_path=str(alpaca_eval.sample_path()), gold_judge_path=llama)
    assert inputs.m0.name == "external-model" and inputs.real_data is not None
    [run] = study.run_study(store, spec, [0], inputs)
    assert set(run.models) == {"SFT", "M1", "M2"}
    responses = run.responses("M2")
    assert len(responses) == 6 and set(responses.prompt_id) == set(pd.read_parquet(inputs.eval_prompts / "prompts.parquet").uid)
    reference = pd.read_parquet(inputs.reference / "responses.parquet")
    assert reference.response.str.len().min() > 0 and "oracle" in reference  # the gold judge's scores (or NaN)
    assert run.models["SFT"].manifest["params"]["launch"]["accelerate_config"] == "cpu_1proc.yaml"
    assert run.eft.results["candidate_prompts"] == len(inputs.real_data[1].prompt_id.unique())
    assert run.reward_modelling["M1"].results["n_prompts"] >= 1
    again = study.run_study(store, spec, [0], inputs)[0]
    assert again.models["M2"].key == run.models["M2"].key


def rlaif_paper_parameters(notebook):
    return resolve_parameters(resolve_notebook(notebook), load_profile("paper"), {})


def test_the_rlaif_paper_profile_has_the_papers_settings_and_real_loaders(monkeypatch, tmp_path):
    import datasets

    from repro.data import summarize
    from repro.studies.rlaif import stages as rl

    labelling, policy = rlaif_paper_parameters("20_rlaif_labeling"), rlaif_paper_parameters("21_rlaif_rl")
    assert labelling["eval_fraction"] == reported.value("rlaif", "eval_fraction")
    assert policy["rl_beta"] == reported.value("rlaif", "rl_beta")
    assert policy["rl_temperature"] == reported.value("rlaif", "rl_temperature")
    samples = reported.value("rlaif", "self_consistency_samples")
    assert {rl.Technique.parse(t).rationales for t in labelling["self_consistency"]} == {samples}
    assert {rl.Technique.parse(t).name for t in labelling["techniques"]} == set(reported.values("rlaif", "alignment"))
    assert policy["labeller"] == list(policy["labeller_paths"])[-1] and labelling["wording"] == "plain"
    rows = [json.loads(line) for line in summarize.sample_path("comparisons").read_text().splitlines()]
    tldr = [json.loads(line) for line in summarize.sample_path("tldr").read_text().splitlines()]
    served = {(policy["comparisons_path"], None): rows, (policy["tldr_path"], "train"): tldr[:-1],
              (policy["tldr_path"], "test"): tldr[-1:]}
    calls = []

    def fake_load_dataset(name, *args, split=None):
        calls.append((name, *args, split))
        return datasets.Dataset.from_list(served[name, split])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    data = rl.file_data(policy["comparisons_path"], policy["tldr_path"], eval_posts=policy["eval_posts"])
    assert len(data.comparisons) and len(data.tldr_train) == len(tldr) - 1 and len(data.tldr_eval) == 1
    assert calls[0] == ("openai/summarize_from_feedback", "comparisons", None)


def test_a_labeller_given_by_path_labels_real_comparisons_unchanged(tmp_path):
    """The paper-scale labelling path on a tiny stand-in: real-schema files, a checkpoint folder as the
    labeller, the plain wording, both orders and chain of thought."""
    from repro.data import summarize
    from repro.models import build_tokenizer, make_llama, save_model
    from repro.studies.rlaif import stages as rl
    from repro.studies.rlaif import study as study

    lines = summarize.sample_path("tldr").read_text().splitlines()
    folder = tmp_path / "tldr"
    folder.mkdir()
    (folder / "train.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    (folder / "test.jsonl").write_text(lines[-1] + "\n")
    tokenizer = build_tokenizer("Text - Summary 1 2 Preferred Summary= Rationale: the a".split())
    save_model(make_llama("XXS", tokenizer, seed=0), tokenizer, tmp_path / "labeller")
    store = RunStore(tmp_path / "store")
    inputs = study.prepare(store, rl.WorldSpec(world_seed=0), rl.LabellerSpec(), [], eval_fraction=0.5,
                           comparisons_path=str(summarize.sample_path("comparisons")), tldr_path=str(folder),
                           labeller_paths={"L": str(tmp_path / "labeller")})
    assert generation.model_location(inputs.labellers["L"]) == str((tmp_path / "labeller").resolve())
    runs = study.label_runs(store, inputs, "L", ["base/0", "detailed+cot/0"], [0], wording="plain",
                            max_rationale_tokens=4)
    table = study.alignment_table(runs)
    assert len(table) == 2 and table.alignment.between(0, 1).all() and (table.pairs == len(inputs.evaluation)).all()


# -- eva -------------------------------------------------------------------------------------------------
def test_the_eva_paper_profile_has_the_papers_settings_and_real_loaders(monkeypatch, tmp_path):
    import datasets

    from repro.data import mt_bench, ultrafeedback
    from repro.studies.eva import stages as eva
    from repro.studies.eva import study as es

    params = resolve_parameters(resolve_notebook("30_eva"), load_profile("paper"), {})
    paper = {m: reported.value("eva", m) for m in (
        "responses_per_prompt", "sampling_temperature", "sampling_top_p", "keep_fraction", "evolutions",
        "evolved_share", "dpo_beta", "dpo_learning_rate", "dpo_epochs", "prompt_chunks", "chunk_size")}
    assert (params["responses"], params["temperature"], params["top_p"]) == (
        paper["responses_per_prompt"], paper["sampling_temperature"], paper["sampling_top_p"])
    assert (params["keep_fraction"], params["evolutions"], params["evolved_share"]) == (
        paper["keep_fraction"], paper["evolutions"], paper["evolved_share"])
    assert (params["dpo_beta"], params["solver_learning_rate"], params["solver_epochs"]) == (
        paper["dpo_beta"], paper["dpo_learning_rate"], paper["dpo_epochs"])
    assert (params["chunks"], params["chunk_size"]) == (paper["prompt_chunks"], paper["chunk_size"])
    assert params["solver_batch_size"] == reported.value("eva", "dpo_batch_size")  # global (repro.training.jobs)
    assert eva.parse_reward(params["reward_model"])[0] == "path" and params["trust_remote_code"] is True
    assert resolve_parameters(resolve_notebook("31_eva_ablations"), load_profile("paper"), {})["sweep_profile"] == "paper"

    def lines(path):
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    from repro.data import alpaca_eval

    served = {params["prompts_path"]: lines(ultrafeedback.sample_path()),
              params["hard_prompts_path"]: lines(mt_bench.arena_hard_sample_path()),
              params["two_turn_path"]: lines(mt_bench.mt_bench_sample_path()),
              params["standard_prompts_path"]: json.loads(alpaca_eval.sample_path().read_text())}
    calls = []

    def fake_load_dataset(name, *args, split=None, **kw):
        calls.append(name)
        return datasets.Dataset.from_list(served[name])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    store = RunStore(tmp_path)
    inputs = es.paper_scale_inputs(store, prompts_path=params["prompts_path"], chunk_size=3, chunks=2,
                                   standard=params["standard_prompts_path"], hard=params["hard_prompts_path"],
                                   two_turn=params["two_turn_path"], evolver_path=params["evolver_path"])
    stage = eva.file_prompt_sets_stage(store, **inputs["file_sets"])
    assert set(calls) == set(served) and len(eva.read_set(stage, "chunks")) == 6
    assert len(eva.read_set(stage, "hard")) and len(eva.read_set(stage, "two_turn"))
    # The paper's sizes are more than the sample holds: a clear error, not a silent shortfall.
    with pytest.raises(Exception, match="fewer than 6 chunks"):
        eva.file_prompt_sets_stage(store, train=params["prompts_path"], chunk_size=params["chunk_size"], chunks=6)


@pytest.mark.slow
def test_the_eva_paper_path_runs_end_to_end_on_tiny_stand_ins(tmp_path):
    """Every paper-scale branch of eva at once: a policy given by path, UltraFeedback / AlpacaEval /
    Arena-Hard / MT-Bench files, a sequence-classification reward model by path, an LLM evolver and
    an LLM gold judge (all tiny checkpoints standing in for the real models)."""
    from repro.data import mt_bench, ultrafeedback
    from repro.models import save_model
    from repro.studies.eva import stages as eva
    from repro.studies.eva import study as es
    from repro.training.reward import make_reward_model

    store = RunStore(tmp_path / "store")
    m0 = base.base_model(store, base.BaseSpec(corpus_docs=300, model_size="XS"), progress=False)
    llama = generation.model_location(m0)
    rm_model, tokenizer = make_reward_model(llama), generation.load_stage_model(m0)[1]
    save_model(rm_model, tokenizer, tmp_path / "rm")
    spec = es.EvaSpec(prompts=eva.PromptSpec(chunks=2), reward=f"path@{tmp_path / 'rm'}",
                      sampling=eva.SamplingSpec(n=2, max_new_tokens=6),
                      creator=eva.CreatorSpec(fraction=0.5, evolutions=2),
                      solver=PreferenceSpec(beta=0.05, num_train_epochs=1.0), evaluation=eva.HeldOutSpec(samples=1, max_new_tokens=6))
    extra = es.paper_scale_inputs(store, prompts_path=str(ultrafeedback.sample_path()), chunk_size=3, chunks=2,
                                  standard=str(alpaca_eval.sample_path()), hard=str(mt_bench.arena_hard_sample_path()),
                                  two_turn=str(mt_bench.mt_bench_sample_path()), evolver_path=llama, gold_judge_path=llama)
    extra["evolver"] = dataclasses.replace(extra["evolver"], max_new_tokens=8)
    inputs = es.prepare(store, spec, None, policy_path=llama, **extra)
    assert inputs.sft.name == "external-model" and inputs.reward.results["kind"] == "path"
    [run] = es.run_study(store, spec, [0], inputs)
    assert set(run.models) == {("sft", 0), ("theta_1", 1), ("eva", 1), ("human", 1)}
    creator = run.creators[1].results
    assert creator["selected"] == 2 and creator["asked"] == 4  # evolved by the LLM: some rewrites may be refused
    responses = pd.read_parquet(run.evaluations[("eva", 1)] / "responses.parquet")
    assert set(responses.set) == {"standard", "hard", "turn_1", "turn_2"}
    metrics = es.study_metrics([run], inputs)
    assert {"win_rate", "mean_score"} <= set(metrics.metric)
