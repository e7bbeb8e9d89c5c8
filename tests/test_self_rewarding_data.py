"""Seed data of the self-rewarding study: IFT, EFT candidates, the agreement filter, rebalancing."""

import pandas as pd

from repro import world
from repro.judges.parsing import parse_score
from repro.studies.self_rewarding import data as sd

SPEC = sd.SeedDataSpec(ift_size=60, eft_train_prompts=20, eft_eval_prompts=10)


def test_ift_records_are_correct_concise_responses_in_trl_format():
    records = sd.ift_records(SPEC)
    assert len(records) == 60 and len({r["uid"] for r in records}) == 60
    for r in records:
        task = world.parse_prompt(r["prompt"][0]["content"])
        assert r["prompt"][0]["role"] == "user" and r["completion"][0]["role"] == "assistant"
        assert world.oracle_score(task, r["completion"][0]["content"]) == 5
    assert sd.ift_records(SPEC) == records  # deterministic


def test_eft_candidates_have_distinct_known_qualities_and_never_overlap():
    ift = {r["uid"] for r in sd.ift_records(SPEC)}
    train = sd.eft_candidates(SPEC, SPEC.eft_train_prompts, stream=0, exclude=ift)
    evaluation = sd.eft_candidates(SPEC, SPEC.eft_eval_prompts, stream=1, exclude=ift | set(train.prompt_id))
    assert train.groupby("prompt_id").gold.nunique().eq(SPEC.responses_per_prompt).all()
    assert not (set(train.prompt_id) & set(evaluation.prompt_id)) and not (set(train.prompt_id) & ift)
    for row in train.itertuples():
        assert world.oracle_score(world.parse_prompt(row.prompt), row.response) == row.gold


def test_rankings_agree_requires_every_pair_in_the_gold_order():
    frame = pd.DataFrame({
        "prompt_id": ["a"] * 3 + ["b"] * 3 + ["c"] * 2 + ["d"] * 2,
        "gold": [5, 3, 1, 5, 3, 1, 4, 2, 4, 2],
        "judge": [4.0, 3.0, 0.5, 4.0, 4.0, 1.0, 1.0, 3.0, float("nan"), 1.0],
    })
    agree = sd.rankings_agree(frame)
    assert agree.to_dict() == {"a": True, "b": False, "c": False, "d": False}  # b ties, c reversed, d missing


def test_rebalance_caps_the_most_frequent_score():
    frame = pd.DataFrame({"judge": [4] * 10 + [3] * 4 + [5] * 2})
    out = sd.rebalance(frame, seed=1)
    assert out.judge.value_counts().to_dict() == {4: 4, 3: 4, 5: 2}
    assert sd.rebalance(pd.DataFrame({"judge": [1, 1]})).shape[0] == 2


def test_eft_records_hold_the_judge_prompt_and_a_parsable_judgment():
    ift = {r["uid"] for r in sd.ift_records(SPEC)}
    frame = sd.eft_candidates(SPEC, 5, stream=0, exclude=ift)
    frame["judgment"] = sd.oracle_judgments(frame)
    records = sd.eft_records(frame)
    assert len(records) == len(frame)
    for record, row in zip(records, frame.itertuples()):
        assert record["prompt"][0]["content"].endswith(f"task : {row.prompt} response : {row.response}")
        assert parse_score(record["completion"][0]["content"]).value == row.gold
