"""The GPU check: vLLM against transformers on the real-small model, and one chapter on vLLM, in one command.

    make gpu-check                                   # what CI or a person on a GPU machine runs
    python -m repro.gpu_check [--model PATH] [--out DIR] [--skip-install] [--dtype float32]

On a machine without a CUDA GPU it prints one sentence (`NO_GPU_MESSAGE`) and exits with `EXIT_NO_GPU`,
before installing anything. With one, it runs these steps, each against a time budget (`BUDGETS`, in all
under 8 minutes on one H100; a step that runs past its budget is marked so in the report, the chapter is
stopped at its budget):

1. ``install``: the vllm extra, ``pip install -c requirements/constraints.txt -e ".[vllm]"``.
2. ``model``: the real-small model as a safetensors folder (`repro.models.gguf.REAL_SMALL_GGUF`, converted
   once into the run store by `repro.generation.external_model_stage`), or the folder or ``.gguf`` of ``--model``.
3. ``chapter``: ``repro run 10_self_rewarding --profile real-small -p generation_backend=vllm`` (one seed,
   one iteration, no ablations or controls: every kind of stage of the paper path, once) in a subprocess,
   into a temporary store. It runs before the comparisons so that its vLLM engine has the GPU to itself.
4. ``engines``: a vLLM engine and the transformers model, both in ``--dtype`` (default float32; bfloat16
   when vLLM will not start in float32, which the report says), on the GPU.
5. ``greedy``: greedy completions of `CHAT_PROMPTS` from both backends (`compare_greedy`): the share that
   are identical and where the others first diverge. A divergence passes only at a near-tie: where the
   transformers model's log-probabilities of the two tokens differ by less than twice the read-out tolerance.
6. ``logprobs``: the labeller's read-out (`repro.judges.labeller`: the log-probabilities of "1" and "2"
   after `labeller_prompts`) from both backends, within `logprob_tolerance` of that dtype (`compare_logprobs`).
7. ``throughput``: generated tokens per second of each backend on the same sampled batch, timed after a
   warm-up (`measure_throughput`).

The report (`write_report`): ``OUT/report.md`` and ``OUT/report.json`` with each figure, pass or fail, the
versions (torch, CUDA, vllm, transformers, the GPU) and the wall time of each step against its budget.
Exit code: 0 when every step passed, 1 when one failed, `EXIT_NO_GPU` without a GPU.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from repro import paths
from repro.errors import ReproError
from repro.generation import external_model_stage, model_location
from repro.generation import make_generator as default_make_generator
from repro.generation.base import GenerationSpec
from repro.judges.labeller import ANSWERS, LabelSpec, labeller_prompt
from repro.models.gguf import REAL_SMALL_GGUF
from repro.runs import notebooks, open_store
from repro.runs.notebooks import parse_assignments
from repro.runs.store import RunStore

#: Said, and nothing else done, on a machine without a CUDA GPU.
NO_GPU_MESSAGE = "the GPU check needs a CUDA GPU; this machine has none"
#: Exit code without a GPU: distinct from a failed check (1) and from bad arguments (2).
EXIT_NO_GPU = 3

#: Seconds each step may take. Together 460 s, which leaves 20 s of the 8 minutes for starting Python and
#: importing torch and transformers. ``install`` is short when vLLM's wheels are cached or already installed;
#: ``model`` converts the GGUF file once (about 15 s) and reuses the store's folder after; ``chapter`` is a hard
#: limit (its subprocess is stopped there; it reuses step ``model``'s conversion); ``engines``
#: is vLLM's start (weights, memory profile, compilation, CUDA graphs) and loading the transformers model.
BUDGETS: dict[str, float] = {
    "install": 90, "model": 30, "chapter": 200, "engines": 75, "greedy": 20, "logprobs": 10, "throughput": 30,
    "report": 5,
}
#: The whole check must finish within this (one H100).
TOTAL_BUDGET_S = 480
#: A hung pip is stopped at this many times its budget (a slow but progressing install still finishes).
INSTALL_HARD_LIMIT_FACTOR = 3

CHAPTER = "10_self_rewarding"
CHAPTER_PROFILE = "real-small"
#: The chapter's parameters besides the profile's: vLLM, and the paper path once (one seed, one iteration,
#: no ablations, no controls) so that it fits its budget. ``--chapter-param NAME=VALUE`` overrides them.
CHAPTER_OVERRIDES: dict[str, Any] = {
    "generation_backend": "vllm", "seeds": [0], "iterations": 1, "ablations": False, "controls": False,
}
#: vLLM options added to the profile's ``vllm_options`` for the chapter: each generating stage starts its own
#: engine, and on a 135M model an eager engine starts in seconds where compiling and capturing CUDA graphs
#: takes tens. ``enforce_eager`` only schedules the work, so it is not part of any stage's key.
CHAPTER_VLLM_OPTIONS: dict[str, Any] = {"enforce_eager": True}

#: Largest absolute difference allowed between the two backends' log-probabilities of a candidate token,
#: by the dtype both compute in. A correct port differs only by rounding and the order of summation:
#: - float32: rounding alone gives ~1e-5 nats, but either side may run its matmuls in TF32 (10-bit mantissa,
#:   a relative error ~5e-4 per product), which grows through 30 layers to ~1e-2 on logits of magnitude
#:   10-20; 0.05 nats allows that with margin (the labeller's P("1") then moves by at most 0.0125).
#: - float16: a 10-bit mantissa throughout; logits in [16, 32) are stored 1/64 apart: 0.1.
#: - bfloat16: an 8-bit mantissa; logits in [16, 32) are stored 1/8 apart, so rounding the last two logits
#:   alone can move a log-probability by ~0.1: 0.25.
#: The faults this check is for (a wrong chat template or RoPE setting, weights loaded in the wrong place,
#: another token's probability read) move log-probabilities by whole nats, far past any of these.
LOGPROB_TOLERANCES: dict[str, float] = {"float32": 0.05, "float16": 0.1, "bfloat16": 0.25}

#: The fixed chat prompts of the greedy comparison (and, sampled, of the throughput).
CHAT_PROMPTS: tuple[str, ...] = (
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain photosynthesis in one sentence.",
    "List three primary colours.",
    "What is 12 times 7?",
    "Give me a synonym for 'happy'.",
    "Translate 'good morning' into Spanish.",
    "Name the largest planet in the solar system.",
    "What does a thermometer measure?",
    "Write one sentence about autumn leaves.",
    "How many days are there in a leap year?",
    "Suggest a name for a pet goldfish.",
    "What is the boiling point of water in Celsius?",
    "Describe a cat in five words.",
    "Why is the sky blue?",
    "Give one tip for sleeping better.",
    "What is the opposite of 'ancient'?",
    "Write a short greeting for a birthday card.",
    "Which animal is known as the king of the jungle?",
    "What is the square root of 81?",
    "Name a fruit that is yellow.",
    "What language is spoken in Brazil?",
    "Finish the sentence: The early bird ...",
    "How do you make a cup of tea?",
    "What is the freezing point of water in Fahrenheit?",
    "Name two instruments in an orchestra.",
    "Summarise the story of Cinderella in one sentence.",
    "What is the chemical symbol for gold?",
    "Give a reason to learn a second language.",
    "Who wrote Romeo and Juliet?",
    "Count from one to five in words.",
    "What shape has three sides?",
)

#: Texts and two summaries each for the read-out comparison (read in both orders).
LABELLER_PAIRS: tuple[tuple[str, str, str], ...] = (
    (("The town council voted on Tuesday to build a new library next to the park. Construction starts in May "
      "and should take a year."), "The council approved a new library by the park, to be built from May.",
     "The park will close in May."),
    (("Maria trained for six months and finished her first marathon in just under four hours, raising money "
      "for a children's hospital."), "Maria ran a marathon.",
     "After six months of training Maria ran her first marathon in under four hours, for charity."),
    ("A storm knocked out power to 3,000 homes overnight; crews restored most of it by noon.",
     "Overnight storm cut power to 3,000 homes; most was back by noon.", "Crews worked at noon."),
    ("The bakery on Main Street now opens at 6 a.m. and sells gluten-free bread on weekends.",
     "The bakery sells cakes.", "Main Street's bakery opens at 6 a.m. and has gluten-free bread on weekends."),
)


# -- GPU detection -----------------------------------------------------------------------------


def has_cuda_gpu() -> bool:
    """Whether torch sees a CUDA GPU (``torch.cuda.is_available``; creates no CUDA context)."""
    import torch

    return bool(torch.cuda.is_available())


# -- steps and budgets -------------------------------------------------------------------------


@dataclass
class StepResult:
    """One step of the check: pass or fail, its figures, and its wall time against its budget.

    ``passed`` is None for a step that was skipped (``skipped`` says why)."""

    name: str
    budget_s: float
    wall_s: float = 0.0
    passed: bool | None = None
    figures: dict = field(default_factory=dict)
    error: str | None = None
    skipped: str | None = None

    @property
    def over_budget(self) -> bool:
        return self.wall_s > self.budget_s

    @property
    def verdict(self) -> str:
        return "skipped" if self.passed is None else "pass" if self.passed else "FAIL"

    def to_dict(self) -> dict:
        return {**asdict(self), "over_budget": self.over_budget, "verdict": self.verdict}


def run_step(name: str, body: Callable[[], tuple[bool, dict]], *, budget_s: float | None = None,
             clock: Callable[[], float] = time.perf_counter, log: Callable[[str], None] | None = None) -> StepResult:
    """Run ``body`` (which returns ``(passed, figures)``) as step ``name``, timed against its budget.

    An exception fails the step (its message is kept), never the check: the steps after it still run."""
    result = StepResult(name, BUDGETS[name] if budget_s is None else budget_s)
    start = clock()
    try:
        result.passed, result.figures = body()
    except Exception as error:  # noqa: BLE001 - a failed step is reported, and the others still run
        result.passed = False
        result.error = f"{type(error).__name__}: {error}"
        result.figures = {"traceback_tail": traceback.format_exc().splitlines()[-6:]}
    result.wall_s = clock() - start
    if log is not None:
        late = f", over its budget of {result.budget_s:g} s" if result.over_budget else ""
        log(f"gpu-check: {name}: {result.verdict} in {result.wall_s:.1f} s{late}"
            + (f" ({result.error})" if result.error else ""))
    return result


def skipped_step(name: str, reason: str) -> StepResult:
    return StepResult(name, BUDGETS[name], skipped=reason)


# -- comparisons -------------------------------------------------------------------------------


def logprob_tolerance(dtype: str) -> float:
    """The read-out tolerance (nats) for two backends computing in ``dtype`` (`LOGPROB_TOLERANCES`).

    Raises:
        ValueError: a dtype with no stated tolerance.
    """
    name = str(dtype).removeprefix("torch.")
    if name not in LOGPROB_TOLERANCES:
        raise ValueError(f"no log-probability tolerance for dtype {dtype!r}; the check runs in "
                         f"{', '.join(LOGPROB_TOLERANCES)}")
    return LOGPROB_TOLERANCES[name]


def within_tolerance(reference, candidate, tolerance: float) -> tuple[bool, float]:
    """Whether two arrays of log-probabilities agree within ``tolerance`` (nats), and their largest
    absolute difference. Equal infinities agree; any NaN, or an infinity against a finite value, does not
    (the difference is then ``inf``). Arrays of different shapes do not agree."""
    import numpy as np

    a, b = np.asarray(reference, dtype=float), np.asarray(candidate, dtype=float)
    if a.shape != b.shape:
        return False, math.inf
    if a.size == 0:
        return True, 0.0
    same_infinity = np.isinf(a) & (a == b)
    with np.errstate(invalid="ignore"):
        diff = np.where(same_infinity, 0.0, np.abs(a - b))
    diff = np.where(np.isnan(diff), np.inf, diff)
    largest = float(diff.max())
    return largest <= tolerance, largest


def first_divergence(a: Sequence, b: Sequence) -> int | None:
    """The first position where two token sequences differ (the shorter one's length when one is a prefix
    of the other), or None when they are equal."""
    for position, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return position
    return None if len(a) == len(b) else min(len(a), len(b))


def compare_greedy(reference, candidate, prompts: Sequence, spec, *, tokenize: Callable[[str], list[int]],
                   next_token_gap: Callable[[Any, list[int], int | None, int | None], float | None] | None = None,
                   tie_tolerance: float) -> tuple[bool, dict]:
    """Greedy completions of ``prompts`` from two generators (``spec`` must be greedy).

    Completions are compared as the study sees them (decoded, stripped text); where two differ, the first
    differing token is found in their tokenization (``tokenize``). ``next_token_gap(prompt, common_tokens,
    token_a, token_b)`` gives the reference's log-probability gap between the two next tokens there (a token
    of None: the completion ended); two correct backends may take different branches only where that gap
    is within the numerical noise between them, ``tie_tolerance``.

    Returns ``(passed, figures)``: passed when every divergence is such a near-tie (without
    ``next_token_gap``, when all completions are identical). Figures: the share identical, each divergence's
    prompt, position and gap, and both completions of the first few divergences.
    """
    if spec.temperature != 0:
        raise ValueError("compare_greedy needs a greedy GenerationSpec (temperature 0)")
    ours = [c[0] for c in reference.generate(list(prompts), spec)]
    theirs = [c[0] for c in candidate.generate(list(prompts), spec)]
    if len(ours) != len(prompts) or len(theirs) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts gave {len(ours)} and {len(theirs)} completions")
    divergences = []
    for index, (prompt, a, b) in enumerate(zip(prompts, ours, theirs)):
        if a == b:
            continue
        ta, tb = tokenize(a), tokenize(b)
        position = first_divergence(ta, tb)
        if position is None:  # the texts differ where their tokens do not: no next-token gap explains that
            position, gap = min(len(ta), len(tb)), None
        else:
            token_a = ta[position] if position < len(ta) else None
            token_b = tb[position] if position < len(tb) else None
            gap = None if next_token_gap is None else next_token_gap(prompt, list(ta[:position]), token_a, token_b)
        divergences.append({"prompt": index, "position": position, "gap": gap,
                            "near_tie": gap is not None and gap <= tie_tolerance, "reference": a, "candidate": b})
    identical = len(prompts) - len(divergences)
    positions = [d["position"] for d in divergences]
    figures = {
        "prompts": len(prompts), "identical": identical,
        "share_identical": identical / len(prompts) if prompts else 1.0,
        "max_new_tokens": spec.max_new_tokens, "tie_tolerance": tie_tolerance,
        "first_divergence_min": min(positions) if positions else None,
        "first_divergence_median": sorted(positions)[len(positions) // 2] if positions else None,
        "unexplained": sum(not d["near_tie"] for d in divergences),
        "divergences": [{k: v for k, v in d.items() if k not in ("reference", "candidate")} for d in divergences],
        "examples": [{"prompt": d["prompt"], "transformers": d["reference"], "vllm": d["candidate"]}
                     for d in divergences[:3]],
    }
    return figures["unexplained"] == 0, figures


def compare_logprobs(reference, candidate, prompts: Sequence, candidates: Sequence, *,
                     tolerance: float) -> tuple[bool, dict]:
    """The read-out (``score_next_token_logprobs``) of both generators on the same prompts and candidate
    tokens: passed when every log-probability agrees within ``tolerance`` nats (`within_tolerance`).

    Figures: the largest and mean absolute difference, and the largest difference of the labeller's soft
    label (the first candidate's probability renormalised over the candidates), which is what a study uses.
    """
    import numpy as np

    ours = np.asarray(reference.score_next_token_logprobs(list(prompts), list(candidates)), dtype=float)
    theirs = np.asarray(candidate.score_next_token_logprobs(list(prompts), list(candidates)), dtype=float)
    passed, largest = within_tolerance(ours, theirs, tolerance)
    figures = {"prompts": len(prompts), "candidates": [str(c) for c in candidates], "tolerance": tolerance,
               "max_abs_diff": largest}
    if ours.shape == theirs.shape and ours.size and np.isfinite(ours).all() and np.isfinite(theirs).all():
        figures["mean_abs_diff"] = float(np.abs(ours - theirs).mean())
        soft = [np.exp(x - x.max(axis=1, keepdims=True)) for x in (ours, theirs)]
        soft = [s[:, 0] / s.sum(axis=1) for s in soft]
        figures["max_soft_label_diff"] = float(np.abs(soft[0] - soft[1]).max())
    figures["transformers"] = ours.round(4).tolist()
    figures["vllm"] = theirs.round(4).tolist()
    return passed, figures


def measure_throughput(generator, prompts: Sequence, spec, *, count_tokens: Callable[[str], int],
                       warmup_spec=None, clock: Callable[[], float] = time.perf_counter) -> dict:
    """Generated tokens per second of ``generator`` on ``prompts`` with ``spec``, timed after a warm-up call
    (``warmup_spec``, default a few tokens of the first two prompts: kernels loaded, caches allocated).
    Tokens are counted in the completions as returned (``count_tokens`` of each), the same way for every
    backend."""
    warmup_spec = warmup_spec or GenerationSpec(max_new_tokens=8, temperature=0.0, batch_size=spec.batch_size)
    generator.generate(list(prompts[:2]), warmup_spec)
    start = clock()
    completions = generator.generate(list(prompts), spec)
    seconds = clock() - start
    tokens = sum(count_tokens(text) for row in completions for text in row)
    return {"prompts": len(prompts), "completions": sum(len(row) for row in completions), "tokens": tokens,
            "seconds": seconds, "tokens_per_s": tokens / seconds if seconds > 0 else math.inf}


def compare_throughput(reference, candidate, prompts: Sequence, spec, *, count_tokens: Callable[[str], int],
                       clock: Callable[[], float] = time.perf_counter) -> tuple[bool, dict]:
    """`measure_throughput` of both generators: passed when both generated tokens. Figures: each one's
    tokens per second and the speed-up of vLLM (the candidate) over transformers (the reference)."""
    ours = measure_throughput(reference, prompts, spec, count_tokens=count_tokens, clock=clock)
    theirs = measure_throughput(candidate, prompts, spec, count_tokens=count_tokens, clock=clock)
    speedup = theirs["tokens_per_s"] / ours["tokens_per_s"] if ours["tokens_per_s"] > 0 else math.inf
    figures = {"transformers": ours, "vllm": theirs, "vllm_speedup": speedup,
               "spec": {"max_new_tokens": spec.max_new_tokens, "temperature": spec.temperature,
                        "top_p": spec.top_p, "n": spec.n, "batch_size": spec.batch_size}}
    return ours["tokens"] > 0 and theirs["tokens"] > 0, figures


# -- subprocesses: the install and the chapter --------------------------------------------------


def run_command(command: Sequence[str], *, timeout_s: float, cwd: str | os.PathLike | None = None,
                env: Mapping[str, str] | None = None, tail_lines: int = 30) -> dict:
    """Run a command in its own process group, stopped (the whole group: papermill's kernel, vLLM's engine
    processes) when it runs past ``timeout_s``. Returns its return code (None when stopped), ``timed_out``,
    its wall time and the last lines of its output (stdout and stderr together)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(list(command), cwd=cwd, env=None if env is None else dict(env), stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        timed_out = False
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _stop_group(process)
        log.seek(0)
        tail = log.read().splitlines()[-tail_lines:]
    return {"command": " ".join(map(str, command)), "returncode": None if timed_out else process.returncode,
            "timed_out": timed_out, "seconds": time.perf_counter() - start, "output_tail": tail}


def _stop_group(process: subprocess.Popen, grace_s: float = 10) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace_s)
            return
        except subprocess.TimeoutExpired:
            continue


def install_command(root: Path) -> list[str]:
    """pip's command for the vllm extra, with the project's pinned versions."""
    return [sys.executable, "-m", "pip", "install", "--quiet", "-c", str(root / "requirements" / "constraints.txt"),
            "-e", f"{root}[vllm]"]


def install_vllm(root: Path, budget_s: float) -> tuple[bool, dict]:
    """Install the vllm extra (step ``install``); passed when pip succeeded and vllm is then importable."""
    import importlib

    outcome = run_command(install_command(root), timeout_s=budget_s * INSTALL_HARD_LIMIT_FACTOR, cwd=root)
    importlib.invalidate_caches()
    version = package_version("vllm")
    return outcome["returncode"] == 0 and version is not None, {**outcome, "vllm": version}


def chapter_command(store: Path, output_dir: Path, overrides: Mapping[str, Any], *,
                    notebook: str = CHAPTER, profile: str = CHAPTER_PROFILE) -> list[str]:
    """``repro run NOTEBOOK --profile PROFILE -p NAME=VALUE ...`` into ``store`` and ``output_dir`` (values
    written as JSON, which ``repro run`` reads as YAML)."""
    command = [sys.executable, "-m", "repro.cli", "run", notebook, "--profile", profile, "--store", str(store),
               "--output-dir", str(output_dir), "--no-progress"]
    for name, value in overrides.items():
        command += ["-p", f"{name}={json.dumps(value)}"]
    return command


def chapter_overrides(extra: Mapping[str, Any] = (), *, profile: str = CHAPTER_PROFILE,
                      notebook: str = CHAPTER) -> dict[str, Any]:
    """`CHAPTER_OVERRIDES`, ``vllm_options`` = the profile's with `CHAPTER_VLLM_OPTIONS` added, then ``extra``."""
    overrides = dict(CHAPTER_OVERRIDES)
    try:
        profile_options = notebooks.load_profile(profile).get("notebooks", {}).get(notebook, {}).get("vllm_options")
    except Exception:  # noqa: BLE001 - no such profile yet: `repro run` will say so in the chapter step
        profile_options = None
    overrides["vllm_options"] = {**(profile_options or {}), **CHAPTER_VLLM_OPTIONS}
    overrides.update(extra)
    return overrides


def run_chapter(root: Path, out: Path, overrides: Mapping[str, Any], budget_s: float, *,
                adopt: Sequence[Mapping[str, str]] = ()) -> tuple[bool, dict]:
    """The chapter on vLLM (step ``chapter``) in a temporary store, stopped at ``budget_s``; its executed
    notebook is kept in ``out/chapter``. Passed when ``repro run`` finished with exit code 0 in time.

    ``adopt``: finished stages (``name``, ``key``, ``path``) copied into the temporary store first, so that
    the chapter reuses them: the model's conversion (about 15 s) is done once, by step ``model``."""
    with tempfile.TemporaryDirectory(prefix="gpu-check-store-") as store:
        for stage in adopt:
            RunStore(store).adopt(stage["name"], stage["key"], Path(stage["path"]))
        outcome = run_command(chapter_command(Path(store), out / "chapter", overrides), timeout_s=budget_s, cwd=root)
    outcome["overrides"] = dict(overrides)
    return outcome["returncode"] == 0, outcome


# -- the model and the engines ------------------------------------------------------------------


def resolve_model(model: str | None, root: Path) -> tuple[bool, dict]:
    """The model's safetensors folder (step ``model``): ``model`` (a folder, or a ``.gguf`` file converted once
    into the run store), else the real-small GGUF file of ``make real-small``."""
    if model is None:
        model = str(root / REAL_SMALL_GGUF)
    path = Path(model).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"no model at {path} (the real-small model comes with `make real-small`)")
    if path.is_dir():
        return True, {"source": str(path), "folder": str(path)}

    stage = external_model_stage(open_store(), str(path))
    return True, {"source": str(path), "folder": model_location(stage),
                  "stage": {"name": stage.name, "key": stage.key, "path": str(stage.path)}}


#: The share of the GPU's memory the comparison's vLLM engine may take: a 135M model needs little, and the
#: transformers model shares the GPU with it.
VLLM_MEMORY_SHARE = 0.3


#: The dtype both backends fall back to when vLLM does not start in float32 (its attention kernels for
#: float32 depend on the version and the GPU); the report says so, and the wider tolerance applies.
FALLBACK_DTYPE = "bfloat16"


def load_engines(folder: str, dtype: str, *, make_generator: Callable | None = None) -> tuple[dict, dict]:
    """A vLLM generator and a transformers generator (on the GPU) over ``folder``, both in one dtype:
    ``dtype``, or `FALLBACK_DTYPE` when vLLM will not start in float32. vLLM starts first, before this process
    creates a CUDA context. Returns the generators (``"vllm"``, ``"transformers"``) and the figures (the
    dtype used, and vLLM's error in float32 when it fell back)."""
    if make_generator is None:
        make_generator = default_make_generator
    figures: dict = {"dtype": dtype, "vllm_gpu_memory_utilization": VLLM_MEMORY_SHARE}
    options = {"gpu_memory_utilization": VLLM_MEMORY_SHARE, "seed": 0, "progress": False}
    try:
        vllm = make_generator("vllm", folder, dtype=dtype, **options)
    except ImportError:
        raise  # vLLM is not installed: no other dtype helps
    except Exception as error:  # vLLM has many ways of refusing a dtype
        if dtype != "float32":
            raise
        figures.update(dtype=FALLBACK_DTYPE, float32_error=f"{type(error).__name__}: {error}"[:500])
        vllm = make_generator("vllm", folder, dtype=FALLBACK_DTYPE, **options)
    hf = make_generator("transformers", folder, dtype=figures["dtype"], device="cuda", progress=False)
    return {"vllm": vllm, "transformers": hf}, figures


def chat(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def labeller_prompts() -> list[str]:
    """The labeller's prompts (plain wording, base preamble, 0-shot) for `LABELLER_PAIRS`, in both orders."""
    spec = LabelSpec(preamble="base", wording="plain")
    return [labeller_prompt(t, a, b, spec) for t, x, y in LABELLER_PAIRS for a, b in ((x, y), (y, x))]


def reference_gap(generator, tokenizer) -> Callable[[Any, list[int], int | None, int | None], float | None]:
    """`compare_greedy`'s ``next_token_gap`` on the transformers generator: the prompt rendered with the chat
    template, followed by the common tokens (decoded, read back as text), and the log-probabilities of the
    two next tokens there (an ended completion's next token is the end-of-sequence token)."""
    eos = tokenizer.eos_token_id

    def gap(prompt, common: list[int], token_a: int | None, token_b: int | None) -> float | None:
        a, b = (eos if t is None else t for t in (token_a, token_b))
        if a is None or b is None:
            return None
        text = tokenizer.apply_chat_template(list(prompt), add_generation_prompt=True, tokenize=False)
        logprobs = generator.score_next_token_logprobs([text + tokenizer.decode(common)], [a, b])[0]
        return float(abs(logprobs[0] - logprobs[1]))

    return gap


# -- versions and the report --------------------------------------------------------------------


def package_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def versions() -> dict:
    """torch, its CUDA, vllm, transformers, Python, and the GPU's name."""
    import torch

    found = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
             "vllm": package_version("vllm"), "transformers": package_version("transformers")}
    try:
        found["device"] = torch.cuda.get_device_name(0)
    except Exception as error:  # noqa: BLE001 - the report is still written
        found["device"] = f"unknown ({type(error).__name__}: {error})"
    return found


STEP_TITLES = {
    "install": "install the vllm extra", "model": "the model", "chapter": f"{CHAPTER} on vLLM",
    "engines": "start vLLM and transformers", "greedy": "(a) greedy completions",
    "logprobs": "(b) read-out log-probabilities", "throughput": "(c) throughput", "report": "the report",
}


def summary_line(step: StepResult) -> str:
    """The step's headline figure, in words."""
    f = step.figures
    if step.skipped:
        return f"skipped: {step.skipped}"
    if step.error:
        return step.error
    if step.name == "greedy":
        return (f"{f['identical']}/{f['prompts']} identical ({f['share_identical']:.0%}); first divergence at token "
                f"{f['first_divergence_min']} at the earliest; {f['unexplained']} not at a near-tie "
                f"(gap > {f['tie_tolerance']:g} nats)")
    if step.name == "logprobs":
        extra = f", soft label within {f['max_soft_label_diff']:.4f}" if "max_soft_label_diff" in f else ""
        return f"max |difference| {f['max_abs_diff']:.4f} nats (tolerance {f['tolerance']:g}){extra}"
    if step.name == "throughput":
        return (f"transformers {f['transformers']['tokens_per_s']:.0f} tokens/s, vLLM {f['vllm']['tokens_per_s']:.0f} "
                f"tokens/s ({f['vllm_speedup']:.1f}x)")
    if step.name in ("install", "chapter"):
        state = "stopped at its time limit" if f.get("timed_out") else f"exit code {f.get('returncode')}"
        last = f": {f['output_tail'][-1][:300]}" if not step.passed and f.get("output_tail") else ""
        return f"{state} after {f.get('seconds', 0):.0f} s{last}"
    if step.name == "model":
        return f.get("folder", "")
    if step.name == "engines":
        fallback = f" (vLLM refused float32: {f['float32_error']})" if "float32_error" in f else ""
        return f"dtype {f.get('dtype')}{fallback}"
    return ""


def overall_passed(steps: Sequence[StepResult]) -> bool:
    """Whether the check passed: no step failed, and at least one ran (skipped steps count neither way)."""
    return all(s.passed for s in steps if s.passed is not None) and any(s.passed for s in steps)


def write_report(steps: Sequence[StepResult], found_versions: Mapping[str, Any], out: str | os.PathLike, *,
                 total_s: float, settings: Mapping[str, Any] = ()) -> tuple[Path, Path]:
    """``out/report.json`` (everything) and ``out/report.md`` (a page: verdict, versions, one row per step
    with its headline figure and its time against its budget). Returns both paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    passed = overall_passed(steps)
    late = [s.name for s in steps if s.over_budget]
    report = {"passed": passed, "total_s": total_s, "total_budget_s": TOTAL_BUDGET_S,
              "over_total_budget": total_s > TOTAL_BUDGET_S, "over_budget_steps": late,
              "versions": dict(found_versions), "settings": dict(settings), "steps": [s.to_dict() for s in steps]}
    json_path = out / "report.json"
    json_path.write_text(json.dumps(report, indent=2, default=str) + "\n")

    lines = ["# GPU check", "",
             f"**{'PASS' if passed else 'FAIL'}** in {total_s:.0f} s (budget {TOTAL_BUDGET_S} s"
             + (", exceeded" if total_s > TOTAL_BUDGET_S else "") + ")."
             + (f" Over their budget: {', '.join(late)}." if late else ""), "",
             "| | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in found_versions.items()]
    lines += [f"| {name} | {value} |" for name, value in dict(settings).items()]
    lines += ["", "| step | result | figures | wall time | budget |", "|---|---|---|---|---|"]
    for s in steps:
        wall = f"{s.wall_s:.1f} s" + (" (over)" if s.over_budget else "")
        figures = summary_line(s).replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {STEP_TITLES.get(s.name, s.name)} | {s.verdict} | {figures} | {wall} | {s.budget_s:g} s |")
    lines += ["", "Each figure, the divergent completions and the commands' output are in `report.json`.", ""]
    md_path = out / "report.md"
    md_path.write_text("\n".join(lines))
    return md_path, json_path


# -- the command --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m repro.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="a Hugging Face model folder or a .gguf file (default: the "
                        "real-small model of `make real-small`)")
    parser.add_argument("--out", type=Path, default=Path("gpu-check"), help="report folder (default: gpu-check)")
    parser.add_argument("--skip-install", action="store_true", help="do not pip install the vllm extra")
    parser.add_argument("--skip-chapter", action="store_true", help=f"do not run {CHAPTER} on vLLM")
    parser.add_argument("--dtype", default="float32", choices=sorted(LOGPROB_TOLERANCES),
                        help="dtype of both backends in the comparisons (default float32: the tightest test)")
    parser.add_argument("--chapter-param", action="append", default=[], metavar="NAME=VALUE",
                        help=f"override one of the chapter's parameters (repeatable; default {CHAPTER_OVERRIDES})")
    parser.add_argument("--detect-only", action="store_true",
                        help="only say whether there is a CUDA GPU (exit 0, or the no-GPU exit code)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not has_cuda_gpu():
        print(NO_GPU_MESSAGE, file=sys.stderr)
        return EXIT_NO_GPU
    if args.detect_only:
        return 0
    return run_check(args)


def run_check(args: argparse.Namespace) -> int:
    """The steps on a GPU machine (see the module's docstring), then the report."""

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    begin = time.perf_counter()
    try:
        chapter_params = parse_assignments(args.chapter_param)
    except ReproError as error:
        print(f"gpu-check: error: {error}", file=sys.stderr)
        return 2
    root = paths.project_root()
    out = args.out if args.out.is_absolute() else Path.cwd() / args.out
    steps: list[StepResult] = []
    if args.skip_install:
        steps.append(skipped_step("install", "--skip-install"))
    else:
        steps.append(run_step("install", lambda: install_vllm(root, BUDGETS["install"]), log=log))
    model = run_step("model", lambda: resolve_model(args.model, root), log=log)
    steps.append(model)
    if args.skip_chapter:
        steps.append(skipped_step("chapter", "--skip-chapter"))
    else:
        overrides = chapter_overrides(chapter_params)
        adopt = [model.figures["stage"]] if "stage" in model.figures else []
        steps.append(run_step("chapter", lambda: run_chapter(root, out, overrides, BUDGETS["chapter"], adopt=adopt),
                              log=log))

    engines: dict = {}

    def start_engines() -> tuple[bool, dict]:
        generators, figures = load_engines(model.figures["folder"], args.dtype)
        engines.update(generators)
        return True, figures

    dtype = args.dtype
    if model.passed:
        started = run_step("engines", start_engines, log=log)
        dtype = started.figures.get("dtype", dtype)
        steps.append(started)
    else:
        steps.append(skipped_step("engines", "no model"))
    tolerance = logprob_tolerance(dtype)
    comparisons = ("greedy", "logprobs", "throughput")
    if len(engines) == 2:
        steps += run_comparisons(engines["transformers"], engines["vllm"], tolerance, log=log)
    else:
        steps += [skipped_step(name, "the engines did not start") for name in comparisons]

    report_start = time.perf_counter()
    found = versions()
    settings = {"dtype": dtype + (f" ({args.dtype} asked for)" if dtype != args.dtype else ""),
                "logprob tolerance (nats)": tolerance, "model": model.figures.get("folder")}
    report = StepResult("report", BUDGETS["report"], passed=True)
    steps.append(report)
    total = time.perf_counter() - begin
    report.wall_s = time.perf_counter() - report_start
    md_path, _ = write_report(steps, found, out, total_s=total, settings=settings)
    log(f"gpu-check: report in {md_path}")
    print(md_path.read_text())
    return 0 if overall_passed(steps) else 1


def run_comparisons(hf, vllm, tolerance: float, *, greedy=None, sampled=None, log=None) -> list[StepResult]:
    """Steps ``greedy``, ``logprobs`` and ``throughput`` on the two generators (transformers first, the
    reference). ``greedy`` and ``sampled`` are the `GenerationSpec` of the greedy comparison (default: 48 new
    tokens) and of the throughput (default: 4 samples of up to 128 tokens per prompt at temperature 0.7,
    top-p 0.9, as the chapters sample candidates)."""
    tokenizer = hf.tokenizer
    prompts = [chat(text) for text in CHAT_PROMPTS]

    def tokenize(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False)

    greedy = greedy or GenerationSpec(max_new_tokens=48, temperature=0.0, batch_size=len(prompts))
    sampled = sampled or GenerationSpec(max_new_tokens=128, temperature=0.7, top_p=0.9, n=4, seed=0,
                                        batch_size=len(prompts))
    return [
        run_step("greedy", lambda: compare_greedy(hf, vllm, prompts, greedy, tokenize=tokenize,
                                                  next_token_gap=reference_gap(hf, tokenizer),
                                                  tie_tolerance=2 * tolerance), log=log),
        run_step("logprobs", lambda: compare_logprobs(hf, vllm, labeller_prompts(), ANSWERS, tolerance=tolerance),
                 log=log),
        run_step("throughput", lambda: compare_throughput(hf, vllm, prompts, sampled,
                                                          count_tokens=lambda text: len(tokenize(text))), log=log),
    ]


if __name__ == "__main__":
    sys.exit(main())
