"""The real-model probes (`repro.studies.real_model`) run end to end on the tiny GGUF stand-in: every
template of the paper path is sent, every figure is computed, and nothing is read that a stage lacks.
(The stand-in writes noise; the book's page runs the real SmolLM2-135M-Instruct.)"""

from pathlib import Path

import pandas as pd

from repro.runs.store import RunStore
from repro.studies import real_model as rm

TINY = str(Path(__file__).parent / "data" / "tiny-llama.gguf")
SMALL = rm.ProbeSpec(new_prompts=2, shots=2, seed_shots=2, prompt_max_new_tokens=8, candidates=2, max_new_tokens=8,
                     judge_samples=2, judge_max_new_tokens=8, techniques=("base/0", "detailed+cot/0"),
                     max_rationale_tokens=8, evolutions=1, evolver_max_new_tokens=8)


def test_the_seed_prompts_and_comparisons_come_from_the_shipped_samples():
    prompts = rm.seed_prompts()
    assert len(prompts) == len(set(prompts)) >= 5 and all(p.strip() for p in prompts)
    shipped = rm.shipped_prompts()
    assert set(shipped.family) == {"oasst1", "AlpacaEval", "UltraFeedback", "Arena-Hard"}
    assert shipped.uid.is_unique and len(shipped) >= 24
    data = rm.comparison_data()
    assert len(data.comparisons) >= 10 and set(data.comparisons.choice) <= {0, 1}


def test_every_probe_runs_on_a_gguf_model_and_is_reused(tmp_path):
    store = RunStore(tmp_path / "store")
    probes = rm.run_probes(store, TINY, SMALL, progress=False)
    assert probes.model.name == "gguf-model"
    assert probes.judged.manifest["params"]["judge_template"] == "full"  # the plain-English rubric
    summary = rm.judge_summary(probes)
    assert summary["prompts"] == len(rm.shipped_prompts())
    assert summary["judgments"] == summary["answers"] * SMALL.judge_samples == summary["prompts"] * 2 * 2
    assert 0 <= summary["readable"] <= summary["judgments"]
    candidates = pd.read_parquet(probes.judged / "candidates.parquet")
    assert all(len(texts) == SMALL.judge_samples for texts in candidates.judgments)
    table = rm.labelling_table(probes)
    assert list(table.technique) == ["Base 0-shot", "Detailed + CoT 0-shot"]
    assert (table.pairs == len(rm.comparison_data().comparisons)).all()
    assert rm.rationales(probes) and rm.rationales(probes)[0]["technique"] == "detailed+cot/0"
    assert set(rm.evolver_summary(probes)) >= {"prompts_scored", "selected", "evolved"}
    examples = rm.judgment_examples(probes)
    assert len(examples) == 4 and set(examples.columns) == {"prompt", "answer", "judgment", "read", "score"}
    assert summary["read_at_cue"] + round(summary["written_share"] * summary["judgments"]) == summary["readable"]
    assert summary["readable"] == summary["judgments"]  # the cue read-out scores every judgment
    rm.rewrite_examples(probes)
    counts, _ = rm.written_prompts(probes)
    assert counts["candidates"] >= counts["accepted"]
    again = rm.run_probes(store, TINY, SMALL, progress=False)
    assert again.creator.key == probes.creator.key and again.judged.key == probes.judged.key
