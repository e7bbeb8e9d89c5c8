"""A GGUF checkpoint becomes a safetensors folder in the run store (`repro.models.gguf`), checked on the
project's tiny GGUF file (`tests/data/tiny-llama.gguf`, the real format: mixed Q4_1 / Q8_0 / F16 / F32
tensors, a byte-level BPE tokenizer and a ChatML template; `tests/data/make_tiny_gguf.py` writes it)."""

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from repro import generation
from repro.models import load_model
from repro.models.gguf import convert_gguf, file_sha256, gguf_model_stage
from repro.models.io import ModelNotFound, load_gguf
from repro.runs.store import RunStore

DATA = Path(__file__).parent / "data"
TINY = DATA / "tiny-llama.gguf"


def _maker():
    spec = importlib.util.spec_from_file_location("make_tiny_gguf", DATA / "make_tiny_gguf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shipped_tiny_gguf_is_what_its_script_writes(tmp_path):
    _maker().write(str(tmp_path / "again.gguf"))
    assert file_sha256(tmp_path / "again.gguf") == file_sha256(TINY)


def test_a_converted_folder_loads_through_the_safe_loader_with_the_gguf_models_logits(tmp_path):
    results = convert_gguf(TINY, tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").glob("*.safetensors")) == ["model.safetensors"]
    assert not list((tmp_path / "model").glob("*.bin"))
    assert results["architecture"] == "LlamaForCausalLM" and results["chat_template"] is True
    assert results["max_logit_difference"] <= 1e-4
    model, tokenizer = load_model(tmp_path / "model")
    assert "quantization_config" not in model.config.to_dict()
    reference, reference_tokenizer = load_gguf(TINY)
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Sort 3 1 2."}], add_generation_prompt=True,
                                         tokenize=False)
    assert text == "<|im_start|>user\nSort 3 1 2.<|im_end|>\n<|im_start|>assistant\n"
    ids = tokenizer(text, return_tensors="pt")
    assert ids["input_ids"].tolist() == reference_tokenizer(text, return_tensors="pt")["input_ids"].tolist()
    with torch.no_grad():
        assert torch.equal(model(**ids).logits, reference(**ids).logits)


def test_the_de_quantised_weights_are_the_ones_the_file_was_written_from(tmp_path):
    """Q4_1 / Q8_0 / F16 tensors come back within their quantisation error of the weights the script drew
    (so the loader's q/k un-permutation and the tied head are right, not merely self-consistent)."""
    convert_gguf(TINY, tmp_path / "model")
    model, _ = load_model(tmp_path / "model")
    state = model.state_dict()
    for name, expected in _maker().hf_weights().items():
        got = state[name].numpy()
        assert got.shape == expected.shape, name
        assert np.abs(got - expected).max() <= 0.02 * max(1.0, np.abs(expected).max()), name
    assert torch.equal(state["lm_head.weight"], state["model.embed_tokens.weight"])


def test_the_stage_is_keyed_by_the_files_content_and_shared_by_every_role(tmp_path):
    store = RunStore(tmp_path / "store")
    first = generation.external_model_stage(store, str(TINY), name="external-judge")
    assert first.name == "gguf-model" and first.manifest["results"]["sha256"] == file_sha256(TINY)
    copy = tmp_path / "elsewhere" / "same.gguf"
    copy.parent.mkdir()
    shutil.copy(TINY, copy)
    again = generation.external_model_stage(store, str(copy), name="external-evolver")
    assert again.key == first.key and again.path == first.path  # reused, not converted twice
    assert generation.model_location(again) == str(first.path / "model")
    changed = tmp_path / "changed.gguf"
    changed.write_bytes(TINY.read_bytes() + b"\0" * 32)  # GGUF pads its data section; the bytes differ
    assert gguf_model_stage(store, changed).key != first.key


def test_what_is_not_a_gguf_model_is_refused_as_model_not_found(tmp_path):
    with pytest.raises(ModelNotFound, match="does not exist"):
        gguf_model_stage(RunStore(tmp_path / "store"), tmp_path / "missing.gguf")
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a gguf file at all")
    with pytest.raises(ModelNotFound, match="as a GGUF model"):
        load_gguf(fake)


def test_a_missing_gguf_parameter_says_how_to_fetch_the_real_model():
    from repro.runs.notebooks import (
        ParameterError,
        resolve_notebook,
        resolve_parameters,
    )

    with pytest.raises(ParameterError, match="make real-small"):
        resolve_parameters(resolve_notebook("40_real_model"), {"name": "x", "defaults": {}, "notebooks": {}},
                           {"model_path": "models/not-there.gguf"})
    resolved = resolve_parameters(resolve_notebook("40_real_model"), {"name": "x", "defaults": {}, "notebooks": {}},
                                  {"model_path": str(TINY)})
    assert resolved["model_path"] == str(TINY.resolve())
