"""Gold judges: the world's oracle scores world prompts and nothing else; no gold scores nothing."""

import random

import numpy as np

from repro import world
from repro.evaluation.gold import NO_GOLD, ORACLE


def test_the_oracle_scores_world_tasks_and_leaves_other_prompts_unscored():
    task = world.make_task("sort", random.Random(0), difficulty=1)
    scores = ORACLE.score([task.prompt, task.prompt, "tell me a joke"], [task.answer, "no idea", "ha"])
    assert scores[0] == 5 and scores[1] == world.oracle_score(task, "no idea") and np.isnan(scores[2])
    assert ORACLE.key()["gold"] == "oracle" and NO_GOLD.key() != ORACLE.key()


def test_no_gold_gives_one_nan_per_response():
    assert np.isnan(NO_GOLD.score(["a", "b"], ["c", "d"])).all() and len(NO_GOLD.score([], [])) == 0
