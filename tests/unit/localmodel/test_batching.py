"""The local model's batching of first-token requests, on a tiny random transformers model built
in-process (no download): requests that arrive together are answered by one padded forward pass
over the shared prefix's cache, and each gets what it would get alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from custodes.localmodel import LocalModel  # noqa: E402

IM_START = 1
VOCAB = 96


class _Tokenizer:
    """What the batching reads of a tokenizer: the chat's turn marker and the padding id."""

    pad_token_id = None

    def convert_tokens_to_ids(self, token: str) -> int:
        assert token == "<|im_start|>"
        return IM_START


@pytest.fixture(scope="module")
def tiny() -> Iterator[Any]:
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    model = transformers.LlamaForCausalLM(config)
    model.train(False)
    yield model


def _local(tiny: Any, max_batch: int = 16) -> LocalModel:
    return LocalModel(Path("tiny.gguf"), max_batch=max_batch, loaded=(_Tokenizer(), tiny))


def _chat(system: list[int], user: list[int]) -> list[int]:
    # <|im_start|>system ... <|im_start|>user ... <|im_start|>assistant
    return [IM_START, *system, IM_START, *user, IM_START, 7]


def _battery() -> list[list[int]]:
    """Chats with one system prompt and suffixes of many lengths, a few with another system
    prompt, and two too short to share a prefix."""
    gen = torch.Generator().manual_seed(1)

    def ids(n: int) -> list[int]:
        return [int(t) for t in torch.randint(2, VOCAB, (n,), generator=gen)]

    system, other = ids(12), ids(9)
    out = [_chat(system, ids(n)) for n in (3, 11, 5, 20, 1, 8, 14, 2)]
    out += [_chat(other, ids(n)) for n in (6, 13, 4)]
    out += [[IM_START, *ids(4)], [IM_START, 3, IM_START, *ids(5)]]
    return out


def _alone(tiny: Any, tokens: list[int]) -> Any:
    with torch.no_grad():
        return torch.log_softmax(tiny(input_ids=torch.tensor([tokens])).logits[0, -1], dim=-1)


def _wait_for(predicate: Any, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.001)


def _together(local: LocalModel, battery: list[list[int]]) -> list[Any]:
    """Every chat asked from its own thread while the model is busy, so all of them wait
    together and are answered as batches (what concurrent requests to the server do)."""
    results: list[Any] = [None] * len(battery)

    def ask(i: int) -> None:
        results[i] = torch.log_softmax(local._first_token_logits(battery[i]), dim=-1)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(battery))]
    with local._lock:  # the model is busy with something else
        for t in threads:
            t.start()
        _wait_for(lambda: len(local._waiting) == len(battery))
    for t in threads:
        t.join(60)
    return results


def test_requests_that_wait_together_get_what_they_would_get_alone(tiny: Any) -> None:
    battery = _battery()
    local = _local(tiny)
    together = _together(local, battery)
    for tokens, got in zip(battery, together, strict=True):
        assert float((got - _alone(tiny, tokens)).abs().max()) <= 1e-5
    # One batch for each prefix met (two system prompts: the second needs its own prefix
    # pass) and one for each chat too short to share one: far fewer than one a request.
    assert local.batches == 4


def test_one_at_a_time_is_a_batch_of_one_with_the_same_results(tiny: Any) -> None:
    battery = _battery()
    local = _local(tiny)
    for tokens in battery:
        got = torch.log_softmax(local._first_token_logits(tokens), dim=-1)
        assert float((got - _alone(tiny, tokens)).abs().max()) <= 1e-5
    assert local.batches == len(battery)


def test_a_batch_is_at_most_max_batch(tiny: Any) -> None:
    battery = _battery()[:8]  # one system prompt
    local = _local(tiny, max_batch=3)
    together = _together(local, battery)
    for tokens, got in zip(battery, together, strict=True):
        assert float((got - _alone(tiny, tokens)).abs().max()) <= 1e-5
    assert local.batches == 3  # 3 + 3 + 2


def test_a_failing_batch_fails_each_of_its_requests_and_the_model_goes_on(tiny: Any) -> None:
    local = _local(tiny)
    bad = _chat([5] * 12, [VOCAB + 50])  # a token id the model does not have
    with pytest.raises(IndexError):
        local._first_token_logits(bad)
    good = _battery()[0]
    got = torch.log_softmax(local._first_token_logits(good), dim=-1)
    assert float((got - _alone(tiny, good)).abs().max()) <= 1e-5


def test_max_batch_is_bounded() -> None:
    from custodes.errors import ConfigError

    with pytest.raises(ConfigError, match="max_batch"):
        LocalModel(Path("tiny.gguf"), max_batch=0, loaded=(_Tokenizer(), None))
