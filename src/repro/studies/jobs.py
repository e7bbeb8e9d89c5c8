"""Training jobs of the studies, run in this process (the tiny default) or under ``accelerate launch``
(paper scale: several GPUs with DDP, FSDP or DeepSpeed, from a config in ``configs/accelerate/``).

A job is plain data: the kind (``"sft"`` or ``"preference"``), where the start model is, the training
records and the trainer parameters. `run_job` either trains here, or writes the job to a folder and
starts ``python -m accelerate.commands.launch --config_file CONFIG -m repro.studies.jobs JOB.json``
(an argument list, never a shell string), whose main process saves the trained model and its log
history into the stage's folder exactly as the in-process path does. Either way the caller gets the
same summary (`repro.studies.base.save_training`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from repro.errors import ReproError

KINDS = ("sft", "preference")


class JobFailed(ReproError):
    """A launched training job exited with an error; the message names its log file."""


def _params(kind: str, values: dict[str, Any]):
    from repro.training import PreferenceParams, SFTParams

    if kind not in KINDS:
        raise ValueError(f"unknown training job kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    return (SFTParams if kind == "sft" else PreferenceParams)(**values)


def train_here(kind: str, start_model: str, records: list[dict], params, workdir: Path, state=None) -> dict:
    """Load the start model, train it on ``records`` and save it into ``workdir``.

    ``state``: accelerate's ``PartialState`` when launched. Then only the main process writes, except
    under FSDP or DeepSpeed, where every process takes part in ``trainer.save_model`` (which gathers
    the sharded weights; FSDP needs ``fsdp_state_dict_type: FULL_STATE_DICT``, ZeRO-3
    ``zero3_save_16bit_model: true``, as the configs in ``configs/accelerate/`` set)."""
    from accelerate.utils import DistributedType

    from repro.models import load_model
    from repro.studies.base import save_training, training_summary
    from repro.training import sft, train_preference

    model, tokenizer = load_model(start_model)
    trainer = sft if kind == "sft" else train_preference
    result = trainer(model, tokenizer, records, params, workdir / "trainer")
    if state is None:
        return save_training(workdir, result, tokenizer)
    if state.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED):
        result.trainer.save_model(str(workdir / "model"))
        if state.is_main_process:
            tokenizer.save_pretrained(workdir / "model")
            (workdir / "log_history.json").write_text(json.dumps(result.log_history, indent=1))
        return training_summary(result)
    return save_training(workdir, result, tokenizer) if state.is_main_process else {}


def run_job(kind: str, start_model: str, records: list[dict], params, workdir: Path,
            *, accelerate_config: str | None = None) -> dict:
    """Train and save into ``workdir`` (``model/``, ``log_history.json``); returns the summary."""
    _params(kind, {})  # the kind is checked before anything runs
    workdir = Path(workdir)
    if not accelerate_config:
        return train_here(kind, start_model, records, params, workdir)
    config = Path(accelerate_config)
    if not config.is_file():
        raise ReproError(f"accelerate config {config} does not exist")
    job_dir = workdir / "job"
    job_dir.mkdir(parents=True, exist_ok=True)
    with open(job_dir / "records.jsonl", "w") as fh:
        for record in records:
            fh.write(json.dumps(record) + "\n")
    (job_dir / "job.json").write_text(json.dumps({"kind": kind, "start_model": str(start_model),
                                                  "params": asdict(params), "workdir": str(workdir)}, indent=1))
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
               "-m", "repro.studies.jobs", str(job_dir / "job.json")]
    log = job_dir / "launch.log"
    with open(log, "w") as out:
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode
    if code != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise JobFailed(f"accelerate launch of a {kind} job exited with {code}; log: {log}\n" + "\n".join(tail))
    return json.loads((workdir / "summary.json").read_text())


def main(argv: list[str] | None = None) -> int:
    """Entry point of a launched job: ``python -m repro.studies.jobs JOB.json`` (each process)."""
    from accelerate import PartialState

    [path] = argv if argv is not None else sys.argv[1:]
    job = json.loads(Path(path).read_text())
    records = [json.loads(line) for line in open(Path(path).parent / "records.jsonl")]
    params = _params(job["kind"], job["params"])
    state = PartialState()
    workdir = Path(job["workdir"])
    summary = train_here(job["kind"], job["start_model"], records, params, workdir, state=state)
    if state.is_main_process:
        (workdir / "summary.json").write_text(json.dumps({**summary, "processes": state.num_processes}))
    state.wait_for_everyone()
    return 0


if __name__ == "__main__":
    sys.exit(main())
