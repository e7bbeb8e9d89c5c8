"""The world's summarisation data: posts, summaries of known quality, calibrated raters, and records
that the real-data loaders read unchanged."""

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repro.data.summarize import evaluation_split, load_comparisons, load_tldr
from repro.world import summaries as ws


@pytest.fixture(scope="module")
def post():
    return ws.make_post(random.Random(3), 7)


def test_a_post_has_three_salient_facts_about_its_title_subject(post):
    assert post.id == "w3_000007" and post.subject in post.title and post.subreddit == ws.SUBJECTS[post.subject]
    assert len(post.salient) == 3 and all(post.facts[i].subject == post.subject for i in post.salient)
    assert all(f.subject != post.subject for i, f in enumerate(post.facts) if i not in post.salient)
    assert post.body.count(" .") == len(post.facts)


def test_the_oracle_ranks_summaries_as_they_were_written(post):
    rng = random.Random(0)
    assert ws.summary_quality(post, ws.reference_summary(post)) == 1.0
    assert ws.summary_quality(post, ws.write_summary(post, ws.SummarySpec(3, with_time=True), rng)) == 1.0
    by_coverage = [ws.summary_quality(post, ws.write_summary(post, ws.SummarySpec(c), rng)) for c in range(4)]
    assert by_coverage == [-0.05 * 2, 1 / 3, 2 / 3, 1.0]  # "nothing happened ." is two noise words
    details = ws.summary_details(post, ws.write_summary(post, ws.SummarySpec(2, filler=1, hallucinated=1), rng))
    assert (details["covered"], details["filler"], details["hallucinated"]) == (2, 1, 1)
    assert details["quality"] == pytest.approx(2 / 3 - 0.5 - 0.1)
    wrong_time = post.facts[post.salient[0]]
    other_time = next(t for t in ws.TIMES if t != wrong_time.time)
    text = f"{wrong_time.subject} {wrong_time.verb} {wrong_time.obj} {other_time} ."
    assert ws.summary_details(post, text)["hallucinated"] == 1


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(), st.binary(), st.none(), st.integers()))
def test_the_oracle_reads_any_input_without_raising(value):
    post = ws.make_post(random.Random(1))
    details = ws.summary_details(post, value)
    assert details["quality"] <= 1.0


def test_raters_are_calibrated_to_the_real_data_agreement():
    data = ws.world_comparisons(300, seed=0)
    fresh = ws.world_comparisons(300, seed=1).qualities  # pairs the calibration never saw
    assert 0.73 <= ws.agreement(fresh, data.raters) <= 0.77
    assert len({round(r.noise, 6) for r in data.raters}) == len(data.raters)  # workers differ
    # simulated: two workers rating the same pairs agree about as often as expected
    rng = random.Random(5)
    a, b = data.raters[0], data.raters[1]
    same = [a.rate(q1, q2, rng)[0] == b.rate(q1, q2, rng)[0] for q1, q2 in fresh * 20]
    assert abs(sum(same) / len(same) - ws.agreement(fresh, [a, b])) < 0.02


def test_choices_follow_quality_and_confidence_is_bipolar():
    rater = ws.Rater("w", noise=0.3)
    rng = random.Random(0)
    ratings = [rater.rate(1.0, 0.0, rng) for _ in range(500)]
    assert sum(c == 0 for c, _ in ratings) > 450
    for choice, confidence in ratings + [rater.rate(0.5, 0.5, rng) for _ in range(200)]:
        assert confidence in ((1, 2, 3, 4) if choice == 0 else (6, 7, 8, 9))
    assert {conf for _, conf in ratings} & {1, 2}  # sure ratings reach the confident ends


def test_world_records_go_through_the_real_loaders(tmp_path):
    data = ws.world_comparisons(40, seed=2)
    path = tmp_path / "world.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in data.records) + "\n")
    frame = load_comparisons(path)
    assert len(frame) == 80 and frame.attrs["without_post"] == 0 and set(frame.confidence) <= set(range(1, 10))
    rest, evaluation = evaluation_split(frame, fraction=0.25, seed=0)
    assert not set(rest.id) & set(evaluation.id)
    tldr = tmp_path / "tldr.jsonl"
    tldr.write_text("\n".join(json.dumps(r) for r in ws.tldr_records(list(data.posts.values()))) + "\n")
    posts = load_tldr(tldr)
    assert all(ws.summary_quality(data.posts[r.id], r.summary) == 1.0 for r in posts.itertuples())


def test_every_emitted_word_is_in_the_summary_vocabulary():
    vocab = set(ws.summary_vocabulary())
    data = ws.world_comparisons(30, seed=4)
    for record in data.records:
        text = " ".join([record["info"]["post"], record["info"]["title"], record["info"]["subreddit"]]
                        + [s["text"] for s in record["summaries"]])
        assert set(text.split()) <= vocab
