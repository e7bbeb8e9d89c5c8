"""Training jobs of the studies, run in this process (the tiny default) or under ``accelerate launch``
(paper scale: several GPUs with DDP, FSDP or DeepSpeed, from a config in ``configs/accelerate/``).

A job is plain data: the kind (one of `KINDS`), where the start model is, the training records and the
trainer parameters (and, for some kinds, a few serializable options). `run_job` either trains here, or
writes the job to a folder and starts ``python -m accelerate.commands.launch --config_file CONFIG -m
repro.studies.jobs JOB.json`` (an argument list, never a shell string), whose main process saves the
trained model and its log history into the stage's folder exactly as the in-process path does. Either
way the caller gets the same summary (`repro.studies.base.save_training`).

One run, whatever the number of processes: ``params.batch_size`` is the **global** batch (sequences per
optimiser step, before gradient accumulation). Launched on N processes each process gets
``batch_size / N`` (refused when N does not divide it) and, through transformers' Trainer and accelerate,
a disjoint shard of every global batch, so 1 and N processes see the same examples per step and take the
same number of steps (the gradient is averaged over the shards: the single-process mean up to the order
of float additions). Length-grouped sampling (`repro.training.SFTParams.group_by_length`) groups by the
global batch too (`repro.training.common.run_trainer`). When the number of records is not a multiple of
the global batch, accelerate fills the last step's shards with examples from the start of the epoch
(``even_batches``), so that step alone differs from the single-process run.

Kinds and their records:

- ``"pretrain"``: texts (strings); the start model is a saved fresh model (`save_fresh_model`).
- ``"sft"``: prompt/completion records (`repro.training.sft`).
- ``"preference"``: prompt/chosen/rejected records (`repro.training.preference`).
- ``"reward"``: chosen/rejected(/soft_label) records; the start model is a causal LM, on which a scalar
  head initialised with ``options["head_seed"]`` is put (`repro.training.reward.make_reward_model`).
- ``"rl"``: prompts (strings); RLOO against ``options["reward"]``, a serializable reward: ``{"reward_model":
  PATH}`` scores ``prompt`` joined with the completion with the saved reward model at PATH
  (`repro.studies.rlaif.joined`); the KL reference is ``options["reference_path"]``. A reward that is a
  live Python function (the labeller's direct score, which runs the labeller's generator) is not
  serializable: such RL stays in process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from repro.errors import ReproError

KINDS = ("pretrain", "sft", "preference", "reward", "rl")


class JobFailed(ReproError):
    """A launched training job exited with an error; the message names its log file."""


def _params(kind: str, values: dict[str, Any]):
    from repro.training import PreferenceParams, PretrainParams, RewardParams, RLParams, SFTParams

    classes = {"pretrain": PretrainParams, "sft": SFTParams, "preference": PreferenceParams,
               "reward": RewardParams, "rl": RLParams}
    if kind not in classes:
        raise ValueError(f"unknown training job kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    return classes[kind](**values)


def per_process_params(params, processes: int):
    """``params`` for one of ``processes`` data-parallel processes: the global batch split evenly.

    Raises `ReproError` when the processes do not divide the batch (the run would otherwise not be the
    single-process run). RL also needs each process's batch to hold whole groups of completions."""
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    if processes == 1:
        return params
    if params.batch_size % processes:
        raise ReproError(f"the global batch size {params.batch_size} cannot be split evenly over {processes} "
                         f"processes: choose a batch size that is a multiple of {processes}")
    per_device = params.batch_size // processes
    num_generations = getattr(params, "num_generations", None)
    if num_generations is not None and per_device % num_generations:
        raise ReproError(f"RL's per-process batch ({params.batch_size} / {processes} processes = {per_device}) must "
                         f"hold whole groups of {num_generations} completions: choose a batch size that is a "
                         f"multiple of {processes * num_generations}")
    return replace(params, batch_size=per_device)


def _load_config(accelerate_config: str | Path):
    from accelerate.commands.config.config_args import load_config_from_file

    return load_config_from_file(str(accelerate_config))


def launch_shape(accelerate_config: str | Path) -> tuple[int, int]:
    """``(processes, machines)`` of an accelerate config file, read with accelerate's own loader."""
    config = _load_config(accelerate_config)
    return int(config.num_processes or 1), int(config.num_machines or 1)


def free_port() -> int:
    """A TCP port that is free now on this machine (for the rendezvous of one launch)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_command(config: Path, job_file: Path) -> tuple[list[str], dict[str, str]]:
    """The ``accelerate launch`` argument list of a job and its environment.

    On one machine with several processes the rendezvous port is a free one (``--main_process_port``,
    overriding the config's), so that launches running side by side (parallel tests, two notebooks) do
    not collide; across machines the config's port is kept, as every machine must agree on it.

    Several CPU processes on one machine (``distributed_type: MULTI_CPU``, as in ``cpu_2proc.yaml``):
    accelerate 1.15 starts those only through ``mpirun`` (``mpirun_hostfile``); without one its simple
    launcher would start a single process. They are started instead with accelerate's torchrun
    launcher (``--multi_gpu`` on the command line, which only picks the launcher) and
    ``ACCELERATE_USE_CPU=true``, under which every process joins a gloo group as ``MULTI_CPU``
    (`main` passes the flag on to accelerate's state)."""
    settings = _load_config(config)
    processes, machines = int(settings.num_processes or 1), int(settings.num_machines or 1)
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config)]
    env = dict(os.environ)
    if settings.use_cpu:
        env["ACCELERATE_USE_CPU"] = "true"
    if processes > 1 and machines == 1:
        command += ["--main_process_port", str(free_port())]
        if str(settings.distributed_type).split(".")[-1] == "MULTI_CPU" and not settings.mpirun_config:
            command += ["--multi_gpu"]
            env["ACCELERATE_USE_CPU"] = "true"
    return command + ["-m", "repro.studies.jobs", str(job_file)], env


def save_fresh_model(model, tokenizer, path: Path) -> str:
    """Save a freshly initialised model (pre-training's start) where a ``"pretrain"`` job loads it."""
    from repro.models import save_model

    return str(save_model(model, tokenizer, path))


def _rl_reward(spec: dict, device=None):
    from repro.studies.rlaif import reward_model_reward

    if set(spec) != {"reward_model"}:
        raise ValueError(f"an RL job's reward must be {{'reward_model': PATH}}, got {spec!r}")
    return reward_model_reward(spec["reward_model"], device=device)


def _train(kind: str, start_model: str, records: list, params, workdir: Path, options: dict, state=None):
    from transformers import AutoTokenizer

    from repro.models import load_model
    from repro.training import pretrain, sft, train_preference
    from repro.training.reward import make_reward_model, train_reward
    from repro.training.rl import train_rloo

    if kind == "reward":
        tokenizer = AutoTokenizer.from_pretrained(start_model)
        model = make_reward_model(start_model, seed=options.get("head_seed", 0))
        return train_reward(model, tokenizer, records, params, workdir / "trainer"), tokenizer
    model, tokenizer = load_model(start_model)
    if kind == "rl":
        # launched, each process scores its own completions on its own device; in process on the CPU
        reward = _rl_reward(options["reward"], device=state.device if state is not None else None)
        return train_rloo(model, tokenizer, records, reward, params, workdir / "trainer",
                          reward_name=options.get("reward_name", "reward"),
                          reference_path=options.get("reference_path")), tokenizer
    trainer = {"pretrain": pretrain, "sft": sft, "preference": train_preference}[kind]
    return trainer(model, tokenizer, records, params, workdir / "trainer"), tokenizer


def train_here(kind: str, start_model: str, records: list, params, workdir: Path, state=None,
               options: dict | None = None) -> dict:
    """Load the start model, train it on ``records`` and save it into ``workdir``.

    ``state``: accelerate's ``PartialState`` when launched. Then only the main process writes, except
    under FSDP or DeepSpeed, where every process takes part in ``trainer.save_model`` (which gathers
    the sharded weights; FSDP needs ``fsdp_state_dict_type: FULL_STATE_DICT``, ZeRO-3
    ``zero3_save_16bit_model: true``, as the configs in ``configs/accelerate/`` set)."""
    from accelerate.utils import DistributedType

    from repro.studies.base import save_training, training_summary

    result, tokenizer = _train(kind, start_model, records, params, workdir, options or {}, state)
    summary = {**training_summary(result), "tokens_seen": result.tokens_seen}
    if state is None:
        return {**save_training(workdir, result, tokenizer), **summary}
    if state.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED):
        result.trainer.save_model(str(workdir / "model"))
        if state.is_main_process:
            tokenizer.save_pretrained(workdir / "model")
            (workdir / "log_history.json").write_text(json.dumps(result.log_history, indent=1))
        return summary
    return {**save_training(workdir, result, tokenizer), **summary} if state.is_main_process else {}


def run_job(kind: str, start_model: str, records: list, params, workdir: Path,
            *, accelerate_config: str | None = None, options: dict | None = None) -> dict:
    """Train and save into ``workdir`` (``model/``, ``log_history.json``); returns the summary
    (`repro.studies.base.training_summary` plus ``tokens_seen``, and ``processes`` when launched).
    ``params.batch_size`` is the global batch (see the module)."""
    _params(kind, {})  # the kind is checked before anything runs
    workdir = Path(workdir)
    options = dict(options or {})
    json.dumps(options)  # options must be plain data, in process too, so that both paths take the same jobs
    if not accelerate_config:
        return train_here(kind, start_model, records, params, workdir, options=options)
    config = Path(accelerate_config)
    if not config.is_file():
        raise ReproError(f"accelerate config {config} does not exist")
    per_process_params(params, launch_shape(config)[0])  # refused here, before anything is launched
    job_dir = workdir / "job"
    command, env = launch_command(config, job_dir / "job.json")
    job_dir.mkdir(parents=True, exist_ok=True)
    with open(job_dir / "records.jsonl", "w") as fh:
        for record in records:
            fh.write(json.dumps(record) + "\n")
    (job_dir / "job.json").write_text(json.dumps({"kind": kind, "start_model": str(start_model),
                                                  "params": asdict(params), "workdir": str(workdir),
                                                  "options": options}, indent=1))
    log = job_dir / "launch.log"
    with open(log, "w") as out:
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
    if code != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise JobFailed(f"accelerate launch of a {kind} job exited with {code}; log: {log}\n" + "\n".join(tail))
    return json.loads((workdir / "summary.json").read_text())


def main(argv: list[str] | None = None) -> int:
    """Entry point of a launched job: ``python -m repro.studies.jobs JOB.json`` (each process)."""
    from repro.generation.sharded import accelerate_state

    [path] = argv if argv is not None else sys.argv[1:]
    job = json.loads(Path(path).read_text())
    records = [json.loads(line) for line in open(Path(path).parent / "records.jsonl")]
    state = accelerate_state()
    params = per_process_params(_params(job["kind"], job["params"]), state.num_processes)
    workdir = Path(job["workdir"])
    summary = train_here(job["kind"], job["start_model"], records, params, workdir, state=state,
                         options=job.get("options"))
    if state.is_main_process:
        (workdir / "summary.json").write_text(json.dumps({**summary, "processes": state.num_processes,
                                                          "per_process_batch_size": params.batch_size}))
    state.wait_for_everyone()
    return 0


if __name__ == "__main__":
    sys.exit(main())
