"""What the studies share: prompts as conversations, responses sampled and scored by the gold judge,
and preference optimisation on best-vs-worst pairs (the self-rewarding iterations and eva's solver)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from repro.evaluation.gold import ORACLE
from repro.generation import GenerationSpec, load_stage_model, model_location
from repro.models import save_model
from repro.runs.store import Stage
from repro.training.jobs import preference_job, run_job
from repro.training.preference import PreferenceSpec


def chat(prompt: str) -> list[dict[str, str]]:
    """A prompt as a one-turn conversation."""
    return [{"role": "user", "content": prompt}]


def respond_and_score(generator, prompts: pd.DataFrame, generation: GenerationSpec, gold=None,
                      sample: str = "sample") -> pd.DataFrame:
    """Sample ``generation.n`` responses to each prompt (one batched call) and score each with the gold
    judge (default: the world's oracle; `repro.evaluation.gold`).

    ``prompts`` has a ``prompt`` column and any others (ids, family, ...), which every response row
    carries along; added: ``sample`` (renamed as asked), ``response``, ``oracle`` (the gold score) and
    ``words``.
    """
    outputs = generator.generate([chat(p) for p in prompts.prompt], generation)
    rows = [{**record, sample: index, "response": response, "words": len(response.split())}
            for record, responses in zip(prompts.to_dict("records"), outputs)
            for index, response in enumerate(responses)]
    columns = [*prompts.columns, sample, "response", "words"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["oracle"] = (gold or ORACLE).score(frame.prompt.tolist(), frame.response.tolist()) if len(frame) else []
    return frame


def oracle_agreement(pairs: pd.DataFrame) -> dict[str, float | None]:
    """Among the preference pairs whose two responses both have a gold score: the share whose chosen
    response the gold judge scores higher (``pairs_oracle_agree``) and equal (``pairs_oracle_equal``);
    None without such pairs."""
    right = pairs.dropna(subset=["chosen_oracle", "rejected_oracle"])
    if not len(right):
        return {"pairs_oracle_agree": None, "pairs_oracle_equal": None}
    return {"pairs_oracle_agree": float((right.chosen_oracle > right.rejected_oracle).mean()),
            "pairs_oracle_equal": float((right.chosen_oracle == right.rejected_oracle).mean())}


#: Names that trl's settings have in stage keys: the keys were written when the studies had settings of
#: their own (``epochs``), and keep those names so that the stores made then are found again.
KEY_NAMES = {"num_train_epochs": "epochs"}


def settings_key(settings, fields: tuple[str, ...]) -> dict:
    """Some of a trainer's settings (`repro.training` settings: trl's field names) as a stage key part."""
    return {KEY_NAMES.get(name, name): getattr(settings, name) for name in fields}


def preference_key(preference: PreferenceSpec) -> dict:
    """What of the preference settings goes into a stage's key: the method, beta, learning rate, epochs
    and batch size (the seed and the progress bar are the stage's own), and the chosen's NLL weight when
    there is one (so that the plain loss keeps its keys)."""
    return {**settings_key(preference, ("method", "beta", "learning_rate", "num_train_epochs", "batch_size")),
            **({"sft_weight": preference.sft_weight} if preference.sft_weight else {})}


def train_on_pairs(model_stage: Stage, pairs: pd.DataFrame, workdir: Path, preference: PreferenceSpec, *,
                   accelerate_config: str | None = None) -> dict:
    """Preference optimisation (``preference``: the method, its loss and trl's settings) from the model of
    ``model_stage`` on ``pairs`` (columns prompt, chosen, rejected), saved into ``workdir`` (``model/``,
    ``log_history.json``); returns the training summary. No pairs: the model is saved unchanged, with
    zero steps (nothing to learn from, said in the results)."""
    if pairs.empty:
        model, tokenizer = load_stage_model(model_stage)
        save_model(model, tokenizer, workdir / "model")
        (workdir / "log_history.json").write_text("[]")
        return {"pairs": 0, "steps": 0}
    records = [{"prompt": chat(r.prompt), "chosen": [{"role": "assistant", "content": r.chosen}],
                "rejected": [{"role": "assistant", "content": r.rejected}]} for r in pairs.itertuples()]
    summary = run_job(preference_job, model_location(model_stage), records, preference, workdir,
                      accelerate_config=accelerate_config)
    return {**summary, "pairs": len(pairs)}
