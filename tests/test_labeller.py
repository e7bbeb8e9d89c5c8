"""The RLAIF labeller: prompts, the one-pass "1"/"2" read-out, both orders, chain of thought,
self-consistency and d-RLAIF scores. The arithmetic is checked with a scripted generator whose
log-probabilities are known; a real tiny Llama checks that the batched path runs end to end."""

import math
import random

import numpy as np
import pandas as pd
import pytest

from repro.judges import labeller as lb


class Scripted:
    """A generator whose next-token log-probabilities come from a function of the prompt."""

    def __init__(self, logits, rationale=lambda prompt, i: f"because {i}"):
        self.logits, self.rationale, self.prompts, self.generated = logits, rationale, [], []

    def score_next_token_logprobs(self, prompts, candidates, batch_size=None):
        self.prompts += list(prompts)
        rows = np.array([self.logits(p, candidates) for p in prompts], dtype=float)
        return rows - np.log(np.exp(rows).sum(axis=1, keepdims=True))  # a proper log-softmax over candidates

    def generate(self, prompts, config):
        self.generated.append((list(prompts), config))
        return [[self.rationale(p, i) for i in range(config.n)] for p in prompts]


def first_line_with(prompt, word):
    """1 if the word is in the current pair's first summary, 2 if in the second."""
    current = prompt.split("\n\n")[-1]
    for line in current.splitlines():
        if line.startswith(("Summary 1", "summary 1")) and word in line:
            return 1
        if line.startswith(("Summary 2", "summary 2")) and word in line:
            return 2
    return 0


PAIRS = [("the text", "a good summary", "a bad summary"), ("another text", "a bad one", "a good one")]


def test_averaging_both_orders_cancels_a_pure_position_bias():
    always_first = Scripted(lambda p, c: [math.log(0.9), math.log(0.1)])
    labels = lb.label_pairs(always_first, PAIRS).frame
    assert labels.p_ab.tolist() == pytest.approx([0.9, 0.9]) and labels.p_ba.tolist() == pytest.approx([0.1, 0.1])
    assert labels.p_a.tolist() == pytest.approx([0.5, 0.5]) and labels.same_position.all()
    one_order = lb.label_pairs(always_first, PAIRS, lb.LabelSpec(both_orders=False)).frame
    assert one_order.p_a.tolist() == pytest.approx([0.9, 0.9]) and one_order.p_ba.isna().all()


def test_a_labeller_that_reads_content_is_consistent_across_orders():
    reader = Scripted(lambda p, c: [2.0, 0.0] if first_line_with(p, "good") == 1 else [0.0, 2.0])
    labels = lb.label_pairs(reader, PAIRS).frame
    p = 1 / (1 + math.exp(-2))
    assert labels.p_a.tolist() == pytest.approx([p, 1 - p]) and labels.label.tolist() == [0, 1]
    assert not labels.same_position.any()
    assert len(reader.prompts) == 4 and all(q.endswith("Preferred Summary=") for q in reader.prompts)


def test_chain_of_thought_reads_after_each_rationale_and_self_consistency_averages():
    def logits(prompt, candidates):  # the read-out follows the rationale's last word
        return [1.0, 0.0] if "Rationale: one\n" in prompt else [0.0, 1.0]

    def rationale(prompt, i):
        return ["one", "two", "one Preferred Summary=2", "one"][i]  # the third answers by itself

    greedy = Scripted(logits, rationale)
    labels = lb.label_pairs(greedy, PAIRS[:1], lb.LabelSpec(cot=True, both_orders=False)).frame
    prompts, config = greedy.generated[0]
    assert prompts[0].endswith("Explain which summary is better and why.\nRationale:") and config.temperature == 0.0
    assert labels.p_ab[0] == pytest.approx(1 / (1 + math.exp(-1)))
    sampled = Scripted(logits, rationale)
    config = lb.LabelSpec(cot=True, rationales=4, temperature=0.3, both_orders=False)
    labels = lb.label_pairs(sampled, PAIRS[:1], config).frame
    s = 1 / (1 + math.exp(-1))
    assert labels.p_ab[0] == pytest.approx((3 * s + (1 - s)) / 4)  # averaged over the 4 rationales
    assert sampled.generated[0][1].n == 4 and sampled.generated[0][1].temperature == 0.3
    assert config.name == "Base + CoT 0-shot, 4 samples at T 0.3"


def test_prompts_follow_the_papers_structure_in_both_wordings():
    shot = lb.Exemplar("t0", "s a", "s b", preferred=2, rationale="b covers more")
    config = lb.LabelSpec(preamble="detailed", exemplars=(shot,), cot=True)
    prompt = lb.labeller_prompt("t1", "x", "y", config, rationale="x is wrong")
    blocks = prompt.split("\n\n")
    assert blocks[0] == lb.PREAMBLES["plain"]["detailed"]
    ask = "Explain which summary is better and why.\nRationale:"
    assert blocks[1] == f"Text - t0\nSummary 1 - s a\nSummary 2 - s b\n{ask} b covers more\nPreferred Summary=2"
    assert blocks[2] == f"Text - t1\nSummary 1 - x\nSummary 2 - y\n{ask} x is wrong\nPreferred Summary="
    assert config.name == "Detailed + CoT 1-shot"
    compact = lb.labeller_prompt("t", "x", "y", lb.LabelSpec(wording="compact"))
    assert compact.endswith("summary 2 : y\nbetter summary :")
    words = set(compact.replace("t\n", " ").split()) - {"t", "x", "y"}
    assert words <= lb.template_words()
    with pytest.raises(ValueError, match="preamble"):
        lb.LabelSpec(preamble="long")
    with pytest.raises(ValueError, match="preferred"):
        lb.Exemplar("t", "a", "b", preferred=0)


def test_direct_scores_are_expected_ratings_rescaled():
    uniform = Scripted(lambda p, c: [0.0] * len(c))
    assert lb.direct_scores(uniform, [("t", "s")]).tolist() == pytest.approx([0.0])
    best = Scripted(lambda p, c: [0.0] * 9 + [50.0])
    worst = Scripted(lambda p, c: [50.0] + [0.0] * 9)
    assert lb.direct_scores(best, [("t", "s")])[0] == pytest.approx(1.0)
    assert lb.direct_scores(worst, [("t", "s")])[0] == pytest.approx(-1.0)
    assert best.prompts[0].endswith("Summary - s\nScore=") and best.prompts[0] == lb.score_prompt("t", "s")


def test_a_tiny_llama_labels_world_pairs_in_one_batched_pass():
    from repro.generation import HFGenerator
    from repro.models import build_tokenizer, make_llama
    from repro.world import summaries as ws

    tokenizer = build_tokenizer(sorted(set(ws.summary_vocabulary()) | lb.template_words()))
    generator = HFGenerator(make_llama("XS", tokenizer, seed=0), tokenizer, progress=False)
    rng = random.Random(0)
    pairs = []
    for i in range(6):
        post = ws.make_post(rng, i)
        pairs.append((post.body, ws.reference_summary(post), ws.write_summary(post, ws.SummarySpec(1), rng)))
    config = lb.LabelSpec(wording="compact", preamble="detailed")
    labels = lb.label_pairs(generator, pairs, config).frame
    assert len(labels) == 6 and labels.p_a.between(0, 1).all() and labels.p_ab.between(0, 1).all()
    cot = lb.label_pairs(generator, pairs[:2], lb.LabelSpec(wording="compact", cot=True, max_rationale_tokens=6))
    assert len(cot.rationales) == 2 and cot.frame.p_a.between(0, 1).all()
    scores = lb.direct_scores(generator, [(t, a) for t, a, _ in pairs], wording="compact")
    assert scores.shape == (6,) and np.all(np.abs(scores) <= 1)


# -- any output of the labeller model: never a crash, always counted -----------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ANY_TEXT = st.one_of(st.text(max_size=200), st.just(""), st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=8), st.integers(2_000, 4_000)),
                     st.sampled_from(["Preferred Summary=", "Preferred Summary=1 Preferred Summary=2", "\x00\ufffd",
                                      "Rationale: Rationale:", "summary 3", "-1", "1e309"]))
LOGPROB = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(-50, 0))


@settings(max_examples=300, deadline=None)
@given(rationales=st.lists(ANY_TEXT, min_size=6, max_size=6), rows=st.lists(st.tuples(LOGPROB, LOGPROB), min_size=16,
                                                                            max_size=16),
       cot=st.booleans(), rationale_count=st.integers(1, 3))
def test_any_rationale_and_any_read_out_gives_a_label_or_a_counted_unreadable(rationales, rows, cot, rationale_count):
    from repro.studies.rlaif.stages import alignment_metrics, reward_records

    class Anything:
        def __init__(self):
            self.calls = 0

        def score_next_token_logprobs(self, prompts, candidates, batch_size=None):
            out = [rows[(self.calls + i) % len(rows)] for i in range(len(prompts))]
            self.calls += len(prompts)
            return np.array(out, dtype=float)

        def generate(self, prompts, config):
            return [[rationales[(i + j) % len(rationales)] for j in range(config.n)] for i in range(len(prompts))]

    config = lb.LabelSpec(cot=cot, rationales=rationale_count if cot else 1, temperature=0.7 if cot else 0.0)
    with np.errstate(all="ignore"):
        frame = lb.label_pairs(Anything(), PAIRS * 2, config).frame
    p = frame.p_a.to_numpy()
    assert np.all(np.isnan(p) | ((p >= 0) & (p <= 1)))
    assert (frame.readable == ~np.isnan(p)).all()
    assert set(frame.label) <= {0, 1, -1} and ((frame.label == -1) == ~frame.readable).all()
    metrics = alignment_metrics(frame.assign(choice=[0, 1, 0, 1]))
    assert metrics["unreadable"] == int((~frame.readable).sum()) and 0 <= metrics["alignment"] <= 1
    comparisons = pd.DataFrame({"post": ["p"] * 4, "title": ["t"] * 4, "subreddit": ["s"] * 4,
                                "summary_0": ["a"] * 4, "summary_1": ["b"] * 4, "choice": [0, 1, 0, 1]})
    for kind in ("ai_soft", "ai_hard"):  # a pair without a label gives no training record
        assert len(reward_records(comparisons, kind, frame)) == int(frame.readable.sum())
