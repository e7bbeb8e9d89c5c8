"""eva (Ye et al., 2024): a creator selects and evolves the most informative prompts, a solver trains on them.

- `repro.studies.eva.stages`: prompt sets, reward models, sampling, the creator, the solver, evaluation.
- `repro.studies.eva.evolver`: the LLM evolver's rewriting templates and checks (paper scale).
- `repro.studies.eva.study`: the spec of ``30_eva``, the seeds, the metrics and the claims (and the sweeps of
  ``31_eva_ablations``).
"""
