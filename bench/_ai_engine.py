"""A real OpenAI-compatible engine for tests and benchmarks: llama-cpp-python's server
(``python -m llama_cpp.server``) running a tiny random-weight llama model that
:func:`build_tiny_gguf` writes with the ``gguf`` package (no download).

The model: a SentencePiece-style ("llama") vocabulary of 3 control tokens, the 256 byte tokens
and about a hundred pieces (common Chinese characters and a few words), 2 layers, 64-wide.
Its weights are random except that one embedding dimension carries a constant, so that the
final hidden state always points the same way there; the output rows use it to make the
end-of-text token unlikely (an answer is never empty) and word pieces likelier than raw bytes.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

CJK = ("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可也你"
       "小学老师数语文山水田村米麦茶花草树春天风雨上下")
WORDS = ("▁the", "▁a", "▁is", "▁of", "▁and", "ing", "er", "▁", "，", "。", "\n")
N_EMBD, N_HEAD, N_FF, N_LAYER, N_CTX = 64, 4, 128, 2, 4096
MODEL_NAME = "tiny-llama"


def build_tiny_gguf(path: Path, seed: int = 18) -> Path:
    import gguf
    import numpy as np
    rng = np.random.default_rng(seed)
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL] + \
        [gguf.TokenType.BYTE] * 256
    pieces = list(dict.fromkeys([*CJK, *WORDS]))
    tokens += pieces
    types += [gguf.TokenType.NORMAL] * len(pieces)
    scores = [0.0] * 259 + [-float(i) for i in range(len(pieces))]
    n_vocab = len(tokens)

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name(MODEL_NAME)
    w.add_context_length(N_CTX)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD)
    w.add_rope_dimension_count(N_EMBD // N_HEAD)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)

    def rnd(*shape: int, std: float = 0.02) -> "np.ndarray":
        return (rng.standard_normal(shape) * std).astype(np.float32)

    embd = rnd(n_vocab, N_EMBD, std=0.5)
    embd[:, 0] = 8.0                       # the constant direction
    out = rnd(n_vocab, N_EMBD, std=0.5)
    out[:, 0] = 0.0
    out[259:, 0] = 0.6                     # word pieces over raw bytes
    out[2, 0] = -8.0                       # end of text: unlikely
    w.add_tensor("token_embd.weight", embd)
    w.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    w.add_tensor("output.weight", out)
    for i in range(N_LAYER):
        b = f"blk.{i}."
        w.add_tensor(b + "attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            w.add_tensor(b + name + ".weight", rnd(N_EMBD, N_EMBD))
        w.add_tensor(b + "ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        w.add_tensor(b + "ffn_gate.weight", rnd(N_FF, N_EMBD))
        w.add_tensor(b + "ffn_up.weight", rnd(N_FF, N_EMBD))
        w.add_tensor(b + "ffn_down.weight", rnd(N_EMBD, N_FF))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def engine(model: Path, *, startup_timeout: float = 60.0) -> Iterator[str]:
    """Run llama-cpp-python's OpenAI-compatible server on ``model``; yields its base URL."""
    import httpx
    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model),
           "--model_alias", MODEL_NAME, "--host", "127.0.0.1", "--port", str(port),
           "--n_ctx", str(N_CTX), "--n_threads", "1", "--verbose", "False"]
    log = open(model.with_suffix(".log"), "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"engine exited ({proc.returncode}): "
                                   + model.with_suffix(".log").read_text(errors="replace")[-2000:])
            try:
                if httpx.get(url + "/v1/models", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("engine did not start in time")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
