"""Training jobs on two CPU processes (DDP over gloo, `configs/accelerate/cpu_2proc.yaml`) are the
single-process run: same steps, same examples and tokens, the same losses.

Why losses agree to 1e-4 relative: every step, both runs see the same global batch (the two
processes get disjoint halves); DDP averages the two halves' gradients, which is the mean gradient
of the whole batch (token-weighted for SFT, where transformers counts the loss tokens over both
processes, ``average_tokens_across_devices``), up to the order of float additions. On these tiny
runs of a few steps that leaves differences around 1e-6; 1e-4 relative leaves room for the
reduction order without hiding a wrong batch (a different batch moves the loss by percents).
"""

import json

import pytest

from repro import generation, paths
from repro.errors import ReproError
from repro.runs import RunStore, launch
from repro.studies import base
from repro.studies.self_rewarding import data as sd
from repro.training import jobs

TWO = str(paths.project_root() / "configs" / "accelerate" / "cpu_2proc.yaml")
REL = 1e-4


def history(workdir):
    return json.loads((workdir / "log_history.json").read_text())


def losses(workdir, key="loss"):
    return [(e["step"], e[key]) for e in history(workdir) if key in e]


def assert_same_run(here: dict, launched: dict, here_dir, launched_dir, *, tokens: bool = True):
    assert launched["processes"] == 2
    assert launched["steps"] == here["steps"] > 1
    if tokens:  # transformers gathers the count over processes: the total, as one process counts it
        assert launched["tokens_seen"] == here["tokens_seen"] > 0
    got, want = losses(launched_dir), losses(here_dir)
    assert [s for s, _ in got] == [s for s, _ in want] and len(want) >= 2
    assert [v for _, v in got] == pytest.approx([v for _, v in want], rel=REL)
    assert (launched_dir / "model" / "model.safetensors").is_file()


@pytest.fixture(scope="module")
def m0(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("store"))
    return generation.model_location(base.base_model(store, base.BaseSpec(corpus_docs=300, model_size="XS"), progress=False))


def test_a_batch_that_the_processes_cannot_split_is_refused_before_launch(tmp_path):
    from repro.training import SFTSpec

    with pytest.raises(ReproError, match="cannot be split evenly over 2 processes"):
        jobs.run_job(jobs.sft_job, "m", [], SFTSpec(batch_size=5), tmp_path, accelerate_config=TWO)
    assert not (tmp_path / "job").exists()
    assert launch.per_process_params(SFTSpec(batch_size=6), 2).batch_size == 3
    assert launch.per_process_params(SFTSpec(batch_size=6), 1).batch_size == 6


@pytest.mark.slow
def test_two_process_sft_is_the_single_process_run(tmp_path, m0):
    from repro.training import SFTSpec

    records = sd.ift_records(sd.SeedDataSpec(ift_size=32))
    # length-grouped batches (the default): grouped by the global batch on both sides
    params = SFTSpec(num_train_epochs=1.0, batch_size=8, logging_steps=1, seed=0)
    here = jobs.run_job(jobs.sft_job, m0, records, params, tmp_path / "here")
    launched = jobs.run_job(jobs.sft_job, m0, records, params, tmp_path / "two", accelerate_config=TWO)
    assert here["steps"] == 4
    assert_same_run(here, launched, tmp_path / "here", tmp_path / "two")
    assert launched["per_process_batch_size"] == 4


@pytest.mark.slow
def test_two_process_dpo_is_the_single_process_run(tmp_path, m0):
    from repro.training import PreferenceSpec

    tasks = sd.ift_records(sd.SeedDataSpec(ift_size=16))
    records = [{"prompt": r["prompt"], "chosen": r["completion"],
                "rejected": [{"role": "assistant", "content": r["completion"][0]["content"][::-1]}]} for r in tasks]
    params = PreferenceSpec(method="dpo", num_train_epochs=1.0, batch_size=4, logging_steps=1, seed=0,
                            learning_rate=1e-3)
    here = jobs.run_job(jobs.preference_job, m0, records, params, tmp_path / "here")
    launched = jobs.run_job(jobs.preference_job, m0, records, params, tmp_path / "two", accelerate_config=TWO)
    assert here["steps"] == 4
    assert_same_run(here, launched, tmp_path / "here", tmp_path / "two")
    for key in ("rewards/chosen", "rewards/margins"):
        assert [v for _, v in losses(tmp_path / "two", key)] == pytest.approx(
            [v for _, v in losses(tmp_path / "here", key)], rel=1e-3, abs=1e-6)


@pytest.mark.slow
def test_two_process_pretraining_is_the_single_process_run(tmp_path, m0):
    from transformers import AutoTokenizer

    from repro.models import make_llama
    from repro.training import PretrainSpec

    tokenizer = AutoTokenizer.from_pretrained(m0)
    texts = [r["completion"][0]["content"] for r in sd.ift_records(sd.SeedDataSpec(ift_size=64))]
    start = jobs.save_fresh_model(make_llama("XXS", tokenizer, seed=0), tokenizer, tmp_path / "init")
    # 3 steps of 4 blocks of 32 tokens, fewer than the packed blocks: every step a full global batch (an
    # epoch's last, partial batch is filled up with blocks from the start under DDP: `repro.training.jobs`)
    params = PretrainSpec(max_steps=3, batch_size=4, max_length=32, logging_steps=1, seed=0)
    here = jobs.run_job(jobs.pretrain_job, start, texts, params, tmp_path / "here")
    launched = jobs.run_job(jobs.pretrain_job, start, texts, params, tmp_path / "two", accelerate_config=TWO)
    assert_same_run(here, launched, tmp_path / "here", tmp_path / "two")


@pytest.mark.slow
def test_two_process_reward_model_training_is_the_single_process_run(tmp_path, m0):
    from repro.training import RewardSpec

    tasks = sd.ift_records(sd.SeedDataSpec(ift_size=16))
    records = [{"chosen": r["completion"][0]["content"], "rejected": r["completion"][0]["content"][::-1],
                "soft_label": 0.5 + 0.03 * i} for i, r in enumerate(tasks)]
    params = RewardSpec(num_train_epochs=1.0, batch_size=4, logging_steps=1, seed=0)
    options = {"head_seed": 3}
    here = jobs.run_job(jobs.reward_job, m0, records, params, tmp_path / "here", options=options)
    launched = jobs.run_job(jobs.reward_job, m0, records, params, tmp_path / "two", accelerate_config=TWO, options=options)
    assert here["steps"] == 4
    assert_same_run(here, launched, tmp_path / "here", tmp_path / "two", tokens=False)  # pairs are not counted
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "two" / "model")
    assert model.config.num_labels == 1


@pytest.mark.slow
def test_two_process_rl_against_a_saved_reward_model(tmp_path, m0):
    """RLOO samples its completions: the two processes draw their halves from their own (equally
    seeded) generators, so the completions, and the losses, are not the single-process ones. What
    must agree is the shape of the run: the same steps, the same number of completions per step."""
    from transformers import AutoTokenizer

    from repro.models import save_model
    from repro.training import RLSpec
    from repro.training.reward import make_reward_model

    save_model(make_reward_model(m0, seed=1), AutoTokenizer.from_pretrained(m0), tmp_path / "rm")
    prompts = [r["prompt"][0]["content"] for r in sd.ift_records(sd.SeedDataSpec(ift_size=8))]
    params = RLSpec(num_train_epochs=1.0, batch_size=8, num_generations=2, max_completion_length=8,
                    logging_steps=1, seed=0)
    options = {"reward": {"reward_model": str(tmp_path / "rm")}, "reference_path": m0}
    here = jobs.run_job(jobs.rl_job, m0, prompts, params, tmp_path / "here", options=options)
    launched = jobs.run_job(jobs.rl_job, m0, prompts, params, tmp_path / "two", accelerate_config=TWO, options=options)
    assert launched["processes"] == 2 and launched["steps"] == here["steps"] > 1
    steps = {w: [e for e in history(tmp_path / w) if "reward" in e] for w in ("here", "two")}
    assert [(e["step"], e["epoch"]) for e in steps["two"]] == [(e["step"], e["epoch"]) for e in steps["here"]]
    with pytest.raises(ReproError, match="whole groups of 4 completions"):
        jobs.run_job(jobs.rl_job, m0, prompts, RLSpec(batch_size=4, num_generations=4), tmp_path / "bad",
                     accelerate_config=TWO, options=options)
