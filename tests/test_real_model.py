"""The real-model probes (`repro.studies.real_model`): their data come from the shipped samples. (The
probes run end to end in `tests/test_notebooks.py`, on the smoke book's notebook 40 with the tiny GGUF
stand-in; the book's page runs the real SmolLM2-135M-Instruct.)"""

from repro.studies import real_model as rm


def test_the_seed_prompts_and_comparisons_come_from_the_shipped_samples():
    prompts = rm.seed_prompts()
    assert len(prompts) == len(set(prompts)) >= 5 and all(p.strip() for p in prompts)
    shipped = rm.shipped_prompts()
    assert set(shipped.family) == {"oasst1", "AlpacaEval", "UltraFeedback", "Arena-Hard"}
    assert shipped.uid.is_unique and len(shipped) >= 24
    data = rm.comparison_data()
    assert len(data.comparisons) >= 10 and set(data.comparisons.choice) <= {0, 1}
    # keyed by the sample's name and content, not by where the checkout is
    assert data.key["comparisons"] == "shipped:summarize_comparisons_sample.jsonl"
    assert rm.comparison_data(rm.summarize.sample_path("comparisons")).key["hash"] == data.key["hash"]


def test_the_probes_settings_come_from_the_notebooks_parameters():
    spec = rm.ProbeSpec.from_parameters({"techniques": ["base/0"], "candidates": 3, "judge_readout": "parse",
                                         "model_path": "ignored"})
    assert spec.techniques == ("base/0",) and spec.candidates == 3
    iteration = spec.iteration()
    assert (iteration.prompt_style, iteration.judge_template, iteration.judge_readout) == ("chat", "full", "parse")
