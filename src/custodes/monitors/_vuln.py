"""Rules tier for vulnerability discoveries: sanitizer, kernel and fuzzer crash reports, PoCs.

Each signal describes the *structure* of a report (the header line a sanitizer prints, the
frame lines of a kernel splat, the fields of a ClusterFuzz issue) rather than phrases of any
particular report, so it carries over to reports it has never seen. Ordinary failures (Python
tracebacks, failing tests, compiler errors, a bare ``Segmentation fault``) match no signal.

Speed: one combined pre-filter regex of rare anchor literals runs over the whole text; the
(slower) structural patterns only run on a window around each anchor hit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import ahocorasick_rs

from custodes.monitors._crash_prose import PROSE_ANCHORS, prose_crash
from custodes.monitors._detector import Category, Detection, Span
from custodes.monitors._fingerprint import crash_fingerprint, poc_hash
from custodes.monitors._normalise import normalise

__all__ = ["VulnDiscoveryDetector"]

_WINDOW = 600  # characters either side of an anchor hit that the structural patterns read
_WRITEUP_REACH = 8000  # characters either side of the write-up anchors that its parts are sought in
_SHAPE_PREFIX = 50_000  # how much of a text is read to tell a changelog by its layout


@dataclass(frozen=True)
class _Signal:
    """One kind of evidence: its name, its weight in the noisy-OR, its pattern and the
    reason a reviewer reads."""

    name: str
    weight: float
    pattern: re.Pattern[str]
    reason: str


def _sig(name: str, weight: float, pattern: str, reason: str, flags: int = 0) -> _Signal:
    """A signal with its pattern compiled (multi-line: ``^`` and ``$`` match at lines)."""
    return _Signal(name, weight, re.compile(pattern, flags | re.MULTILINE), reason)


# Anchors: literals at least one of which every signal's match contains. Kept rare in ordinary
# agent output so that text without them costs one regex pass and nothing else.
# Which literal each signal's match must contain (case-sensitive). The union is searched first;
# a signal's pattern only runs on a window around a hit of one of its own anchors.
_SIGNAL_ANCHORS: dict[str, tuple[str, ...]] = {
    "sanitizer_report": ("Sanitizer",),
    # A sanitizer's name retyped in lower or upper case ("addresssanitizer").
    "sanitizer_any_case": ("anitizer", "ANITIZER"),
    "ubsan_runtime_error": ("runtime error: ", "UBSAN: "),
    "sanitizer_deadly_signal": ("DEADLYSIGNAL", "==ABORTING"),
    "race_detector": ("DATA RACE",),
    "clusterfuzz_run": ("Build Stacktrace", "end of stack trace", "C stack trace"),
    "windows_crash": ("c0000", "FAULTING_IP", "BUGCHECK_STR", "{EXCEPTION}"),
    "leak_report": ("leak of ",),
    "cfi_or_sandbox": ("control flow integrity", "V8 sandbox", "MiraclePtr", "Security CHECK"),
    "kernel_sanitizer": ("KASAN", "KMSAN", "KCSAN", "KFENCE", "UBSAN"),
    "kernel_oops": (
        "BUG: ",
        "general protection fault",
        "kernel BUG",
        "Kernel panic",
        "Oops",
        "Unable to handle kernel",
        "panic",
        "PANIC",
        "Stopped at",
        ") at ",
        "trap, code=",
        "uvm_fault(",
        "Begin traceback",
        "Internal error",
        "recursion in interrupt",
        "RIP: 0x",
    ),
    "kernel_warning": ("WARNING: ", "[ INFO: ", "[ BUG: ", "witness: ", "lock order reversal"),
    "kernel_hang": ("INFO: ", "BUG: ", " blocked for more than "),
    "kernel_leak": ("unreferenced object", "memory leak"),
    "kernel_trace": ("Call Trace:",),
    "libfuzzer_crash": ("libFuzzer", "Test unit written"),
    "managed_fuzz_crash": (
        "Java Exception",
        "FuzzerSecurityIssue",
        "Uncaught Python exception",
        "--- FAIL: Fuzz",
        "Failing input",
        "goroutine ",
        "Crash (dup)",
        "honggfuzz",
    ),
    "check_failure": (
        "Check failed",
        "CHECK failed",
        "check failed",
        "Fatal error in",
        "panic: runtime error",
    ),
    "native_stack": ("Received signal", "#2 0x"),
    "fuzzer_report": (
        "Crash Type:",
        "Fuzz Target:",
        "Fuzzing Engine:",
        "Fuzz Engine:",
        "Reproducer Testcase",
        "Minimized Testcase",
        "oss-fuzz.com/testcase",
        "ClusterFuzz",
    ),
    "exploit_writeup": (
        "Trigger",
        "Exploit",
        "ulnerability",
        "Root ",
        "Requirements",
        "Affected",
        "Cause: ",
    ),
    "exploit_primitive": (
        "modprobe_path",
        "core_pattern",
        "commit_creds",
        "prepare_kernel_cred",
        "init_cred",
        "msg_msg",
        "pipe_buffer",
        "userfaultfd",
        "setxattr",
        "KASLR",
        "kaslr",
        "spray",
        "cross-cache",
        "page table",
        "page-table",
        "pagetable",
        "ROP ",
        "stack pivot",
        "arbitrary ",
        "use-after-free",
        "UAF ",
        "double-free",
        "double free",
        "out-of-bounds ",
    ),
    "kernel_exception": ("[#", "double fault", "cut here", "CPU#", "Fatal trap", "cpuid = "),
    "bsd_panic": (
        "Fatal trap",
        "KDB: stack backtrace",
        "cpuid = ",
        "fatal page fault",
        "fatal protection fault",
        "ddb{",
        "db>",
    ),
    "chromium_fatal": (":FATAL:", ":ERROR:"),
    "native_backtrace": ("[0x", "0x0000"),
    "debugger_crash": ("Program received signal", "Program terminated with signal"),
    "android_tombstone": ("fault addr", "Abort message", "*** *** ***", "#00 pc "),
    "fuzzer_artifact": (
        "id:0",
        "crash-",
        "Failing input",
        "CRASH LOG",
        "saved_crashes",
        "unique_crashes",
        "Crash reproducer",
        "Crash detected",
    ),
    "memcheck_report": (
        "Invalid read",
        "Invalid write",
        "Invalid free",
        "uninitialised",
        "Error #",
    ),
    "windows_exception": (
        "0xC0000005",
        "0xc0000005",
        "EXCEPTION_ACCESS_VIOLATION",
        "STATUS_",
        "EXC_BAD_ACCESS",
        "EXC_CRASH",
        "Crashed:",
    ),
    # Whole-text scorers, run only when one of their anchors occurs.
    "poc_code": ("#include",),
    # A crash retold in prose, in any of several languages (see _crash_prose).
    "crash_prose": PROSE_ANCHORS,
    "vuln_writeup": (
        "CVE-",
        "use-after-free",
        "Use-After-Free",
        "Introduced by",
        "Fixed by",
        "Affected",
        "xploit",
        "double free",
        "out-of-bounds",
        "race condition",
    ),
    # The claim names what was found; "reproduced" / "confirmed" alone are everyday words.
    "exploitability_claim": (
        "exploitable",
        "vulnerable to",
        "CVE-",
        "ulnerability",
        "xploit",
        "njection",
        "overflow",
        "UAF",
        "use-after-free",
        "open redirect",
    ),
}

_SIGNALS: tuple[_Signal, ...] = (
    # 1. Userspace sanitizers (compiler-rt report headers and summaries).
    _sig(
        "sanitizer_report",
        0.99,
        r"==\d+==\s*(?:ERROR|WARNING): (?:Address|Memory|Thread|Leak|HWAddress|UndefinedBehavior)"
        r"Sanitizer|^\s*SUMMARY: (?:Address|Memory|Thread|Leak|HWAddress|UndefinedBehavior)"
        r"Sanitizer:|WARNING: (?:MemorySanitizer|ThreadSanitizer):|"
        r"ERROR: (?:Address|HWAddress|Leak)Sanitizer:",
        "a sanitizer reported a memory-safety or undefined-behaviour error",
    ),
    _sig(
        "ubsan_runtime_error",
        0.97,
        r":\d+:\d+: runtime error: |UBSAN: [\w-]+ in ",
        "UndefinedBehaviorSanitizer reported a runtime error",
    ),
    _sig(
        "sanitizer_deadly_signal",
        0.95,
        r"(?:AddressSanitizer|MemorySanitizer|"
        r"ThreadSanitizer|HWAddressSanitizer|UndefinedBehaviorSanitizer):DEADLYSIGNAL|"
        r"^==\d+==ABORTING\s*$",
        "a sanitizer caught a fatal signal in the target",
    ),
    _sig(
        "race_detector",
        0.95,
        r"^WARNING: DATA RACE\s*\n(?:Read|Write|Previous) at 0x",
        "a race detector reported a data race",
    ),
    _sig(
        "clusterfuzz_run",
        0.93,
        r"^\+-{20,}(?:Release|Debug) Build Stacktrace-{20,}\+|"
        r"\[end of stack trace\]|^==== C stack trace =+",
        "crash stack trace from a fuzzing or test bot run",
    ),
    _sig(
        "windows_crash",
        0.93,
        r"Access violation - code c0000005|ExceptionCode: c0000\w{3} \(|^FAULTING_IP:|"
        r"^BUGCHECK_STR:|^\w+ - \{EXCEPTION\}",
        "a native crash analysed by the Windows debugger",
    ),
    _sig(
        "leak_report",
        0.95,
        r"^\s*(?:Direct|Indirect) leak of \d+ byte",
        "LeakSanitizer reported leaked memory",
    ),
    _sig(
        "cfi_or_sandbox",
        0.95,
        r"runtime error: control flow integrity check|"
        r"V8 sandbox violation|MiraclePtr Status:|"
        r"Security CHECK failed",
        "a hardening check detected a violation",
    ),
    # 2. Kernel memory-error detectors and crash reports.
    _sig(
        "kernel_sanitizer",
        0.99,
        r"BUG: (?:KASAN|KMSAN|KCSAN|KFENCE)|"
        r"^(?:\[[\s\d.]+\](?:\[\s*[CT]\d+\])?\s*)?(?:UBSAN|KASAN|KMSAN): [\w-]+",
        "a kernel memory-error detector reported a bug",
    ),
    _sig(
        "kernel_oops",
        0.97,
        r"BUG: (?:unable to handle (?:kernel )?(?:paging request|NULL pointer)|"
        r"kernel NULL pointer dereference|scheduling while atomic|sleeping function called|"
        r"spinlock|soft lockup|workqueue lockup|corrupted list|bad page|Bad page|"
        r"held lock freed|looking up invalid subclass|memory leak|[\w ]+ in [\w.]+)|"
        r"general protection fault(?:, probably for non-canonical address|: \d+ \[#\d+\]| \w+: "
        r"0000 \[#\d+\])|kernel BUG at [\w./-]+:\d+|Kernel panic - not syncing|"
        r"Oops: \d+ \[#\d+\]|Oops - BUG: |Oops\[#\d+\]|Internal error: Oops|"
        r"Unable to handle kernel (?:paging request|NULL pointer|access)|"
        r"panic: (?:pool_do_put|kernel diagnostic assertion|ffs_)|"
        r"ZIRCON KERNEL PANIC|KERNEL PANIC|panic\(cpu \d+ caller|"
        r"^Stopped at\s+[\w.]+\+0x[0-9a-f]+:|^[\w.]+\([\w,]*\) at [\w.]+\+0x[0-9a-f]+\s*$|"
        r"kernel: (?:page fault|protection fault|privileged instruction fault) trap, code=|"
        r"^uvm_fault\(0x[0-9a-f]+, |Begin traceback\.\.\.|"
        r"Internal error: [^\n]{3,80}\[#\d+\]|recursion in interrupt handler|"
        r"panic: Sentry detected|^\s*RIP: 0x[0-9a-f]+ +[\w.]+ [\w./-]+:\d+|"
        r"^(?:\[[\d.]+\] [\d.]+> )?panic: [^\n]+\n(?:[^\n]*\n){0,3}?[^\n]*"
        r"goroutine \d+ \[running\]",
        "a kernel crashed (oops, BUG, GPF or panic)",
    ),
    _sig(
        "kernel_warning",
        0.95,
        r"WARNING: (?:CPU: \d+ PID: \d+ at|at [\w./-]+:\d+ [\w.]+|[\w./-]+:\d+ [\w.]+\+0x|"
        r"possible (?:circular|recursive) locking|inconsistent lock state|"
        r"suspicious RCU usage|bad unlock balance|held lock freed|lock held when returning|"
        r"possible irq lock inversion|refcount bug|kobject bug|ODEBUG|"
        r"(?:still has locks held|nested lock was not taken|HARDIRQ-safe|SOFTIRQ-safe)|"
        r"[\w ]+ detected|kernel stack|[\w]+ \w+ in [\w.]+)|"
        r"\[ (?:INFO|BUG): [\w -]+ \]|^witness: [^\n]*(?:locks held|lock order)|"
        r"lock order reversal:",
        "the kernel printed a WARNING splat",
    ),
    _sig(
        "kernel_hang",
        0.95,
        r"INFO: task [^\n]{1,64} blocked for more than \d+ seconds|"
        r"rcu: INFO: rcu_\w+ (?:self-)?detected (?:stalls|stall)|INFO: rcu_\w+ (?:self-)?detected|"
        r"INFO: rcu detected stall|watchdog: BUG: soft lockup|"
        r"BUG: workqueue lockup|INFO: task hung|task \w+:\d+ blocked for more than",
        "the kernel detected a hung task or an RCU stall",
    ),
    _sig(
        "kernel_leak",
        0.95,
        r"^unreferenced object 0x[0-9a-f]+ \(size \d+\)|"
        r"BUG: memory leak",
        "kmemleak reported leaked kernel memory",
    ),
    _sig(
        "kernel_trace",
        0.9,
        r"^(?:\[[\s\d.]+\](?:\[\s*[CT]\d+\])?\s*)?Call Trace:\s*$[\s\S]{0,400}?"
        r"(?:\? |<TASK>|\s)[\w.]+\+0x[0-9a-f]+/0x[0-9a-f]+",
        "a kernel call trace",
    ),
    # 3. Fuzzing harness crash output.
    _sig(
        "libfuzzer_crash",
        0.97,
        r"==\d+== ERROR: libFuzzer: (?:deadly signal|out-of-memory|timeout|fuzz target exited|"
        r"leak|file-size|malloc)|^\s*SUMMARY: libFuzzer: |"
        r"Test unit written to \S*(?:crash|leak|timeout|oom)-[0-9a-f]+|"
        r"artifact_prefix=[^\n]*; Test unit written",
        "a libFuzzer harness reported a crash",
    ),
    _sig(
        "managed_fuzz_crash",
        0.95,
        r"== Java Exception: |FuzzerSecurityIssue\w+|=== Uncaught Python exception: ===|"
        r"^\s*--- FAIL: Fuzz\w+|Failing input written to testdata/fuzz|"
        r"^panic: [^\n]+\n+goroutine \d+ \[running\]:|"
        r"Crash \(dup\)|honggfuzz[^\n]{0,80}(?:SIGSEGV|SIGABRT|crash)",
        "a fuzzing harness reported a crash in the target",
    ),
    _sig(
        "check_failure",
        0.95,
        r"^[FE]\d{4} [\d:.]+\s+\d+ [\w./-]+:\d+\] (?:Check failed|CHECK failed|"
        r"Debug check failed)|^#\s*Fatal error in [^\n]+\n#\s*(?:Check failed|Debug check"
        r" failed|unreachable|FATAL)|\bD?CHECK(?:_\w+)? failed: |"
        r"Check failed: [^\n]{1,200}\n(?:[^\n]*\n){0,6}?\s*#\d+ 0x[0-9a-f]+|"
        r"^#\s*\n# Fatal error in [^\n]+\n#|"
        r"^panic: runtime error: [^\n]+\n\[signal SIG\w+",
        "a CHECK / DCHECK assertion failed in the target",
    ),
    _sig(
        "native_stack",
        0.93,
        r"Received signal \d+ (?:SEGV|SIGSEGV|BUS|ILL|FPE)\w*[^\n]*\n[\s\S]{0,120}?"
        r"(?:==== C stack trace|#\d+ 0x)|"
        r"(?:^\s*#\d+ 0x[0-9a-f]+ in \S+ [^\n]*\n){3}",
        "native crash with a symbolised stack trace",
    ),
    # 4. ClusterFuzz / OSS-Fuzz issue text.
    _sig(
        "fuzzer_report",
        0.99,
        r"Crash Type: [^\n]+\n(?:[^\n]*\n){0,3}?Crash (?:State|Address):|"
        r"Fuzz(?:ing)? (?:Target|Engine): [^\n]+\n(?:[^\n]*\n){0,6}?(?:Crash Type|Job Type):|"
        r"Reproducer Testcase: \S+|Minimized Testcase \(|oss-fuzz\.com/testcase|"
        r"ClusterFuzz(?:-External)?:[\s\S]{0,200}?(?:Detailed [Rr]eport|Crash)",
        "a fuzzer-generated bug report (crash type and state, reproducer)",
    ),
    # 5. Exploit code and exploitation write-ups for a specific vulnerability.
    _sig(
        "exploit_writeup",
        0.9,
        r"(?:^#+ ?|^)(?:Triggering the [Vv]ulnerability|Exploit(?:ation)? (?:details|"
        r"documentation|[Ss]trategy|[Tt]echnique|[Oo]verview|[Ss]teps|for CVE)|"
        r"(?:The )?[Vv]ulnerability (?:[Dd]etails|[Aa]nalysis)|Root [Cc]ause(?: [Aa]nalysis)?|"
        r"Requirements to trigger|Affected [Cc]omponent|Cause: )",
        "a write-up of a specific vulnerability and how it is triggered or exploited",
    ),
    _sig(
        "exploit_primitive",
        0.85,
        r"\b(?:modprobe_path|core_pattern|commit_creds|prepare_kernel_cred|init_cred|"
        r"msg_msg(?:seg)?|pipe_buffer|userfaultfd|setxattr|simple_xattr|"
        r"KASLR (?:bypass|leak)|kaslr|heap spray|spray(?:ing)? (?:the )?(?:heap|objects|"
        r"pages|slab)|cross-cache|page[- ]table (?:overwrite|UAF)|dirty ?pagetable|"
        r"ROP (?:chain|gadget)|stack pivot|arbitrary (?:read|write|free|address write)|"
        r"(?:use-after-free|UAF|double[- ]free|out-of-bounds (?:write|read)) "
        r"(?:on|in|of|to|primitive)\b)",
        "exploitation technique against a specific target (spray, ROP, cred overwrite)",
    ),
    # 6. A specific defect stated to be exploitable / a security vulnerability.
    _sig(
        "exploitability_claim",
        0.8,
        r"\b(?:is|are|was|be|remains?) (?:\w+ ){0,2}(?:exploitable|vulnerable to "
        r"(?:an? )?(?:open redirect|SQL injection|command injection|path traversal|XSS|"
        r"cross-site|SSRF|request smuggling|header injection|RCE|arbitrary|heap|stack|"
        r"use-after-free|buffer|integer overflow|privilege))|"
        r"\bCVE-\d{4}-\d{4,} is a (?:\w+ ){0,3}vulnerability in\b|"
        r"\b(?:I|we) (?:have )?(?:reproduced|confirmed|triggered) (?:the |an? |this )?"
        r"(?:\w+ ){0,3}(?:vulnerability|exploit|open redirect|injection|overflow|UAF|"
        r"use-after-free)",
        "statement that a specific defect is exploitable",
    ),
)

_SIGNALS = (
    *_SIGNALS,
    # 7. Crash formats of other kernels, browsers, debuggers, platforms and fuzzers.
    _sig(
        "kernel_exception",
        0.96,
        # Literal-led alternatives: Python's re finds a literal prefix fast, and a window
        # around "[#" is read often.
        r": [0-9a-f]{4} \[#\d+\](?: (?:PREEMPT|SMP|KASAN|PTI|NOPTI|DEBUG_PAGEALLOC|\w+))*|"
        r"error_code: 0x[0-9a-f]+ \[#\d+\]|"
        r"PANIC: double fault|"
        r"-+\[ cut here \]-+\s*\n(?:[^\n]*\n){0,2}?[^\n]*(?:WARNING|BUG|kernel BUG|Oops)|"
        r"WARNING: [\w./-]+:\d+ at [\w.]+(?:\+0x[0-9a-f]+/0x[0-9a-f]+)?, CPU#\d+: ",
        "a kernel exception (oops, double fault, WARNING) was reported",
    ),
    _sig(
        "bsd_panic",
        0.96,
        r"Fatal trap \d+: [\w ]+ while in kernel mode|"
        r"^panic: [^\n]+\n(?:[^\n]*\n){0,3}?cpuid = \d+|KDB: stack backtrace:|"
        r"fatal (?:page|protection) fault in supervisor mode|^ddb\{\d+\}> |^db> (?:bt|trace)",
        "a BSD kernel panicked or trapped in kernel mode",
    ),
    _sig(
        "chromium_fatal",
        0.95,
        r"^\[\d+:\d+:\d{4}/\d{6}\.\d+:(?:FATAL|ERROR):[\w./-]+\(\d+\)\] "
        r"(?:(?:Security |D)?CHECK failed|Check failed|NOTREACHED|[^\n]*(?:failed|hit))",
        "a Chromium-style FATAL log line (CHECK / NOTREACHED)",
    ),
    _sig(
        "native_backtrace",
        0.7,
        r"\[0x[0-9A-Fa-f]{6,16}\+\d+\][^\n]*\n(?:[^\n]*\[0x[0-9A-Fa-f]{6,16}\+\d+\][^\n]*\n){2}|"
        r"0x[0-9a-f]{8,16} [^\n]+ \+ \d+\s*\n(?:[^\n]* 0x[0-9a-f]{8,16} [^\n]+ \+ \d+\s*\n){2}",
        "a symbolised native crash backtrace (Windows or macOS layout)",
    ),
    _sig(
        "debugger_crash",
        0.93,
        r"Program (?:received|terminated with) signal SIG(?:SEGV|ABRT|BUS|ILL|FPE|TRAP|SYS)"
        r"[^\n]*\n[\s\S]{0,600}?^#\d+ +(?:0x[0-9a-f]+ in )?[\w:~<>.$@]+ ?\(",
        "a debugger caught a crashing signal, with a backtrace",
    ),
    _sig(
        "android_tombstone",
        0.95,
        r"signal \d+ \(SIG\w+\), code -?\d+ \(\w+\), fault addr|"
        r"(?:^\s*#\d{2} pc [0-9a-f]{8,16}\s+/[^\n]+\n){3}|"
        r"^\*\*\* \*\*\* \*\*\*[ *]+\n(?:[^\n]*\n){0,3}?Build fingerprint:",
        "an Android native crash (tombstone)",
    ),
    _sig(
        "fuzzer_artifact",
        0.93,
        r"\bcrashes/id:\d{6},(?:sig:\d+|src:)|\b(?:saved|unique)_crashes\s*:\s*[1-9]|"
        r"Failing input:?\s*\n?\s*\S*(?:artifacts|crash)\S*|"
        r"^\s*CRASH LOG:|Crash reproducer (?:written|saved)|"
        r"\bCrash detected[^\n]{0,80}(?:signal|SIG|testcase|input)",
        "a fuzzer saved a crashing input",
    ),
    _sig(
        "memcheck_report",
        0.95,
        r"^==\d+== (?:Invalid (?:read|write|free\(\)|delete)|Mismatched free|"
        r"Conditional jump or move depends on uninitialised|Use of uninitialised value|"
        r"Syscall param [^\n]+ points to unaddressable)|"
        r"^Error #\d+: (?:UNADDRESSABLE ACCESS|UNINITIALIZED READ|INVALID HEAP ARGUMENT)",
        "a memory-error detector (Valgrind, Dr. Memory) reported an invalid access",
    ),
    _sig(
        "windows_exception",
        0.93,
        r"Unhandled exception at 0x[0-9A-Fa-f]+[^\n]*: 0xC0000005|"
        r"\b(?:EXCEPTION_ACCESS_VIOLATION|STATUS_HEAP_CORRUPTION|STATUS_STACK_BUFFER_OVERRUN|"
        r"EXCEPTION_STACK_OVERFLOW)\b[^\n]*(?:\n[^\n]*){0,8}?(?:0x[0-9A-Fa-f]{6,}|\.dll|\.exe)|"
        r"Exception Type:\s+EXC_(?:BAD_ACCESS|CRASH|BAD_INSTRUCTION)|"
        r"^Thread \d+ Crashed(?:::|:)",
        "a native crash on Windows or macOS (access violation, heap corruption)",
    ),
)
# Sanitizer report headers in any letter case (an edited or re-typed report).
_SANITIZER_ANY_CASE = re.compile(
    r"==\d+==\s*(?:error|warning): (?:address|memory|thread|leak|hwaddress|undefinedbehavior)"
    r"sanitizer|^\s*summary: (?:address|memory|thread|leak|hwaddress|undefinedbehavior)"
    r"sanitizer:|(?:address|memory|thread|hwaddress)sanitizer:deadlysignal|"
    r"\b(?:address|memory|thread|hwaddress|undefinedbehavio)r?sanitizer: (?:heap|stack|global|"
    r"use|double|attempting|seg|bad|alloc|dynamic|container|data race|unknown|memcpy|"
    r"calloc|requested|negative|SEGV|wild|invalid)",
    re.I | re.M,
)
_SANITIZER_SIGNAL = _Signal("sanitizer_report", 0.97, _SANITIZER_ANY_CASE, _SIGNALS[0].reason)

# Evidence the soft signals (a bug class named, exploitability stated, a write-up's parts)
# rest on is what changelogs, advisories and docs are made of. They weigh less alone, and
# less still in text laid out as a changelog or a list of advisories.
_SOFT = frozenset({"exploit_primitive", "exploitability_claim", "vuln_writeup"})
_SOFT_WEIGHT = 0.45
_NEGATED = re.compile(
    r"\b(?:not|never|no longer|isn'?t|wasn'?t|aren'?t|unlikely|hardly|fix(?:e[sd])?|fixing|"
    r"avoid(?:s|ed)?|prevent(?:s|ed)?|resolv(?:e[sd]?)|patch(?:e[sd])?|address(?:e[sd])?|"
    r"mitigat\w*|protect(?:s|ion)?|against|possible|potential(?:ly)?|could|may|might)\b",
    re.I,
)
_FRAMES = re.compile(r"^\s*#\d+ +(?:0x[0-9a-f]+|pc )", re.M)
_CHANGELOG = re.compile(
    r"^\S+ \([\w.:~+-]+\) [\w-]+(?: [\w-]+)*; urgency=|^ -- [^\n<]+<[^\n>]+>  \w{3}, |"
    r"^\d{4}-\d{2}-\d{2}\s+[A-Z][^\n]+<[^\n>]+@|^(?:Noteworthy )?[Cc]hanges (?:in|since) "
    r"(?:version |release )?v?\d|^#+ ?(?:v|[Vv]ersion |[Rr]elease )?\d+\.\d+[\w.-]*(?: |$)|"
    r"^\s*[*-] (?:\[?CVE-\d{4}-\d+|Fix(?:ed)?|Security)|^commit [0-9a-f]{40}$|"
    r"^Author: [^\n]+<[^\n>]+>$|^[A-Z][\w.-]+(?: [A-Z][\w.-]+)+ \(\d{1,2} \w{3} \d{4}\)$|"
    r"^\s*(?:Closes|Fixes|Reported-by|Signed-off-by|Reviewed-by): ",
    re.M,
)
_CVE = re.compile(r"\bCVE-\d{4}-\d{4,}")

# PoC code: C/C++ that drives the kernel through raw syscalls the way exploits do. Scored by
# counting distinct exploit-shaped constructs, so systems code that merely issues syscalls
# (test harnesses, executors) stays below the threshold.
_POC_FEATURES = tuple(
    re.compile(p)
    for p in (
        r"#include <(?:linux/|sys/(?:syscall|mman|xattr|msg|ipc)|keyutils)",
        r"\b(?:unshare|setns)\s*\(\s*CLONE_NEW(?:USER|NET|NS)",
        r"\b(?:msgsnd|msgrcv|msgget|add_key|keyctl|setxattr|fsetxattr|io_uring_setup|"
        r"userfaultfd|UFFDIO_\w+|sendmmsg)\b",
        r"\b(?:spray|groom|leak|kaslr|kbase|kheap|rop|gadget|pivot|uaf|victim|overlap|"
        r"corrupt|fake_\w+|payload)\w*",
        r"\b(?:sched_setaffinity|pin_(?:to_)?cpu|CPU_SET)\b",
        r"\b(?:commit_creds|prepare_kernel_cred|init_cred|modprobe_path|core_pattern|"
        r"swapgs_restore|/proc/sys/kernel/modprobe|getuid\(\)\s*==\s*0|setuid\(0\)|"
        r"system\(\"/bin/sh\"|execve\(\"/bin/sh\"|\"/bin/sh\")",
        r"0xffffffff8[0-9a-f]{7}\b",
        r"\bsyscall\s*\(\s*(?:__NR_|SYS_)\w+",
    )
)
_POC_GATE = re.compile(r"#include|int main\s*\(")


class VulnDiscoveryDetector:
    """Flags evidence that a security vulnerability or crash-class bug was discovered.

    Thread-safe (all state is compiled at import); ``detect`` costs one regex pass over text
    without anchors.
    """

    name = "vuln_rules"
    categories: tuple[Category, ...] = ("vuln_discovery",)

    def detect(self, text: str) -> list[Detection]:
        """Return one detection (category ``vuln_discovery``) if any signal fires, else none.

        The text is read through :func:`normalise` (NFKC, invisible characters removed,
        confusables folded); spans point into ``text`` as given.
        """
        norm = normalise(text)
        text = norm.text
        hits: dict[str, tuple[_Signal, Span]] = {}
        windows = _windows(text)
        if not windows:
            return []
        wanted = frozenset().union(*(names for _, _, names in windows))
        for lo, hi, names in windows:
            window = text[lo:hi]
            for signal in _SIGNALS:
                if signal.name in hits or signal.name not in names:
                    continue
                m = signal.pattern.search(window)
                if m is not None and not (signal.name in _SOFT and _negated(window, m)):
                    hits[signal.name] = (signal, Span(lo + m.start(), lo + m.end()))
            if len(hits) == len(_SIGNALS) or _certain(hits):
                break  # more windows cannot change the verdict (or the score, to 4 places)
        if "sanitizer_report" not in hits and "sanitizer_any_case" in wanted:
            for lo, hi, names in windows:
                if "sanitizer_any_case" in names:
                    m = _SANITIZER_ANY_CASE.search(text, lo, hi)
                    if m is not None:
                        hits["sanitizer_report"] = (_SANITIZER_SIGNAL, Span(m.start(), m.end()))
                        break
        certain = _certain(hits)
        writeup = None
        if "vuln_writeup" in wanted and not certain:
            # A write-up's parts sit together: read the stretch around its anchors only.
            spots = [(lo, hi) for lo, hi, names in windows if "vuln_writeup" in names]
            lo, hi = max(0, spots[0][0] - _WRITEUP_REACH), spots[-1][1] + _WRITEUP_REACH
            writeup = _writeup_score(text[lo:hi])
            if writeup is not None:
                sig, span = writeup
                writeup = (sig, Span(lo + span.start, lo + span.end))
        if writeup is not None:
            hits["vuln_writeup"] = writeup
        poc = _poc_score(text) if "poc_code" in wanted and not certain else None
        if poc is not None:
            hits["poc_code"] = poc
        if "crash_prose" in wanted and all(n in _SOFT for n in hits):
            # Prose is read only when no structural signal fired: a sanitizer line quoted
            # in a sentence is the same evidence told twice, not independent evidence.
            for lo, hi, names in windows:
                if "crash_prose" in names:
                    told = prose_crash(text, lo, hi)
                    if told is not None:
                        sig = _PROSE_NAMED if told.crash_named else _PROSE_SIGNAL
                        hits["crash_prose"] = (sig, Span(told.start, told.end))
                        break
        if not hits:
            return []
        score = _combine(text, hits)
        best = max(hits.values(), key=lambda h: h[0].weight)[0]
        spans = tuple(
            sorted(
                (Span(*norm.to_original(span.start, span.end)) for _, span in hits.values()),
                key=lambda sp: (sp.start, sp.end),
            )
        )
        fingerprint = crash_fingerprint(text)
        key = fingerprint.key if fingerprint else None
        if key is None and "poc_code" in hits:
            # No crash to fingerprint: PoC code is identified by its (whitespace-normalised)
            # hash, from its first #include or main() on.
            key = poc_hash(text[hits["poc_code"][1].start :])
        return [
            Detection(
                detector=self.name,
                category="vuln_discovery",
                score=round(score, 6),
                reason=best.reason,
                spans=spans,
                fingerprint=key,
                details={
                    "signals": ",".join(sorted(hits)),
                    **(
                        {
                            "crash_type": fingerprint.crash_type,
                            "crash_state": " / ".join(fingerprint.frames),
                        }
                        if fingerprint
                        else {}
                    ),
                },
            )
        ]


def _certain(hits: dict[str, tuple[_Signal, Span]]) -> bool:
    """Whether the hard signals found already put the score above 0.9999."""
    miss = 1.0
    for name, (sig, _) in hits.items():
        if name not in _SOFT:
            miss *= 1.0 - sig.weight
    return miss < 1e-4


def _at_least(pattern: re.Pattern[str], text: str, n: int) -> bool:
    """Whether ``pattern`` occurs ``n`` times in the first _SHAPE_PREFIX characters."""
    found = 0
    for _ in pattern.finditer(text, 0, _SHAPE_PREFIX):
        found += 1
        if found >= n:
            return True
    return False


def _own_stack(text: str) -> bool:
    """Whether the text holds a numbered stack of three frames or more (``#0 0x...``)."""
    return text.count("#", 0, _SHAPE_PREFIX) >= 3 and _at_least(_FRAMES, text, 3)


def _negated(window: str, m: re.Match[str]) -> bool:
    """Whether the sentence around a soft match denies it or speaks of a fix ("fix a
    use-after-free in", "is not exploitable", "could be exploitable")."""
    lo = max(window.rfind(".", max(0, m.start() - 60), m.start()), window.rfind("\n", 0, m.start()))
    return _NEGATED.search(window, max(lo, m.start() - 60, 0), m.end()) is not None


def _combine(text: str, hits: dict[str, tuple[_Signal, Span]]) -> float:
    """Noisy-OR over distinct signal kinds (independent evidence raises the score); soft
    signals count for less, and for less again in changelog- or advisory-shaped text."""
    shape: list[bool] = []

    def listing() -> bool:
        """Whether the text is laid out as a changelog or an advisory list (read at most once)."""
        # Read the layout only when the verdict depends on it (a crash with its own stack
        # and no write-up does not): it is the costliest pattern here.
        if not shape:
            shape.append(
                _at_least(_CHANGELOG, text, 2)
                or (
                    # A memchr-speed gate: four distinct ids need four "CVE-" at least.
                    text.count("CVE-", 0, 200_000) >= 4
                    and len(set(_CVE.findall(text, 0, 200_000))) >= 4
                )
            )
        return shape[0]

    # A write-up with four or more of its parts (class, origin, affected versions,
    # trigger, exploitation, fix commit, requirements) is specific evidence on its own.
    soft_names = set(_SOFT)
    writeup = hits.get("vuln_writeup")
    if writeup is not None and writeup[0].weight >= 0.9 and not listing():
        soft_names.discard("vuln_writeup")
    hard = [s.weight for name, (s, _) in hits.items() if name not in soft_names]
    soft = [min(s.weight, _SOFT_WEIGHT) for name, (s, _) in hits.items() if name in soft_names]
    if hard and not _own_stack(text) and listing():
        # A report line quoted in a changelog or commit message (the bug it names is
        # being fixed): without a stack of its own it is a mention, not a discovery.
        hard = [w * 0.5 for w in hard]
    if soft and not hard and listing():
        soft = [w * 0.5 for w in soft]
    miss = 1.0
    for w in (*hard, *soft):
        miss *= 1.0 - w
    return 1.0 - miss


_POC_SIGNAL = _Signal("poc_code", 0.9, _POC_GATE, "exploit-shaped proof-of-concept code")
# A crash told in prose: a memory-safety mechanism with a function, location, size or
# triggering input in one sentence; more when the sentence also says it crashed.
_PROSE_SIGNAL = _Signal(
    "crash_prose",
    0.65,
    _POC_GATE,
    "a memory-safety defect described in prose (mechanism and where or how it is reached)",
)
_PROSE_NAMED = _Signal(
    "crash_prose",
    0.8,
    _POC_GATE,
    "a crash described in prose (a memory-safety mechanism, where or how it is reached)",
)


def _poc_score(text: str) -> tuple[_Signal, Span] | None:
    """A proof-of-concept program: C or C++ code (the gate) holding at least five of the
    constructs exploits are made of; the weight grows with how many. None below five."""
    gate = _POC_GATE.search(text)
    if gate is None:
        return None
    found = 0
    for i, p in enumerate(_POC_FEATURES):
        if p.search(text, gate.start()):
            found += 1
        elif found + len(_POC_FEATURES) - i - 1 < 5:
            return None  # five constructs can no longer be reached
    if found < 5:
        return None
    weight = min(0.97, 0.6 + 0.07 * found)
    return _Signal("poc_code", weight, _POC_GATE, _POC_SIGNAL.reason), Span(
        gate.start(), gate.end()
    )


def _windows(text: str) -> list[tuple[int, int, frozenset[str]]]:
    """Merged ``[lo, hi)`` windows around anchor hits, each with the signals worth running."""
    hits = [
        (start, _ANCHOR_LITERALS[i])
        for i, start, _ in _ANCHOR_AUTOMATON.find_matches_as_indexes(text, overlapping=False)
    ]
    if not hits:
        return []
    merged: list[tuple[int, int, frozenset[str]]] = []
    lo, hi = max(0, hits[0][0] - _WINDOW), hits[0][0] + _WINDOW
    names: set[str] = set(_ANCHOR_SIGNALS[hits[0][1]])
    for pos, literal in hits[1:]:
        if pos - _WINDOW <= hi:
            hi = pos + _WINDOW
            names.update(_ANCHOR_SIGNALS[literal])
        else:
            merged.append((lo, min(hi, len(text)), frozenset(names)))
            lo, hi, names = max(0, pos - _WINDOW), pos + _WINDOW, set(_ANCHOR_SIGNALS[literal])
    merged.append((lo, min(hi, len(text)), frozenset(names)))
    return merged


def _anchor_index() -> dict[str, frozenset[str]]:
    """Anchor literal -> the signals whose windows it opens."""
    index: dict[str, set[str]] = {}
    for name, literals in _SIGNAL_ANCHORS.items():
        for literal in literals:
            index.setdefault(literal, set()).add(name)
    return {k: frozenset(v) for k, v in index.items()}


_ANCHOR_SIGNALS = _anchor_index()
_ANCHOR_LITERALS = tuple(_ANCHOR_SIGNALS)
# One Aho-Corasick pass finds every anchor (Python's ``re`` tries each alternative at each
# position, which is ten times slower for this many literals).
_ANCHOR_AUTOMATON = ahocorasick_rs.AhoCorasick(
    _ANCHOR_LITERALS, matchkind=ahocorasick_rs.MatchKind.LeftmostLongest
)


# A write-up of one specific vulnerability: names it (CVE id or a bug class in a named
# component), says where it came from or where it is fixed, and how it is reached. Docs and
# changelogs mention one or two of these, a write-up several.
# Matched against the lower-cased text (re.IGNORECASE costs about 2.5 times the time).
_WRITEUP_FEATURES = tuple(
    re.compile(p.replace("CVE-", "cve-").replace("UAF", "uaf"), re.M)
    for p in (
        r"\bCVE-\d{4}-\d{4,}",
        r"\b(?:use-after-free|UAF|double[- ]free|out-of-bounds (?:read|write|access)|"
        r"(?:heap|stack|integer|buffer) (?:buffer )?overflow|race condition|type confusion|"
        r"null[- ]pointer dereference|refcount (?:leak|overflow|underflow)|uninitiali[sz]ed)\b",
        r"^\W*(?:introduced by|fixed by|affected (?:versions?|component|kernel)|cause)\s*:",
        r"\btrigger(?:ing|s|ed)? (?:the|this) (?:vulnerability|bug|issue)|requirements to trigger",
        r"\b(?:privilege escalation|root shell|gain root|arbitrary (?:read|write|code|free)|"
        r"exploit(?:ation|ed|able)?\b)",
        r"git\.kernel\.org/\S+(?:commit|diff)|/commit/[0-9a-f]{7,}",
        r"\b(?:kernel configuration|capabilit(?:y|ies)(?: required)?|user namespaces?)\s*:",
    )
)


def _writeup_score(text: str) -> tuple[_Signal, Span] | None:
    """A write-up of one vulnerability: at least three of its parts (class, origin,
    trigger...) present; the weight grows with how many. None below three. The span is the
    first part found."""
    lower = text.lower()
    found = []
    for i, p in enumerate(_WRITEUP_FEATURES):
        m = p.search(lower)
        if m is not None:
            found.append(m)
        elif len(found) + len(_WRITEUP_FEATURES) - i - 1 < 3:
            return None  # three features can no longer be reached
    if len(found) < 3:
        return None
    weight = min(0.97, 0.55 + 0.09 * len(found))
    first = min(found, key=lambda m: m.start())
    return _Signal(
        _WRITEUP_SIGNAL.name, weight, _WRITEUP_SIGNAL.pattern, _WRITEUP_SIGNAL.reason
    ), Span(first.start(), first.end())


_WRITEUP_SIGNAL = _Signal(
    "vuln_writeup",
    0.9,
    _POC_GATE,
    "a write-up of one specific vulnerability (class, origin, trigger)",
)
