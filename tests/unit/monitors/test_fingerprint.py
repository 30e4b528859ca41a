"""ClusterFuzz-style crash fingerprints: duplicates collapse, different crashes do not."""

from __future__ import annotations

from custodes.monitors import crash_fingerprint, poc_hash
from tests.unit.monitors.test_vuln import ASAN, KASAN, OSSFUZZ


def test_asan_type_and_top_frames_skip_runtime_frames() -> None:
    fp = crash_fingerprint(ASAN)
    assert fp is not None
    assert fp.crash_type == "Heap-use-after-free READ 8"
    # __interceptor_free is a sanitizer frame (ClusterFuzz ignores it too).
    assert fp.frames == ("function_a a.cc", "function_b b.cc", "function_c c.cc")


def test_kernel_frames_skip_reporting_frames() -> None:
    fp = crash_fingerprint(KASAN)
    assert fp is not None
    assert fp.crash_type == "KASAN: invalid-access"
    assert fp.frames[0] == "enqueue_timer"
    assert "kasan_report" not in fp.frames and "dump_backtrace" not in fp.frames


def test_duplicates_collapse_across_addresses_and_timestamps() -> None:
    other_run = (
        KASAN.replace("1039.", "2217.")
        .replace("07ff00002327cda0", "07ff0000deadbeef")
        .replace("kworker/0:0/5", "kworker/1:2/77")
    )
    a, b = crash_fingerprint(KASAN), crash_fingerprint(other_run)
    assert a is not None and b is not None and a.key == b.key


def test_different_top_frame_is_a_different_crash() -> None:
    moved = ASAN.replace("function_a()", "function_z()")
    a, b = crash_fingerprint(ASAN), crash_fingerprint(moved)
    assert a is not None and b is not None and a.key != b.key


def test_crash_state_block_of_an_ossfuzz_report() -> None:
    fp = crash_fingerprint(OSSFUZZ)
    assert fp is not None
    assert fp.frames == ("String::append", "append_identifier", "Item_func_get_user_var::print")


def test_text_without_a_crash_has_no_fingerprint() -> None:
    assert crash_fingerprint("all 52 tests passed\n") is None


def test_poc_hash_ignores_whitespace_only() -> None:
    code = "int main(void) {\n  trigger();\n  return 0;\n}\n"
    assert poc_hash(code) == poc_hash(code.replace("  ", "\t"))
    assert poc_hash(code) != poc_hash(code.replace("trigger", "spray"))
