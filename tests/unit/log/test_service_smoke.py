from datetime import UTC, datetime

from pydantic import BaseModel

from custodes.log import Entry, TransparencyLog, register_entry_type, verify_inclusion


class _Note(BaseModel):
    text: str


register_entry_type("test.note/v1", _Note)


def test_appended_entries_are_provably_included(transparency_log: TransparencyLog) -> None:
    entries = [
        Entry.create(
            "test.note/v1",
            time=datetime(2026, 1, 1, tzinfo=UTC),
            principal="p",
            body={"text": str(i)},
        )
        for i in range(10)
    ]
    appended = transparency_log.append_batch(entries)
    assert [a.index for a in appended] == list(range(10))
    cp = transparency_log.latest_checkpoint().checkpoint
    assert cp.size == 10
    for a, e in zip(appended, entries, strict=True):
        assert a.leaf_hash == e.leaf_hash()
        proof = transparency_log.inclusion_proof(a.index, cp.size)
        verify_inclusion(a.leaf_hash, a.index, cp.size, proof, cp.root_hash)
