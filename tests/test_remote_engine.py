"""`rltab serve --engine URL`: the model runs on llama.cpp's real server (built from the pinned
llama-cpp-python sdist by harness/llama_cpp.py, cached between runs), serving the starter converted
to GGUF and a LoRA adapter version exported by `rltab export-adapter --format gguf`. Everything
else (prompt, filters, ledger, learning data) stays in rltab. Skipped, with the reason, where
llama.cpp cannot be downloaded or built."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch
from helpers import random_adapter
from lsp_helpers import inline, ledger_rows, lsp_session, open_doc, wait_until

from rltab.harness import llama_cpp
from rltab.policy.completion.completer import Completer
from rltab.policy.inference.loading import load_model
from rltab.policy.inference.remote_engine import RemoteError, RemoteSpec
from rltab.policy.learning.scoring import completion_logprobs
from rltab.policy.model.checkpoint import STARTER_DIR, load_torch

CONTEXTS = [
    ("import os\n\n\ndef main(args):\n    path = os.path.", "\n"),
    ("class Point:\n    def __init__(self, x, y):\n        self.x = x\n        ", "\n"),
    ("def read(path):\n    with open(path) as f:\n        return ", "\n"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    """llama-server on the starter (f32 GGUF) with one adapter version loaded at scale 0."""
    try:
        binary = llama_cpp.server_binary()
        work = tmp_path_factory.mktemp("llama")
        base = llama_cpp.model_to_gguf(STARTER_DIR, work / "starter-f32.gguf", "f32")
    except llama_cpp.Unavailable as e:
        pytest.skip(f"llama.cpp's server is not available here: {e}")
    home = work / "home"
    adapter_model, _, _ = random_adapter(home, "v0001", seed=3, scale=0.1)
    r = subprocess.run(
        [sys.executable, "-m", "rltab.server.cli", "export-adapter", "v0001", str(work / "adapters")]
        + ["--format", "gguf", "--llama-cpp", str(llama_cpp.source()), "--home", str(home)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    gguf = Path(r.stdout.strip())
    assert gguf.suffix == ".gguf" and gguf.name.startswith("rltab-v0001-")
    port = _free_port()
    log = (work / "server.log").open("w")
    proc = subprocess.Popen(
        [str(binary), "-m", str(base), "--host", "127.0.0.1", "--port", str(port), "-c", "2048", "-np", "1"]
        + ["-t", "1", "--lora-scaled", f"{gguf}:0"],  # loaded, applied where a request names it
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                if resp.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"llama-server did not start: {(work / 'server.log').read_text()[-2000:]}")
        time.sleep(0.2)
    yield {"url": url, "home": home, "adapter_model": adapter_model}
    proc.terminate()
    proc.wait(10)
    log.close()


def _prompts(model):
    return [Completer(model).prompt(before, after)[0] for before, after in CONTEXTS]


def _assert_model_computed(torch_model, prompt, cand, atol=2e-3):
    """The ids are the model's greedy choices and the log-probs its own, at temperature 1."""
    assert cand.token_ids and len(cand.logprobs) == len(cand.token_ids)
    with torch.no_grad():
        mine, _ = completion_logprobs(torch_model, prompt, cand.token_ids)
        for i in range(len(cand.token_ids)):  # greedy: no token more likely than the one taken
            logits = torch_model(input_ids=torch.tensor([prompt + cand.token_ids[:i]])).logits[0, -1]
            assert logits.log_softmax(-1).max().item() <= mine[i].item() + atol
    assert torch.allclose(mine, torch.tensor(cand.logprobs), atol=atol), (mine, cand.logprobs)


def test_llama_cpp_serves_what_the_model_computes_with_its_log_probs(llama, starter):
    remote = load_model(llama["home"], "starter", remote=RemoteSpec(llama["url"]))
    base = load_torch(STARTER_DIR).float().eval()
    for prompt in _prompts(starter):
        gen = remote.engine.generate(prompt, max_new_tokens=12, single_line=False)
        cand = gen.candidates[0]
        _assert_model_computed(base, prompt, cand)
        # The same words as the local engine's (int8: the texts agree where the choice is clear).
        local = starter.engine.generate(prompt, max_new_tokens=12, single_line=False).candidates[0]
        assert cand.text[:4] == local.text[:4] or not cand.text.strip()
    # Single-line completions stop at the newline; the prompt cache serves the repeat request.
    prompt = _prompts(starter)[0]
    line = remote.engine.generate(prompt, max_new_tokens=40, single_line=True).candidates[0]
    assert "\n" not in line.text and line.finish in ("newline", "eos", "length")


def test_openai_completions_endpoint_gives_the_same_completion(llama, starter):
    native = load_model(llama["home"], "starter", remote=RemoteSpec(llama["url"]))
    oai = load_model(llama["home"], "starter", remote=RemoteSpec(llama["url"] + "/v1"))
    prompt = _prompts(starter)[1]
    a = native.engine.generate(prompt, max_new_tokens=10, single_line=False).candidates[0]
    b = oai.engine.generate(prompt, max_new_tokens=10, single_line=False).candidates[0]
    assert b.text == a.text and b.token_ids == a.token_ids
    assert len(b.logprobs) == len(b.token_ids)


def test_the_version_s_adapter_is_named_per_request(llama, starter):
    """`rltab export-adapter --format gguf` output, loaded by `llama-server --lora`: the adapter
    version is served through it (llama.cpp applies it to that request only)."""
    spec = RemoteSpec(llama["url"])
    served = load_model(llama["home"], "v0001", remote=spec)
    assert served.engine.adapter.startswith("rltab-v0001-") and served.engine.adapter.endswith(".gguf")
    base = load_model(llama["home"], "starter", remote=spec)
    moved = 0
    for prompt in _prompts(starter):
        cand = served.engine.generate(prompt, max_new_tokens=6, single_line=False).candidates[0]
        _assert_model_computed(llama["adapter_model"], prompt, cand, atol=2e-2)
        plain = base.engine.generate(prompt, max_new_tokens=6, single_line=False).candidates[0]
        moved += plain.token_ids != cand.token_ids
    assert moved >= 1  # and the base's requests are untouched by it
    # A version published after the server started: not loadable until the server has its file
    # (the model holder then keeps serving the version before it).
    random_adapter(llama["home"], "v0002", seed=4)
    with pytest.raises(RemoteError, match="no LoRA adapter rltab-v0002-"):
        load_model(llama["home"], "v0002", remote=spec)


async def test_serve_with_engine_records_what_the_server_generated(llama, tmp_path):
    home = tmp_path / "home"
    uri = (tmp_path / "a.py").as_uri()
    text = CONTEXTS[2][0]
    async with lsp_session(home, extra_args=("--engine", llama["url"], "--learn")) as client:
        open_doc(client, uri, text)
        lines = text.split("\n")
        result = await inline(client, uri, len(lines) - 1, len(lines[-1]))
        rows = await wait_until(lambda: ledger_rows(home, "select * from suggestion"))
    assert result is not None and result.items and result.items[0].insert_text.strip()
    row = rows[0]
    assert row["model_version"] == "starter"
    assert len(json.loads(row["logprobs"])) == len(json.loads(row["completion_ids"])) > 0


async def test_a_dead_engine_means_no_suggestion_and_one_message(tmp_path):
    home = tmp_path / "home"
    uri = (tmp_path / "a.py").as_uri()
    dead = f"http://127.0.0.1:{_free_port()}"
    async with lsp_session(home, extra_args=("--engine", dead)) as client:
        open_doc(client, uri, CONTEXTS[0][0])
        for _ in range(2):
            result = await inline(client, uri, 4, len(CONTEXTS[0][0].split("\n")[-1]))
            assert result is None or not result.items
        said = lambda: [m.message for m in client.messages if "inference server" in m.message]
        await wait_until(said)
    assert len(said()) == 1, said()


def test_engine_and_export_adapter_usage_errors(tmp_path):
    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "rltab.server.cli", *args, "--home", str(tmp_path / "home")],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )

    r = cli("serve", "--engine", "ftp://example.org")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "http" in r.stderr
    r = cli("export-adapter", "v0042", str(tmp_path / "out"))
    assert r.returncode == 2 and "no version v0042" in r.stderr
    r = cli("export-adapter", "starter", str(tmp_path / "out"))
    assert r.returncode == 2 and "full model" in r.stderr


def test_export_adapter_peft_is_a_directory_peft_loads(tmp_path):
    """The format vLLM loads at run time (--enable-lora): adapter_config.json + weights, named
    after the version and a digest of its weights."""
    from peft import PeftModel

    home = tmp_path / "home"
    model, _, _ = random_adapter(home, "v0001", seed=5)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "rltab.server.cli",
            "export-adapter",
            "v0001",
            str(tmp_path / "out"),
            "--home",
            str(home),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    out = Path(r.stdout.strip())
    assert out.name.startswith("rltab-v0001-") and json.loads((out / "adapter_config.json").read_text())["r"] == 8
    loaded = PeftModel.from_pretrained(load_torch(STARTER_DIR), str(out)).eval()
    ids = torch.tensor([[1, 50, 60, 70, 80]])
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=ids).logits, model(input_ids=ids).logits, atol=1e-4)


def test_a_url_that_is_not_an_inference_server_is_a_remote_error(starter):
    """--engine pointed at some other web server: its answer is no JSON, and that is the one
    error the server turns into 'no suggestion, one warning' (not a crash of the request)."""
    import http.server
    import threading

    class Page(http.server.BaseHTTPRequestHandler):
        def _page(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"data: <html>not an inference server</html>\n")

        do_GET = do_POST = _page

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        for spec in (RemoteSpec(url), RemoteSpec(url + "/v1")):
            engine = load_model(Path("/nonexistent"), "starter", remote=spec).engine
            with pytest.raises(RemoteError, match="not JSON"):
                engine.generate(_prompts(starter)[0], max_new_tokens=4)
    finally:
        httpd.shutdown()
