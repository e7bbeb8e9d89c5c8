"""Training jobs of the studies, run in this process (the tiny default) or under ``accelerate launch``
(paper scale: several GPUs with DDP, FSDP or DeepSpeed, from a config in ``configs/accelerate/``).

A job is one of the job functions below (`pretrain_job`, `sft_job`, `preference_job`, `reward_job`,
`rl_job`), called with where the start model is, the training records, the trainer's settings and a
few serializable options. `run_job` either calls it here, or writes the job to a folder and starts
``python -m accelerate.commands.launch --config_file CONFIG -m repro.training.jobs JOB.json``
(`repro.runs.launch.launch_command`: an argument list, never a shell string), whose processes call
the same function and whose main process saves the trained model and its log history into the stage's
folder exactly as the in-process path does. Either way the caller gets the same summary
(`save_training`).

One run, whatever the number of processes: ``params.batch_size`` is the **global** batch (sequences per
optimiser step, before gradient accumulation). Launched on N processes each process gets
``batch_size / N`` (refused when N does not divide it) and, through transformers' Trainer and accelerate,
a disjoint shard of every global batch, so 1 and N processes see the same examples per step and take the
same number of steps (the gradient is averaged over the shards: the single-process mean up to the order
of float additions). Length-grouped sampling (`repro.training.SFTSpec.group_by_length`) groups by the
global batch too (`repro.training.common.run_trainer`). When the number of records is not a multiple of
the global batch, accelerate fills the last step's shards with examples from the start of the epoch
(``even_batches``), so that step alone differs from the single-process run.

Jobs and their records:

- `pretrain_job`: texts (strings); the start model is a saved fresh model (`save_fresh_model`).
- `sft_job`: prompt/completion records (`repro.training.sft`).
- `preference_job`: prompt/chosen/rejected records (`repro.training.preference`).
- `reward_job`: chosen/rejected(/soft_label) records; the start model is a causal LM, on which a scalar
  head initialised with ``options["head_seed"]`` is put (`repro.training.reward.make_reward_model`).
- `rl_job`: prompts (strings); RLOO against ``options["reward"]``, a serializable reward: ``{"reward_model":
  PATH}`` scores ``prompt`` joined with the completion with the saved reward model at PATH
  (`repro.training.rl.saved_reward_model`); the KL reference is ``options["reference_path"]``. A reward
  that is a live Python function (the labeller's direct score, which runs the labeller's generator) is
  not serializable: such RL stays in process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from repro.errors import ReproError
from repro.generation.sharded import accelerate_state
from repro.models import load_model, save_model
from repro.runs.launch import launch_command, launch_shape, per_process_params
from repro.training.common import TrainResult
from repro.training.preference import PreferenceSpec, train_preference
from repro.training.pretrain import PretrainSpec, pretrain
from repro.training.reward import RewardSpec, make_reward_model, train_reward
from repro.training.rl import RLSpec, saved_reward_model, train_rloo
from repro.training.sft import SFTSpec, sft


class JobFailed(ReproError):
    """A launched training job exited with an error; the message names its log file."""


# -- the jobs: (start model, records, settings, working folder, options, accelerate state) -> (result, tokenizer)
def pretrain_job(start_model: str, records: list, params: PretrainSpec, workdir: Path, options: dict, state=None):
    model, tokenizer = load_model(start_model)
    return pretrain(model, tokenizer, records, params, workdir / "trainer"), tokenizer


def sft_job(start_model: str, records: list, params: SFTSpec, workdir: Path, options: dict, state=None):
    model, tokenizer = load_model(start_model)
    return sft(model, tokenizer, records, params, workdir / "trainer"), tokenizer


def preference_job(start_model: str, records: list, params: PreferenceSpec, workdir: Path, options: dict,
                   state=None):
    model, tokenizer = load_model(start_model)
    return train_preference(model, tokenizer, records, params, workdir / "trainer"), tokenizer


def reward_job(start_model: str, records: list, params: RewardSpec, workdir: Path, options: dict, state=None):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(start_model)
    model = make_reward_model(start_model, seed=options.get("head_seed", 0))
    return train_reward(model, tokenizer, records, params, workdir / "trainer"), tokenizer


def rl_job(start_model: str, records: list, params: RLSpec, workdir: Path, options: dict, state=None):
    spec = options["reward"]
    if set(spec) != {"reward_model"}:
        raise ValueError(f"an RL job's reward must be {{'reward_model': PATH}}, got {spec!r}")
    # launched, each process scores its own completions on its own device; in process on the CPU
    reward = saved_reward_model(spec["reward_model"], device=state.device if state is not None else None)
    model, tokenizer = load_model(start_model)
    return train_rloo(model, tokenizer, records, reward, params, workdir / "trainer",
                      reward_name=options.get("reward_name", "reward"),
                      reference_path=options.get("reference_path")), tokenizer


Job = Callable[..., tuple[TrainResult, Any]]
#: Each job with the class of its settings: a launched process finds its job here by name.
JOBS: dict[str, tuple[Job, type]] = {job.__name__: (job, settings) for job, settings in (
    (pretrain_job, PretrainSpec), (sft_job, SFTSpec), (preference_job, PreferenceSpec),
    (reward_job, RewardSpec), (rl_job, RLSpec))}


# -- saving what a job trained --------------------------------------------------------------------
def save_fresh_model(model, tokenizer, path: Path) -> str:
    """Save a freshly initialised model (pre-training's start) where `pretrain_job` loads it."""
    return str(save_model(model, tokenizer, path))


def save_training(workdir: Path, result: TrainResult, tokenizer) -> dict:
    """Save a training stage's model (``model/``) and log history; its summary for the manifest."""
    save_model(result.model, tokenizer, workdir / "model")
    (workdir / "log_history.json").write_text(json.dumps(result.log_history, indent=1))
    return training_summary(result)


def training_summary(result: TrainResult) -> dict:
    """Steps, seconds and first and last training loss of a `repro.training.TrainResult`."""
    losses = result.losses
    return {"steps": result.steps, "train_seconds": round(result.wall_time_s, 2),
            "first_loss": losses[0][1] if losses else None, "final_loss": losses[-1][1] if losses else None}


# -- running a job ---------------------------------------------------------------------------------
def train_here(job: Job, start_model: str, records: list, params, workdir: Path, state=None,
               options: dict | None = None) -> dict:
    """Load the start model, train it on ``records`` and save it into ``workdir``.

    ``state``: accelerate's ``PartialState`` when launched. Then only the main process writes, except
    under FSDP or DeepSpeed, where every process takes part in ``trainer.save_model`` (which gathers
    the sharded weights; FSDP needs ``fsdp_state_dict_type: FULL_STATE_DICT``, ZeRO-3
    ``zero3_save_16bit_model: true``, as the configs in ``configs/accelerate/`` set)."""
    result, tokenizer = job(start_model, records, params, workdir, options or {}, state)
    summary = {**training_summary(result), "tokens_seen": result.tokens_seen}
    if state is None:
        return {**save_training(workdir, result, tokenizer), **summary}
    from accelerate.utils import DistributedType

    if state.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED):
        result.trainer.save_model(str(workdir / "model"))
        if state.is_main_process:
            tokenizer.save_pretrained(workdir / "model")
            (workdir / "log_history.json").write_text(json.dumps(result.log_history, indent=1))
        return summary
    return {**save_training(workdir, result, tokenizer), **summary} if state.is_main_process else {}


def run_job(job: Job, start_model: str, records: list, params, workdir: Path,
            *, accelerate_config: str | None = None, options: dict | None = None) -> dict:
    """Train and save into ``workdir`` (``model/``, ``log_history.json``); returns the summary
    (`training_summary` plus ``tokens_seen``, and ``processes`` when launched).
    ``params.batch_size`` is the global batch (see the module)."""
    if JOBS.get(getattr(job, "__name__", None), (None,))[0] is not job:
        raise ValueError(f"{job!r} is not a training job; jobs: {', '.join(JOBS)}")
    workdir = Path(workdir)
    options = dict(options or {})
    json.dumps(options)  # options must be plain data, in process too, so that both paths take the same jobs
    if not accelerate_config:
        return train_here(job, start_model, records, params, workdir, options=options)
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
    (job_dir / "job.json").write_text(json.dumps({"job": job.__name__, "start_model": str(start_model),
                                                  "params": asdict(params), "workdir": str(workdir),
                                                  "options": options}, indent=1))
    log = job_dir / "launch.log"
    with open(log, "w") as out:
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
    if code != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise JobFailed(f"accelerate launch of {job.__name__} exited with {code}; log: {log}\n" + "\n".join(tail))
    return json.loads((workdir / "summary.json").read_text())


def main(argv: list[str] | None = None) -> int:
    """Entry point of a launched job: ``python -m repro.training.jobs JOB.json`` (each process)."""
    [path] = argv if argv is not None else sys.argv[1:]
    job = json.loads(Path(path).read_text())
    records = [json.loads(line) for line in open(Path(path).parent / "records.jsonl")]
    state = accelerate_state()
    train, settings = JOBS[job["job"]]
    params = per_process_params(settings(**job["params"]), state.num_processes)
    workdir = Path(job["workdir"])
    summary = train_here(train, job["start_model"], records, params, workdir, state=state,
                         options=job.get("options"))
    if state.is_main_process:
        (workdir / "summary.json").write_text(json.dumps({**summary, "processes": state.num_processes,
                                                          "per_process_batch_size": params.batch_size}))
    state.wait_for_everyone()
    return 0


if __name__ == "__main__":
    sys.exit(main())
