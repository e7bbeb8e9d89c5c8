"""Tests of repro.world's self-rewarding pieces: reading prompts back into tasks (`parse_prompt`,
`split_task_list`), justifications and judgments, noisy reviewers and review documents."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repro.world import (
    DEFAULT_LISTING_FRACTION,
    DEFAULT_REVIEW_NOISE,
    DIFFICULTIES,
    FAMILIES,
    Task,
    get_family,
    judgment,
    justify,
    make_task,
    noisy_score,
    oracle_score,
    parse_prompt,
    split_task_list,
    vocabulary,
    web_corpus,
    write_response,
)
from repro.world.judging import MAX_JUDGMENT_TOKENS
from repro.world.lexicon import CATEGORIES, FOODS, ITEM_WORDS, NAMES
from repro.world.parse import MAX_PROMPT_TOKENS

VOCAB = set(vocabulary())
SCORE_END = re.compile(r" score : ([0-5]) \.$")


def is_world_text(text: str) -> bool:
    return text == " ".join(text.split()) and text == text.lower() and set(text.split()) <= VOCAB


def every_kind(seeds: int, salt: int = 0) -> list[Task]:
    return [make_task(f, random.Random(salt + s * 7919 + d), d)
            for f in FAMILIES for d in DIFFICULTIES for s in range(seeds)]


TASKS = every_kind(40)


def assert_valid(task: Task) -> None:
    """A parsed task is a task of the world: admitted content, world text, parses back to itself."""
    fam = get_family(task.family)
    fam.check_knobs({k: task.spec[k] for k in fam.knobs})
    assert fam.admits(task.spec), task.spec
    assert is_world_text(task.prompt) and is_world_text(task.answer)
    assert oracle_score(task, task.answer) == 5
    again = parse_prompt(task.prompt)
    assert again == task and again.uid == task.uid


# --- parse_prompt: round trips -------------------------------------------------------------------
def test_parse_round_trip_every_family_and_difficulty():
    mismatched = Counter()
    for task in TASKS:
        got = parse_prompt(task.prompt)
        assert got is not None, task.prompt
        assert (got.family, got.prompt, got.answer) == (task.family, task.prompt, task.answer)
        assert_valid(got)
        if got.uid != task.uid:
            # only arithmetic has prompts two difficulties can draw; the lower one is read
            assert task.family == "arithmetic" and got.difficulty < task.difficulty, task.spec
            assert {k: v for k, v in got.spec.items() if k not in ("difficulty", "max_value", "ops")} == \
                   {k: v for k, v in task.spec.items() if k not in ("difficulty", "max_value", "ops")}
            mismatched[task.difficulty] += 1
    assert sum(mismatched.values()) / len(TASKS) < 0.05


def test_families_admit_what_they_sample():
    for task in TASKS:
        assert get_family(task.family).admits(task.spec), task.spec


def test_parse_is_tolerant_of_form():
    task = make_task("sort", random.Random(1), 2, items="numbers", template=0)
    shouted = task.prompt.upper().replace(" :", ":").replace(" .", ".")
    assert parse_prompt(shouted) == task and parse_prompt("  " + task.prompt + "\n") == task
    zeros = parse_prompt("what is 07 plus 003 ?")
    assert zeros.prompt == "what is 7 plus 3 ?" and zeros.answer == "10 ."
    assert parse_prompt(task.prompt.encode()) == task


@pytest.mark.parametrize("family, knobs", [
    ("sort", {"length": 15, "max_value": 999}),
    ("sort", {"length": 12, "items": "words"}),
    ("extremum", {"length": 18, "max_value": 500}),
    ("count", {"length": 27, "what": "category"}),
    ("count", {"length": 9, "what": "word"}),
    ("edit", {"length": 14, "n_ops": 4}),
    ("edit", {"length": 4, "n_ops": 1, "ops": ["append"]}),
    ("arithmetic", {"n_terms": 6, "max_value": 300}),
    ("arithmetic", {"n_terms": 2, "ops": ["times"]}),
    ("lookup", {"n_facts": 11, "hops": 2}),
    ("lookup", {"n_facts": 4, "hops": 2}),
])
def test_parse_tasks_made_with_other_knobs(family, knobs):
    for seed in range(15):
        task = make_task(family, random.Random(seed), 1 + seed % 5, **knobs)
        got = parse_prompt(task.prompt)
        assert got is not None, task.prompt
        assert (got.family, got.prompt, got.answer) == (task.family, task.prompt, task.answer)
        assert_valid(got)


def test_parse_new_combinations():
    """Prompts whose content no sampled task had: the answer is recomputed from the text."""
    rng = random.Random(5)
    for _ in range(200):
        values = rng.sample(range(1000), rng.randint(4, 20))
        got = parse_prompt(f"sort these numbers from large to small : {' '.join(map(str, values))} .")
        assert got.answer == " ".join(map(str, sorted(values, reverse=True))) + " ."
        assert_valid(got)
        a, b = rng.randint(1, 500), rng.randint(1, 499)
        got = parse_prompt(f"what do you get if you add {a} and {b} ?")
        assert got.answer == f"{a + b} ." and got.family == "arithmetic"
        a = max(a, 2)
        v = 1 + b % (a - 1)
        got = parse_prompt(f"begin at {a} , subtract {v} , then multiply by 2 . what is the final number ?")
        assert got.answer == f"{(a - v) * 2} ."
        assert_valid(got)
        target = rng.choice(sorted(CATEGORIES))
        items = [rng.choice(ITEM_WORDS) for _ in range(rng.randint(4, 30))]
        items[0] = rng.choice(CATEGORIES[target])
        items[1] = rng.choice([w for w in ITEM_WORDS if w not in CATEGORIES[target]])
        got = parse_prompt(f"count the {target} in this list : {' '.join(items)} .")
        assert got.answer == f"{sum(w in CATEGORIES[target] for w in items)} ."
        assert_valid(got)
        n = rng.randint(4, 11)
        people, foods = rng.sample(NAMES, n), rng.sample(FOODS, n)
        ask = rng.randrange(n)
        facts = " ".join(f"{p} likes {f} ." for p, f in zip(people, foods))
        got = parse_prompt(f"read the facts and answer the question . {facts} what does {people[ask]} like ?")
        assert got.answer == f"{foods[ask]} ."
        assert_valid(got)


def test_parse_two_hop_lookup_reads_the_chain():
    text = ("facts : ana has a cat . bo has an owl . cy has a dog . dan has a bee . the owl lives in rome . "
            "the cat lives in oslo . the bee lives in lima . the dog lives in cairo . "
            "question : where does the pet of cy live ?")
    got = parse_prompt(text)
    assert got.answer == "cairo ." and got.spec["hops"] == 2 and got.spec["relation"] == "city"
    assert_valid(got)


# --- parse_prompt: rejections --------------------------------------------------------------------
GOOD_LOOKUP = "ana likes tea . bo likes rice . cy likes milk . dan likes cake . what does bo like ?"


@pytest.mark.parametrize("text", [
    "", "   ", "hello", "sort these numbers :", "sort these numbers from small to large : .",
    "sort these numbers from small to large : 3 1 2 .",            # too short
    "sort these numbers from small to large : 3 1 2 2 .",          # repeated item
    "sort these numbers from small to large : 3 1 2 1000 .",       # not a number of the world
    "sort these numbers from small to large : 3 1 cat 5 .",        # a word among numbers
    "sort these numbers from small to large : " + " ".join(map(str, range(21))) + " .",  # too long
    "sort these numbers from small to large : 3 1 2 5",            # unfinished
    "please sort these numbers from small to large : 3 1 2 5 .",   # unknown phrasing
    "what is 12 minus 30 ?",                                       # leaves 0..999
    "what is 600 times 2 ?", "what is 0 plus 5 ?", "what is 900 plus 200 ?",
    "start with 5 , add 3 , then multiply by 400 . what is the result ?",
    "start with 5 . what is the result ?",
    GOOD_LOOKUP.replace("what does bo", "what does eva"),           # not in the facts
    GOOD_LOOKUP.replace("dan likes cake", "dan lives in rome"),     # two relations
    GOOD_LOOKUP.replace("dan likes cake", "bo likes cake"),         # two facts about bo
    GOOD_LOOKUP.replace("cy likes milk", "cy likes tea"),           # two people like tea
    GOOD_LOOKUP.replace("what does bo like ?", "where does bo live ?"),
    "facts : ana has a owl . bo has a cat . cy has a dog . dan has a bee . the owl likes tea . "
    "the cat likes rice . the bee likes milk . the dog likes cake . question : what does the pet of ana like ?",
    "how many times does the word cat appear in this list : dog dog bee bee bat ?",  # absent word
    "how many times does the word cat appear in this list : cat apple cat bee bat ?",  # mixed list
    "how many fruits are in this list : cat dog red bee bat ?",     # no fruit
    "how many fruits are in this list : apple fig ?",
    "how many cars are in this list : cat dog red bee bat ?",
    "remove every dog , then remove every bee : dog bee bat owl ant .",  # the same edit twice
    "remove every cat : dog bee bat owl ant .",                     # nothing to remove
    "reverse the list : dog dog dog dog dog .",                     # unchanged
    "remove every dog : dog dog dog dog bee .",                     # too short after
    "which number is the largest : 5 9 2 ?",
    "which number is the largest : 5 9 2 9 ?",
    "what is 1 plus 1 ? " * 3,
    "word " * (MAX_PROMPT_TOKENS + 1),
    "x" * 100_000,
])
def test_parse_rejects_invalid_prompts(text):
    assert parse_prompt(text) is None


@pytest.mark.parametrize("value", [None, 42, 3.5, ["what is 1 plus 2 ?"], {"a": 1}, b"\xff\xfe", object()])
def test_parse_rejects_non_text(value):
    assert parse_prompt(value) is None


def _mutations(draw_rng: random.Random, prompt: str) -> str:
    tokens = prompt.split()
    for _ in range(draw_rng.randint(1, 3)):
        op, i = draw_rng.randrange(4), draw_rng.randrange(len(tokens))
        word = draw_rng.choice(sorted(VOCAB))
        if op == 0 and len(tokens) > 1:
            del tokens[i]
        elif op == 1:
            tokens[i] = word
        elif op == 2:
            tokens.insert(i, word)
        else:
            j = draw_rng.randrange(len(tokens))
            tokens[i], tokens[j] = tokens[j], tokens[i]
    return " ".join(tokens)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(st.text(max_size=300),
                      st.lists(st.sampled_from(sorted(VOCAB)), max_size=60).map(" ".join),
                      st.tuples(st.sampled_from(TASKS), st.integers(0, 10**6)).map(
                          lambda ts: _mutations(random.Random(ts[1]), ts[0].prompt))))
def test_parse_never_raises_and_accepts_only_valid_tasks(text):
    got = parse_prompt(text)
    if got is not None:
        assert_valid(got)


@settings(max_examples=50, deadline=None)
@given(data=st.binary(max_size=300))
def test_parse_never_raises_on_bytes(data):
    got = parse_prompt(data)
    assert got is None or isinstance(got, Task)


# --- split_task_list -----------------------------------------------------------------------------
def test_split_task_list_reads_the_corpus_lists():
    docs = [d for d in web_corpus(300, seed=3) if d["kind"] == "text"]
    assert docs
    for doc in docs:
        prompts = split_task_list(doc["text"])
        assert prompts and " ".join(f"{i} . {p}" for i, p in enumerate(prompts, 1)) in doc["text"]
        assert all(parse_prompt(p) is not None for p in prompts), doc["text"]


def test_split_task_list_resolves_numbers_inside_prompts():
    text = "here are some tasks : 1 . add 4 and 2 . 2 . multiply 2 by 3 . 3 . what is 3 plus 3 ? 4 . sort"
    assert split_task_list(text) == ["add 4 and 2 .", "multiply 2 by 3 .", "what is 3 plus 3 ?", "sort"]
    assert split_task_list("what is 4 plus 5 ? 6 . what is", first=5) == []
    assert split_task_list("what is 4 plus 5 ? 6 . what is 1 plus 2 ?", first=6) == ["what is 1 plus 2 ?"]
    assert split_task_list(None) == [] and split_task_list("no list here") == []


# --- justifications and judgments ---------------------------------------------------------------
def _responses(tasks, rng):
    for task in tasks:
        for quality in range(6):
            yield task, quality, write_response(task, quality, rng)


def test_judgments_are_short_world_text_ending_in_the_score():
    from repro.judges.parsing import parse_score

    rng = random.Random(2)
    for task, quality, response in _responses(TASKS[::10], rng):
        assert judgment(task, response) == f"{justify(task, response)} score : {quality} ."
        for written in range(6):
            text = judgment(task, response, written, rng)
            assert is_world_text(text) and len(text.split()) < MAX_JUDGMENT_TOKENS, text
            assert SCORE_END.search(text).group(1) == str(written) and text.count("score") == 1
            assert parse_score(text).value == written


def test_justification_agrees_with_the_score_written():
    """The same justification is never written for two different scores, true or noisy."""
    rng = random.Random(3)
    seen: dict[str, int] = {}
    for task, quality, response in _responses(TASKS[::6], rng):
        for written in range(6):
            text = justify(task, response, rng, written)
            assert seen.setdefault(text, written) == written, text
    assert set(seen.values()) == set(range(6))


def test_justify_uses_the_oracles_reasons_when_the_score_is_true():
    task = make_task("sort", random.Random(0), 3, items="numbers")
    right = task.answer[:-2]
    assert justify(task, f"{right} .") .endswith("it is concise .")
    assert justify(task, f"{right} . so the answer is : {right} .").endswith("more than once .")
    assert justify(task, f"sure . {right} .").endswith("it adds words around the answer .")
    assert justify(task, "i do not know .") == "the response is not relevant . it gives no answer to this task ."
    two = write_response(task, 2, random.Random(1))
    assert justify(task, two).endswith("it makes 2 errors .")
    # a noisy 2 for a response of another quality: the generic words of a 2, no oracle reason
    one = write_response(task, 1, random.Random(1))
    assert justify(task, one, score=2).endswith("it makes more than one error .")
    assert justify(task, two, score=5) == justify(task, f"{right} .")


def test_justify_is_deterministic_and_varies_with_rng():
    task = TASKS[7]
    response = write_response(task, 4, random.Random(0))
    assert justify(task, response) == justify(task, response)
    assert justify(task, response, random.Random(9)) == justify(task, response, random.Random(9))
    assert len({justify(task, response, random.Random(s)) for s in range(40)}) >= 3
    with pytest.raises(ValueError, match="score"):
        judgment(task, response, 6)
    with pytest.raises(ValueError, match="score"):
        justify(task, response, score=True)


def test_judging_never_raises_on_odd_responses():
    for response in ["", None, b"\xff", 12345, "ßø∂ 😀", "1 2 3 . " * 5000]:
        for task in TASKS[::50]:
            assert SCORE_END.search(judgment(task, response))


def test_vocabulary_covers_judgments():
    assert {"score", "relevant", "concise", "errors"} <= VOCAB
    assert len(VOCAB) - 1000 < 400


# --- noisy reviewers and review documents --------------------------------------------------------
def test_noisy_score_follows_the_documented_model():
    rng = random.Random(0)
    total = sum(DEFAULT_REVIEW_NOISE.values())
    for true in range(6):
        draws = [noisy_score(true, rng) for _ in range(6000)]
        assert set(draws) <= set(range(6))
        offsets = Counter(abs(d - true) for d in draws)
        for size, weight in DEFAULT_REVIEW_NOISE.items():
            assert abs(offsets[size] / len(draws) - weight / total) < 0.03, (true, offsets)
    assert all(noisy_score(3, rng, {0: 1.0}) == 3 for _ in range(50))
    assert {noisy_score(0, rng, {2: 1.0}) for _ in range(50)} == {2}
    assert {noisy_score(5, rng, {3: 1.0}) for _ in range(50)} == {2}
    for bad in ({}, {4: 1.0}, {0: -1.0}, {0: 0.0}, [0.5]):
        with pytest.raises(ValueError, match="review_noise"):
            noisy_score(2, rng, bad)


def test_review_documents():
    docs = web_corpus(600, seed=11)
    assert docs == web_corpus(600, seed=11) and docs != web_corpus(600, seed=12)
    kinds = Counter(d["kind"] for d in docs)
    assert abs(kinds["review"] / len(docs) - 0.10) < 0.04 and abs(kinds["text"] / len(docs) - 0.15) < 0.05
    for doc in (d for d in docs if d["kind"] == "review"):
        assert set(doc) == {"kind", "task", "response", "judgment", "score", "oracle"}
        task = Task.from_record(doc["task"])
        assert task.to_record() == doc["task"] and parse_prompt(task.prompt).prompt == task.prompt
        assert oracle_score(task, doc["response"]) == doc["oracle"]
        assert is_world_text(doc["response"]) and is_world_text(doc["judgment"])
        assert SCORE_END.search(doc["judgment"]).group(1) == str(doc["score"])
        assert abs(doc["score"] - doc["oracle"]) <= 2 and len(doc["judgment"].split()) < MAX_JUDGMENT_TOKENS


def test_review_noise_share_in_the_corpus():
    docs = web_corpus(1500, seed=4, text_fraction=0.0, review_fraction=1.0, listing_fraction=0.0)
    assert {d["kind"] for d in docs} == {"review"}
    exact = sum(d["score"] == d["oracle"] for d in docs) / len(docs)
    assert abs(exact - DEFAULT_REVIEW_NOISE[0] / sum(DEFAULT_REVIEW_NOISE.values())) < 0.05
    assert set(Counter(d["oracle"] for d in docs)) == set(range(6))
    assert min(Counter(d["oracle"] for d in docs).values()) > len(docs) / 6 * 0.7  # uniform qualities
    clean = web_corpus(60, seed=4, text_fraction=0.0, review_fraction=1.0, listing_fraction=0.0, review_noise={0: 1.0},
                       review_quality_weights={1: 1.0, 4: 1.0})
    assert all(d["score"] == d["oracle"] and d["oracle"] in (1, 4) for d in clean)


def test_no_reviews_gives_dialogues_and_lists_only():
    docs = web_corpus(300, seed=5, review_fraction=0.0, listing_fraction=0.0)
    assert {d["kind"] for d in docs} == {"dialogue", "text"}


def test_listing_documents_copy_their_list_rearranged_as_they_say():
    docs = web_corpus(2000, seed=7)
    listings = [d["text"] for d in docs if d["kind"] == "listing"]
    assert abs(len(listings) / len(docs) - DEFAULT_LISTING_FRACTION) < 0.04
    forms = Counter()
    for text in listings:
        assert is_world_text(text) and all(t in VOCAB for t in text.split())
        first, second = text.removesuffix(" .").split(" . ")
        items = first.split(" : ")[1].split()
        phrase, copy = second.split(" : ")
        copy = copy.split()
        number = items[0].isdigit()
        key = int if number else None
        expected = {"the same list again": items, "the list in reverse": items[::-1],
                    "the list from small to large": sorted(items, key=key),
                    "the list from a to z": sorted(items),
                    "the list from large to small": sorted(items, key=key, reverse=True),
                    "the list from z to a": sorted(items, reverse=True)}
        if phrase.startswith("the list without "):
            gone = phrase.removeprefix("the list without ")
            assert gone in items and copy == [w for w in items if w != gone]
            forms["remove"] += 1
        else:
            assert copy == expected[phrase], text
            forms[phrase] += 1
        assert 4 <= len(items) <= 8
    assert len(forms) == 7  # every form, for numbers and for words
    with pytest.raises(ValueError, match="at most 1"):
        web_corpus(5, seed=1, review_fraction=0.5, listing_fraction=0.6)


@pytest.mark.parametrize("kwargs, match", [
    ({"review_fraction": 1.5}, "review_fraction"),
    ({"review_fraction": -0.1}, "review_fraction"),
    ({"text_fraction": 0.6, "review_fraction": 0.5}, "at most 1"),
    ({"review_noise": {9: 1.0}}, "review_noise"),
    ({"review_quality_weights": {6: 1.0}}, "review_quality_weights"),
])
def test_review_options_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        web_corpus(5, seed=1, **kwargs)
