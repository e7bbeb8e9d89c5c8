"""Generation and scoring through a study's `Engine`, run by `tests/test_sharded.py` twice: alone (one
process) and under ``accelerate launch`` with 2 CPU processes. Each process writes what it got to
``OUT/rank<process index>.json``; the test compares them.

Usage: python tests/sharded_run.py OUT
"""

import json
import os
import sys
from pathlib import Path

import numpy as np

from repro.generation import Engine, GenerationSpec, ShardedGenerator, external_model_stage
from repro.generation.sharded import launched_state, shard
from repro.models import build_tokenizer, make_llama, save_model
from repro.runs.store import RunStore

VOCAB = "the a cat dog sat on mat box red is what how many add and list sort count then . , ?".split() + [
    str(n) for n in range(60)
]
PROMPTS = [  # 5 prompts: not divisible by 2 processes
    "the cat sat on",
    [{"role": "user", "content": "add 3 and 4 ?"}],
    "what",
    [{"role": "system", "content": "count ."}, {"role": "user", "content": "how many cat and dog on the mat ?"}],
    "list 1 , 2 , 3 , 4 , 5 , 6 , 7 then",
]


class SeededPerPrompt:
    """A generator seeded per prompt, as `VLLMGenerator` is: answers with the seed each prompt got."""

    def generate(self, prompts, config, *, index_offset=0):
        return [[f"{config.seed + index_offset + i}|{json.dumps(p)}"] for i, p in enumerate(prompts)]


def main(out: Path) -> None:
    state = launched_state()
    rank = 0 if state is None else state.process_index
    tokenizer = build_tokenizer(VOCAB)
    folder = out / "model"
    if rank == 0:
        # A larger init spread than the default, so that an untrained model's greedy outputs vary.
        save_model(make_llama("XS", tokenizer, seed=0, initializer_range=0.2), tokenizer, folder)
    if state is not None:
        state.wait_for_everyone()
    stage = external_model_stage(RunStore(out / "store"), str(folder))
    engine = Engine()
    generator = engine.generator(stage, progress=False)
    greedy = GenerationSpec(max_new_tokens=8, temperature=0, n=2, batch_size=2)
    result = {
        "processes": 1 if state is None else state.num_processes,
        "sharded": isinstance(generator, ShardedGenerator),
        "key": engine.key(),
        "greedy": generator.generate(PROMPTS, greedy),
        "greedy_one": generator.generate(PROMPTS[:1], greedy),  # fewer prompts than processes
        "greedy_none": generator.generate([], greedy),
        "scores": generator.score_next_token_logprobs(PROMPTS, ["1", "2", "cat"]).tolist(),
        "scores_one": generator.score_next_token_logprobs(PROMPTS[:1], ["1", "2"]).tolist(),
        "scores_none": np.asarray(generator.score_next_token_logprobs([], ["1", "2"])).shape,
        "seeded": shard(SeededPerPrompt(), state).generate(PROMPTS, GenerationSpec(seed=7)),
        # sampled with the transformers backend: equal in distribution only, so only its shape is compared
        "sampled_shape": [len(c) for c in generator.generate(PROMPTS, GenerationSpec(max_new_tokens=4, n=3))],
    }
    (out / f"rank{rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    os.environ.setdefault("REPRO_PROGRESS", "0")
    main(Path(sys.argv[1]))
