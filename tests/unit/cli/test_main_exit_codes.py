"""The CLI turns custodes errors into diagnostics and keeps click's exit codes."""

from collections.abc import Iterator

import click
import pytest

from custodes.cli import cli, main
from custodes.errors import InputError


@pytest.fixture
def extra_commands() -> Iterator[None]:
    @click.command("test-exit")
    @click.argument("code", type=int)
    @click.pass_context
    def test_exit(ctx: click.Context, code: int) -> None:
        ctx.exit(code)

    @click.command("test-fail")
    def test_fail() -> None:
        raise InputError("the widget is bent", where="widget.yaml:3", expected="straight")

    cli.add_command(test_exit)
    cli.add_command(test_fail)
    yield
    cli.commands.pop("test-exit")
    cli.commands.pop("test-fail")


def test_ctx_exit_code_is_the_process_exit_code(extra_commands: None) -> None:
    assert main(["test-exit", "3"]) == 3
    assert main(["test-exit", "0"]) == 0


def test_custodes_error_prints_diagnostics_not_a_traceback(
    extra_commands: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["test-fail"]) == 1
    err = capsys.readouterr().err
    assert "widget.yaml:3: the widget is bent" in err
    assert "expected: straight" in err
    assert "Traceback" not in err


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == 2
    assert "No such command" in capsys.readouterr().err


def test_diagnostics_are_printed_as_text_not_markup(
    capsys: pytest.CaptureFixture[str],
) -> None:
    @click.command("test-brackets")
    def test_brackets() -> None:
        raise InputError(
            "'Ab' is not of the form ^[a-z][a-z0-9-]*$ [bold]",
            where="drill.yaml:[3]",
            expected="[red]lowercase[/]",
        )

    cli.add_command(test_brackets)
    try:
        assert main(["test-brackets"]) == 1
    finally:
        cli.commands.pop("test-brackets")
    err = capsys.readouterr().err
    assert "drill.yaml:[3]: 'Ab' is not of the form ^[a-z][a-z0-9-]*$ [bold]" in err
    assert "expected: [red]lowercase[/]" in err
