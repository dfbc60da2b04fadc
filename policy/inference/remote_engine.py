"""A remote inference server as rltab's engine (`rltab serve --engine URL`).

The prompt is still built here (context, FIM template, token ids from the local tokenizer); the
server only runs the model. Two protocols:

- llama.cpp's own `/completion` (URL without `/v1`): the prompt travels as token ids, the reply
  streams the sampled ids with their log-probs under the model at temperature 1 (`n_probs`), the
  server's prompt cache plays the local engine's KV reuse (`cache_prompt`), and a LoRA adapter the
  server loaded (`--lora FILE`) is named per request (`lora: [{id, scale}]`).
- OpenAI-compatible `/v1/completions` (URL ending in `/v1`: vLLM, llama.cpp, Ollama): the prompt
  travels as token ids (the spec allows them; vLLM and llama.cpp take them), or, where a server
  refuses those (Ollama), as text with the model's FIM template tokens spelled out; `model` names
  the base or a LoRA adapter (vLLM `--enable-lora`), `logprobs: 1` asks for the behaviour log-probs.

Streaming both ways: single-line completions stop at the first newline, block completions where
`stop(text)` cuts, and a cancelled request closes the stream (llama.cpp stops decoding).

A server that misbehaves costs one suggestion, never a request: every failure (refused, down,
an answer of the wrong shape, a stream cut mid-way) is a RemoteError, and each completion has an
overall deadline (`RemoteSpec.deadline_s`): a watchdog shuts the socket when it passes, or when
the request is cancelled, wherever the read is blocked (a server that never answers, or drips a
byte at a time, once held the one inference worker for 60 to 100 s).

What stays local-only: the copy distribution (`copy_weight`) and token healing need the model's
full next-token distribution at each step, which no server streams; they are skipped here.
Where a server returns no log-probs, the candidate carries none and the updater takes the parent's
log-probs as the behaviour's (rows served by the same weights it trains from: ratio 1 at the
first step), see examples.from_rows.
"""

from __future__ import annotations

import http.client
import itertools
import json
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from .generation import Draft, Generation, RepeatSource
from .watchdog import Watch

DEADLINE_S = 5.0  # one completion, from request to last token: editors give up soon after
CHECK_S = 20.0  # a lookup outside a completion (is this version's adapter loaded?)
LORA_LOOKUP_S = 60.0
WATCH_EVERY_S = 0.05
SHAPE_ERRORS = (AttributeError, TypeError, KeyError, IndexError, ValueError)  # an answer of the wrong shape


class RemoteError(RuntimeError):
    """The inference server refused a request or could not be reached."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status  # the HTTP status of a refusal


@dataclass(frozen=True)
class RemoteSpec:
    """Where and how to reach the server: `url` as the user gave it."""

    url: str
    model: str | None = None  # OpenAI `model` for the base (vLLM needs the name it serves)
    deadline_s: float = DEADLINE_S

    @property
    def problem(self) -> str | None:
        """What is wrong with the URL (None: nothing), checked at start."""
        try:
            parts = urlsplit(self.url)
            port = parts.port  # out of range or not a number: ValueError
        except ValueError as e:
            return f"--engine {self.url!r} is not a URL: {e}"
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return f"--engine wants an http(s) URL, got {self.url!r}"
        if port == 0:
            return f"--engine {self.url!r}: port 0"
        return None

    @property
    def openai(self) -> bool:
        return urlsplit(self.url).path.rstrip("/").endswith("/v1")

    @property
    def endpoint(self) -> str:
        return "/completions" if self.openai else "/completion"


class RemoteEngine:
    """`Engine.generate` over HTTP. `adapter` names the LoRA adapter of the version served: a
    GGUF file name llama.cpp loaded (looked up in its `/lora-adapters`), or a vLLM model name."""

    def __init__(
        self,
        spec: RemoteSpec,
        token_bytes: list[bytes],
        stop_ids: Sequence[int],
        decode: Callable[[Sequence[int]], str],
        encode: Callable[[str], Sequence[int]],
        max_positions: int = 2048,
        adapter: str | None = None,
    ):
        self.spec = spec
        if spec.problem:
            raise ValueError(spec.problem)
        self._parts = urlsplit(spec.url)
        self.token_bytes = token_bytes
        self.stop_ids = set(stop_ids)
        self.newline_ids = {i for i, b in enumerate(token_bytes) if b"\n" in b}
        self.decode = decode  # ids -> text with the template's tokens spelled out (OpenAI prompts)
        self.encode = encode
        self.max_positions = max_positions
        self.adapter = adapter
        self._lora: list[dict] | None = None  # llama.cpp: the request's `lora` field, as looked up
        self._lora_at = 0.0
        self._text_prompts = False  # OpenAI: token-id prompts until the server refuses them (Ollama)

    # -- HTTP -------------------------------------------------------------------------------
    def _connect(self, deadline: float) -> http.client.HTTPConnection:
        """A connection, connected (within the time left): the watchdog needs its socket, which
        http.client hands on to the response and forgets."""
        cls = http.client.HTTPSConnection if self._parts.scheme == "https" else http.client.HTTPConnection
        left = max(0.05, deadline - time.monotonic())
        conn = cls(self._parts.hostname or "", self._parts.port, timeout=left)
        try:
            conn.connect()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            why = f"no connection within {left:.1f} s" if isinstance(e, TimeoutError) else e
            raise RemoteError(f"{self.spec.url}: {why}") from e
        return conn

    def _path(self, endpoint: str) -> str:
        return self._parts.path.rstrip("/") + endpoint

    def get_json(self, endpoint: str, deadline: float | None = None):
        deadline = time.monotonic() + CHECK_S if deadline is None else deadline
        conn = self._connect(deadline)
        try:
            with Watch(conn.sock, deadline) as watch:
                try:
                    conn.request("GET", self._path(endpoint))
                    r = conn.getresponse()
                    body = r.read()
                except (OSError, http.client.HTTPException) as e:
                    raise RemoteError(f"{self.spec.url}: {watch.reason(e)}") from e
            if r.status != 200:
                raise RemoteError(f"{self.spec.url}{endpoint}: HTTP {r.status} {body[:200]!r}")
            return json.loads(body)
        except ValueError as e:  # not JSON: not the server the URL was meant to name
            raise RemoteError(f"{self.spec.url}{endpoint}: not JSON ({e})") from e
        finally:
            conn.close()

    def _stream(self, body: dict, deadline: float, cancelled: Callable[[], bool] | None) -> Generator[dict, None, None]:
        """The server-sent events of one streamed completion; closing the generator closes the
        connection, which makes llama.cpp stop decoding."""
        conn = self._connect(deadline)
        try:
            with Watch(conn.sock, deadline, cancelled) as watch:
                try:
                    headers = {"Content-Type": "application/json"}
                    conn.request("POST", self._path(self.spec.endpoint), json.dumps(body), headers)
                    r = conn.getresponse()
                    if r.status != 200:
                        raise RemoteError(
                            f"{self.spec.url}{self.spec.endpoint}: HTTP {r.status} {r.read()[:300]!r}", r.status
                        )
                    for raw in r:
                        line = raw.strip()
                        if not line.startswith(b"data:"):
                            continue
                        data = line[5:].strip()
                        if data == b"[DONE]":
                            return
                        event = json.loads(data)
                        if not isinstance(event, dict):
                            raise ValueError(f"an event that is not an object: {data[:80]!r}")
                        if "error" in event:
                            raise RemoteError(f"{self.spec.url}: {event['error']}")
                        yield event
                        if event.get("stop") is True:  # llama.cpp's last event
                            return
                    # The bytes ran out before the stream's end ([DONE], or a `stop` event).
                    raise RemoteError(f"{self.spec.url}: {watch.why or 'the stream ended before its end'}")
                except (OSError, http.client.HTTPException) as e:  # refused, reset, cut mid-way
                    raise RemoteError(f"{self.spec.url}: {watch.reason(e)}") from e
        except ValueError as e:
            raise RemoteError(f"{self.spec.url}{self.spec.endpoint}: not JSON ({e})") from e
        finally:
            conn.close()

    def lora_field(self, deadline: float | None = None) -> list[dict]:
        """llama.cpp: every adapter the server loaded, at scale 0 but this version's at 1 (the
        server applies the ones a request does not name at their start-up scale, 1 by default).
        Looked up again every LORA_LOOKUP_S: a restarted server numbers its adapters anew."""
        if self._lora is None or time.monotonic() - self._lora_at > LORA_LOOKUP_S:
            try:
                loaded = self.get_json("/lora-adapters", deadline)
            except RemoteError:
                if self.adapter:
                    raise
                loaded = []  # a server without the endpoint has no adapters to switch off
            if not isinstance(loaded, list) or not all(isinstance(a, dict) and "id" in a for a in loaded):
                raise RemoteError(f"{self.spec.url}/lora-adapters: not a list of adapters: {str(loaded)[:120]}")
            ids = [a["id"] for a in loaded if str(a.get("path", "")).rsplit("/", 1)[-1] == self.adapter]
            if self.adapter and not ids:
                names = ", ".join(str(a.get("path")) for a in loaded) or "none"
                raise RemoteError(f"the server has no LoRA adapter {self.adapter} loaded (it has: {names})")
            self._lora = [{"id": a["id"], "scale": 1.0 if a["id"] in ids else 0.0} for a in loaded]
            self._lora_at = time.monotonic()
        return self._lora

    def check_adapter(self) -> None:
        """Raise RemoteError unless the server has this version's adapter: a version published
        here is only served once the server loaded its file (docs/scale.md); until then the model
        holder keeps serving the version before it."""
        if not self.adapter:
            return
        if not self.spec.openai:
            self.lora_field()
            return
        try:
            served = {m.get("id") for m in (self.get_json("/models").get("data") or [])}
        except SHAPE_ERRORS as e:
            raise RemoteError(f"{self.spec.url}/models: an answer of the wrong shape ({e})") from e
        if self.adapter not in served:
            raise RemoteError(
                f"the server does not serve the LoRA adapter {self.adapter} (it has: {', '.join(sorted(map(str, served))) or 'none'})"
            )

    # -- generation ------------------------------------------------------------------------
    def _request(
        self, prompt: list[int], max_new_tokens: int, temperature: float, top_p: float, seed, deadline: float
    ) -> dict:
        if self.spec.openai:
            body: dict = {
                "model": self.adapter or self.spec.model or "default",
                "prompt": self.decode(prompt) if self._text_prompts else prompt,
                "max_tokens": max_new_tokens,
                "logprobs": 1,
                "return_tokens_as_token_ids": True,  # vLLM: ids, not text, in the log-probs
            }
        else:
            body = {
                "prompt": prompt,
                "n_predict": max_new_tokens,
                "n_probs": 1,
                "return_tokens": True,
                "cache_prompt": True,
            }
            if lora := self.lora_field(deadline):
                body["lora"] = lora
        body.update(stream=True, temperature=temperature, top_p=top_p)
        if seed is not None:
            body["seed"] = seed
        return body

    def _tokens(self, event: dict) -> list[tuple[int, float | None]]:
        """(id, log-prob) of the tokens one event adds."""
        if not self.spec.openai:
            probs = {i: p for i, p in enumerate(event.get("completion_probabilities") or [])}
            return [
                (int(t), float(probs[i]["logprob"]) if i in probs and probs[i].get("id") == t else None)
                for i, t in enumerate(event.get("tokens") or [])
            ]
        choice = (event.get("choices") or [{}])[0]
        lp = choice.get("logprobs") or {}
        if lp.get("content"):  # llama.cpp's OpenAI flavour: [{id, token, logprob, bytes}]
            return [(int(c["id"]), float(c["logprob"])) for c in lp["content"] if "id" in c]
        tokens, values = lp.get("tokens") or [], lp.get("token_logprobs") or []
        if tokens and all(isinstance(t, str) and t.startswith("token_id:") for t in tokens):
            return [(int(t[9:]), None if v is None else float(v)) for t, v in zip(tokens, values)]
        # No ids (llama.cpp, Ollama): the text, in local tokens; log-probs only where they line up.
        text = choice.get("text") or ""
        ids = list(self.encode(text)) if text else []
        same = len(values) == len(ids)
        return [(t, float(values[i]) if same and values[i] is not None else None) for i, t in enumerate(ids)]

    def generate(
        self,
        prompt: Sequence[int],
        *,
        max_new_tokens: int = 48,
        min_new_tokens: int = 0,
        single_line: bool = True,
        n: int = 1,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        cache_key: str | None = None,
        stop: Callable[[str], int | None] | None = None,
        cancelled: Callable[[], bool] | None = None,
        heal: bool = False,
        copy_weight: float = 0.0,
        repeats: RepeatSource | None = None,
    ) -> Generation:
        """As Engine.generate (one candidate; `n`, `min_new_tokens`, healing and copying are the
        local engine's alone)."""
        prompt = list(prompt)
        if not prompt:
            raise ValueError("empty prompt")
        max_new_tokens = max(0, min(max_new_tokens, self.max_positions - len(prompt)))
        if max_new_tokens == 0:
            raise ValueError(f"prompt of {len(prompt)} tokens leaves no room (max {self.max_positions})")
        t0 = time.perf_counter()
        deadline = time.monotonic() + self.spec.deadline_s
        draft, known, reused = Draft(single_line), True, 0
        try:
            reused, known = self._decode(
                prompt, draft, max_new_tokens, temperature, top_p, seed, deadline, stop, cancelled
            )
        except RemoteError:
            if cancelled is None or not cancelled():
                raise
        except SHAPE_ERRORS as e:  # a field of the wrong type: {"choices": 5}, {"tokens": "abc"}
            raise RemoteError(f"{self.spec.url}: an answer of the wrong shape ({type(e).__name__}: {e})") from e
        candidate = draft.result()
        if not known:  # some token came without its log-prob: none, rather than a misaligned list
            candidate.logprobs = []
        return Generation(
            candidates=[candidate],
            prompt_tokens=len(prompt),
            reused_tokens=reused,
            latency_ms=(time.perf_counter() - t0) * 1000,
            prompt=prompt,
        )

    def _decode(self, prompt, draft: Draft, max_new_tokens, temperature, top_p, seed, deadline, stop, cancelled):
        """Streams the server's tokens into `draft`; (prompt tokens its cache held, whether every
        token came with its log-prob)."""
        reused, known = 0, True

        def stream():
            body = self._request(prompt, max_new_tokens, temperature, top_p, seed, deadline)
            return self._stream(body, deadline, cancelled)

        events = stream()
        try:
            try:
                first = next(events, None)
            except RemoteError as e:
                if not (self.spec.openai and not self._text_prompts and e.status in (400, 422)):
                    raise
                self._text_prompts = True  # then as text, the template's tokens spelled out
                events = stream()
                first = next(events, None)
            for event in itertools.chain([first] if first is not None else [], events):
                for tok, lp in self._tokens(event):
                    known = known and lp is not None
                    draft.take(tok, lp or 0.0, self, stop, max_new_tokens)
                    if draft.finish:
                        break
                if draft.finish or (cancelled is not None and cancelled()):
                    break
                if event.get("stop"):  # llama.cpp's last event: how much of the prompt its cache held
                    reused = int((event.get("timings") or {}).get("cache_n") or 0)
                    if event.get("stop_type") == "eos":  # the end token is not streamed
                        draft.finish = "eos"
        finally:
            events.close()
        return reused, known
