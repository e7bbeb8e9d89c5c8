"""Write ``tests/data/tiny-llama.gguf``, a tiny random Llama in the real GGUF format.

The real checkpoint the project converts (SmolLM2-135M-Instruct, Q4_1 GGUF, 94 MB) is too big for
CI, so the GGUF-to-safetensors conversion is tested on this stand-in instead. It has the same shape
of file: architecture ``llama`` (2 layers, hidden 32, 4 heads, 2 KV heads, intermediate 64, tied
embeddings, so there is no ``output.weight``), a byte-level BPE tokenizer (``tokenizer.ggml.model``
= ``gpt2``) with ``<|endoftext|>``, ``<|im_start|>`` and ``<|im_end|>`` as control tokens, and a
ChatML chat template. Tensor types are mixed so that transformers' de-quantisation path runs:
norms F32, ``token_embd`` Q8_0, layer 0's matrices Q4_1 (the real file's type), layer 1's attention
Q8_0 and its MLP F16. The weights are drawn in Hugging Face layout from a fixed seed and q/k are
permuted the way llama.cpp's converter does, so the loader's inverse permutation gives back
``hf_weights()`` (up to quantisation error).

Regenerate it (the output is byte-for-byte deterministic) with:

    python tests/data/make_tiny_gguf.py tests/data/tiny-llama.gguf
"""

from __future__ import annotations

import sys

import gguf
import numpy as np
from gguf import GGMLQuantizationType as Q

SEED = 0
N_LAYERS = 2
HIDDEN = 32
N_HEADS = 4
N_KV_HEADS = 2
HEAD_DIM = HIDDEN // N_HEADS
INTERMEDIATE = 64
CONTEXT = 2048
ROPE_THETA = 100000.0
RMS_EPS = 1e-5

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# ids 0, 1, 2, as in SmolLM2
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
BOS_ID, EOS_ID, PAD_ID, UNK_ID = 1, 2, 2, 0

# merges in rank order, written in the byte-level alphabet ("Ġ" is a space)
MERGES = [
    "u s", "e r", "us er",
    "a s", "as s", "i s", "t a", "n t", "ass is", "ta nt", "assis tant",
    "s y", "s t", "e m", "sy st", "syst em",
    "h e", "Ġ t", "Ġt he",
    "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld",
    "l l", "he ll", "hell o",
    "h i",
]  # fmt: skip


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def vocabulary() -> tuple[list[str], list[int]]:
    """Tokens and their GGUF token types: specials, the 256 bytes, then one token per merge."""
    byte_chars = _bytes_to_unicode()
    tokens = SPECIAL_TOKENS + [byte_chars[b] for b in range(256)]
    for merge in MERGES:
        left, right = merge.split(" ")
        assert left in tokens and right in tokens, merge
        if left + right not in tokens:
            tokens.append(left + right)
    types = [gguf.TokenType.CONTROL] * len(SPECIAL_TOKENS) + [gguf.TokenType.NORMAL] * (
        len(tokens) - len(SPECIAL_TOKENS)
    )
    return tokens, [int(t) for t in types]


VOCAB_SIZE = len(vocabulary()[0])


def hf_weights(seed: int = SEED) -> dict[str, np.ndarray]:
    """The model's weights in Hugging Face names and layout (float32), drawn from `seed`."""
    rng = np.random.default_rng(seed)

    def normal(*shape: int, std: float = 0.05) -> np.ndarray:
        return (rng.standard_normal(shape) * std).astype(np.float32)

    def norm() -> np.ndarray:
        return (1.0 + normal(HIDDEN, std=0.1)).astype(np.float32)

    weights = {"model.embed_tokens.weight": normal(VOCAB_SIZE, HIDDEN, std=0.5)}
    for i in range(N_LAYERS):
        p = f"model.layers.{i}."
        weights[p + "input_layernorm.weight"] = norm()
        weights[p + "self_attn.q_proj.weight"] = normal(N_HEADS * HEAD_DIM, HIDDEN)
        weights[p + "self_attn.k_proj.weight"] = normal(N_KV_HEADS * HEAD_DIM, HIDDEN)
        weights[p + "self_attn.v_proj.weight"] = normal(N_KV_HEADS * HEAD_DIM, HIDDEN)
        weights[p + "self_attn.o_proj.weight"] = normal(HIDDEN, N_HEADS * HEAD_DIM)
        weights[p + "post_attention_layernorm.weight"] = norm()
        weights[p + "mlp.gate_proj.weight"] = normal(INTERMEDIATE, HIDDEN)
        weights[p + "mlp.up_proj.weight"] = normal(INTERMEDIATE, HIDDEN)
        weights[p + "mlp.down_proj.weight"] = normal(HIDDEN, INTERMEDIATE)
    weights["model.norm.weight"] = norm()
    return weights


def _llama_cpp_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """convert_hf_to_gguf.py's q/k row permutation (HF's rotate-half -> GGML's interleaved rope)."""
    return (
        w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
        .swapaxes(1, 2)
        .reshape(w.shape)
    )


# HF suffix -> (GGUF suffix, type in layer 0, type in layer 1)
_LAYER_TENSORS = {
    "input_layernorm.weight": ("attn_norm.weight", Q.F32, Q.F32),
    "self_attn.q_proj.weight": ("attn_q.weight", Q.Q4_1, Q.Q8_0),
    "self_attn.k_proj.weight": ("attn_k.weight", Q.Q4_1, Q.Q8_0),
    "self_attn.v_proj.weight": ("attn_v.weight", Q.Q4_1, Q.Q8_0),
    "self_attn.o_proj.weight": ("attn_output.weight", Q.Q4_1, Q.Q8_0),
    "post_attention_layernorm.weight": ("ffn_norm.weight", Q.F32, Q.F32),
    "mlp.gate_proj.weight": ("ffn_gate.weight", Q.Q4_1, Q.F16),
    "mlp.up_proj.weight": ("ffn_up.weight", Q.Q4_1, Q.F16),
    "mlp.down_proj.weight": ("ffn_down.weight", Q.Q4_1, Q.F16),
}


def gguf_tensors(seed: int = SEED) -> list[tuple[str, np.ndarray, Q]]:
    """`(gguf_name, float32 data in GGUF layout, storage type)`, in file order."""
    hf = hf_weights(seed)
    out = [("token_embd.weight", hf["model.embed_tokens.weight"], Q.Q8_0)]
    for i in range(N_LAYERS):
        for hf_suffix, (gguf_suffix, *types) in _LAYER_TENSORS.items():
            data = hf[f"model.layers.{i}.{hf_suffix}"]
            if hf_suffix == "self_attn.q_proj.weight":
                data = _llama_cpp_permute(data, N_HEADS)
            elif hf_suffix == "self_attn.k_proj.weight":
                data = _llama_cpp_permute(data, N_KV_HEADS)
            out.append((f"blk.{i}.{gguf_suffix}", data, types[i]))
    out.append(("output_norm.weight", hf["model.norm.weight"], Q.F32))
    return out


def write(path: str, seed: int = SEED) -> None:
    tokens, token_types = vocabulary()
    writer = gguf.GGUFWriter(path, "llama")

    writer.add_type("model")
    writer.add_name("Tiny Llama Test")
    writer.add_size_label("tiny")
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_1)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)

    writer.add_vocab_size(VOCAB_SIZE)
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(HIDDEN)
    writer.add_block_count(N_LAYERS)
    writer.add_feed_forward_length(INTERMEDIATE)
    writer.add_rope_dimension_count(HEAD_DIM)
    writer.add_head_count(N_HEADS)
    writer.add_head_count_kv(N_KV_HEADS)
    writer.add_rope_freq_base(ROPE_THETA)
    writer.add_layer_norm_rms_eps(RMS_EPS)

    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list(tokens)
    writer.add_token_types(token_types)
    writer.add_token_merges(MERGES)
    writer.add_bos_token_id(BOS_ID)
    writer.add_eos_token_id(EOS_ID)
    writer.add_unk_token_id(UNK_ID)
    writer.add_pad_token_id(PAD_ID)
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    for name, data, qtype in gguf_tensors(seed):
        if qtype in (Q.F32, Q.F16):
            writer.add_tensor(name, gguf.quants.quantize(data, qtype))
        else:
            writer.add_tensor(name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: python {sys.argv[0]} OUT.gguf")
    write(sys.argv[1])
