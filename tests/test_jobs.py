"""Training jobs in this process and under `accelerate launch` give the same model."""

import json

import pytest

from repro import generation, paths
from repro.errors import ReproError
from repro.runs import RunStore
from repro.studies import base
from repro.studies.self_rewarding import data as sd
from repro.training import jobs

CONFIGS = paths.project_root() / "configs" / "accelerate"


def test_every_shipped_accelerate_config_is_accepted_by_accelerates_loader():
    from accelerate.commands.config.config_args import load_config_from_file

    kinds = {}
    for path in sorted(CONFIGS.glob("*.yaml")):
        config = load_config_from_file(str(path))
        kinds[path.stem] = (str(config.distributed_type).split(".")[-1], config.num_processes)
    assert kinds["cpu_2proc"] == ("MULTI_CPU", 2) and kinds["cpu_1proc"] == ("NO", 1)
    assert kinds["fsdp_8gpu"][0] == "FSDP" and kinds["deepspeed_zero3_8gpu"][0] == "DEEPSPEED"
    assert kinds["ddp_8gpu"] == ("MULTI_GPU", 8)


def test_bad_jobs_are_refused_before_anything_runs(tmp_path):
    def ppo_job(*args):  # not one of repro.training.jobs.JOBS: a launched process could not find it
        raise AssertionError("not run")

    with pytest.raises(ValueError, match="is not a training job"):
        jobs.run_job(ppo_job, "m", [], None, tmp_path)
    from repro.training import SFTSpec

    with pytest.raises(ReproError, match="does not exist"):
        jobs.run_job(jobs.sft_job, "m", [], SFTSpec(), tmp_path, accelerate_config=str(tmp_path / "none.yaml"))


@pytest.mark.slow
def test_a_launched_sft_job_matches_the_in_process_one(tmp_path):
    from repro.training import SFTSpec

    store = RunStore(tmp_path / "store")
    m0 = base.base_model(store, base.BaseSpec(corpus_docs=300, model_size="XS"), progress=False)
    records = sd.ift_records(sd.SeedDataSpec(ift_size=16))
    params = SFTSpec(num_train_epochs=1.0, batch_size=4, seed=0)
    here = jobs.run_job(jobs.sft_job, generation.model_location(m0), records, params, tmp_path / "here")
    launched = jobs.run_job(jobs.sft_job, generation.model_location(m0), records, params, tmp_path / "launched",
                            accelerate_config=str(CONFIGS / "cpu_1proc.yaml"))
    assert launched["processes"] == 1 and launched["steps"] == here["steps"] == 4
    assert launched["final_loss"] == pytest.approx(here["final_loss"], rel=1e-4)
    assert (tmp_path / "launched" / "model" / "model.safetensors").is_file()
    history = json.loads((tmp_path / "launched" / "log_history.json").read_text())
    assert [e["loss"] for e in history if "loss" in e] == pytest.approx(
        [e["loss"] for e in json.loads((tmp_path / "here" / "log_history.json").read_text()) if "loss" in e], rel=1e-4)


def test_the_fsdp_config_wraps_the_decoder_layers_of_any_architecture(monkeypatch):
    """The FSDP config names no layer class: accelerate then wraps what the model lists in its
    ``_no_split_modules``, Llama's and Gemma 2's decoder layers alike (the environment is the one
    accelerate's own launcher derives from the file)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.launch import prepare_multi_gpu_env
    from transformers import Gemma2Config, Gemma2ForCausalLM, LlamaConfig, LlamaForCausalLM

    args = launch_command_parser().parse_args(["--config_file", str(CONFIGS / "fsdp_8gpu.yaml"), "train.py"])
    env = prepare_multi_gpu_env(_validate_launch_command(args)[0])
    assert env["FSDP_AUTO_WRAP_POLICY"] == "TRANSFORMER_BASED_WRAP" and "FSDP_TRANSFORMER_CLS_TO_WRAP" not in env
    for key, value in env.items():  # what decides the wrapping (the rest needs a GPU to build the plugin)
        if key in ("ACCELERATE_USE_FSDP", "FSDP_VERSION", "FSDP_MIN_NUM_PARAMS") or "WRAP" in key:
            monkeypatch.setenv(key, value)
    sizes = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                 num_key_value_heads=2, vocab_size=32)
    for model, layer in ((LlamaForCausalLM(LlamaConfig(**sizes)), "LlamaDecoderLayer"),
                         (Gemma2ForCausalLM(Gemma2Config(head_dim=8, **sizes)), "Gemma2DecoderLayer")):
        plugin = FullyShardedDataParallelPlugin()
        plugin.set_auto_wrap_policy(model)
        assert [c.__name__ for c in plugin.auto_wrap_policy.keywords["transformer_layer_cls"]] == [layer]


def test_length_groups_on_two_processes_make_the_single_process_batches():
    """transformers groups lengths by the per-device batch; grouped by the global batch instead, the
    two shards accelerate deals out (`BatchSamplerShard`) make up, step by step, exactly the batches of
    one process. Without the regrouping they do not (the test's control)."""
    from types import SimpleNamespace

    import torch
    from accelerate.data_loader import BatchSamplerShard
    from torch.utils.data import BatchSampler
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from repro.training.common import group_lengths_by_global_batch

    lengths = [int(v) for v in torch.randint(5, 200, (1000,), generator=torch.Generator().manual_seed(1))]

    def batches(sampler, size, processes=1):
        torch.manual_seed(0)  # the trainer seeds every process alike; the sampler draws from the global RNG
        if processes == 1:
            return [sorted(b) for b in BatchSampler(sampler, size, drop_last=False)]
        shards = []
        for rank in range(processes):
            torch.manual_seed(0)
            shards.append(list(BatchSamplerShard(BatchSampler(sampler, size, drop_last=False), processes, rank)))
        return [sorted(i for shard in step for i in shard) for step in zip(*shards)]

    def two_process_sampler(regroup: bool):
        trainer = SimpleNamespace(args=SimpleNamespace(world_size=2),
                                  _get_train_sampler=lambda *a: LengthGroupedSampler(4, lengths=lengths))
        if regroup:
            group_lengths_by_global_batch(trainer)
        return trainer._get_train_sampler()

    single = batches(LengthGroupedSampler(8, lengths=lengths), 8)
    assert batches(two_process_sampler(True), 4, processes=2) == single
    assert batches(two_process_sampler(False), 4, processes=2) != single
