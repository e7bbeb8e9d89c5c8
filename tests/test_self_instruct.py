"""Self-instruction creation: ROUGE-L, the few-shot prompt, extraction, the filter and the loop."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repro import world
from repro.generation import GenerationSpec, Generator
from repro.studies.self_rewarding.self_instruct import (
    REASONS,
    PromptFilter,
    RougeIndex,
    SelfInstructResult,
    extract_prompt,
    few_shot_prompt,
    generate_prompts,
    keyword_check,
    lcs_length,
    rouge_l,
    sample_examples,
)

SEEDS = [t.prompt for t in world.sample_tasks(12, seed=5, difficulty=(1, 2))]


# -- ROUGE-L ---------------------------------------------------------------------------------------
def _lcs_dp(a: list[str], b: list[str]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1]


@pytest.mark.parametrize(
    "candidate, reference, expected",
    [
        ("what is 2 plus 3 ?", "what is 2 plus 3 ?", 1.0),
        ("a b c", "d e f", 0.0),
        ("a b c d", "a c", 2 * 2 / 6),  # LCS "a c": P 2/4, R 2/2, F = 2PR/(P+R) = 2/3
        ("the cat sat on the mat", "the cat on a mat", 2 * 4 / 11),  # LCS "the cat on mat"
        ("a b", "b a", 0.5),  # order matters: LCS 1
        ("What IS  2 plus 3 ?", "what is 2 plus 3 ?", 1.0),  # lowercased, whitespace tokens
        ("what is 2 plus 3?", "what is 2 plus 3 ?", 2 * 4 / 11),  # "3?" is one token
        ("", "a b", 0.0),
        ("", "", 0.0),
    ],
)
def test_rouge_l_hand_computed(candidate, reference, expected):
    assert rouge_l(candidate, reference) == pytest.approx(expected)
    assert rouge_l(reference, candidate) == pytest.approx(expected)  # F1 is symmetric


def test_rouge_l_against_hand_formula():
    # P = 3/5, R = 3/4 -> F = 2PR / (P + R) = 2/3
    assert rouge_l("x a y b c", "a b z c") == pytest.approx(2 * (3 / 5) * (3 / 4) / (3 / 5 + 3 / 4))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from("abcd"), max_size=70), st.lists(st.sampled_from("abcd"), max_size=70))
def test_bit_parallel_lcs_equals_dynamic_programming(a, b):
    assert lcs_length(a, b) == _lcs_dp(a, b)


def test_rouge_index_finds_the_exact_maximum():
    refs = [t.prompt for t in world.sample_tasks(150, seed=11, difficulty=(1, 2))]
    index = RougeIndex(refs)
    for query in [t.prompt for t in world.sample_tasks(40, seed=12, difficulty=(1, 2))] + ["junk words", refs[3]]:
        best = max(rouge_l(query, r) for r in refs)
        score, ref = index.nearest(query)
        assert score == pytest.approx(best)
        if best > 0:
            assert rouge_l(query, refs[ref]) == pytest.approx(best)
        found, ref = index.exceeds(query, 0.7)
        assert (ref is not None) == (best > 0.7)
        if ref is not None:
            assert found > 0.7 and rouge_l(query, refs[ref]) == pytest.approx(found)
    assert index.exact_comparisons < 42 * len(refs) / 4  # the bound prunes most comparisons


# -- the few-shot prompt -------------------------------------------------------------------------
def test_few_shot_prompt_list_format():
    assert few_shot_prompt(["p1 ?", "p2 ."]) == "here are some tasks : 1 . p1 ? 2 . p2 . 3 ."
    assert few_shot_prompt(["p1 ?"], intro="a list of tasks :") == "a list of tasks : 1 . p1 ? 2 ."
    prompt = few_shot_prompt(SEEDS[:8])
    assert prompt.startswith("here are some tasks : 1 . " + SEEDS[0]) and prompt.endswith(f"{SEEDS[7]} 9 .")
    # the corpus's reader gives the examples back
    assert world.split_task_list(prompt) == SEEDS[:8]


def test_few_shot_prompt_chat_style():
    prompt = few_shot_prompt(SEEDS[:8], style="chat")
    assert isinstance(prompt, list) and len(prompt) == 1 and prompt[0]["role"] == "user"
    content = prompt[0]["content"]
    assert all(f"Task {i + 1}: {SEEDS[i]}" in content for i in range(8))
    assert "Task 9" in content and "one new task" in content


def test_few_shot_prompt_errors():
    with pytest.raises(ValueError, match="style"):
        few_shot_prompt(["p"], style="poem")
    with pytest.raises(ValueError, match="at least one"):
        few_shot_prompt([])


# -- extraction ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "completion, number, expected",
    [
        ("what is 12 plus 30 ?", 9, "what is 12 plus 30 ?"),  # clean
        ("What is 12 plus 030?  ", 9, "what is 12 plus 30 ?"),  # tolerant, world text
        ("what is 12 plus 30 ? 10 . sort these numbers", 9, "what is 12 plus 30 ?"),  # next item cut off
        ("what is 12 plus 30 ? 10 . x 11 . y", 9, "what is 12 plus 30 ?"),
        ("what is 12 plus 30 ? cat dog", 9, "what is 12 plus 30 ? cat dog"),  # trailing junk, no marker: kept
        ("cat dog mat", 9, "cat dog mat"),  # no marker at all
        ("what is 12 plus 30 ? 4 . next", None, "what is 12 plus 30 ?"),  # any number without `number`
        ("3 . what is 1 plus 1 ? 4 . more", None, "what is 1 plus 1 ?"),  # starts with its own marker
        ("", 9, None),
        ("   ", 9, None),
        (None, 9, None),
        ("10 . ", 9, None),
    ],
)
def test_extract_prompt_world_text(completion, number, expected):
    assert extract_prompt(completion, number=number) == expected


def test_extract_prompt_keeps_a_prompt_that_ends_like_a_marker():
    # "add 4 and 2 ." could end with a "2 ." pair; the span that parses is taken
    task = world.parse_prompt("what is 4 plus 2 ?")
    assert task is not None
    assert extract_prompt("what is 4 plus 2 ? 10 . what is 1 plus 1 ?", number=9) == "what is 4 plus 2 ?"


@pytest.mark.parametrize(
    "completion, expected",
    [
        ("Write a haiku about rain.", "Write a haiku about rain."),
        ("Task 9: Write a haiku about rain.\nTask 10: Name a river.", "Write a haiku about rain."),
        ("9. Explain photosynthesis simply. 10. List three fruits.", "Explain photosynthesis simply."),
        ('"Summarise the French Revolution in 3 sentences."', "Summarise the French Revolution in 3 sentences."),
        ("Give me 3 reasons to learn Go.", "Give me 3 reasons to learn Go."),
        ("", None),
        ("Task 9:", None),
    ],
)
def test_extract_prompt_real_text(completion, expected):
    assert extract_prompt(completion, world_text=False) == expected


# -- the filter ----------------------------------------------------------------------------------
def test_prompt_filter_reasons_and_counts():
    seeds = ["sort these numbers from small to large : 12 7 30 .", "what is 12 plus 30 ?"]
    filt = PromptFilter(seeds, min_tokens=4, max_tokens=30)
    long_text = "here is a list : " + " ".join(["red"] * 40) + " . reverse the list ."
    cases = [
        ("what is 5 plus 7 ?", None),  # new and valid: accepted
        (None, "empty"),
        ("   ", "empty"),
        ("what ?", "too_short"),
        (long_text, "too_long"),
        ("What is 12 plus 30 ?", "exact_duplicate"),  # of a seed (case and spacing ignored)
        ("what is 5 plus 7 ?", "exact_duplicate"),  # of an accepted prompt
        ("what is 12 plus banana ?", "invalid"),
        ("what is 12 plus 31 ?", "near_duplicate"),  # ROUGE-L 2 * 5 / 12 with the seed
        ("what is 5 plus 8 ?", "near_duplicate"),  # with the accepted prompt
        ("count how often bat appears : ant ant bat cat rat rat .", None),
    ]
    for text, reason in cases:
        verdict = filt.consider(text)
        assert verdict.accepted == (reason is None), text
        assert verdict.reason == reason, text
    assert filt.accepted == ["what is 5 plus 7 ?", "count how often bat appears : ant ant bat cat rat rat ."]
    assert [t.family for t in filt.values] == ["arithmetic", "count"]  # the world check keeps the tasks
    assert filt.tally() == {"empty": 2, "too_short": 1, "too_long": 1, "exact_duplicate": 2, "invalid": 1,
                            "near_duplicate": 2}
    assert list(filt.tally()) == list(REASONS)
    near = filt.consider("what is 12 plus 32 ?")
    # rejected candidates are not references: it is a near duplicate of the seed, not of "... 31 ?"
    assert near.duplicate_of == "what is 12 plus 30 ?" and near.rouge_l == pytest.approx(5 / 6)
    assert near.value is not None and near.value.answer == "44 ."


def test_prompt_filter_threshold_and_pluggable_validity():
    filt = PromptFilter(["what is 12 plus 30 ?"], rouge_threshold=0.9, validate=None, min_tokens=1)
    assert filt.consider("what is 12 plus 31 ?").accepted  # 5/6 < 0.9
    assert filt.consider("banana").accepted  # no validity check
    check = keyword_check()
    filt = PromptFilter(["Write a poem about the sea."], validate=check)
    assert filt.consider("Draw a picture of a cat.").reason == "invalid"
    assert filt.consider("?? what is this").reason == "invalid"
    assert filt.consider("Explain how tides work on Earth.").accepted
    assert filt.values == [True]
    assert check("Describe a mapping of keys") and not check("Show me the map of Paris")
    with pytest.raises(ValueError):
        PromptFilter(rouge_threshold=1.5)
    with pytest.raises(ValueError):
        PromptFilter(min_tokens=10, max_tokens=5)
    with pytest.raises(ValueError):
        PromptFilter([""])


# -- the generation loop -------------------------------------------------------------------------
class FakeGenerator:
    """A deterministic stand-in for a model: for each prompt, a new world task (or junk), followed by
    the start of another item; records its calls."""

    def __init__(self, junk_only: bool = False) -> None:
        self.calls: list[tuple[list, GenerationSpec]] = []
        self.junk_only = junk_only

    def generate(self, prompts, config):
        self.calls.append((list(prompts), config))
        out = []
        for i, prompt in enumerate(prompts):
            rng = random.Random(f"{config.seed}-{i}-{prompt}")
            kind = (i + config.seed) % 10  # one prompt in ten of each kind of junk
            if self.junk_only or kind == 0:
                text = "cat cat sat mat on ."  # invalid
            elif kind == 1:
                out.append([""] * config.n)  # the model ends at once
                continue
            elif kind == 2:
                text = "sort ."  # too short
            elif kind == 3:
                text = rng.choice(world.split_task_list(prompt))  # copies an example
            else:
                family = rng.choice(world.FAMILIES)
                text = world.make_task(family, rng, rng.choice([1, 2])).prompt
            out.append([f"{text} 10 . what is"] * config.n)
        return out


def test_fake_generator_is_a_generator():
    assert isinstance(FakeGenerator(), Generator)


def test_generate_prompts_batches_and_reaches_n_wanted():
    gen = FakeGenerator()
    result = generate_prompts(gen, SEEDS, 30, batch_size=16, seed=3, max_rounds=20)
    assert isinstance(result, SelfInstructResult)
    assert result.complete and len(result.prompts) == 30
    assert len(gen.calls) == result.rounds >= 2  # one generate call per round
    for prompts, config in gen.calls:
        assert len(prompts) == 16 and config.n == 1
        assert (config.temperature, config.top_p) == (0.6, 0.9)
        assert all(isinstance(p, str) and p.endswith(" 9 .") for p in prompts)
    assert result.candidates == 16 * result.rounds
    assert sum(result.rejections.values()) + len(result.prompts) + result.surplus == result.candidates
    assert len(result.log) == result.candidates - result.surplus
    # every accepted prompt is a world task, new and not near any seed or other accepted prompt
    assert [t.prompt for t in result.tasks] == result.prompts
    assert all(world.parse_prompt(p) is not None for p in result.prompts)
    assert not set(result.prompts) & set(SEEDS) and len(set(result.prompts)) == 30
    kept = SEEDS + result.prompts
    for i, p in enumerate(result.prompts):
        assert max(rouge_l(p, q) for q in kept[: len(SEEDS) + i]) <= 0.7
    # the fake writes every kind of reject
    for reason in ("empty", "too_short", "invalid", "exact_duplicate", "near_duplicate"):
        assert result.rejections[reason] > 0, reason
    assert result.rejections["too_long"] == 0


def test_examples_are_six_seeds_and_two_generated_once_there_are_two():
    gen = FakeGenerator()
    result = generate_prompts(gen, SEEDS, 40, batch_size=8, seed=1, max_rounds=20)
    first_prompts = gen.calls[0][0]
    for prompt in first_prompts:  # nothing generated yet: 8 seed prompts
        examples = world.split_task_list(prompt)
        assert len(examples) == 8 and set(examples) <= set(SEEDS)
    last_prompts = gen.calls[-1][0]
    for prompt in last_prompts:
        examples = world.split_task_list(prompt)
        assert len(examples) == 8
        assert sum(e in SEEDS for e in examples) == 6
        assert sum(e in result.prompts for e in examples) == 2


def test_sample_examples_falls_back_to_seeds():
    rng = random.Random(0)
    assert sorted(sample_examples(rng, SEEDS[:8], ["g1"], 8, 6)) == sorted(SEEDS[:8])
    got = sample_examples(rng, SEEDS, ["g1", "g2", "g3"], 8, 6)
    assert len(got) == 8 and sum(g.startswith("g") for g in got) == 2
    assert sorted(sample_examples(rng, ["s1", "s2"], [], 8, 6)) == ["s1", "s2"]  # too few seeds: fewer shots


def test_generate_prompts_respects_max_rounds():
    gen = FakeGenerator(junk_only=True)
    result = generate_prompts(gen, SEEDS, 10, batch_size=4, max_rounds=3)
    assert result.rounds == 3 and len(gen.calls) == 3
    assert result.prompts == [] and result.tasks == [] and not result.complete
    assert result.rejections["invalid"] == result.candidates == 12
    empty = generate_prompts(gen, SEEDS, 0)
    assert empty.rounds == 0 and empty.prompts == []


def test_generate_prompts_is_deterministic():
    a = generate_prompts(FakeGenerator(), SEEDS, 20, batch_size=8, seed=7)
    b = generate_prompts(FakeGenerator(), SEEDS, 20, batch_size=8, seed=7)
    c = generate_prompts(FakeGenerator(), SEEDS, 20, batch_size=8, seed=8)
    assert (a.prompts, a.rejections, a.rounds, a.log) == (b.prompts, b.rejections, b.rounds, b.log)
    assert a.prompts != c.prompts
    frame = a.log_frame()
    assert len(frame) == len(a.log) and (frame.verdict == "accepted").sum() == 20


def test_generate_prompts_chat_style_with_keyword_check():
    class ChatFake:
        def __init__(self):
            self.n = 0

        def generate(self, prompts, config):
            assert all(isinstance(p, list) and p[0]["role"] == "user" for p in prompts)
            out = []
            for _ in prompts:
                self.n += 1
                text = f"Task 9: Explain topic number {self.n} in {self.n % 7 + 2} steps.\nTask 10: more"
                out.append([text if self.n % 5 else "Draw a picture of a cat."])
            return out

    seeds = ["Write a poem about the sea.", "How do vaccines work?"]
    result = generate_prompts(ChatFake(), seeds, 5, style="chat", validate=keyword_check(), batch_size=4,
                              rouge_threshold=0.95)
    assert len(result.prompts) == 5 and result.tasks is None
    assert result.prompts[0] == "Explain topic number 1 in 3 steps."
    assert result.rejections["invalid"] >= 1


def test_generate_prompts_argument_errors():
    with pytest.raises(ValueError, match="seed prompt"):
        generate_prompts(FakeGenerator(), [], 3)
    with pytest.raises(ValueError, match="seed_shots"):
        generate_prompts(FakeGenerator(), SEEDS, 3, shots=4, seed_shots=6)
    with pytest.raises(ValueError, match="top_p"):
        generate_prompts(FakeGenerator(), SEEDS, 3, top_p=0)
    with pytest.raises(TypeError):
        generate_prompts(FakeGenerator(), "what is 1 plus 1 ?", 3)


def test_generate_prompts_with_a_tiny_untrained_model():
    from repro.generation import HFGenerator
    from repro.models import build_tokenizer, make_llama

    tokenizer = build_tokenizer(world.vocabulary())
    model = make_llama("XS", tokenizer, seed=0)
    generator = HFGenerator(model, tokenizer, progress=False)
    result = generate_prompts(generator, SEEDS, 5, batch_size=4, max_new_tokens=12, max_rounds=2, seed=0)
    assert result.rounds <= 2 and result.candidates == 4 * result.rounds
    assert sum(result.rejections.values()) + len(result.prompts) + result.surplus == result.candidates
    assert result.tasks is not None and len(result.tasks) == len(result.prompts)


@pytest.mark.parametrize(
    "completion, expected",
    [
        ("One New Task: How to Brew a Good Cup of Green Tea", "How to Brew a Good Cup of Green Tea"),
        ("New task: Name three rivers in Africa.", "Name three rivers in Africa."),
        ('"One New Task: Plan a picnic for four."', "Plan a picnic for four."),
        ("**Task 9:** Describe a sunset.", "Describe a sunset."),
        ('One new task of the same kind: "How do I fix a flat tyre?', "How do I fix a flat tyre?"),
        ("Why is the sky blue?\n\nThe answer to this question is not available in text.", "Why is the sky blue?"),
    ],
)
def test_extract_prompt_reads_what_small_chat_models_write(completion, expected):
    assert extract_prompt(completion, world_text=False) == expected


def test_a_prompt_that_repeats_the_request_is_recognised():
    from repro.studies.self_rewarding.self_instruct import CHAT_REQUEST, echoes_request, few_shot_prompt

    assert CHAT_REQUEST in few_shot_prompt(["Name a river."], style="chat")[0]["content"]
    assert echoes_request("One new task of the same kind. It must differ from every example, be complete in "
                          "itself, and be something an assistant can answer in text.")
    assert echoes_request("one new task of the same kind, on a single line with no number, label or explanation.")
    assert echoes_request("One new task of the same kind.") and echoes_request("One New Task")
    assert echoes_request("one new task of the same kind. It must differ from all previous examples.")
    assert not echoes_request("Write a short poem about the sea in the style of a sailor's song.")
    assert not echoes_request("Name one new animal of the same kind as a cat.")
    assert echoes_request("one new task of the same kind, " * 6)
