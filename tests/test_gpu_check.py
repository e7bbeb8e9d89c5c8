"""The GPU check (`repro.gpu_check`) without a GPU and without vLLM: the no-GPU path, the comparisons on fake
generators, the tolerance, the report, the subprocess time limit, and the wiring of the whole check."""

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from repro import gpu_check, paths
from repro.generation import GenerationSpec, HFGenerator, make_generator
from repro.gpu_check import StepResult
from repro.models import build_tokenizer, make_llama
from repro.runs.notebooks import parse_assignments

GREEDY = GenerationSpec(max_new_tokens=8, temperature=0.0)
PROMPTS = [[{"role": "user", "content": f"question {i}"}] for i in range(4)]


class FakeGenerator:
    """Answers each prompt with a fixed text, and reads fixed log-probabilities; records its calls."""

    def __init__(self, answers, logprobs=None, tokenizer=None):
        self.answers, self.logprobs, self.tokenizer = list(answers), logprobs, tokenizer
        self.calls = []

    def generate(self, prompts, config):
        self.calls.append(("generate", len(prompts), config))
        return [[self.answers[i % len(self.answers)]] * config.n for i in range(len(prompts))]

    def score_next_token_logprobs(self, prompts, candidates, batch_size=None):
        self.calls.append(("score", len(prompts), list(candidates)))
        return np.asarray(self.logprobs, dtype=float)[: len(prompts)]


def words(text):
    return text.split()


# -- no GPU ----------------------------------------------------------------------------------


def test_without_a_gpu_it_says_so_and_exits_with_its_own_code(monkeypatch, capsys):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)

    def must_not_run(*args, **kwargs):
        raise AssertionError("nothing may run without a GPU")

    monkeypatch.setattr(gpu_check, "install_vllm", must_not_run)
    monkeypatch.setattr(gpu_check, "run_check", must_not_run)
    for argv in ([], ["--detect-only"], ["--skip-install", "--out", "elsewhere"]):
        assert gpu_check.main(argv) == gpu_check.EXIT_NO_GPU
        captured = capsys.readouterr()
        assert captured.err == gpu_check.NO_GPU_MESSAGE + "\n"
        assert captured.out == ""
    assert gpu_check.EXIT_NO_GPU not in (0, 1, 2)  # not success, a failed check or bad arguments


def test_with_a_gpu_detect_only_exits_0_and_the_check_runs_otherwise(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    ran = []
    monkeypatch.setattr(gpu_check, "run_check", lambda args: ran.append(args) or 7)
    assert gpu_check.main(["--detect-only"]) == 0 and not ran
    assert gpu_check.main(["--skip-install"]) == 7 and ran[0].skip_install


# -- tolerance -------------------------------------------------------------------------------


def test_tolerance_by_dtype():
    assert gpu_check.logprob_tolerance("float32") == 0.05
    assert gpu_check.logprob_tolerance("torch.bfloat16") == gpu_check.LOGPROB_TOLERANCES["bfloat16"]
    assert gpu_check.logprob_tolerance("float32") < gpu_check.logprob_tolerance("float16") \
        < gpu_check.logprob_tolerance("bfloat16")
    with pytest.raises(ValueError, match="int8"):
        gpu_check.logprob_tolerance("int8")


def test_within_tolerance():
    a = np.array([[-0.5, -1.0], [-2.0, -np.inf]])
    assert gpu_check.within_tolerance(a, a, 0.0) == (True, 0.0)
    passed, largest = gpu_check.within_tolerance(a, a + [[0.04, 0.0], [0.0, 0.0]], 0.05)
    assert passed and largest == pytest.approx(0.04)
    passed, largest = gpu_check.within_tolerance(a, a + [[0.0, 0.06], [0.0, 0.0]], 0.05)
    assert not passed and largest == pytest.approx(0.06)
    assert gpu_check.within_tolerance(a, np.where(np.isinf(a), -30.0, a), 0.05) == (False, np.inf)
    assert gpu_check.within_tolerance(a, np.where(np.isinf(a), np.nan, a), 0.05) == (False, np.inf)
    assert gpu_check.within_tolerance(a, a[:1], 0.05) == (False, np.inf)


# -- greedy completions ------------------------------------------------------------------------


def test_first_divergence():
    assert gpu_check.first_divergence([1, 2, 3], [1, 2, 3]) is None
    assert gpu_check.first_divergence([1, 2, 3], [1, 5, 3]) == 1
    assert gpu_check.first_divergence([1, 2], [1, 2, 3]) == 2
    assert gpu_check.first_divergence([], [4]) == 0


def test_greedy_agreeing_backends_pass():
    answers = ["a b c", "d e", "f", "g h i j"]
    passed, figures = gpu_check.compare_greedy(FakeGenerator(answers), FakeGenerator(answers), PROMPTS, GREEDY,
                                               tokenize=words, tie_tolerance=0.1)
    assert passed
    assert figures["identical"] == 4 and figures["share_identical"] == 1.0 and figures["divergences"] == []


def test_greedy_divergence_passes_only_at_a_near_tie():
    ours = FakeGenerator(["a b c", "d e", "f", "g h i j"])
    theirs = FakeGenerator(["a b c", "d x", "f", "g h i"])  # token 1 differs; prompt 3 ends a token early
    asked = []

    def gap(size):
        def next_token_gap(prompt, common, token_a, token_b):
            asked.append((prompt[0]["content"], common, token_a, token_b))
            return size
        return next_token_gap

    passed, figures = gpu_check.compare_greedy(ours, theirs, PROMPTS, GREEDY, tokenize=words,
                                               next_token_gap=gap(0.05), tie_tolerance=0.1)
    assert passed
    assert figures["identical"] == 2 and figures["share_identical"] == 0.5
    assert [(d["prompt"], d["position"]) for d in figures["divergences"]] == [(1, 1), (3, 3)]
    assert figures["first_divergence_min"] == 1
    assert asked == [("question 1", ["d"], "e", "x"), ("question 3", ["g", "h", "i"], "j", None)]

    passed, figures = gpu_check.compare_greedy(ours, theirs, PROMPTS, GREEDY, tokenize=words,
                                               next_token_gap=gap(0.5), tie_tolerance=0.1)
    assert not passed and figures["unexplained"] == 2
    # Without a way to read the gap, any divergence fails.
    passed, figures = gpu_check.compare_greedy(ours, theirs, PROMPTS, GREEDY, tokenize=words, tie_tolerance=0.1)
    assert not passed and figures["unexplained"] == 2


def test_greedy_needs_a_greedy_spec():
    with pytest.raises(ValueError, match="greedy"):
        gpu_check.compare_greedy(FakeGenerator(["a"]), FakeGenerator(["a"]), PROMPTS, GenerationSpec(temperature=1.0),
                                 tokenize=words, tie_tolerance=0.1)


# -- the read-out ------------------------------------------------------------------------------


def test_logprobs_within_and_past_the_tolerance():
    reference = [[-0.2, -1.8], [-1.0, -0.5]]
    ours = FakeGenerator(["x"], reference)
    close = FakeGenerator(["x"], np.asarray(reference) + 0.01)
    passed, figures = gpu_check.compare_logprobs(ours, close, ["p", "q"], ["1", "2"], tolerance=0.05)
    assert passed and figures["max_abs_diff"] == pytest.approx(0.01)
    assert figures["max_soft_label_diff"] == pytest.approx(0.0)  # the same shift of both candidates
    assert ours.calls[-1] == ("score", 2, ["1", "2"])

    far = FakeGenerator(["x"], [[-0.2, -1.8], [-1.0, -0.9]])
    passed, figures = gpu_check.compare_logprobs(ours, far, ["p", "q"], ["1", "2"], tolerance=0.05)
    assert not passed and figures["max_abs_diff"] == pytest.approx(0.4)
    assert figures["max_soft_label_diff"] > 0.05


# -- throughput --------------------------------------------------------------------------------


def test_throughput_is_timed_after_the_warm_up():
    generator = FakeGenerator(["one two three", "four"])
    readings = []

    def clock():
        readings.append(len(generator.calls))
        return 10.0 if len(readings) == 1 else 12.0

    spec = GenerationSpec(max_new_tokens=16, temperature=0.7, n=2)
    figures = gpu_check.measure_throughput(generator, PROMPTS, spec, count_tokens=lambda t: len(t.split()),
                                           clock=clock)
    assert readings == [1, 2]  # started after the warm-up call, stopped after the timed one
    assert generator.calls[0][:2] == ("generate", 2) and generator.calls[1] == ("generate", 4, spec)
    assert figures["completions"] == 8
    assert figures["tokens"] == 2 * (3 + 1 + 3 + 1)
    assert figures["seconds"] == 2.0 and figures["tokens_per_s"] == 8.0


def test_compare_throughput_gives_the_speedup():
    slow, fast = FakeGenerator(["a b"]), FakeGenerator(["a b"])
    times = iter([0.0, 4.0, 0.0, 1.0])
    passed, figures = gpu_check.compare_throughput(slow, fast, PROMPTS, GenerationSpec(n=1),
                                                   count_tokens=lambda t: len(t.split()), clock=lambda: next(times))
    assert passed
    assert figures["transformers"]["tokens_per_s"] == 2.0 and figures["vllm"]["tokens_per_s"] == 8.0
    assert figures["vllm_speedup"] == 4.0
    passed, _ = gpu_check.compare_throughput(slow, FakeGenerator([""]), PROMPTS, GenerationSpec(n=1),
                                             count_tokens=lambda t: len(t.split()))
    assert not passed  # a backend that generated nothing


# -- steps, budgets and the report ---------------------------------------------------------------


def test_run_step_times_against_the_budget_and_keeps_errors():
    times = iter([0.0, 25.0])
    step = gpu_check.run_step("greedy", lambda: (True, {"n": 1}), clock=lambda: next(times))
    assert step.passed and step.wall_s == 25.0 and step.over_budget  # greedy's budget is 20 s
    assert step.budget_s == gpu_check.BUDGETS["greedy"]

    def broken():
        raise RuntimeError("engine died")

    lines = []
    step = gpu_check.run_step("logprobs", broken, log=lines.append)
    assert step.passed is False and step.error == "RuntimeError: engine died" and not step.over_budget
    assert "FAIL" in lines[0] and "engine died" in lines[0]


def test_budgets_fit_in_eight_minutes():
    assert sum(gpu_check.BUDGETS.values()) < gpu_check.TOTAL_BUDGET_S == 8 * 60


def test_report(tmp_path):
    steps = [
        gpu_check.skipped_step("install", "--skip-install"),
        StepResult("greedy", 20, 3.5, True, {"prompts": 32, "identical": 30, "share_identical": 30 / 32,
                                              "first_divergence_min": 17, "unexplained": 0, "tie_tolerance": 0.1}),
        StepResult("logprobs", 10, 12.5, False,
                   {"max_abs_diff": 0.31, "tolerance": 0.05, "max_soft_label_diff": 0.07}),
        StepResult("throughput", 30, 8.0, True, {"transformers": {"tokens_per_s": 900.0},
                                                 "vllm": {"tokens_per_s": 18000.0}, "vllm_speedup": 20.0}),
    ]
    versions = {"torch": "2.13.0", "vllm": "0.33.0", "transformers": "5.23.0", "device": "NVIDIA H100 80GB HBM3"}
    md, js = gpu_check.write_report(steps, versions, tmp_path / "out", total_s=300.0, settings={"dtype": "float32"})
    report = json.loads(js.read_text())
    assert report["passed"] is False and report["over_budget_steps"] == ["logprobs"]
    assert report["versions"] == versions and not report["over_total_budget"]
    assert [s["verdict"] for s in report["steps"]] == ["skipped", "pass", "FAIL", "pass"]
    text = md.read_text()
    assert "**FAIL**" in text and "Over their budget: logprobs" in text and "NVIDIA H100" in text
    assert "30/32 identical" in text and "0.3100 nats (tolerance 0.05)" in text and "(20.0x)" in text
    assert "12.5 s (over)" in text

    chapter = StepResult("chapter", 200, 200.5, False, {"timed_out": True, "returncode": None, "seconds": 200.5,
                                                         "output_tail": ["repro: running", "stage sr-m1 started"]})
    assert gpu_check.summary_line(chapter) == "stopped at its time limit after 200 s: stage sr-m1 started"

    _, js = gpu_check.write_report(steps[:2] + steps[3:], versions, tmp_path / "ok", total_s=500.0)
    report = json.loads(js.read_text())
    assert report["passed"] is True and report["over_total_budget"] is True
    _, js = gpu_check.write_report(steps[:1], versions, tmp_path / "none", total_s=1.0)
    assert json.loads(js.read_text())["passed"] is False  # nothing ran: not a pass


# -- subprocesses ------------------------------------------------------------------------------


def test_run_command_stops_a_command_at_its_time_limit():
    start = time.perf_counter()
    sleeper = "print('started', flush=True); import time; time.sleep(60)"
    outcome = gpu_check.run_command([sys.executable, "-c", sleeper], timeout_s=1.0)
    assert time.perf_counter() - start < 20
    assert outcome["timed_out"] and outcome["returncode"] is None and outcome["output_tail"] == ["started"]
    outcome = gpu_check.run_command([sys.executable, "-c", "import sys; print('a\\nb'); sys.exit(4)"], timeout_s=30,
                                    tail_lines=1)
    assert not outcome["timed_out"] and outcome["returncode"] == 4 and outcome["output_tail"] == ["b"]


def test_chapter_command_carries_the_overrides(tmp_path):
    profile = tmp_path / "profile.yaml"
    profile.write_text("notebooks:\n  10_self_rewarding:\n    vllm_options: {dtype: bfloat16, enforce_eager: false}\n")
    overrides = gpu_check.chapter_overrides({"seeds": [1, 2]}, profile=str(profile))
    assert overrides["generation_backend"] == "vllm" and overrides["seeds"] == [1, 2]
    assert overrides["vllm_options"] == {"dtype": "bfloat16", "enforce_eager": True}
    assert gpu_check.chapter_overrides(profile=str(tmp_path / "missing.yaml"))["vllm_options"] == {"enforce_eager": True}

    command = gpu_check.chapter_command(tmp_path / "store", tmp_path / "nb", overrides)
    assert command[1:5] == ["-m", "repro.cli", "run", "10_self_rewarding"]
    assert command[command.index("--profile") + 1] == "real-small"
    assigned = [command[i + 1] for i, arg in enumerate(command) if arg == "-p"]
    assert parse_assignments(assigned) == overrides  # what `repro run` reads back


# -- engines and the whole check -----------------------------------------------------------------


def test_engines_fall_back_to_bfloat16_when_vllm_refuses_float32():
    made = []

    def make_generator(backend, model, **kwargs):
        made.append((backend, kwargs["dtype"]))
        if backend == "vllm" and kwargs["dtype"] == "float32":
            raise RuntimeError("no float32 attention backend")
        return backend

    engines, figures = gpu_check.load_engines("folder", "float32", make_generator=make_generator)
    assert engines == {"vllm": "vllm", "transformers": "transformers"}
    assert made == [("vllm", "float32"), ("vllm", "bfloat16"), ("transformers", "bfloat16")]
    assert figures["dtype"] == "bfloat16" and "no float32" in figures["float32_error"]

    def no_vllm(backend, model, **kwargs):
        raise ImportError("no vllm")

    with pytest.raises(ImportError):
        gpu_check.load_engines("folder", "float32", make_generator=no_vllm)


@pytest.fixture(scope="module")
def tiny_generators():
    """Two transformers generators on tiny random models of different seeds (CPU)."""
    tokenizer = build_tokenizer(["question", "what", "is", "the", "a", "cat", "1", "2", "summary", "text", "better"])
    return [HFGenerator(make_llama("XXS", tokenizer, seed=seed, initializer_range=0.2), tokenizer, progress=False)
            for seed in (0, 1)]


def test_comparisons_on_real_generators(tiny_generators):
    same, other = tiny_generators
    greedy = GenerationSpec(max_new_tokens=6, temperature=0.0, batch_size=32)
    sampled = GenerationSpec(max_new_tokens=6, temperature=0.7, n=2, batch_size=32)
    steps = gpu_check.run_comparisons(same, same, 0.05, greedy=greedy, sampled=sampled)
    assert [(s.name, s.passed) for s in steps] == [("greedy", True), ("logprobs", True), ("throughput", True)]
    assert steps[0].figures["share_identical"] == 1.0 and steps[1].figures["max_abs_diff"] == 0.0

    steps = {s.name: s for s in gpu_check.run_comparisons(same, other, 0.05, greedy=greedy, sampled=sampled)}
    assert steps["logprobs"].passed is False and steps["logprobs"].error is None
    greedy_figures = steps["greedy"].figures
    assert greedy_figures["share_identical"] < 1.0
    assert all(np.isfinite(d["gap"]) for d in greedy_figures["divergences"])  # the gap is read on the model


def test_the_whole_check_wires_the_steps_into_the_report(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(gpu_check, "has_cuda_gpu", lambda: True)
    monkeypatch.setattr(gpu_check, "resolve_model", lambda model, root: (True, {"folder": "folder"}))
    answers, logprobs = ["a b", "c"], [[-0.1, -2.5]] * 8
    monkeypatch.setattr(gpu_check, "versions", lambda: {"device": "fake"})

    def engines(vllm_logprobs):
        def load(folder, dtype):
            tokenizer = build_tokenizer(["a", "b", "c"])
            return ({"transformers": FakeGenerator(answers, logprobs, tokenizer),
                     "vllm": FakeGenerator(answers, vllm_logprobs, tokenizer)}, {"dtype": dtype})
        return load

    monkeypatch.setattr(gpu_check, "load_engines", engines(logprobs))
    code = gpu_check.main(["--skip-install", "--skip-chapter", "--out", str(tmp_path / "ok")])
    report = json.loads((tmp_path / "ok" / "report.json").read_text())
    assert code == 0 and report["passed"]
    assert [(s["name"], s["verdict"]) for s in report["steps"]] == [
        ("install", "skipped"), ("model", "pass"), ("chapter", "skipped"), ("engines", "pass"), ("greedy", "pass"),
        ("logprobs", "pass"), ("throughput", "pass"), ("report", "pass")]
    assert report["settings"]["logprob tolerance (nats)"] == 0.05
    assert "# GPU check" in capsys.readouterr().out

    monkeypatch.setattr(gpu_check, "load_engines", engines([[-0.1, -1.5]] * 8))
    code = gpu_check.main(["--skip-install", "--skip-chapter", "--dtype", "bfloat16", "--out", str(tmp_path / "bad")])
    report = json.loads((tmp_path / "bad" / "report.json").read_text())
    assert code == 1 and not report["passed"]
    assert {s["name"]: s["verdict"] for s in report["steps"]}["logprobs"] == "FAIL"
    assert report["settings"]["logprob tolerance (nats)"] == 0.25

    assert gpu_check.main(["--chapter-param", "seeds"]) == 2  # malformed: name=value
    assert "malformed parameter 'seeds'" in capsys.readouterr().err


# -- the model step, the chapter's store, and the gap on a real tokenizer -------------------------

TINY_GGUF = Path(__file__).parent / "data" / "tiny-llama.gguf"  # a ChatML, byte-level BPE Llama


@pytest.fixture(scope="module")
def tiny_gguf_model(tmp_path_factory):
    """Step ``model`` on the tests' tiny GGUF file, converted into a fresh store: its figures."""
    store = tmp_path_factory.mktemp("store")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REPRO_STORE", str(store))
        passed, figures = gpu_check.resolve_model(str(TINY_GGUF), paths.project_root())
    assert passed
    return figures


def test_the_model_step_converts_a_gguf_file_and_the_chapter_reuses_it(tiny_gguf_model, tmp_path, monkeypatch):
    assert (Path(tiny_gguf_model["folder"]) / "config.json").is_file()
    stage = tiny_gguf_model["stage"]
    listing = tmp_path / "listing.txt"

    def chapter_command(store, output_dir, overrides):  # lists the chapter's store instead of running it
        code = ("import pathlib, sys; root = pathlib.Path(sys.argv[2]); pathlib.Path(sys.argv[1])"
                ".write_text(' '.join(str(p.relative_to(root)) for p in root.rglob('config.json')))")
        return [sys.executable, "-c", code, str(listing), str(store)]

    monkeypatch.setattr(gpu_check, "chapter_command", chapter_command)
    passed, outcome = gpu_check.run_chapter(tmp_path, tmp_path / "out", {"seeds": [0]}, 60, adopt=[stage])
    assert passed and outcome["overrides"] == {"seeds": [0]}
    assert listing.read_text() == f"stages/{stage['name']}/{stage['key']}/model/config.json"
    with pytest.raises(FileNotFoundError, match="make real-small"):
        gpu_check.resolve_model(str(tmp_path / "missing.gguf"), tmp_path)


def test_the_gap_at_a_divergence_is_the_models_own(tiny_gguf_model):
    """`reference_gap` renders the prompt and the common tokens as text and reads them back: on a ChatML
    byte-level BPE tokenizer that gives the log-probabilities of the token ids themselves."""
    generator = make_generator("transformers", tiny_gguf_model["folder"], progress=False)
    tokenizer, model = generator.tokenizer, generator.model
    gap = gpu_check.reference_gap(generator, tokenizer)
    prompt = gpu_check.chat("What is the capital of France?")
    for text in ("The answer is", "Hello, world! It"):
        common = tokenizer.encode(text, add_special_tokens=False)
        a, b = tokenizer.encode("yes", add_special_tokens=False)[0], tokenizer.encode("no", add_special_tokens=False)[0]
        ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True)["input_ids"] + common
        with torch.inference_mode():
            logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0, -1].float(), dim=-1)
        assert gap(prompt, common, a, b) == pytest.approx(abs(logprobs[a] - logprobs[b]).item(), abs=1e-5)
        ended = abs(logprobs[a] - logprobs[tokenizer.eos_token_id]).item()
        assert gap(prompt, common, a, None) == pytest.approx(ended, abs=1e-5) and ended > 0
