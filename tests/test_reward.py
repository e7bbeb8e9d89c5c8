"""Reward models with trl's RewardTrainer: the soft-label loss, its records, and a tiny model that
learns to rank the world's summaries."""

import math
import random

import pytest
import torch

from repro.training.reward import (
    RewardSpec,
    make_reward_model,
    reward_dataset,
    reward_scores,
    soft_preference_loss,
    train_reward,
)


def test_the_soft_loss_by_hand_and_its_hard_limit():
    rc, rr = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 1.0])
    p = torch.tensor([0.75, 0.5])
    s1, s2 = 1 / (1 + math.exp(-2)), 1 / (1 + math.exp(1))
    by_hand = -((0.75 * math.log(s1) + 0.25 * math.log(1 - s1)) + (0.5 * math.log(s2) + 0.5 * math.log(1 - s2))) / 2
    assert soft_preference_loss(rc, rr, p).item() == pytest.approx(by_hand)
    hard = -torch.nn.functional.logsigmoid(rc - rr).mean()
    assert soft_preference_loss(rc, rr, torch.ones(2)).item() == pytest.approx(hard.item())  # trl's loss at p = 1


def test_records_are_checked():
    assert reward_dataset([{"chosen": "a", "rejected": "b", "soft_label": 0.7}]).column_names == ["chosen", "rejected", "soft_label"]
    assert reward_dataset([{"chosen": "a", "rejected": "b"}]).column_names == ["chosen", "rejected"]
    for bad, message in [([{"chosen": "a"}], "must have 'chosen' and 'rejected'"),
                         ([{"chosen": "a", "rejected": "b", "soft_label": 1.5}], "probability"),
                         ([{"chosen": "a", "rejected": "b", "soft_label": True}], "probability"),
                         ([{"chosen": "a", "rejected": "b", "soft_label": 0.5}, {"chosen": "a", "rejected": "b"}],
                          "every record has a soft_label or none")]:
        with pytest.raises(ValueError, match=message):
            reward_dataset(bad)


@pytest.mark.slow
def test_a_tiny_reward_model_learns_to_rank_world_summaries_from_soft_labels(tmp_path):
    from repro.models import build_tokenizer, make_llama, save_model
    from repro.world import summaries as ws

    tokenizer = build_tokenizer(ws.summary_vocabulary())
    save_model(make_llama("XS", tokenizer, seed=0), tokenizer, tmp_path / "lm")
    model = make_reward_model(tmp_path / "lm", seed=0)
    rng = random.Random(0)

    def pair():
        post = ws.make_post(rng)
        good, bad = ws.reference_summary(post), ws.write_summary(post, ws.SummarySpec(1, hallucinated=1), rng)
        return f"{post.body} {good}", f"{post.body} {bad}"

    train = []  # half the pairs name the worse summary "chosen" with soft label 0.2: ignoring the soft
    for i in range(160):  # labels (trl's hard loss) would teach the wrong order on those
        good, bad = pair()
        train.append({"chosen": good, "rejected": bad, "soft_label": 0.8} if i % 2 else
                     {"chosen": bad, "rejected": good, "soft_label": 0.2})
    held_out = [pair() for _ in range(30)]
    before = reward_scores(model, tokenizer, [t for p in held_out for t in p])
    result = train_reward(model, tokenizer, train, RewardSpec(num_train_epochs=3, batch_size=8, seed=0), tmp_path / "t")
    after = reward_scores(model, tokenizer, [t for p in held_out for t in p])
    accuracy = sum(after[2 * i] > after[2 * i + 1] for i in range(30)) / 30
    assert result.steps == 60 and result.losses[-1][1] < result.losses[0][1]
    assert accuracy >= 0.9, (accuracy, before[:4], after[:4])
    assert any("accuracy" in entry for entry in result.log_history)  # trl's reward metrics are still logged
