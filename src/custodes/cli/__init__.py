"""The ``custodes`` command. One module per command group; :func:`main` is the entry point."""

from custodes.cli._main import cli, main

__all__ = ["cli", "main"]
