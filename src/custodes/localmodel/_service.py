"""The local model as a deployment runs it: loaded on first use (the demo starts without paying
for torch), planted and restored by the operator."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from custodes.localmodel._model import LocalModel
from custodes.localmodel._plant import Plant
from custodes.localmodel._request import ChatRequest

__all__ = ["LocalModelService"]


class LocalModelService:
    """A :class:`LocalModel` loaded when first asked.

    Args:
        gguf: the model file (:func:`~custodes.localmodel.find_gguf`).
        cache: where trained plants are kept (by the digest of their recipe and base).
        threads: torch's CPU threads.
    """

    def __init__(self, gguf: Path, cache: Path, *, threads: int = 1) -> None:
        self.gguf = gguf
        self.cache = cache
        self._threads = threads
        self._model: LocalModel | None = None
        self._lock = threading.Lock()
        self.weights: str | None = None
        """The digest of the planted tensors served (None: the base model)."""

    @property
    def model(self) -> LocalModel:
        """The loaded model (loaded now if it is not yet).

        Raises:
            ConfigError: torch or transformers is missing, or the file cannot be loaded.
        """
        with self._lock:
            if self._model is None:
                self._model = LocalModel(self.gguf, threads=self._threads)
            return self._model

    def complete(self, request: ChatRequest) -> dict[str, Any]:
        """Answer a chat completion with the model as planted."""
        return self.model.complete(request)

    def plant(self, plant: Plant) -> str:
        """Serve ``plant`` (trained, or from the cache); returns the tensors' digest."""
        self.weights = self.model.plant(plant, self.cache)
        return self.weights

    def unplant(self) -> None:
        """Serve the base model again."""
        if self._model is not None:
            self._model.use_weights(None)
        self.weights = None
