"""How a training job is launched: in this process, or under ``accelerate launch`` on N processes
(`repro.training.jobs` runs the jobs).

- `launch_command`: the ``accelerate launch`` argument list (never a shell string) and environment of a job.
- `per_process_params`: a job's settings for one of N data-parallel processes (the global batch split).
- `launch_param` and `launch_key`: what of a launch goes into a training stage's key.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import replace
from pathlib import Path

from repro.errors import ReproError
from repro.runs.store import params_hash


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
    # accelerate imports torch: kept out of the import of this module, which the notebook runner uses
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
    return command + ["-m", "repro.training.jobs", str(job_file)], env


def launch_param(accelerate_config: str | None) -> dict:
    """``{"launch": launch_key(...)}`` for a stage key when there is a launch, else nothing: stages that
    gained a launch option later keep their in-process keys."""
    return {"launch": launch_key(accelerate_config)} if accelerate_config else {}


def launch_key(accelerate_config: str | None) -> dict | None:
    """The part of a training stage's key that says how it was launched: the config file's content,
    and that the batch size is the global batch, split over the processes (`repro.training.jobs`;
    launched stages of before, whose batch size was per process, are not taken for these)."""
    if not accelerate_config:
        return None
    path = Path(accelerate_config)
    return {"accelerate_config": path.name, "content": params_hash(path.read_text()) if path.is_file() else None,
            "batch": "global"}
