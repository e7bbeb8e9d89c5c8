"""A finished stage of the run store reused against recomputed (`repro.runs.store.RunStore.run`).

Two real stages of the world studies, in a temporary store: ``world-corpus`` (the pre-training
corpus, `repro.studies.base.corpus_stage`) and ``pretrain-m0`` (M0 pre-trained on it,
`repro.studies.base.pretrain_stage`). Recompute: delete the stage's folder and ask for it (its
upstream stages stay); reuse: ask for it again with the stage present.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import compare
from repro.runs.store import RunStore
from repro.studies.base import BaseSpec, corpus_stage, pretrain_stage


@dataclass(frozen=True)
class StagesBench:
    corpus_docs: int = 20_000  # the corpus stage's size (the tiny profile: 80,000)
    pretrain_docs: int = 300  # the corpus M0 is pre-trained on here (the tiny profile: 80,000)
    model_size: str = "S"
    repeats: int = 3
    seed: int = 0


QUICK = StagesBench(corpus_docs=200, pretrain_docs=40, model_size="XXS", repeats=1)


def _recompute(path: Path, stage_fn):
    """Delete the finished stage at ``path`` and compute it again."""
    def call():
        shutil.rmtree(path)
        return stage_fn()
    return call


def run(spec: StagesBench = StagesBench(), *, log=print, workdir: str | Path | None = None) -> list[dict]:
    """Rows (stages/s reused against recomputed) for the corpus and the pre-training stage."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-stages-", dir=workdir) as tmp:
        store = RunStore(tmp)
        corpus_spec = BaseSpec(corpus_docs=spec.corpus_docs, world_seed=spec.seed)
        model_spec = BaseSpec(corpus_docs=spec.pretrain_docs, model_size=spec.model_size, seed=spec.seed,
                              world_seed=spec.seed)
        cases = [
            ("world-corpus", lambda: corpus_stage(store, corpus_spec),
             f"{spec.corpus_docs:,} documents (the tiny profile writes 80,000; recompute time grows with it)"),
            ("pretrain-m0", lambda: pretrain_stage(store, model_spec, progress=False),
             f"preset {spec.model_size} pre-trained for one epoch on {spec.pretrain_docs:,} documents (the "
             f"tiny profile: 80,000, so its real recompute takes far longer); the corpus and tokenizer "
             f"stages upstream are reused on both sides"),
        ]
        for name, stage_fn, what in cases:
            path = stage_fn().path  # computed once first (with its upstream stages)
            rows.append(compare(
                f"stage {name}", _recompute(path, stage_fn), stage_fn, repeats=spec.repeats, work_a=1, work_b=1,
                unit="stages/s", baseline="recompute (delete, run)", candidate="reuse (run, stage present)",
                log=log, warmup=False,
                notes=(f"a temporary run store; {what}. Reuse hashes the parameters and reads the manifest. "
                       f"The recompute side includes deleting the stage folder.")))
    return rows
