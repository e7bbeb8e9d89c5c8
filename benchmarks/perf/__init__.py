"""The benchmarks behind ``benchmarks/bench_*.py`` and `make bench` (the harness is `benchmarks.harness`).

Every benchmark measures on the **tiny profile's** models: Llama presets of `repro.models` with the
world's word-level tokenizer, built exactly as the studies build them but left untrained (their
speed does not depend on their weights; every result says so in its notes). Prompts come from the
world (held-out tasks, judge prompts, labeller prompts), as the studies write them.

Modules: `setup` (models and prompts), `generation`, `judging`, `flops`, `stages`, `book`.
"""
