"""Generation throughput: `HFGenerator` (batched, KV cache) against a one-prompt-at-a-time loop.

Both sides run the same randomly initialised tiny Llama (preset S by default) on the same prompts
with the same sampling settings (temperature 1, ``max_new_tokens``); throughput counts the generated
tokens (special tokens excluded) per second of wall time. Each measurement is repeated and reported
as min / median / max.

Run:
    python benchmarks/bench_generation.py --out bench_generation.json
    python benchmarks/bench_generation.py --size M --prompts 128 --batch-sizes 8 32 128 --threads 4
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time

import torch
import transformers

from repro.generation import GenerationConfig, HFGenerator
from repro.models import build_tokenizer, count_parameters, make_llama


def make_prompts(count: int, words: list[str], seed: int) -> list[str]:
    """Raw-string prompts of 8 to 40 words."""
    rng = random.Random(seed)
    return [" ".join(rng.choices(words, k=rng.randint(8, 40))) for _ in range(count)]


def count_tokens(completions: list[list[str]]) -> int:
    """Generated tokens: the word-level tokenizer makes one token per word."""
    return sum(len(text.split()) for texts in completions for text in texts)


def run_loop(model, tokenizer, prompts: list[str], config: GenerationConfig) -> list[list[str]]:
    """The baseline: one `model.generate` call per prompt."""
    torch.manual_seed(config.seed)
    completions = []
    with torch.inference_mode():
        for prompt in prompts:
            inputs = tokenizer(prompt, return_tensors="pt")
            output = model.generate(
                **inputs,
                max_new_tokens=config.max_new_tokens,
                do_sample=True,
                temperature=config.temperature,
                top_p=config.top_p,
                top_k=0,
                pad_token_id=tokenizer.pad_token_id,
            )
            text = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
            completions.append([text.strip()])
    return completions


def measure(fn, repeats: int) -> dict:
    """Run ``fn`` (returning completions) ``repeats`` times; tokens/s statistics."""
    rates, tokens = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        completions = fn()
        elapsed = time.perf_counter() - start
        tokens.append(count_tokens(completions))
        rates.append(tokens[-1] / elapsed)
    return {
        "tokens_per_s": {"min": min(rates), "median": statistics.median(rates), "max": max(rates)},
        "tokens_generated": tokens,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="S", help="model preset (default S)")
    parser.add_argument("--vocab-size", type=int, default=1500, help="words in the vocabulary (default 1500)")
    parser.add_argument("--prompts", type=int, default=64, help="number of prompts (default 64)")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 64], help="HFGenerator batch sizes")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the results as JSON to this path")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    words = [f"w{i}" for i in range(args.vocab_size)]
    tokenizer = build_tokenizer(words)
    model = make_llama(args.size, tokenizer, seed=args.seed)
    prompts = make_prompts(args.prompts, words, args.seed)

    results = []
    loop_config = GenerationConfig(max_new_tokens=args.max_new_tokens, temperature=1.0, seed=args.seed)
    run_loop(model, tokenizer, prompts[:2], loop_config)  # warm-up
    results.append(
        {"method": "loop (1 prompt / generate)", "batch_size": 1,
         **measure(lambda: run_loop(model, tokenizer, prompts, loop_config), args.repeats)}
    )
    generator = HFGenerator(model, tokenizer, progress=False)
    for batch_size in args.batch_sizes:
        config = GenerationConfig(
            max_new_tokens=args.max_new_tokens, temperature=1.0, seed=args.seed, batch_size=batch_size
        )
        results.append(
            {"method": "HFGenerator (batched)", "batch_size": batch_size,
             **measure(lambda config=config: generator.generate(prompts, config), args.repeats)}
        )

    baseline = results[0]["tokens_per_s"]["median"]
    print(
        f"\n{args.size} model ({count_parameters(model):,} parameters), {args.prompts} prompts, "
        f"max_new_tokens={args.max_new_tokens}, {args.repeats} repeats, {args.threads} threads"
    )
    print(f"{'method':<28} {'batch':>5} {'min tok/s':>10} {'median':>10} {'max':>10} {'speed-up':>9}")
    for row in results:
        rate = row["tokens_per_s"]
        row["speedup_vs_loop"] = rate["median"] / baseline
        print(
            f"{row['method']:<28} {row['batch_size']:>5} {rate['min']:>10.0f} {rate['median']:>10.0f} "
            f"{rate['max']:>10.0f} {row['speedup_vs_loop']:>8.1f}x"
        )

    report = {
        "benchmark": "generation",
        "settings": vars(args) | {"parameters": count_parameters(model)},
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "machine": platform.machine(),
            "device": "cpu",
        },
        "results": results,
    }
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2)
        print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
