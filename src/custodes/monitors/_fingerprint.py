"""Crash fingerprints in the style of ClusterFuzz's crash state.

ClusterFuzz deduplicates crashes by *crash type* plus *crash state* (the top three frames
after dropping sanitizer and runtime frames, see clusterfuzz
``src/clusterfuzz/stacktraces/__init__.py``). We do the same, keep file and function per frame
when the report has them, and add a hash of PoC code, so that duplicates collapse and a
detection can be matched to a registered finding.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

__all__ = ["CrashFingerprint", "crash_fingerprint", "poc_hash"]

_STATE_FRAMES = 3  # ClusterFuzz's crash state is the top three meaningful frames

_TYPE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^\s*Crash Type: ([^\n]+)", re.M), "{0}"),
    (
        re.compile(
            r"ERROR: (?:Address|HWAddress)Sanitizer: ([\w-]+)(?: on [^\n]*)?\n(?:[^\n]*\n)?"
            r"?\s*(READ|WRITE)?(?: of size (\d+))?"
        ),
        "asan",
    ),
    (re.compile(r"WARNING: MemorySanitizer: ([\w-]+)"), "{0}"),
    (re.compile(r"WARNING: ThreadSanitizer: ([\w ]+?)(?: \(pid|\n)"), "{0}"),
    (re.compile(r"ERROR: LeakSanitizer: ([\w ]+)"), "{0}"),
    (re.compile(r"runtime error: ([a-z][\w -]{2,60}?)(?: of | in |:|\n|$)", re.M), "UBSan: {0}"),
    (re.compile(r"BUG: (KASAN|KMSAN|KCSAN|KFENCE): ([\w-]+)"), "{0}: {1}"),
    (re.compile(r"UBSAN: ([\w-]+)"), "UBSAN: {0}"),
    (re.compile(r"ERROR: libFuzzer: ([\w-]+(?: [\w-]+)?)"), "libFuzzer: {0}"),
    (re.compile(r"(?:BUG|WARNING): ([^\n]{3,80}?)(?: in | at |\n)"), "{0}"),
    (re.compile(r"(general protection fault|kernel BUG|Kernel panic|Oops)"), "{0}"),
    (re.compile(r"(Check failed|CHECK failed|DCHECK failed)"), "CHECK failure"),
    (re.compile(r"INFO: (task hung|rcu detected stall|task [^\n]{1,40} blocked)"), "{0}"),
)

# Frames: ``#3 0x55d in png_read_row /src/libpng/pngread.c:512:7`` (sanitizers) and
# ``  func_name+0x12/0x40 [module]`` or ``func_name+0x12/0x40 fs/ext4/inode.c:123`` (kernel).
_USER_FRAME = re.compile(r"^\s*#\d+ 0x[0-9a-f]+ in ([^\n]+)$", re.M)
_LOCATION = re.compile(r"\s+(\(?[\w./+-]+?(?::\d+)*(?:\+0x[0-9a-f]+)?\)?)\s*$")
_KERNEL_FRAME = re.compile(
    r"^(?:\[[\s\d.]+\](?:\[\s*[CT]\d+\])?)?\s*(?:\? )?([A-Za-z_][\w.]*)\+0x[0-9a-f]+/0x[0-9a-f]+"
    r"(?: \[\w+\])?(?: ([\w./-]+\.[ch]):\d+)?",
    re.M,
)
_STATE_BLOCK = re.compile(r"^\s*Crash State:\s*\n((?:[ \t]+\S[^\n]*\n?){1,3})", re.M)

# Frames that describe the reporter, not the bug (ClusterFuzz's stack_frame_ignore_regexes).
_IGNORED_FRAME = re.compile(
    r"^(?:__asan|__msan|__tsan|__ubsan|__sanitizer|__interceptor|__lsan|__hwasan|"
    r"asan_|msan_|kasan_|kmsan_|kcsan_|kfence_|__kasan|__kmsan|__kcsan|dump_stack|show_stack|"
    r"dump_backtrace|print_address_description|__do_kernel_fault|do_\w*fault|do_mem_abort|"
    r"el\d_|el\dh?_|page_fault|asm_exc|exc_page_fault|do_user_addr_fault|"
    r"print_report|print_address|report_|__warn|warn_slowpath|panic|__die|die|oops_|"
    r"do_error_trap|exc_|asm_exc|handle_bug|do_trap|__do_sys|do_syscall|entry_SYSCALL|"
    r"__x64_sys|__se_sys|__ia32|ret_from_fork|kthread|worker_thread|process_one_work|"
    r"check_memory_region|__check_object|memcpy|memmove|memset|strlen|strcpy|abort|raise|"
    r"operator new|operator delete|malloc|free|calloc|realloc|__libc|_start|"
    r"LLVMFuzzerTestOneInput|fuzzer::|std::__1::|lockdep_|lock_acquire|__lock_acquire|"
    r"_raw_spin|debug_check|validate_chain|check_noncircular|print_circular|"
    r"nmi_|rcu_dump|rcu_sched_clock|rcu_core|update_process_times|tick_|hrtimer|"
    r"__sysvec|sysvec_|asm_sysvec|irq_exit|__irq_exit|do_softirq|__do_softirq|arch_|"
    r"rcu_pending|rcu_check|print_cpu_stall|check_cpu_stall|\?)"
)


@dataclass(frozen=True)
class CrashFingerprint:
    """A crash type and the top frames of its stack; ``key`` is stable across duplicates."""

    crash_type: str
    frames: tuple[str, ...]
    key: str


def _normalise_type(raw: str) -> str:
    """A crash type with addresses and numbers replaced by ``N`` and spaces collapsed, at most 80
    characters (so two reports of one bug agree).
    """
    raw = re.sub(r"0x[0-9a-f]+|\b\d+\b", "N", raw.strip())
    return re.sub(r"\s+", " ", raw)[:80]


# A literal every match of the type pattern at the same index contains: ``in`` skips the
# pattern where it cannot match (the line-anchored ones are slow to try on long text).
_TYPE_GATES: tuple[tuple[str, ...], ...] = (
    ("Crash Type: ",),
    ("Sanitizer: ",),
    ("WARNING: MemorySanitizer: ",),
    ("WARNING: ThreadSanitizer: ",),
    ("ERROR: LeakSanitizer: ",),
    ("runtime error: ",),
    ("BUG: K",),
    ("UBSAN: ",),
    ("ERROR: libFuzzer: ",),
    ("BUG: ", "WARNING: "),
    ("general protection fault", "kernel BUG", "Kernel panic", "Oops"),
    ("Check failed", "CHECK failed"),
    ("INFO: ",),
)


def _crash_type(text: str) -> str | None:
    """The crash's type from the first pattern that matches (a ``Crash Type:`` line, a sanitizer's
    report such as ``Heap-buffer-overflow READ 8``, UBSan's runtime error...); None if none does.
    """
    for (pattern, template), gate in zip(_TYPE_PATTERNS, _TYPE_GATES, strict=True):
        if not any(literal in text for literal in gate):
            continue
        m = pattern.search(text)
        if m is None:
            continue
        if template == "asan":
            kind = m.group(1).capitalize()
            access = f" {m.group(2)}" if m.group(2) else ""
            size = f" {m.group(3)}" if m.group(3) else ""
            return f"{kind}{access}{size}"
        return _normalise_type(template.format(*m.groups()))
    return None


def _frames(text: str) -> tuple[str, ...]:
    """The top frames of the crash's stack: a ClusterFuzz ``Crash State:`` block if there is one,
    else the first frames of the trace that are not the sanitizer's or the kernel's fault
    handling.
    """
    block = _STATE_BLOCK.search(text) if "Crash State:" in text else None
    if block is not None:
        return tuple(line.strip() for line in block.group(1).splitlines() if line.strip())[
            :_STATE_FRAMES
        ]
    out: list[str] = []
    for m in _USER_FRAME.finditer(text):
        func, where = _split_frame(m.group(1).strip())
        if not func or _IGNORED_FRAME.match(func):
            continue
        out.append(f"{func} {where}" if where else func)
        if len(out) == _STATE_FRAMES:
            return tuple(out)
    if out:
        return tuple(out)
    for m in _KERNEL_FRAME.finditer(text):
        func = m.group(1)
        if _IGNORED_FRAME.match(func):
            continue
        where = m.group(2)
        frame = f"{func} {where}" if where else func
        if frame not in out:
            out.append(frame)
        if len(out) == _STATE_FRAMES:
            break
    return tuple(out)


def _split_frame(frame: str) -> tuple[str, str]:
    """``func(args) /path/file.cc:12:3`` -> (``func``, ``file.cc``)."""
    where = ""
    loc = _LOCATION.search(frame)
    if loc is not None and ("/" in loc.group(1) or ":" in loc.group(1) or "." in loc.group(1)):
        path = re.sub(r"\+0x[0-9a-f]+$", "", loc.group(1).strip("()").split(":")[0])
        where = path.rsplit("/", 1)[-1]
        frame = frame[: loc.start()]
    depth, end = 0, len(frame)
    for i, ch in enumerate(frame):  # cut the argument list: the first top-level "("
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "(" and depth == 0 and i > 0:
            end = i
            break
    return frame[:end].strip(), where


def crash_fingerprint(text: str) -> CrashFingerprint | None:
    """Fingerprint the first crash report in ``text``; None if it has no recognisable crash."""
    crash_type = _crash_type(text)
    if crash_type is None:
        return None
    frames = _frames(text)
    digest = hashlib.sha256("\n".join((crash_type, *frames)).encode()).hexdigest()
    return CrashFingerprint(crash_type, frames, f"crash:{digest[:32]}")


def poc_hash(code: str) -> str:
    """Hash PoC code with whitespace normalised, so re-indented copies collapse."""
    normal = re.sub(r"\s+", " ", code).strip()
    return "poc:" + hashlib.sha256(normal.encode()).hexdigest()[:32]
