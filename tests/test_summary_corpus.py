"""The labellers' corpus: fresh posts, truthful rationales, ratings that follow quality, critics like raters."""

import random

import numpy as np
import pytest

from repro.world import summaries as ws
from repro.world import summary_corpus as sc

CRITICS = ws.make_raters(4, 0.25, seed=1)


def test_the_corpus_mixes_its_kinds_and_is_deterministic():
    docs = sc.labeller_corpus(300, critics=CRITICS, seed=0)
    assert docs == sc.labeller_corpus(300, critics=CRITICS, seed=0)
    assert docs != sc.labeller_corpus(300, critics=CRITICS, seed=1)
    kinds = {k: sum(d["kind"] == k for d in docs) / len(docs) for k in sc.DEFAULT_KINDS}
    for kind, share in sc.DEFAULT_KINDS.items():
        assert abs(kinds[kind] - share) < 0.1
    comparisons = [d for d in docs if d["kind"] == "comparison"]
    assert {d["preamble"] for d in comparisons} == {"base", "detailed"}
    assert {len(d["shots"]) for d in comparisons} == set(range(sc.MAX_SHOTS + 1))
    assert 0.3 < np.mean([d["with_rationale"] for d in comparisons]) < 0.7
    only = sc.labeller_corpus(20, critics=CRITICS, kinds={"rating": 1.0})
    assert {d["kind"] for d in only} == {"rating"}


def test_corpus_posts_never_come_from_the_studys_streams():
    study = ws.world_comparisons(200, seed=0)
    bodies = {p.body for p in study.posts.values()}
    docs = sc.labeller_corpus(400, critics=CRITICS, seed=0)
    assert not bodies & {sc.post_from_dict(d["post"]).body for d in docs}


def test_rationales_state_the_oracles_counts_and_use_known_words():
    rng = random.Random(3)
    post = ws.make_post(rng)
    good = ws.reference_summary(post)
    padded = ws.write_summary(post, ws.SummarySpec(covered=1, filler=2, hallucinated=1), rng)
    text = sc.rationale(post, good, padded)
    assert text == ("summary 1 keeps 3 main facts , adds 0 other facts , has 0 wrong facts . "
                    "summary 2 keeps 1 main fact , adds 2 other facts , has 1 wrong fact .")
    assert set(text.split()) <= sc.rationale_words()


def test_ratings_follow_quality_with_noise_and_stay_on_the_scale():
    rng = random.Random(0)
    low = [sc.rating(-1.0, rng) for _ in range(300)]
    high = [sc.rating(1.0, rng) for _ in range(300)]
    assert set(low) | set(high) <= set(range(1, 11))
    assert np.mean(low) < 2 and np.mean(high) > 9
    assert sc.rating(0.0, random.Random(0), noise=0.0) == round(1 + 9 * 0.5)


def test_critics_prefer_the_better_summary_as_often_as_their_noise_says():
    sharp = [ws.Rater("sharp", 1e-3)]
    docs = [d for d in sc.labeller_corpus(300, critics=sharp, seed=2, kinds={"comparison": 1.0})]
    agree = []
    for d in docs:
        post = sc.post_from_dict(d["post"])
        q1, q2 = ws.summary_quality(post, d["first"]), ws.summary_quality(post, d["second"])
        if abs(q1 - q2) > 1e-9:
            agree.append((d["preferred"] == 1) == (q1 > q2))
    assert np.mean(agree) == 1.0


def test_posts_round_trip_and_bad_arguments_are_refused():
    post = ws.make_post(random.Random(5), 7)
    assert sc.post_from_dict(sc.post_to_dict(post)) == post
    assert sc.post_text("a title", "the body") == "a title : the body" and sc.post_text(None, "b") == "b"
    with pytest.raises(ValueError, match="critic"):
        sc.labeller_corpus(3, critics=[])
    with pytest.raises(ValueError, match="kinds"):
        sc.labeller_corpus(3, critics=CRITICS, kinds={"poems": 1.0})
    with pytest.raises(ValueError, match="n_docs"):
        sc.labeller_corpus(-1, critics=CRITICS)
