"""A pointwise reward model given by path: eva's ``r`` at paper scale (issue 5).

eva scores every sampled response with an off-the-shelf reward model: ArmoRM-Llama3-8B
(``RLHFlow/ArmoRM-Llama3-8B-v0.1``) by default, Skywork-Reward-Gemma-2-27B for the scaling ablation.
Both are sequence classifiers over a chat: the (prompt, response) pair is rendered as a user and an
assistant message with the tokenizer's chat template, and the reward is the model's first output at
the last token. `SequenceRewardModel` does that for any ``AutoModelForSequenceClassification``
checkpoint, a local folder or a hub id, in batches:

- ArmoRM's own modelling code (``trust_remote_code=True``) returns an output with a ``score`` field
  (its gated mixture of objectives); that is read when present, else ``logits[:, 0]``.
- Batches are padded on the right, so every sequence keeps the positions it has alone. The classifier
  finds each sequence's last token by looking for the pad id (transformers' generic head takes the
  rightmost token that is not the pad id; ArmoRM's code the first pad id minus one), which goes wrong
  when the pad id is also a real token of the batch (Llama 3 checkpoints often set pad = eos, and the
  chat template ends turns with it). So each batch is padded with an id that occurs nowhere in its
  real tokens (the tokenizer's pad id when possible), and ``config.pad_token_id`` is set to it: the
  scores of a batch equal the scores of each pair alone.
- Weights are read from safetensors only, and code shipped with a checkpoint runs only with
  ``trust_remote_code=True`` (ArmoRM needs it), which logs a warning.
- The model loads on first use; `key` (for the run store) needs no loading.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # imported where a reward model runs: a notebook whose stages are reused never loads it
    import torch

from repro.errors import ReproError
from repro.models.io import ModelNotFound, _as_dtype, _looks_like_path, load_weights

logger = logging.getLogger(__name__)


class RewardModelError(ReproError):
    """A reward model that cannot score as asked (e.g. a tokenizer without a chat template)."""


def output_scores(output: Any) -> torch.Tensor:
    """One reward per sequence from a classifier's output: its ``score`` field when it has one
    (ArmoRM), else the first logit. Returns a float tensor of shape ``(batch,)``."""
    import torch

    score = getattr(output, "score", None)
    values = score if isinstance(score, torch.Tensor) else output.logits
    values = values.float()
    return values.reshape(values.shape[0], -1)[:, 0]


class SequenceRewardModel:
    """A sequence-classification reward model (see the module docstring).

    Args:
        path: a checkpoint folder or a hub id (e.g. ``"RLHFlow/ArmoRM-Llama3-8B-v0.1"``,
            ``"Skywork/Skywork-Reward-Gemma-2-27B"``).
        batch_size: pairs per forward pass.
        max_length: longest rendered pair in tokens; longer ones are cut at the end (and counted in
            ``truncated``). None: the tokenizer's ``model_max_length`` when it is a real limit, else
            no cut.
        device: where to put the weights (``"cuda"``, ``"cuda:1"``, ``"auto"``); None leaves them on
            the CPU, as `repro.models.load_model` does.
        trust_remote_code: run modelling code shipped with the checkpoint (off unless asked for; logs
            a warning).
        dtype: weights dtype (``"bfloat16"``, ``torch.float16``, ``"auto"``); None loads float32.
        plain_text: render a pair as ``prompt + "\\n" + response`` (with the tokenizer's special
            tokens) instead of the chat template. Without it, a tokenizer with no chat template is an
            error: scoring raw text with a chat-trained reward model would silently mislead.
    """

    def __init__(self, path: str | os.PathLike, *, batch_size: int = 16, max_length: int | None = None,
                 device: str | torch.device | None = None, trust_remote_code: bool = False,
                 dtype: str | torch.dtype | None = None, plain_text: bool = False) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if max_length is not None and max_length < 2:
            raise ValueError(f"max_length must be >= 2 (or None), got {max_length}")
        name = os.fspath(path)
        local = Path(name).expanduser()
        if local.exists():
            if not (local / "config.json").is_file():
                raise ModelNotFound(f"{str(local)!r} is not a model folder: it has no config.json")
            self.source, self.local = str(local.resolve()), True
        elif _looks_like_path(path):
            raise ModelNotFound(f"reward model path {name!r} does not exist")
        else:
            self.source, self.local = name, False
        self.batch_size, self.max_length, self.device = batch_size, max_length, device
        self.trust_remote_code, self.dtype, self.plain_text = trust_remote_code, _as_dtype(dtype), plain_text
        self.truncated = 0  # pairs cut to max_length so far
        self._model = self._tokenizer = None

    # -- loading -----------------------------------------------------------------------------------
    def load(self) -> SequenceRewardModel:
        """Load the model and tokenizer now (otherwise the first `score` does)."""
        if self._model is not None:
            return self
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if self.trust_remote_code:
            logger.warning("Loading reward model %r with trust_remote_code=True: code shipped with the "
                           "checkpoint will run.", self.source)
        kwargs: dict[str, Any] = {"trust_remote_code": self.trust_remote_code}
        if self.dtype is not None:
            kwargs["dtype"] = self.dtype
        if self.device is not None:
            kwargs["device_map"] = str(self.device)
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.source, trust_remote_code=self.trust_remote_code)
            model = load_weights(AutoModelForSequenceClassification, self.source, **kwargs)
        except OSError as error:
            raise ModelNotFound(f"could not load reward model {self.source!r}: {error}") from error
        if not self.plain_text and not getattr(tokenizer, "chat_template", None):
            raise RewardModelError(
                f"the tokenizer of reward model {self.source!r} has no chat template, so (prompt, response) "
                "pairs cannot be rendered the way the model was trained; pass plain_text=True to score "
                "'prompt\\nresponse' texts instead")
        self._model, self._tokenizer = model.eval(), tokenizer
        return self

    @property
    def model(self):
        return self.load()._model

    @property
    def tokenizer(self):
        return self.load()._tokenizer

    def key(self) -> dict[str, Any]:
        """What determines the scores, for the run store: the hub id, or the folder with the size and
        modification time of each of its files; and the options that change the scores."""
        options = {"max_length": self.max_length, "plain_text": self.plain_text,
                   "dtype": str(self.dtype) if self.dtype is not None else None}
        if not self.local:
            return {"reward_model": self.source, **options}
        files = {}
        for file in sorted(Path(self.source).iterdir()):
            if file.is_file():
                stat = file.stat()
                files[file.name] = [stat.st_size, stat.st_mtime_ns]
        return {"reward_model": self.source, "files": files, **options}

    # -- scoring -----------------------------------------------------------------------------------
    def _limit(self) -> int | None:
        if self.max_length is not None:
            return self.max_length
        limit = getattr(self.tokenizer, "model_max_length", None)
        return limit if isinstance(limit, int) and limit < 10**8 else None

    def encode(self, prompt: str, response: str) -> list[int]:
        """The token ids of one (prompt, response) pair, as the model reads it."""
        tokenizer = self.tokenizer
        if self.plain_text:
            ids = tokenizer(f"{prompt}\n{response}")["input_ids"]
        else:
            messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
            ids = tokenizer.apply_chat_template(messages, tokenize=True)
            ids = ids["input_ids"] if not isinstance(ids, list) else ids
        ids = [int(i) for i in ids]
        limit = self._limit()
        if limit is not None and len(ids) > limit:
            self.truncated += 1
            ids = ids[:limit]
        return ids

    def _pad_id(self, batch: list[list[int]]) -> int:
        """An id that occurs in none of the batch's sequences: the tokenizer's pad id when possible."""
        used = {i for ids in batch for i in ids}
        candidates = [self.tokenizer.pad_token_id, getattr(self.model.config, "pad_token_id", None)]
        for candidate in candidates:
            if isinstance(candidate, int) and candidate not in used:
                return candidate
        return next(i for i in range(len(used) + 1) if i not in used)

    def _forward(self, batch: list[list[int]]) -> list[float]:
        import torch

        with torch.inference_mode():
            model = self.model
            pad = self._pad_id(batch)
            width = max(len(ids) for ids in batch)
            input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for row, ids in enumerate(batch):
                input_ids[row, :len(ids)] = torch.tensor(ids, dtype=torch.long)
                attention[row, :len(ids)] = 1
            configs = {id(model.config): model.config}
            if hasattr(model.config, "get_text_config"):
                text_config = model.config.get_text_config()
                configs[id(text_config)] = text_config
            saved = [(c, getattr(c, "pad_token_id", None)) for c in configs.values()]
            for config, _ in saved:
                config.pad_token_id = pad
            try:
                device = next(model.parameters()).device
                output = model(input_ids=input_ids.to(device), attention_mask=attention.to(device))
            finally:
                for config, value in saved:
                    config.pad_token_id = value
            return output_scores(output).cpu().tolist()

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """The reward of each (prompt, response) pair, as a float array of ``len(prompts)``. Pairs are
        batched by length (less padding); the scores do not depend on the batching."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        for index, (prompt, response) in enumerate(zip(prompts, responses)):
            if not isinstance(prompt, str) or not isinstance(response, str):
                raise TypeError(f"pair {index}: prompt and response must be strings, got "
                                f"{type(prompt).__name__} and {type(response).__name__}")
        truncated = self.truncated
        encoded = [self.encode(p, r) for p, r in zip(prompts, responses)]
        if self.truncated > truncated:
            logger.warning("%d of %d pairs are longer than %d tokens and were cut at the end before scoring",
                           self.truncated - truncated, len(encoded), self._limit())
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))  # batches of similar lengths
        scores = np.empty(len(encoded), dtype=float)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            scores[chunk] = self._forward([encoded[i] for i in chunk])
        return scores

    def __repr__(self) -> str:
        return f"SequenceRewardModel({self.source!r}, batch_size={self.batch_size})"


__all__ = ["RewardModelError", "SequenceRewardModel", "output_scores"]
