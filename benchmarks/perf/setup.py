"""Models and prompts of the tiny profile, for the benchmarks."""

from __future__ import annotations

import random
from contextlib import contextmanager

import torch

from repro import world
from repro.judges.rubric import template_words
from repro.models import build_tokenizer, make_llama
from repro.studies.rlaif.stages import LabellerSpec, tokenizer_words
from repro.world import summaries as ws
from repro.world import summary_corpus as sc

UNTRAINED_NOTE = ("an untrained model of the tiny profile's architecture and size (speed does not depend on "
                  "the weights)")


def set_threads(threads: int | None) -> int:
    """Use ``threads`` torch threads (None: leave torch's choice); returns the number in use."""
    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def world_tokenizer():
    """The tokenizer of the world studies' M0 (`repro.studies.base.tokenizer_stage`), built in memory."""
    return build_tokenizer(sorted(set(world.vocabulary()) | template_words("compact")))


def world_model(size: str = "S", seed: int = 0):
    """``(model, tokenizer)``: an untrained M0 of the tiny profile (preset S, the world's tokenizer)."""
    tokenizer = world_tokenizer()
    return make_llama(size, tokenizer, seed=seed), tokenizer


def shipped_m0():
    """``(model, tokenizer)``: the M0 the package ships (`repro.runs.store`, shipped stages), the pre-trained base of
    the world studies: where speed depends on what a trained model writes (where its completions end)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from repro.runs.store import shipped_root

    path = next((shipped_root() / "pretrain-m0").glob("*/model"))
    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def labeller_model(size: str = "S", seed: int = 0):
    """``(model, tokenizer)``: an untrained RLAIF labeller of the tiny profile (`repro.studies.rlaif`)."""
    spec = LabellerSpec()
    tokenizer = build_tokenizer(tokenizer_words(), model_max_length=2 * spec.max_length)
    return make_llama(size, tokenizer, seed=seed, max_position_embeddings=spec.context), tokenizer


def task_prompts(count: int, seed: int = 0) -> list[list[dict[str, str]]]:
    """Held-out world tasks as one-turn conversations, as the studies prompt their models."""
    return [[{"role": "user", "content": t.prompt}] for t in world.sample_tasks(count, seed=seed, difficulty=(1, 2))]


def judge_pairs(count: int, seed: int = 0) -> list[tuple[str, str]]:
    """``(instruction, response)`` pairs of world tasks with responses of every quality, to be judged."""
    rng = random.Random(seed)
    tasks = world.sample_tasks(count, seed=seed, difficulty=(1, 2))
    return [(t.prompt, world.write_response(t, rng.randint(0, 5), rng)) for t in tasks]


def labeller_pairs(count: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """``(text, summary_a, summary_b)`` comparisons of the summarisation world, as RLAIF labels them."""
    rng = random.Random(seed)
    pairs = []
    for index in range(count):
        post = ws.make_post(rng, index)
        first, second = (ws.write_summary(post, ws.random_spec(rng, post), rng) for _ in range(2))
        pairs.append((sc.post_text(post.title, post.body), first, second))
    return pairs


@contextmanager
def fixed_length(model, new_tokens: int):
    """Make every ``generate`` call of ``model`` produce exactly ``new_tokens`` tokens (no early end of
    sequence: ``min_new_tokens = max_new_tokens``), so that two ways of generating do the same work."""
    config = model.generation_config
    saved = config.min_new_tokens
    config.min_new_tokens = new_tokens
    try:
        yield
    finally:
        config.min_new_tokens = saved
