"""Judging throughput: (a) the self-rewarding judge's K samples per candidate sharing one prompt
(``GenerationSpec(n=K)``, `repro.judges.llm_judge.judge`) against K separate generate calls with
n=1, at the judge's batch of candidates and for a single candidate, with K = 3 (the paper's) and 6 (the
speed issue's target: n = 3 to 6 samples of a prompt in one call at least 2x as fast as n calls); (b) the
RLAIF read-out of "1" vs "2" from next-token log-probabilities (one forward pass per order,
`repro.judges.labeller`) against generating the answer token (greedy, one new token) and reading it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from benchmarks.harness import compare
from benchmarks.perf import setup
from repro.generation import GenerationSpec, HFGenerator
from repro.generation.engine import DEFAULT_SAMPLER
from repro.judges.labeller import ANSWERS, LabelSpec, labeller_prompt
from repro.judges.llm_judge import JudgeSpec
from repro.judges.rubric import judge_messages


@dataclass(frozen=True)
class JudgingBench:
    pairs: int = 64  # (instruction, response) pairs judged K times (one judge batch)
    samples: int = 3  # K, as in the paper and the tiny profile
    max_new_tokens: int = 40  # the tiny profile's judge_max_new_tokens
    comparisons: int = 128  # RLAIF comparisons, each read in both orders
    size: str = "S"
    repeats: int = 3
    seed: int = 0
    # (candidates, K) of the further rows (a): one candidate, and K = 6
    more_shapes: tuple[tuple[int, int], ...] = ((1, 3), (1, 6), (64, 6))


# the quick run checks the script, not the machine: one shape more, at the quick sizes
QUICK = JudgingBench(pairs=4, samples=2, max_new_tokens=4, comparisons=4, repeats=1, more_shapes=((1, 2),))


def judge_samples(spec: JudgingBench = JudgingBench(), *, log=print) -> dict:
    """Row (a): judgments/s with n=K in one call against K calls with n=1 (same prompts, lengths)."""
    model, tokenizer = setup.world_model(spec.size, seed=spec.seed)
    generator = HFGenerator(model, tokenizer, progress=False, sampler=DEFAULT_SAMPLER)  # both sides, as the studies
    judge = JudgeSpec(samples=spec.samples, max_new_tokens=spec.max_new_tokens, seed=spec.seed)
    prompts = [judge_messages(i, r, judge.template) for i, r in setup.judge_pairs(spec.pairs, seed=spec.seed)]
    shared = judge.generation()
    single = replace(shared, n=1)
    judgments = spec.pairs * spec.samples

    def separate() -> int:
        outputs = [generator.generate(prompts, replace(single, seed=shared.seed + k)) for k in range(spec.samples)]
        return sum(len(texts) for output in outputs for texts in output)

    def together() -> int:
        return sum(len(texts) for texts in generator.generate(prompts, shared))

    with setup.fixed_length(model, spec.max_new_tokens):
        return compare(
            f"judge {spec.pairs} candidates x K={spec.samples}", separate, together, repeats=spec.repeats,
            work_a=lambda n: n, work_b=lambda n: n, unit="judgments/s",
            baseline=f"{spec.samples} generate calls, n=1", candidate=f"one generate call, n={spec.samples}",
            log=log,
            notes=(f"{setup.UNTRAINED_NOTE} (preset {spec.size}); the compact judge prompt of the self-rewarding "
                   f"study over world tasks and written responses; T {judge.temperature}, top-p {judge.top_p}, "
                   f"batch {judge.batch_size} pairs, every judgment exactly {spec.max_new_tokens} tokens. "
                   f"With n=K each prompt's prefill is computed once and its cache shared by the K samples "
                   f"(`HFGenerator`), where K calls compute it K times. {judgments} judgments per call."))


def read_answers(generator, prompts, batch_size: int) -> list[str]:
    """The baseline read-out: generate one token greedily after each prompt and take it as the answer."""
    config = GenerationSpec(max_new_tokens=1, temperature=0.0, batch_size=batch_size)
    return [texts[0] for texts in generator.generate(prompts, config)]


def labeller_readout(spec: JudgingBench = JudgingBench(), *, log=print) -> dict:
    """Row (b): comparisons/s of the log-probability read-out against generating the answer token."""
    model, tokenizer = setup.labeller_model(spec.size, seed=spec.seed)
    generator = HFGenerator(model, tokenizer, progress=False)
    config = LabelSpec(preamble="detailed", wording="compact", seed=spec.seed)
    pairs = setup.labeller_pairs(spec.comparisons, seed=spec.seed)
    prompts = [labeller_prompt(t, a, b, config) for t, a, b in pairs] + [
        labeller_prompt(t, b, a, config) for t, a, b in pairs]

    def generated() -> int:
        answers = read_answers(generator, prompts, config.batch_size)
        return len(answers) // 2

    def scored() -> int:
        logprobs = generator.score_next_token_logprobs(prompts, list(ANSWERS), batch_size=config.batch_size)
        return len(logprobs) // 2

    return compare(
        f"label {spec.comparisons} comparisons, both orders", generated, scored, repeats=spec.repeats,
        work_a=lambda n: n, work_b=lambda n: n, unit="comparisons/s",
        baseline="generate 1 token (greedy) and read it", candidate="score_next_token_logprobs",
        log=log,
        notes=(f"{setup.UNTRAINED_NOTE}: the RLAIF labeller (preset {spec.size}, its tokenizer and context); "
               f"detailed 0-shot compact prompts over world posts, each comparison read in both orders, batch "
               f"{config.batch_size} prompts on both sides. Both sides run one forward pass per prompt; the "
               f"read-out also gives soft labels, which the generated token cannot."))


def run(spec: JudgingBench = JudgingBench(), *, log=print) -> list[dict]:
    shapes = [(spec.pairs, spec.samples)] + [s for s in spec.more_shapes if s != (spec.pairs, spec.samples)]
    return ([judge_samples(replace(spec, pairs=pairs, samples=k), log=log) for pairs, k in shapes]
            + [labeller_readout(spec, log=log)])
