"""Generation and judging sharded over launched processes (`repro.generation.sharded`), and the vLLM
engine options taken from notebook parameters (`repro.studies.generation.Engine`)."""

import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import repro
from repro import paths
from repro.generation import (
    Engine,
    GenerationSpec,
    HFGenerator,
    ShardedGenerator,
    VLLMGenerator,
    external_model_stage,
    shard,
)
from repro.generation.sharded import merge_shards, shard_bounds, shard_seed, takes_index_offset
from repro.generation.vllm_backend import SCHEDULING_OPTIONS
from repro.models import build_tokenizer, make_llama, save_model
from repro.runs.store import RunStore

VOCAB = "the a cat dog sat on mat box red is what how many add and list sort count then . , ?".split()
PROMPTS = ["the cat sat on", [{"role": "user", "content": "add 3 and 4 ?"}], "what", "the dog", "red mat"]


# -- the shard and gather order ------------------------------------------------------------------
@pytest.mark.parametrize("processes", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("total", [0, 1, 2, 5, 6, 13])
def test_shards_cover_the_prompts_in_order(total, processes):
    bounds = [shard_bounds(total, processes, rank) for rank in range(processes)]
    items = list(range(total))
    assert merge_shards([items[start:stop] for start, stop in bounds]) == items
    sizes = [stop - start for start, stop in bounds]
    assert sizes == sorted(sizes, reverse=True) and max(sizes) - min(sizes) <= 1
    # the same split as numpy's array_split (and accelerate's split_between_processes): larger slices first
    assert sizes == [len(part) for part in np.array_split(np.arange(total), processes)]


def test_shard_bounds_rejects_bad_arguments():
    with pytest.raises(ValueError):
        shard_bounds(4, 0, 0)
    with pytest.raises(ValueError):
        shard_bounds(4, 2, 2)
    with pytest.raises(ValueError):
        shard_bounds(-1, 2, 0)


def test_shard_seeds():
    assert shard_seed(5, 0) == 5  # the first slice (and one process) keeps the call's seed
    seeds = [shard_seed(5, start) for start in (3, 6, 9)]
    assert len(set(seeds)) == 3 and not set(seeds) & set(range(0, 100))
    assert shard_seed(5, 3) == shard_seed(5, 3) and shard_seed(5, 3) != shard_seed(6, 3)


class Recorder:
    """A generator seeded per prompt (as vLLM's) or per call (as transformers'), which records its calls."""

    def __init__(self, per_prompt: bool):
        self.calls = []
        self.tokenizer = "its tokenizer"
        if per_prompt:
            self.generate = self._generate_per_prompt

    def generate(self, prompts, config):
        self.calls.append((list(prompts), config.seed, None))
        return [[f"{config.seed}|{p}"] * config.n for p in prompts]

    def _generate_per_prompt(self, prompts, config, *, index_offset=0):
        self.calls.append((list(prompts), config.seed, index_offset))
        return [[f"{config.seed + index_offset + i}|{p}"] * config.n for i, p in enumerate(prompts)]

    def score_next_token_logprobs(self, prompts, candidates, *, batch_size=None):
        return np.array([[float(len(str(p))) + c for c, _ in enumerate(candidates)] for p in prompts])


def simulate(per_prompt, processes, call):
    """Run ``call`` on every process's `ShardedGenerator` in turn, with a gather that collects each
    process's slice; the real gather (accelerate's, across processes) is run by the slow test below."""
    slices, recorders = [], []
    for rank in range(processes):
        recorder = Recorder(per_prompt)
        sharded = ShardedGenerator(recorder, SimpleNamespace(num_processes=processes, process_index=rank))
        sharded._gather = lambda items: slices.append(items) or items
        call(sharded)
        recorders.append(recorder)
    return merge_shards(slices), recorders


@pytest.mark.parametrize("processes", [2, 3])
def test_per_prompt_seeds_are_global(processes):
    prompts = [f"p{i}" for i in range(7)]
    config = GenerationSpec(seed=10, n=2)
    merged, recorders = simulate(True, processes, lambda g: g.generate(prompts, config))
    assert merged == Recorder(True).generate(prompts, config)  # as in one process, in order
    offsets = [r.calls[0][2] for r in recorders]
    assert offsets == [shard_bounds(7, processes, rank)[0] for rank in range(processes)]


def test_per_call_seeds_differ_between_slices():
    prompts = [f"p{i}" for i in range(5)]
    merged, recorders = simulate(False, 2, lambda g: g.generate(prompts, GenerationSpec(seed=3)))
    assert [r.calls[0][0] for r in recorders] == [prompts[:3], prompts[3:]]
    assert [r.calls[0][1] for r in recorders] == [3, shard_seed(3, 3)]
    assert [row[0].split("|")[1] for row in merged] == prompts


def test_sharded_scores_are_gathered_in_order():
    prompts = ["a", "bb", "ccc", "dddd", "eeeee"]
    merged, _ = simulate(False, 3, lambda g: g.score_next_token_logprobs(prompts, ["1", "2"]))
    assert np.array_equal(np.stack(merged), Recorder(False).score_next_token_logprobs(prompts, ["1", "2"]))


def test_one_process_is_a_pass_through(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    recorder = Recorder(False)
    assert shard(recorder) is recorder  # not launched: the generator itself
    one = ShardedGenerator(recorder, SimpleNamespace(num_processes=1, process_index=0))
    assert one.generate(["x", "y"], GenerationSpec(seed=4)) == [["4|x"], ["4|y"]]
    assert recorder.calls == [(["x", "y"], 4, None)]
    assert one.tokenizer == "its tokenizer"
    assert takes_index_offset(Recorder(True)) and not takes_index_offset(recorder)
    assert takes_index_offset(VLLMGenerator.__new__(VLLMGenerator))
    assert not takes_index_offset(HFGenerator.__new__(HFGenerator))


@pytest.mark.slow
def test_two_launched_processes_give_the_single_process_results(tmp_path):
    """A tiny model's greedy completions and next-token log-probabilities through a study's `Engine`,
    in one process and sharded over 2 CPU processes under ``accelerate launch``: every process gets
    the single-process results, in order (5 prompts, 1 prompt, none)."""
    root = paths.project_root()
    env = {**os.environ, "PYTHONPATH": str(Path(repro.__file__).parents[1]), "OMP_NUM_THREADS": "1",
           "REPRO_PROGRESS": "0"}
    env.pop("WORLD_SIZE", None)
    script = str(root / "tests" / "sharded_run.py")
    single, launched = tmp_path / "single", tmp_path / "launched"
    single.mkdir(), launched.mkdir()
    subprocess.run([sys.executable, script, str(single)], env=env, check=True, timeout=600)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # accelerate 1.15 starts several CPU processes only through mpirun; its torchrun launcher
    # (--multi_gpu, which only picks the launcher) with ACCELERATE_USE_CPU=true starts them on gloo.
    subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                    str(root / "configs" / "accelerate" / "cpu_2proc.yaml"), "--main_process_port", str(port),
                    "--multi_gpu", script, str(launched)], env={**env, "ACCELERATE_USE_CPU": "true"},
                   check=True, timeout=600)
    alone = json.loads((single / "rank0.json").read_text())
    assert alone["processes"] == 1 and not alone["sharded"] and "processes" not in alone["key"]
    assert len(alone["greedy"]) == 5 and len({c[0] for c in alone["greedy"]}) > 1  # outputs that tell prompts apart
    for rank in (0, 1):
        got = json.loads((launched / f"rank{rank}.json").read_text())
        assert got["processes"] == 2 and got["sharded"] and got["key"] == {"backend": "transformers", "processes": 2}
        for name in ("greedy", "greedy_one", "greedy_none", "seeded", "sampled_shape", "scores_none"):
            assert got[name] == alone[name], name
        for name in ("scores", "scores_one"):
            assert np.allclose(got[name], alone[name], atol=1e-5), name


# -- vLLM engine options from parameters -----------------------------------------------------------
@dataclasses.dataclass
class FakeEngineArgs:
    model: str = ""
    tensor_parallel_size: int = 1
    dtype: str = "auto"
    max_model_len: int | None = None
    gpu_memory_utilization: float = 0.9
    seed: int = 0
    load_format: str = "auto"
    trust_remote_code: bool = False
    enforce_eager: bool = False
    enable_prefix_caching: bool = False
    max_num_seqs: int = 256


@pytest.fixture
def fake_vllm(monkeypatch, tmp_path):
    """A stand-in for the ``vllm`` module, which cannot be installed here (no GPU): its ``LLM`` records
    the keyword arguments it was built with and its ``SamplingParams`` the sampling arguments; its
    ``EngineArgs`` lists the engine options, as vLLM's dataclass does. It checks what this project
    passes to vLLM, not vLLM itself."""
    built = []

    class FakeLLM:
        def __init__(self, model, **kwargs):
            built.append({"model": model, **kwargs})
            self.params = []

        def generate(self, requests, params, use_tqdm=False):
            self.params += params
            return [SimpleNamespace(outputs=[SimpleNamespace(text=f" {p.seed} ")] * p.n)
                    for p in params]

    fake = SimpleNamespace(LLM=FakeLLM, SamplingParams=lambda **kw: SimpleNamespace(**kw), EngineArgs=FakeEngineArgs)
    monkeypatch.setitem(sys.modules, "vllm", fake)
    tokenizer = build_tokenizer(VOCAB)
    save_model(make_llama("XS", tokenizer, seed=0), tokenizer, tmp_path / "model")
    return SimpleNamespace(built=built, model=tmp_path / "model")


def test_vllm_options_reach_the_engine(fake_vllm, tmp_path, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    options = {"dtype": "bfloat16", "max_model_len": 512, "enforce_eager": True, "max_num_seqs": 16}
    engine = Engine.from_parameters({"generation_backend": "vllm", "tensor_parallel_size": 2, "vllm_options": options})
    stage = external_model_stage(RunStore(tmp_path / "store"), str(fake_vllm.model))
    generator = engine.generator(stage, progress=False)
    assert isinstance(generator, VLLMGenerator)
    built = fake_vllm.built[-1]
    assert built["model"] == str(fake_vllm.model) and built["tensor_parallel_size"] == 2
    assert {key: built[key] for key in options} == options
    # each prompt's seed is config.seed + its global index
    assert generator.generate(PROMPTS[:3], GenerationSpec(seed=5, n=2), index_offset=4) == [["9"] * 2, ["10"] * 2,
                                                                                            ["11"] * 2]
    assert generator.generate(PROMPTS[:2], GenerationSpec(seed=5)) == [["5"], ["6"]]


def test_unknown_vllm_option_fails_clearly(fake_vllm):
    with pytest.raises(ValueError, match="unknown vLLM engine option.*'gpu_memory_utilisation'"):
        VLLMGenerator(fake_vllm.model, gpu_memory_utilisation=0.5)
    assert fake_vllm.built == []  # no engine was started


def test_engine_from_parameters():
    assert Engine.from_parameters({"generation_backend": "transformers", "tensor_parallel_size": 8, "vllm_options": {}}) == Engine.of("transformers", sampler="nucleus")  # tensor_parallel_size is ignored, as before
    assert Engine.from_parameters({"generation_backend": "vllm", "tensor_parallel_size": 4}) == Engine.of("vllm", tensor_parallel_size=4)
    assert Engine.from_parameters({"generation_backend": "vllm", "tensor_parallel_size": 2, "vllm_options": {"tensor_parallel_size": 2, "dtype": "half"}}) == Engine.of(
        "vllm", tensor_parallel_size=2, dtype="half")
    with pytest.raises(ValueError, match="generation_backend is 'transformers'"):
        Engine.from_parameters({"generation_backend": "transformers", "tensor_parallel_size": 1, "vllm_options": {"dtype": "half"}})
    with pytest.raises(ValueError, match="set it in one place"):
        Engine.from_parameters({"generation_backend": "vllm", "tensor_parallel_size": 2, "vllm_options": {"tensor_parallel_size": 4}})


def test_engine_key_keeps_only_options_that_change_outputs(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    base = Engine.from_parameters({"generation_backend": "vllm", "tensor_parallel_size": 2})
    assert base.key() == {"backend": "vllm", "tensor_parallel_size": 2}  # as before this change
    tuned = Engine.from_parameters({"generation_backend": "vllm", "tensor_parallel_size": 2, "vllm_options": {option: 1 for option in SCHEDULING_OPTIONS}})
    assert tuned.key() == base.key()
    for option, value in {"dtype": "bfloat16", "max_model_len": 4096, "quantization": "awq"}.items():
        assert Engine.from_parameters({"generation_backend": "vllm", "tensor_parallel_size": 2, "vllm_options": {option: value}}).key() == {**base.key(), option: value}
    assert Engine().key() == {"backend": "transformers"}
    monkeypatch.setenv("WORLD_SIZE", "4")  # launched: transformers' sampled outputs depend on the split
    assert Engine().key() == {"backend": "transformers", "processes": 4}
    assert base.key() == {"backend": "vllm", "tensor_parallel_size": 2}  # vLLM's seeds are per prompt
