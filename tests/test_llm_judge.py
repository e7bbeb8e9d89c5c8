"""LLM-as-a-Judge: K samples per pair from one generator call, averaged; unreadable scores counted."""

import math

import pytest

from repro.judges.llm_judge import JudgeSpec, judge
from repro.judges.rubric import TEMPLATES, judge_prompt, template_words


class ScriptedJudge:
    """A fake judge model: returns canned judgments per pair and records each call."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def generate(self, prompts, config):
        self.calls.append((prompts, config))
        return [self.answers[i][: config.n] for i in range(len(prompts))]


def test_scores_are_averaged_over_readable_judgments_and_failures_counted():
    fake = ScriptedJudge([
        ["fine . score : 4 .", "score : 5", "score : 3 ."],        # mean 4
        ["score : 2 .", "no score here", "score : 9 ."],           # only 2 is readable
        ["i do not know .", "", "score : four"],                   # nothing readable
    ])
    result = judge(fake, [("t1", "r1"), ("t2", "r2"), ("t3", "r3")], JudgeSpec(samples=3))
    assert len(fake.calls) == 1 and fake.calls[0][1].n == 3  # one batched call, K return sequences
    assert result.scores[0] == pytest.approx(4.0) and result.scores[1] == pytest.approx(2.0)
    assert math.isnan(result.scores[2])  # never a silent zero
    assert result.frame.parsed.tolist() == [3, 1, 0]
    assert result.frame.scores[1] == [2.0, None, None]
    tally = result.tally.as_dict()
    assert tally["ok"] == 4 and tally["total"] == 9 and tally["out_of_range"] == 1


def test_judge_prompts_follow_the_template():
    fake = ScriptedJudge([["score : 1 ."]])
    judge(fake, [("sort these : 3 1 .", "1 3 .")], JudgeSpec(samples=1))
    [message] = fake.calls[0][0][0]
    assert message["role"] == "user"
    assert message["content"] == judge_prompt("sort these : 3 1 .", "1 3 .")
    assert "task : sort these : 3 1 . response : 1 3 ." in message["content"]


def test_empty_input_and_bad_config():
    result = judge(ScriptedJudge([]), [], JudgeSpec())
    assert result.frame.empty and result.tally.total == 0
    with pytest.raises(ValueError, match="samples must be >= 1"):
        JudgeSpec(samples=0)
    with pytest.raises(ValueError, match="unknown judge template"):
        judge_prompt("a", "b", template="nope")


def test_templates_follow_the_papers_structure():
    for text in TEMPLATES.values():
        lowered = text.lower()
        for needle in ("relevant", "substantial", "basic elements", "direct", "score"):
            assert needle in lowered
        assert "{prompt}" in text and "{response}" in text
    assert "score" in template_words("compact") and "{prompt}" not in " ".join(template_words("compact"))


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ANY_OUTPUT = st.one_of(st.text(max_size=300), st.binary(max_size=200), st.none(), st.just(""),
                       st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=8), st.integers(2_000, 4_000)), st.integers(),
                       st.builds(lambda xs: " ".join(f"score : {x}" for x in xs), st.lists(st.integers(-9, 99))),
                       st.sampled_from(["score : 4.5.5", "Score: **5**/5", "score: 1e400", "score : nan", "score:-0",
                                        "score : 4 out of 10", "\x00score\x00: 3"]))


@settings(max_examples=300, deadline=None)
@given(outputs=st.lists(st.lists(ANY_OUTPUT, min_size=2, max_size=2), min_size=1, max_size=4))
def test_any_judge_output_never_crashes_and_every_judgment_is_counted(outputs):
    result = judge(ScriptedJudge(outputs), [(f"t{i}", f"r{i}") for i in range(len(outputs))], JudgeSpec(samples=2))
    tally = result.tally.as_dict()
    assert tally["total"] == 2 * len(outputs) == sum(v for k, v in tally.items() if k != "total")
    assert result.frame.parsed.sum() == tally["ok"]
    for score, parsed in zip(result.scores, result.frame.parsed):
        assert (math.isnan(score) and parsed == 0) or (0 <= score <= 5 and parsed > 0)


class CueJudge(ScriptedJudge):
    """A scripted judge that also reads next-token log-probabilities: after ``Score: `` it prefers the
    number of points that ``favourite`` gives for the judgment text."""

    def __init__(self, answers, favourite):
        super().__init__(answers)
        self.favourite, self.scored = favourite, []

    def score_next_token_logprobs(self, prompts, candidates, *, batch_size=None):
        import numpy as np

        self.scored.append(prompts)
        rows = []
        for conversation in prompts:
            reply = conversation[-1]
            assert reply["role"] == "assistant" and reply["content"].endswith("\nScore: ")
            logits = np.full(len(candidates), -5.0)
            logits[self.favourite(reply["content"])] = -0.1
            rows.append(logits)
        return np.array(rows)


def test_the_cue_read_out_scores_only_the_judgments_without_a_score_and_counts_them():
    answers = [["Helpful and correct. Score: 4", "It answers the question well"],
               ["Not relevant at all", "Score: 1"]]
    favourite = lambda text: 5 if "well" in text else 0  # noqa: E731
    fake = CueJudge(answers, favourite)
    result = judge(fake, [("q1", "a1"), ("q2", "a2")], JudgeSpec(samples=2, readout="cue"))
    assert result.frame.scores.tolist() == [[4.0, 5.0], [0.0, 1.0]]
    assert result.frame.read_at_cue.tolist() == [1, 1] and result.read_at_cue == 2
    assert result.tally.as_dict()["ok"] == 2  # the tally counts what was written, before the cue
    [batch] = fake.scored  # one read-out for every judgment that needed it, none for the others
    assert [c[-1]["content"] for c in batch] == ["It answers the question well\nScore: ", "Not relevant at all\nScore: "]
    assert batch[0][0]["content"] == judge_prompt("q1", "a1")
    plain = judge(CueJudge(answers, favourite), [("q1", "a1"), ("q2", "a2")], JudgeSpec(samples=2))
    assert plain.frame.scores.tolist() == [[4.0, None], [None, 1.0]] and plain.read_at_cue == 0


def test_the_read_out_enters_keys_only_when_it_is_asked_for():
    from dataclasses import asdict

    assert JudgeSpec().key() == {k: v for k, v in asdict(JudgeSpec()).items() if k != "readout"}
    assert JudgeSpec(readout="cue").key()["readout"] == "cue"
    with pytest.raises(ValueError, match="unknown judge read-out"):
        JudgeSpec(readout="guess")


def test_a_conversation_ending_in_the_assistants_words_is_continued_not_answered():
    from repro.generation.base import encode_prompts
    from repro.models import build_tokenizer

    tokenizer = build_tokenizer("the score is good".split())
    user = [{"role": "user", "content": "the score"}]
    opened = encode_prompts(tokenizer, [[*user, {"role": "assistant", "content": "is good"}]])[0]
    asked = encode_prompts(tokenizer, [user])[0]
    reply = tokenizer("is good", add_special_tokens=False)["input_ids"]
    assert opened[: len(asked)] == asked and opened[len(asked):] == reply  # the reply's start, left open
