"""Achieved model FLOP/s of tiny-model training and generation against the machine's measured peak.

The peak is a float32 matrix multiply (``n x n @ n x n``, ``2 n^3`` FLOPs) timed in the same run with
the same torch threads, interleaved with the model's work (`benchmarks.harness.compare`), so each ratio is
the fraction of the peak measured next to it. Model FLOPs are the usual estimates: training
``6 x parameters x tokens`` per step (forward and backward), generation ``2 x parameters x generated
tokens``; both leave out attention over the sequence, small at these lengths. Parameters are counted
with the tied embedding once (it is the output layer's matrix multiply). The rows: a training step, generation
at the studies' batch (one sample and ``n`` samples per prompt), and the labeller's read-out (forward passes
over long prompts, the prefill that generation also starts with).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from benchmarks.harness import compare
from benchmarks.perf import setup
from repro.generation import GenerationSpec, HFGenerator
from repro.generation.base import encode_prompts
from repro.generation.engine import DEFAULT_SAMPLER
from repro.judges.labeller import ANSWERS, LabelSpec, labeller_prompt
from repro.models import count_parameters


@dataclass(frozen=True)
class FlopsBench:
    matmul_size: int = 2048
    matmuls: int = 3  # matrix multiplies per timed call
    batch_size: int = 8  # the tiny profile's pre-training batch
    sequence: int = 256  # its block length
    steps: int = 3  # optimiser steps per timed call
    prompts: int = 32  # generation: one batch of the studies' size
    max_new_tokens: int = 48
    samples: int = 4  # generation with n samples per prompt: the self-rewarding candidates' N
    comparisons: int = 128  # the labeller's read-out: comparisons, each read in both orders
    size: str = "S"
    repeats: int = 3
    seed: int = 0


QUICK = FlopsBench(matmul_size=256, matmuls=1, batch_size=2, sequence=32, steps=1, prompts=4, max_new_tokens=4,
                   samples=2, comparisons=4, repeats=1)


def matmul(size: int, count: int, seed: int = 0):
    """A call doing ``count`` float32 ``size x size`` matrix multiplies; its FLOPs."""
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(size, size, generator=generator)
    b = torch.randn(size, size, generator=generator)
    out = torch.empty(size, size)

    def call() -> None:
        for _ in range(count):
            torch.mm(a, b, out=out)

    return call, 2.0 * size**3 * count


def training_steps(model, vocab_size: int, spec: FlopsBench):
    """A call doing ``spec.steps`` AdamW steps of forward/backward on random token blocks; its FLOPs. AdamW is
    the fused one, which the studies' trainers build (transformers' default ``optim``, ``adamw_torch_fused``;
    torch's default on a CPU would update one parameter tensor at a time)."""
    generator = torch.Generator().manual_seed(spec.seed)
    batch = torch.randint(4, vocab_size, (spec.batch_size, spec.sequence), generator=generator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    model.train()

    def call() -> None:
        for _ in range(spec.steps):
            loss = model(input_ids=batch, labels=batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    return call, 6.0 * count_parameters(model) * spec.batch_size * spec.sequence * spec.steps


def run(spec: FlopsBench = FlopsBench(), *, log=print) -> tuple[list[dict], list[dict]]:
    """Rows (training, generation against the matmul peak) and a table of the absolute FLOP/s."""
    peak, peak_flops = matmul(spec.matmul_size, spec.matmuls, spec.seed)
    peak_name = f"fp32 matmul {spec.matmul_size}^3 (peak)"
    model, tokenizer = setup.world_model(spec.size, seed=spec.seed)
    params = count_parameters(model)
    train, train_flops = training_steps(model, len(tokenizer), spec)
    rows = [compare(
        "training: fraction of peak", peak, train, repeats=spec.repeats, work_a=peak_flops, work_b=train_flops,
        unit="FLOP/s", baseline=peak_name, candidate=f"train step, batch {spec.batch_size} x {spec.sequence}",
        log=log,
        notes=(f"{setup.UNTRAINED_NOTE}: preset {spec.size}, {params:,} parameters; a plain forward/backward/"
               f"AdamW loop (not the trainer; its fused AdamW, as the trainers build it) on random token blocks of "
               f"the tiny profile's pre-training shape, {spec.steps} steps per call; FLOPs = 6 x parameters x "
               f"tokens. The ratio is the fraction of the float32 matmul peak measured beside it."))]

    generator = HFGenerator(model, tokenizer, progress=False, sampler=DEFAULT_SAMPLER)  # the studies' sampler
    prompts = setup.task_prompts(spec.prompts, seed=spec.seed)
    config = GenerationSpec(max_new_tokens=spec.max_new_tokens, temperature=0.7, top_p=0.9, seed=spec.seed,
                            batch_size=spec.prompts)
    gen_flops = 2.0 * params * spec.prompts * spec.max_new_tokens
    with setup.fixed_length(model, spec.max_new_tokens):
        rows.append(compare(
            "generation: fraction of peak", peak, lambda: generator.generate(prompts, config), repeats=spec.repeats,
            work_a=peak_flops, work_b=gen_flops, unit="FLOP/s", baseline=peak_name,
            candidate=f"HFGenerator ({DEFAULT_SAMPLER} sampler), batch {spec.prompts} x {spec.max_new_tokens} tokens",
            log=log,
            notes=(f"the same model; one batch of {spec.prompts} held-out world prompts, exactly "
                   f"{spec.max_new_tokens} new tokens each; FLOPs = 2 x parameters x generated tokens. "
                   f"Decoding with a KV cache at a tiny model's batch sizes is latency-bound (each step is a "
                   f"few small matrix-vector products and Python overhead), so a small fraction is expected.")))

    shipped, shipped_tokenizer = setup.shipped_m0()  # the studies' pre-trained M0: peaked distributions
    shipped_generator = HFGenerator(shipped, shipped_tokenizer, progress=False, sampler=DEFAULT_SAMPLER)
    with setup.fixed_length(shipped, spec.max_new_tokens):
        rows.append(compare(
            "generation (shipped M0): fraction of peak", peak, lambda: shipped_generator.generate(prompts, config),
            repeats=spec.repeats, work_a=peak_flops, work_b=2.0 * count_parameters(shipped) * spec.prompts
            * spec.max_new_tokens, unit="FLOP/s", baseline=peak_name,
            candidate=f"HFGenerator ({DEFAULT_SAMPLER} sampler) on the shipped M0, batch {spec.prompts} x "
                      f"{spec.max_new_tokens} tokens", log=log,
            notes=("as the row above, with the shipped (pre-trained) M0 of the same shape and tokenizer: a trained "
                   "model's nucleus is a few dozen tokens, so the sampler sorts far less of the vocabulary.")))

    sampled = GenerationSpec(max_new_tokens=spec.max_new_tokens, temperature=0.7, top_p=0.9, n=spec.samples,
                             seed=spec.seed, batch_size=spec.prompts)
    with setup.fixed_length(model, spec.max_new_tokens):
        rows.append(compare(
            "generation, n samples per prompt: fraction of peak", peak, lambda: generator.generate(prompts, sampled),
            repeats=spec.repeats, work_a=peak_flops, work_b=gen_flops * spec.samples, unit="FLOP/s",
            baseline=peak_name, candidate=(f"HFGenerator, batch {spec.prompts} prompts x n={spec.samples} x "
                                           f"{spec.max_new_tokens} tokens"), log=log,
            notes=(f"the same model and prompts, {spec.samples} samples each (the self-rewarding candidates' N: one "
                   f"prefill per prompt, {spec.prompts * spec.samples} rows decoded together); FLOPs = 2 x "
                   f"parameters x generated tokens.")))

    labeller, labeller_tokenizer = setup.labeller_model(spec.size, seed=spec.seed)
    reader = HFGenerator(labeller, labeller_tokenizer, progress=False)
    label = LabelSpec(preamble="detailed", wording="compact", seed=spec.seed)
    pairs = setup.labeller_pairs(spec.comparisons, seed=spec.seed)
    texts = [labeller_prompt(t, a, b, label) for t, a, b in pairs] + [labeller_prompt(t, b, a, label) for t, a, b in pairs]
    read_tokens = sum(len(ids) for ids in encode_prompts(labeller_tokenizer, texts))
    rows.append(compare(
        "labeller read-out (forward passes): fraction of peak", peak,
        lambda: reader.score_next_token_logprobs(texts, list(ANSWERS), batch_size=label.batch_size),
        repeats=spec.repeats, work_a=peak_flops, work_b=2.0 * count_parameters(labeller) * read_tokens,
        unit="FLOP/s", baseline=peak_name, candidate=f"score_next_token_logprobs, {len(texts)} prompts", log=log,
        notes=(f"the RLAIF labeller's shape (preset {spec.size}, untrained): {spec.comparisons} comparisons of world "
               f"posts read in both orders, batch {label.batch_size} prompts, {read_tokens:,} prompt tokens; one "
               f"forward pass each; FLOPs = 2 x parameters x prompt tokens (padding not counted).")))

    table = []
    for row in rows:
        table.append({"work": row["candidate"], "achieved FLOP/s (median)": row["candidate_rate"]["median"],
                      "peak FLOP/s (best)": row["baseline_rate"]["max"],
                      "fraction of best peak": row["candidate_rate"]["median"] / row["baseline_rate"]["max"],
                      "fraction of peak beside it (median)": row["ratio"]["median"],
                      "torch threads": torch.get_num_threads()})
    return rows, table
