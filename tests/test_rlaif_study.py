"""RLAIF study pieces: techniques, rendering of the labellers' corpus, alignment and position bias,
reward records, rater judgments in both orders and the length-controlled win rate."""

import random

import numpy as np
import pandas as pd
import pytest

from repro.data import summarize
from repro.errors import ReproError
from repro.judges import labeller as lb
from repro.runs.store import RunStore
from repro.studies.rlaif import stages as rl
from repro.studies.rlaif import study as study
from repro.training.rl import joined
from repro.world import summaries as ws
from repro.world import summary_corpus as sc


def test_techniques_parse_to_the_papers_names_and_back():
    t = rl.Technique.parse("Detailed+CoT/1")
    assert (t.preamble, t.shots, t.cot, t.rationales) == ("detailed", 1, True, 1)
    assert t.code == "detailed+cot/1" and t.name == "Detailed + CoT 1-shot"
    sc_ = rl.Technique.parse("detailed+cot/0/sc16@0.3")
    assert sc_.rationales == 16 and sc_.temperature == 0.3 and sc_.code == "detailed+cot/0/sc16@0.3"
    assert sc_.name == "Detailed + CoT 0-shot, 16 samples at T 0.3"
    assert rl.Technique.parse("base/0").config([], wording="compact").name == "Base 0-shot"
    for bad in ("short/0", "base", "base/one", "base/0/sc4@0.7"):
        with pytest.raises(ValueError):
            rl.Technique.parse(bad)


def test_every_corpus_document_renders_in_the_tokenizers_words():
    from repro.models import build_tokenizer

    tokenizer = build_tokenizer(rl.tokenizer_words())
    docs = sc.labeller_corpus(60, critics=ws.make_raters(3, 0.3), seed=0)
    for doc in docs:
        prompt, completion = rl.render_document(doc)
        ids = tokenizer(prompt + completion)["input_ids"]
        assert tokenizer.unk_token_id not in ids, (doc["kind"], prompt + completion)
        if doc["kind"] == "comparison":
            assert completion.endswith(f" {doc['preferred']}")
            assert (doc["rationale"] in completion) == doc["with_rationale"]
            cues = len(doc["shots"]) + (0 if doc["with_rationale"] else 1)  # the shots' answers, then the cue
            assert prompt.count(lb.LAYOUT["compact"]["cue"]) == cues
        if doc["kind"] == "rating":
            assert prompt == lb.score_prompt(sc.post_text(doc["post"]["title"], sc.post_from_dict(doc["post"]).body),
                                             doc["summary"], "compact")
    texts = [rl.policy_prompts(pd.DataFrame(ws.tldr_records([ws.make_post(random.Random(1))])))[0]]
    assert tokenizer.unk_token_id not in tokenizer(texts)["input_ids"][0]


def labels_frame(p_ab, p_ba, choice):
    frame = pd.DataFrame({"p_ab": p_ab, "p_ba": p_ba, "choice": choice})
    frame["p_a"] = (frame.p_ab + frame.p_ba) / 2
    frame["same_position"] = (frame.p_ab > 0.5) == ((1 - frame.p_ba) > 0.5)
    return frame


def test_alignment_and_position_bias_metrics():
    # pair 0: reads content, agrees; pair 1: always the first position, soft labels lean right;
    # pair 2: always the first position, leans wrong; pair 3: reads content, disagrees with the human
    frame = labels_frame([0.9, 0.9, 0.7, 0.2], [0.9, 0.05, 0.1, 0.2], [0, 1, 0, 0])
    m = rl.alignment_metrics(frame)
    assert m["alignment"] == pytest.approx(2 / 4)  # pairs 0 and 1
    assert m["alignment_one_order"] == pytest.approx(2 / 4)  # first order alone: pairs 0 and 2
    assert m["same_position"] == pytest.approx(2 / 4) and m["same_position_first"] == pytest.approx(2 / 4)
    assert m["same_position_second"] == 0


def test_reward_records_follow_each_kind_of_label():
    frame = summarize.load_comparisons(summarize.sample_path("comparisons"))
    ai = pd.DataFrame({"p_a": np.where(frame.choice == 0, 0.2, 0.9)})  # the AI disagrees with every human
    human = rl.reward_records(frame, "human")
    hard = rl.reward_records(frame, "ai_hard", ai)
    soft = rl.reward_records(frame, "ai_soft", ai)
    for record, row, h, s in zip(human, frame.itertuples(), hard, soft):
        preferred = row.summary_0 if row.choice == 0 else row.summary_1
        assert record["chosen"].endswith(preferred) and record["chosen"].startswith("SUBREDDIT:")
        assert h["chosen"] == record["rejected"] and h["rejected"] == record["chosen"]
        assert s["chosen"].endswith(row.summary_0) and s["soft_label"] == (0.2 if row.choice == 0 else 0.9)
    with pytest.raises(ValueError, match="every comparison"):
        rl.reward_records(frame, "ai_soft")
    with pytest.raises(ValueError, match="unknown labels"):
        rl.reward_records(frame, "crowd")


def test_prompt_and_completion_are_joined_with_one_space():
    assert joined("TL;DR:", "a b") == "TL;DR: a b"
    assert joined("TL;DR:", " a b") == "TL;DR: a b" and joined("TL;DR: ", "a") == "TL;DR: a"


def world_data_for(posts, raters, summaries):
    tldr = pd.DataFrame(ws.tldr_records(posts))
    return rl.SummaryData(pd.DataFrame(), tldr, tldr, {}, {p.id: p for p in posts}, raters, 0.1)


def summary_frame(posts, texts):
    frame = pd.DataFrame({"id": [p.id for p in posts], "summary": texts})
    frame["characters"] = frame.summary.str.len()
    frame["quality"] = [ws.summary_quality(p, t) for p, t in zip(posts, texts)]
    return frame


def test_raters_judge_both_orders_and_a_sharp_rater_always_picks_the_better_summary():
    rng = random.Random(0)
    posts = [ws.make_post(rng, i) for i in range(30)]
    good = summary_frame(posts, [ws.reference_summary(p) for p in posts])
    bad = summary_frame(posts, [ws.write_summary(p, ws.SummarySpec(covered=1, hallucinated=1), rng) for p in posts])
    data = world_data_for(posts, [ws.Rater("sharp", 1e-4)], None)
    judgments = rl.human_judgments(good, bad, data, seed=0)
    assert len(judgments) == 60 and judgments.a_first.sum() == 30
    assert rl.win_rate(judgments) == 1.0 and rl.win_rate(rl.human_judgments(bad, good, data)) == 0.0
    noisy = world_data_for(posts, [ws.Rater("coin", 1e6)], None)
    assert 0.3 < rl.win_rate(rl.human_judgments(good, bad, noisy, seed=1)) < 0.7
    with pytest.raises(ValueError, match="world"):
        rl.human_judgments(good, bad, rl.SummaryData(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), {}))


def test_length_controlled_win_rate_removes_a_pure_length_preference():
    rng = np.random.default_rng(0)
    difference = rng.normal(0, 40, 4000) + 30  # A is usually longer
    wins = rng.random(4000) < 1 / (1 + np.exp(-difference / 20))  # raters like length, nothing else
    judgments = pd.DataFrame({"a_wins": wins, "length_difference": difference})
    assert judgments.a_wins.mean() > 0.7
    assert rl.length_controlled_win_rate(judgments) == pytest.approx(0.5, abs=0.04)
    quality = pd.DataFrame({"a_wins": rng.random(4000) < 0.7, "length_difference": rng.normal(0, 40, 4000)})
    assert rl.length_controlled_win_rate(quality) == pytest.approx(0.7, abs=0.04)
    assert np.isnan(rl.length_controlled_win_rate(quality.assign(a_wins=True)))
    assert np.isnan(rl.length_controlled_win_rate(quality.assign(length_difference=3.0)))


def test_exemplars_come_from_training_comparisons_with_the_humans_choice(tmp_path):
    data = rl.world_data(RunStore(tmp_path), rl.WorldSpec(posts=80, sft_posts=4, eval_posts=4))
    train, evaluation = rl.split(data)
    assert not set(train.id) & set(evaluation.id) and evaluation.confidence.isin([1, 2, 8, 9]).all()
    shots = rl.exemplars(train, data, 2, seed=0)
    assert len(shots) == 2 and rl.exemplars(train, data, 0, seed=0) == []
    for shot in shots:
        row = train[(train.summary_0 == shot.first) & (train.summary_1 == shot.second)].iloc[0]
        assert shot.preferred == row.choice + 1 and shot.rationale.startswith("summary 1 keeps")
    assert data.raters and abs(data.noise - rl.world_data_stage(RunStore(tmp_path), rl.WorldSpec(
        posts=80, sft_posts=4, eval_posts=4)).results["noise"]) < 1e-12
    assert set(data.tldr_eval.id).isdisjoint(data.tldr_train.id) and set(data.tldr_eval.id) <= set(data.posts)


def test_development_posts_are_apart_from_every_post_of_the_data_and_change_only_the_evaluations_key(tmp_path):
    store = RunStore(tmp_path)
    spec = rl.WorldSpec(posts=80, sft_posts=4, eval_posts=4)
    data = rl.world_data(store, spec)
    dev = rl.dev_view(data, rl.dev_posts_stage(store, spec, 6))
    assert len(dev.tldr_eval) == 6 and set(dev.tldr_eval.id).isdisjoint(data.posts)
    assert {data.posts[i].body for i in data.posts}.isdisjoint(dev.posts[i].body for i in dev.tldr_eval.id)
    assert set(dev.tldr_eval.id) <= set(dev.posts) and dev.comparisons is data.comparisons
    assert dev.key != data.key and dev.tldr_train is data.tldr_train
    with pytest.raises(ValueError, match="share ids"):
        rl.dev_view(dev, rl.dev_posts_stage(store, spec, 6))


def test_real_data_needs_both_files_and_labellers_by_path(tmp_path):
    store = RunStore(tmp_path / "store")
    comparisons, tldr = summarize.sample_path("comparisons"), summarize.sample_path("tldr")
    lines = tldr.read_text().splitlines()
    folder = tmp_path / "tldr_3_filtered"  # OpenAI's layout: one file per split
    folder.mkdir()
    (folder / "train.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    (folder / "test.jsonl").write_text(lines[-1] + "\n")
    data = rl.file_data(str(comparisons), str(folder))
    assert not data.world and len(data.comparisons) > 0
    assert len(data.tldr_eval) == 1 and set(data.tldr_eval.id).isdisjoint(data.tldr_train.id)
    with pytest.raises(ReproError, match="one file"):
        rl.file_data(str(comparisons), str(tldr))
    with pytest.raises(ReproError, match="valid.jsonl"):
        rl.file_data(str(comparisons), str(folder), tldr_eval_split="valid")
    with pytest.raises(ValueError, match="both"):
        study.prepare(store, rl.WorldSpec(), rl.LabellerSpec(), ["XS"], comparisons_path=str(comparisons))
    with pytest.raises(ValueError, match="labeller_paths"):
        study.prepare(store, rl.WorldSpec(), rl.LabellerSpec(), ["XS"], comparisons_path=str(comparisons),
                      tldr_path=str(folder))


def fake_runs(tmp_path, cells):
    """Alignment runs whose labels are given: {(labeller, technique): (p_ab, p_ba)}, human choice 0."""
    rows = []
    for (labeller, code), (p_ab, p_ba) in cells.items():
        code = rl.Technique.parse(code).code
        folder = tmp_path / f"{labeller}-{code.replace('/', '_')}"
        folder.mkdir(parents=True)
        labels_frame(p_ab, p_ba, [0] * len(p_ab)).to_parquet(folder / "labels.parquet")
        rows.append({"labeller": labeller, "technique": code, "name": rl.Technique.parse(code).name, "seed": 0,
                     "stage": folder, "pairs_per_second": 10.0})
    return pd.DataFrame(rows)


def test_alignment_table_and_findings_compare_on_the_same_comparisons(tmp_path):
    n = 200
    right, biased = ([0.9] * n, [0.9] * n), ([0.9] * n, [0.2] * (n // 2) + [0.05] * (n // 2))
    runs = fake_runs(tmp_path, {("S", "detailed+cot/0"): right, ("S", "base/0"): biased,
                                ("XS", "detailed+cot/0"): biased})
    table = study.alignment_table(runs).set_index(["labeller", "technique"])
    assert table.loc[("S", "detailed+cot/0"), "alignment"] == 1.0
    assert table.loc[("XS", "detailed+cot/0"), "alignment"] == pytest.approx(0.5)
    assert table.loc[("XS", "detailed+cot/0"), "same_position"] == 1.0
    assert table.loc[("XS", "detailed+cot/0"), "same_position_first"] == 1.0
    assert table.loc[("S", "detailed+cot/0"), "alignment_low"] == 1.0
    claims = study.labelling_findings(runs, largest="S", smallest="XS", technique="detailed+cot/0").set_index("claim")
    verdicts = claims.verdict.to_dict()
    assert verdicts["A larger labeller aligns better with humans"] == "reproduced"
    assert verdicts["Position bias shrinks with size (same position wins after swapping)"] == "reproduced"
    assert verdicts["Detailed + CoT 0-shot beats Base 0-shot"] == "reproduced"
    assert len(claims) == 4  # no self-consistency measured
    noisy = fake_runs(tmp_path / "sc", {("S", "detailed+cot/0"): right, ("S", "detailed+cot/0/sc4@1.0"): biased,
                                        ("XS", "detailed+cot/0"): biased})
    claims = study.labelling_findings(noisy, largest="S", smallest="XS", technique="detailed+cot/0",
                                      self_consistency="detailed+cot/0/sc4@1.0")  # named as the parameter is
    [sc_claim] = [c for c in claims.claim if "Self-consistency" in c]
    assert claims.set_index("claim").verdict[sc_claim] == "reproduced"
