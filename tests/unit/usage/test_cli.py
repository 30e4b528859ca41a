"""``custodes usage`` on a deployment's database: the table, JSON and the SVG chart."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from custodes.cli import cli
from custodes.config import Settings
from custodes.errors import InputError
from custodes.gateway import CallRecord
from custodes.gateway._entries import call_entry
from custodes.log import format_time
from custodes.wiring import build_deployment
from tests.support.usage import usage_document


def test_usage_prints_the_figures_counted_to_the_director(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(usage_document(), sort_keys=False))
    settings = Settings(
        data_dir=tmp_path / "data", demo=True, constitution_file=tmp_path / "c.yaml"
    )
    d = build_deployment(settings)
    try:
        d.usage.catch_up()  # the gates open once the log is read (the watcher may not have yet)
        for principal, tokens in (
            ("agent-0@lab", 300),
            ("agent-1@lab", 300),
            ("frank@cyberdef", 400),
        ):
            record = CallRecord(
                request_id="r",
                route="/v1/chat/completions",
                method="POST",
                capability="cyber-frontier",
                outcome="answered",
                status=200,
                request_sha256="0" * 64,
                total_tokens=tokens,
                on_behalf_of=d.usage.admit(principal, "cyber-frontier", None),
            )
            d.log.append(call_entry(record, principal, d.clock.now()))
    finally:
        d.close()
    runner = CliRunner()
    args = ["--data-dir", str(tmp_path / "data"), "usage", "--capability", "cyber-frontier"]
    table = runner.invoke(cli, [*args, "--svg", str(tmp_path / "u.svg")])
    assert table.exit_code == 0, table.output
    assert "alice@lab" in table.output and "60.0%" in table.output
    assert "<title>alice@lab: 60.0%</title>" in (tmp_path / "u.svg").read_text()
    out = runner.invoke(cli, [*args, "--window", "week", "--json"])
    week = json.loads(out.output)[0]
    assert week["persons_tokens"]["top"] == "alice@lab" and week["persons_calls"]["distinct"] == 2
    assert week["persons_tokens"]["coalition"] == ["alice@lab"]
    # Beside who did use it, who could open it (the coalition analysis's fewest persons).
    assert week["could_open"] == ["alice@lab", "bob@lab", "dana@asi"]
    assert "could open" in table.output and "bob@lab, dana@asi" in table.output
    bad = runner.invoke(cli, [*args, "--window", "month"])
    assert isinstance(bad.exception, InputError) and bad.exception.where == "window"
    assert "no window 'month'" in bad.exception.diagnostics()


def test_usage_reviews_prints_each_review_clock(tmp_path: Path) -> None:
    clock = {
        "capability": "cyber-frontier",
        "every": "90d",
        "approvers": {"roles": ["approver"]},
        "quorum": {"approvals": 2, "organisations": 2, "kinds": {"overseer": 1}},
    }
    (tmp_path / "c.yaml").write_text(
        yaml.safe_dump(usage_document(reviews=[clock]), sort_keys=False)
    )
    settings = Settings(
        data_dir=tmp_path / "data", demo=True, constitution_file=tmp_path / "c.yaml"
    )
    d = build_deployment(settings)
    try:
        [state] = d.usage.review_states()
    finally:
        d.close()
    runner = CliRunner()
    args = ["--data-dir", str(tmp_path / "data"), "usage", "--reviews"]
    table = runner.invoke(cli, args)
    assert table.exit_code == 0, table.output
    assert "cyber-frontier" in table.output and "running" in table.output
    assert "bankcert, cyberdef, lab" in table.output and "never" in table.output
    [row] = json.loads(runner.invoke(cli, [*args, "--json"]).output)
    assert row["due"] == format_time(state.due) and row["overdue"] is False
    assert row["admitted"] == ["bankcert", "cyberdef", "lab"] and row["last_review"] is None
    none = runner.invoke(cli, [*args, "--capability", "general", "--json"])
    assert json.loads(none.output) == []
