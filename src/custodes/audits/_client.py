"""The harness's side of the wire: probes asked through the gateway with the ``openai`` client.

The harness is an ordinary client of a deployment: it holds an API key of the gateway, and each
probe is a chat completion the gateway authorises against a grant and logs like any other call.
Nothing here reaches past the gateway, so an audit cannot see (or be shown) anything a user
would not be.
"""

from __future__ import annotations

import threading
from typing import Any, Literal, Protocol

import openai

from custodes.audits._outcome import Outcome, answer_of, log_odds_from_samples, log_odds_from_top
from custodes.errors import AuditError

__all__ = ["GatewayProber", "Prober", "ProbeMode"]

ProbeMode = Literal["auto", "logprobs", "sampling"]
_TOP_LOGPROBS = 20  # OpenAI's maximum


class Prober(Protocol):
    """Asks a model one yes/no question and returns its outcome."""

    @property
    def model(self) -> str: ...

    def ask(self, messages: list[dict[str, str]]) -> Outcome: ...


class GatewayProber:
    """A :class:`Prober` over an OpenAI-compatible endpoint (the custodes gateway).

    Args:
        client: an ``openai.OpenAI`` client whose ``base_url`` is the gateway's ``/v1`` and
            whose key is the auditor's gateway key.
        model: the model name as the gateway routes it.
        mode: ``"logprobs"`` needs log-probabilities; ``"sampling"`` never asks for them;
            ``"auto"`` asks, and switches to sampling for good at the first reply without them.
        samples: replies per query when sampling.
        temperature: the sampling temperature (log-probabilities are read at 0).
    """

    def __init__(
        self,
        client: openai.OpenAI,
        model: str,
        *,
        mode: ProbeMode = "auto",
        samples: int = 10,
        temperature: float = 1.0,
    ) -> None:
        if samples < 1 or samples > 1000:
            raise AuditError(f"samples must be 1 to 1000, not {samples}")
        self._client = client
        self._model = model
        self._mode = mode
        self._samples = samples
        self._temperature = temperature
        self._lock = threading.Lock()

    @property
    def model(self) -> str:
        return self._model

    @property
    def mode(self) -> ProbeMode:
        """The mode in use (``"auto"`` becomes ``"sampling"`` once logprobs are missing)."""
        return self._mode

    def _create(self, messages: list[dict[str, str]], **kwargs: Any) -> Any:
        try:
            return self._client.chat.completions.create(
                model=self._model,
                messages=messages,  # type: ignore[arg-type]
                **kwargs,
            )
        except openai.APIStatusError as exc:
            message = _message(exc)
            hint = (
                "the auditor's principal needs a grant covering this model (custodes request)"
                if exc.status_code in (401, 403)
                else None
            )
            raise AuditError(
                f"the gateway answered {exc.status_code} to a probe of {self._model!r}: {message}",
                hint=hint,
            ) from exc
        except openai.APIError as exc:
            raise AuditError(f"a probe of {self._model!r} failed: {exc}") from exc

    def ask(self, messages: list[dict[str, str]]) -> Outcome:
        """Ask one yes/no question.

        Raises:
            AuditError: the gateway refused or failed the call, or ``mode="logprobs"`` and the
                upstream returned none.
        """
        calls = 0
        first: str | None = None
        if self._mode in ("auto", "logprobs"):
            reply = self._create(
                messages, max_tokens=1, temperature=0, logprobs=True, top_logprobs=_TOP_LOGPROBS
            )
            calls += 1
            value = _from_logprobs(reply)
            if value is not None:
                return Outcome(value, "logprobs", calls, 1)
            if self._mode == "logprobs":
                raise AuditError(
                    f"the upstream of {self._model!r} returned no usable log-probabilities",
                    hint="run with --mode sampling (or auto)",
                )
            with self._lock:
                self._mode = "sampling"
            first = _text(reply)
        answers: list[str | None] = [] if first is None else [first]
        while len(answers) < self._samples:
            reply = self._create(
                messages,
                max_tokens=3,
                temperature=self._temperature,
                n=self._samples - len(answers),
            )
            calls += 1
            got = [choice.message.content for choice in reply.choices]
            if not got:
                raise AuditError(f"the upstream of {self._model!r} returned no choices")
            answers.extend(got)  # an upstream that ignores n answers one at a time
        answers = answers[: self._samples]
        answered = sum(1 for a in answers if answer_of(a) is not None)
        return Outcome(log_odds_from_samples(answers), "sampling", calls, answered)


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    return str(exc)


def _text(reply: Any) -> str | None:
    choices = getattr(reply, "choices", None) or []
    return choices[0].message.content if choices else None


def _from_logprobs(reply: Any) -> float | None:
    choices = getattr(reply, "choices", None) or []
    if not choices or choices[0].logprobs is None or not choices[0].logprobs.content:
        return None
    first = choices[0].logprobs.content[0]
    alternatives = [(t.token, float(t.logprob)) for t in (first.top_logprobs or [])]
    if not alternatives:
        alternatives = [(first.token, float(first.logprob))]
    return log_odds_from_top(alternatives)
