"""Generation throughput: `HFGenerator` (batched, KV cache) against one ``model.generate`` call per prompt.

Both sides run the same untrained M0 of the tiny profile on the same held-out world prompts with the
same sampling settings (the self-rewarding candidates': temperature 0.7, top-p 0.9, 48 new tokens),
and every completion is exactly ``max_new_tokens`` long (`benchmarks.perf.setup.fixed_length`), so both
sides generate the same number of tokens.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from benchmarks.harness import compare
from benchmarks.perf import setup
from repro.generation import GenerationSpec, HFGenerator
from repro.generation.base import encode_prompts
from repro.generation.decode import RETIRE_FLOOR
from repro.generation.engine import DEFAULT_SAMPLER
from repro.models import count_parameters

TARGET = 20.0  # the issue: batched generation at least 20x the one-prompt loop on the tiny profile


@dataclass(frozen=True)
class GenerationBench:
    prompts: int = 32  # one batch of the studies' size: the one-prompt loop is slow to time
    max_new_tokens: int = 48
    batch_size: int = 32  # GenerationSpec's default, which the studies' generation stages use
    temperature: float = 0.7
    top_p: float = 0.9
    size: str = "S"
    repeats: int = 3
    seed: int = 0
    rl_steps: int = 4  # RLOO steps per timed call (`rloo_sampling`)

    def sampling(self, n: int = 1) -> GenerationSpec:
        """The sampling settings every row uses, with ``n`` samples per prompt."""
        return GenerationSpec(max_new_tokens=self.max_new_tokens, temperature=self.temperature, top_p=self.top_p,
                              n=n, seed=self.seed, batch_size=self.batch_size)


QUICK = GenerationBench(prompts=8, max_new_tokens=6, batch_size=8, repeats=1, rl_steps=1)


def one_at_a_time(model, tokenizer, prompts, config: GenerationSpec) -> int:
    """The baseline: one ``model.generate`` call per prompt; returns the tokens generated."""
    generated = 0
    with torch.inference_mode(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        for ids in encode_prompts(tokenizer, prompts):
            inputs = torch.tensor([ids])
            output = model.generate(input_ids=inputs, attention_mask=torch.ones_like(inputs),
                                    max_new_tokens=config.max_new_tokens, do_sample=True,
                                    temperature=config.temperature, top_p=config.top_p, top_k=0,
                                    pad_token_id=tokenizer.pad_token_id)
            generated += output.shape[1] - inputs.shape[1]
    return generated


def decode_loop(spec: GenerationBench = GenerationBench(), *, samples: int = 4, log=print) -> dict:
    """Row: tokens/s of the decode loop (preallocated cache, one prefill per prompt for its samples) against
    ``model.generate(num_return_sequences=n)``, on the studies' N = 4 candidates per prompt; the samples are
    the same token for token (`tests/test_generation.py`)."""
    model, tokenizer = setup.world_model(spec.size, seed=spec.seed)
    prompts = setup.task_prompts(spec.prompts, seed=spec.seed)
    config = spec.sampling(samples)
    fast = HFGenerator(model, tokenizer, progress=False)
    plain = HFGenerator(model, tokenizer, progress=False, decode_loop=False)
    tokens = spec.prompts * samples * spec.max_new_tokens
    with setup.fixed_length(model, spec.max_new_tokens):
        return compare(
            f"sample {spec.prompts} prompts x n={samples} x {spec.max_new_tokens} tokens",
            lambda: plain.generate(prompts, config), lambda: fast.generate(prompts, config), repeats=spec.repeats,
            work_a=tokens, work_b=tokens, unit="tokens/s", baseline="model.generate(num_return_sequences=n)",
            candidate="repro.generation.decode (preallocated cache, shared prefill)", log=log,
            notes=(f"{setup.UNTRAINED_NOTE}: preset {spec.size}; held-out world prompts, batch {spec.batch_size} "
                   f"prompts, n = {samples} samples each (the self-rewarding candidates' N), T {spec.temperature}, "
                   f"top-p {spec.top_p}, every completion exactly {spec.max_new_tokens} tokens. Both sides draw "
                   f"the same samples token for token; the loop writes each step's keys and values into a "
                   f"preallocated cache where generate concatenates, and computes each prompt's prefill once."))


def retirement(spec: GenerationBench = GenerationBench(), *, samples: int = 4, log=print) -> dict:
    """Row: completions/s of the decode loop with the rows that have ended retiring from the forward passes,
    against the same loop keeping every row to the end, on the shipped (trained) M0 whose completions end at
    their own lengths; both sides draw the same samples token for token (`tests/test_generation.py`)."""
    model, tokenizer = setup.shipped_m0()
    prompts = setup.task_prompts(spec.prompts, seed=spec.seed)
    config = spec.sampling(samples)
    kept = HFGenerator(model, tokenizer, progress=False, retire_rows=False)
    retiring = HFGenerator(model, tokenizer, progress=False)
    completions = spec.prompts * samples
    return compare(
        f"sample {spec.prompts} prompts x n={samples}, completions ending where the model ends them",
        lambda: kept.generate(prompts, config), lambda: retiring.generate(prompts, config), repeats=spec.repeats,
        work_a=completions, work_b=completions, unit="completions/s",
        baseline="decode loop, every row to the end", candidate="decode loop, rows that have ended retire", log=log,
        notes=(f"the shipped M0 (pre-trained, preset S), so that completions end where a trained model ends them "
               f"(no fixed length here); held-out world prompts, batch {spec.batch_size} prompts, n = {samples}, "
               f"T {spec.temperature}, top-p {spec.top_p}, at most {spec.max_new_tokens} new tokens. Both sides draw "
               f"the same samples; the candidate's batch keeps only the rows still going once at most three "
               f"quarters are (never fewer than {RETIRE_FLOOR} rows)."))


def nucleus_sampler(spec: GenerationBench = GenerationBench(), *, trained: bool, samples: int = 4,
                    log=print) -> dict:
    """Row: tokens/s (untrained, fixed length) or completions/s (the shipped M0, natural ends) of the decode
    loop drawing with `repro.generation.decode.NucleusSampler` against drawing as ``generate`` does; the two
    draw different samples from the same distribution (`tests/test_generation.py`)."""
    model, tokenizer = setup.shipped_m0() if trained else setup.world_model(spec.size, seed=spec.seed)
    prompts = setup.task_prompts(spec.prompts, seed=spec.seed)
    n = samples if trained else 1
    config = spec.sampling(n)
    drawn = HFGenerator(model, tokenizer, progress=False)
    nucleus = HFGenerator(model, tokenizer, progress=False, sampler="nucleus")
    work = spec.prompts * n * (1 if trained else spec.max_new_tokens)
    what = (f"the shipped M0 (pre-trained), completions ending where it ends them, n = {n}" if trained else
            f"{setup.UNTRAINED_NOTE} (preset {spec.size}): its nucleus is most of the vocabulary, every completion "
            f"exactly {spec.max_new_tokens} tokens, n = 1")
    with setup.fixed_length(model, spec.max_new_tokens) if not trained else contextlib.nullcontext():
        return compare(
            f"draw {spec.prompts} prompts x n={n} ({'shipped M0' if trained else 'untrained, fixed length'})",
            lambda: drawn.generate(prompts, config), lambda: nucleus.generate(prompts, config), repeats=spec.repeats,
            work_a=work, work_b=work, unit="completions/s" if trained else "tokens/s",
            baseline="decode loop, generate's draw (every row, whole vocabulary)",
            candidate="decode loop, NucleusSampler (rows still going, nucleus only)", log=log,
            notes=(f"{what}; held-out world prompts, batch {spec.batch_size} prompts, T {spec.temperature}, top-p "
                   f"{spec.top_p}, at most {spec.max_new_tokens} new tokens; rows that have ended retire on both "
                   f"sides. The two sides draw different samples from the same distribution."))


def rloo_sampling(spec: GenerationBench = GenerationBench(), *, log=print) -> dict:
    """Row: RLOO steps/s (`repro.training.rl.train_rloo`, trl's trainer) with trl's ``model.generate`` calls run
    through the decode loop (`repro.generation.decode.loop_generate`) against transformers' ``generate``; both
    sides train the same policy bit for bit (`tests/test_rl.py`)."""
    import copy
    import tempfile

    from repro.training.rl import RLSpec, train_rloo

    steps = spec.rl_steps
    policy, tokenizer = setup.labeller_model(spec.size, seed=spec.seed)
    prompts = [text + " tl;dr :" for text, _, _ in setup.labeller_pairs(steps * 4, seed=spec.seed)]
    params = RLSpec(max_steps=steps, batch_size=16, num_generations=4, max_completion_length=32, temperature=0.9,
                    seed=spec.seed, progress=False)

    def train(decode_loop: bool):
        def call() -> int:
            with tempfile.TemporaryDirectory(prefix="bench-rloo-") as tmp:
                result = train_rloo(copy.deepcopy(policy), tokenizer, prompts, lambda p, c: [float(len(x)) for x in c],
                                    params, tmp, decode_loop=decode_loop)
            return result.steps
        return call

    return compare(
        f"RLOO, {steps} steps of 16 completions", train(False), train(True), repeats=spec.repeats,
        work_a=lambda n: n, work_b=lambda n: n, unit="steps/s", baseline="trl's sampling: model.generate",
        candidate="the same calls through the decode loop", log=log,
        notes=(f"{setup.UNTRAINED_NOTE}: the RLAIF policy's shape (preset {spec.size}, the labellers' tokenizer); "
               f"21_rlaif_rl's RL settings: 4 prompts x 4 completions per step, at most 32 new tokens, T 0.9, a KL "
               f"reference; a reward of the completion's length. Each call builds the trainer and trains {steps} "
               f"steps from the same start; both sides sample the same completions and train the same weights."))


def batched_against_one_at_a_time(spec: GenerationBench = GenerationBench(), *, trained: bool = False,
                                  log=print) -> dict:
    """Row: tokens/s of `HFGenerator` (batched) against one ``model.generate`` call per prompt (target 20x), on an
    untrained M0 or on the shipped (pre-trained) M0, whose peaked distributions are what the studies sample."""
    model, tokenizer = setup.shipped_m0() if trained else setup.world_model(spec.size, seed=spec.seed)
    prompts = setup.task_prompts(spec.prompts, seed=spec.seed)
    config = spec.sampling()
    generator = HFGenerator(model, tokenizer, progress=False, sampler=DEFAULT_SAMPLER)  # as the studies draw
    tokens = spec.prompts * spec.max_new_tokens

    def batched() -> int:
        completions = generator.generate(prompts, config)
        assert len(completions) == spec.prompts
        return tokens

    what = ("the shipped M0 (pre-trained, preset S): a trained model's nucleus is a few dozen tokens, where an "
            "untrained model's is most of the vocabulary" if trained else
            f"{setup.UNTRAINED_NOTE}: preset {spec.size}")
    with setup.fixed_length(model, spec.max_new_tokens):
        return compare(
            f"generate {spec.prompts} prompts x {spec.max_new_tokens} tokens "
            f"({'shipped M0' if trained else 'untrained'})",
            lambda: one_at_a_time(model, tokenizer, prompts, config), batched,
            repeats=spec.repeats, work_a=lambda n: n, work_b=tokens, unit="tokens/s",
            baseline="model.generate, one prompt per call",
            candidate=f"HFGenerator, batch {spec.batch_size}, the studies' sampler ({DEFAULT_SAMPLER})",
            target=TARGET, log=log,
            notes=(f"{what}, {count_parameters(model):,} parameters; held-out world prompts; sampling T "
                   f"{spec.temperature}, top-p {spec.top_p}; every completion exactly {spec.max_new_tokens} tokens "
                   f"(min_new_tokens = max_new_tokens on both sides). Target: the issue's >= 20x on the tiny "
                   f"profile."))


def run(spec: GenerationBench = GenerationBench(), *, log=print) -> list[dict]:
    """The comparison rows: batched against one prompt at a time (target 20x; untrained and shipped M0); the decode
    loop against generate; rows retiring; the nucleus sampler; RLOO's sampling through the loop."""
    row = batched_against_one_at_a_time(spec, log=log)
    trained = batched_against_one_at_a_time(spec, trained=True, log=log)
    return [row, trained, decode_loop(spec, log=log), retirement(spec, log=log),
            nucleus_sampler(spec, trained=False, log=log), nucleus_sampler(spec, trained=True, log=log),
            rloo_sampling(spec, log=log)]
