"""Self-Rewarding Language Models (Yuan et al., 2024): M1 -> M2 -> M3, each model judging its own responses.

- `repro.studies.self_rewarding.data`: the seed data (IFT, EFT candidates), from the world or from oasst1.
- `repro.studies.self_rewarding.self_instruct`: new prompts written by a fixed model, with Self-Instruct's filters.
- `repro.studies.self_rewarding.stages`: the cached stages (SFT, EFT, one iteration, evaluation).
- `repro.studies.self_rewarding.study`: the spec of ``10_self_rewarding``, the seeds, the tables and the claims.
"""
