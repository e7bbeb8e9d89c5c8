"""eva's LLM evolver on a fake rewriting model: one batched call per step, chained lineage, seeded
draws, parsing, and every rejection reason counted."""

import pandas as pd
import pytest

from repro.data.records import text_id
from repro.generation import GenerationSpec, Generator
from repro.studies.eva import evolver as ev

CONFIG = GenerationSpec(max_new_tokens=256, temperature=0.7, top_p=0.9)
PARENTS = ["Write a haiku about autumn leaves.", "Explain how a bicycle gear works.",
           "List three uses of baking soda.", "Summarise the plot of a detective story.",
           "Give advice for a first job interview.", "Describe a sunrise over the sea."]


def given_prompt(request) -> str:
    text = request if isinstance(request, str) else request[0]["content"]
    return text.split(f"{ev.GIVEN}:\n", 1)[1].rsplit("\n\n#", 1)[0]


class FakeRewriter:
    """Answers each request with ``reply(given_prompt, request)`` (a string or a list of ``n``), and
    logs every call's requests."""

    def __init__(self, reply):
        self.reply, self.calls = reply, []

    def generate(self, prompts, config):
        self.calls.append(list(prompts))
        out = []
        for request in prompts:
            answer = self.reply(given_prompt(request), request)
            out.append(answer if isinstance(answer, list) else [answer])
        return out


def harder(given, request):
    return f"Rewritten Prompt: \"{given} Also justify each step.\""


def test_one_batched_call_per_step_and_chained_lineage():
    fake = FakeRewriter(harder)
    assert isinstance(fake, Generator)
    records, report = ev.llm_evolve(fake, PARENTS, evolutions=4, config=CONFIG, seed=0)
    assert len(fake.calls) == 4 == report.calls and [len(c) for c in fake.calls] == [6, 6, 6, 6]
    assert report.accepted == 24 == len(records) and report.acceptance == 1.0 and report.ended_early == 0
    assert sum(report.rejected.values()) == 0 and set(report.rejected) == set(ev.REASONS)
    assert [(r["parent"], r["step"]) for r in records] == [(text_id(p), s) for p in PARENTS for s in range(1, 5)]
    for index, parent in enumerate(PARENTS):
        chain = [r for r in records if r["parent"] == text_id(parent)]
        previous = parent
        for record in chain:  # step k rewrote step k-1 (the parent for step 1), labels and quotes removed
            assert given_prompt(fake.calls[record["step"] - 1][index]) == previous
            assert record["prompt"] == previous + " Also justify each step."
            assert record["uid"] == text_id(record["prompt"])
            assert ev.TEMPLATE_OPERATOR[record["template"]] == record["operator"]
            request = fake.calls[record["step"] - 1][index][0]["content"]
            assert request == ev.render(ev.TEMPLATES[record["template"]], previous)
            previous = record["prompt"]


def test_operators_and_templates_are_drawn_from_the_seed():
    runs = [ev.llm_evolve(FakeRewriter(harder), PARENTS, evolutions=4, config=CONFIG, seed=s)[0] for s in (0, 0, 1)]
    draws = [[(r["operator"], r["template"]) for r in run] for run in runs]
    assert runs[0] == runs[1] and draws[0] != draws[2]
    templates = {t for run in draws for _, t in run}
    assert templates == set(ev.TEMPLATES)  # every in-depth template and the in-breadth one get used
    only_depth, _ = ev.llm_evolve(FakeRewriter(harder), PARENTS, operators=("in_depth",), config=CONFIG)
    assert {r["operator"] for r in only_depth} == {"in_depth"}
    # a chain's draws do not depend on the other parents
    alone, _ = ev.llm_evolve(FakeRewriter(harder), PARENTS[2:3], evolutions=4, config=CONFIG, seed=0)
    assert alone == [r for r in runs[0] if r["parent"] == text_id(PARENTS[2])]


BAD = {
    "Parent empty one.": "   ",
    "Parent echo one.": None,  # replies with the request itself
    "Parent same one.": "  PARENT   same ONE. ",
    "Parent short one.": "Hi.",
    "Parent long one.": "A very long prompt. " * 20,  # 400 chars > 4 x 17 + 200
    "Parent dup A.": "A shared rewrite that two chains produce.",
    "Parent dup B.": "A shared rewrite that two chains produce.",
    "Parent copies another.": "parent DUP a.",
    "Parent fine.": "Parent fine, in exactly five words.",
}


def bad_reply(given, request):
    if given in BAD:
        return request[0]["content"] if BAD[given] is None else BAD[given]
    return given + " Now twice."


def test_invalid_rewrites_end_their_chain_and_are_counted_by_reason():
    fake = FakeRewriter(bad_reply)
    records, report = ev.llm_evolve(fake, list(BAD), evolutions=3, config=CONFIG, seed=3)
    assert report.rejected == {"empty": 1, "template_echo": 1, "unchanged": 1, "too_short": 1, "too_long": 1,
                               "duplicate": 2}
    assert [len(c) for c in fake.calls] == [9, 2, 2]  # only the alive chains are asked again
    kept = {r["parent"]: [] for r in records}
    for r in records:
        kept[r["parent"]].append(r["prompt"])
    assert kept == {text_id("Parent dup A."): ["A shared rewrite that two chains produce.",
                                               "A shared rewrite that two chains produce. Now twice.",
                                               "A shared rewrite that two chains produce. Now twice. Now twice."],
                    text_id("Parent fine."): ["Parent fine, in exactly five words.",
                                              "Parent fine, in exactly five words. Now twice.",
                                              "Parent fine, in exactly five words. Now twice. Now twice."]}
    assert report.ended_early == 7 and report.accepted == 6 and report.checked == 13
    assert report.as_dict()["acceptance"] == pytest.approx(6 / 27)


def test_the_first_valid_of_several_completions_is_kept():
    fake = FakeRewriter(lambda given, request: ["", f"#Rewritten Prompt#: {given} Cite a source."])
    records, report = ev.llm_evolve(fake, PARENTS[:2], evolutions=2, config=GenerationSpec(n=2))
    assert len(records) == 4 and report.rejected["empty"] == 4 and report.checked == 8


def test_checks_and_parsing():
    seen = {ev.normalise(p) for p in PARENTS}

    def check(text, **kw):
        return ev.check_rewrite(text, parent="Say hello to the team.", previous="Say hello to the team politely.",
                                seen=seen, **kw)

    assert check("Say hello to the team politely, in French.") is None
    assert check("say  HELLO to the team politely.") == "unchanged"
    assert check(f"Sure. {ev.GIVEN}: say hello") == "template_echo"
    assert check("Reply with the rewritten prompt only, without any explanation. Say hi.") == "template_echo"
    assert check("Say hi.", min_chars=10) == "too_short"
    assert check("x" * 300) == "too_long" and check("x" * 300, max_growth=20) is None
    assert check("x" * 300, max_growth=20, max_chars=299) == "too_long"
    assert check(PARENTS[0].upper()) == "duplicate"
    assert ev.parse_rewrite('**New Prompt:**\n"Plan a trip."') == "Plan a trip."
    assert ev.parse_rewrite("New prompt engineering tricks, explained.") == "New prompt engineering tricks, explained."
    assert ev.render(ev.BREADTH_TEMPLATE, "Use {braces}").count("Use {braces}") == 1


def test_inputs_records_frames_and_raw_strings():
    frame = pd.DataFrame({"uid": ["a", "b"], "prompt": PARENTS[:2]})
    fake = FakeRewriter(harder)
    records, _ = ev.llm_evolve(fake, frame, evolutions=1, config=CONFIG, chat=False)
    assert [r["parent"] for r in records] == ["a", "b"] and all(isinstance(p, str) for p in fake.calls[0])
    assert ev.llm_evolve(fake, frame.to_dict("records"), evolutions=1, config=CONFIG)[0] == records
    with pytest.raises(ValueError, match="uid a appears twice"):
        ev.llm_evolve(fake, [{"uid": "a", "prompt": "x"}, {"uid": "a", "prompt": "y"}], config=CONFIG)
    with pytest.raises(TypeError, match="parent 0 must be"):
        ev.llm_evolve(fake, [{"prompt": "x"}], config=CONFIG)
    with pytest.raises(ValueError, match="operators must be some of"):
        ev.llm_evolve(fake, PARENTS, operators=("sideways",), config=CONFIG)
    with pytest.raises(ValueError, match="evolutions must be at least 1"):
        ev.llm_evolve(fake, PARENTS, evolutions=0, config=CONFIG)
    assert ev.llm_evolve(fake, [], config=CONFIG)[1].calls == 0
