"""RLAIF (Lee et al., 2023): an LLM labels which of two summaries is better; the labels train a reward model,
which trains a policy with RL.

- `repro.studies.rlaif.stages`: the data, the labellers, alignment, AI labels, reward models, SFT and RL policies.
- `repro.studies.rlaif.study`: the specs of ``20_rlaif_labeling`` and ``21_rlaif_rl``, the tables and the claims.
"""
