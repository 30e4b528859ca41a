"""A crash report told in prose, in English or another language.

Sanitizer headers, stack frames and fault addresses are what the structural signals of
:mod:`custodes.monitors._vuln` read; a report retold in words ("it reads 8 bytes past the end
of the heap buffer allocated in png_read_row() when it parses the attached file", "der
Parser liest bei der präparierten Datei über das Ende des Puffers hinaus und stürzt ab")
carries none of them. This signal reads one sentence at a time and asks for three parts
together:

* a **memory-safety mechanism**: an access past the end or outside the bounds of a buffer,
  freed memory used, a double free, a null pointer dereferenced, an overflow of a buffer,
  heap or stack (the anchors: each is a phrase a general text rarely holds);
* **specificity**: a function (``name()``), a source location (``file.c:123``), an
  address, a byte count, or the input that triggers it (crafted, malformed, fuzzed, a
  reproducer);
* optionally a **crash event** (crashed, segfault, "stürzt ab", "plante", "崩溃"), which
  raises the weight.

A sentence that denies, fixes or only fears the defect ("fix a use-after-free in", "could
overflow", "behoben", "corrigé") or describes an advisory's class of attack ("allows remote
attackers to cause") does not count: those are how changelogs and advisories speak.

Languages: English, German, French, Spanish, Portuguese, Italian, Russian, Chinese and
Japanese. Each part is a list of general phrases of crash reports, never one data set's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from custodes.monitors._normalise import normalise

__all__ = ["PROSE_ANCHORS", "ProseCrash", "prose_crash"]

_SENTENCE_REACH = 400  # characters either side of the anchor that one sentence may span
_MECHANISM_REACH = 80  # characters either side of an anchor a mechanism's match may span

# Literals at least one of which a mechanism match contains (searched case-sensitively by the
# rules tier's anchor automaton, so each is given in the cases prose writes it).
_ANCHORS = (
    "past the end",
    "beyond the end",
    "before the start",
    "before the beginning",
    "out-of-bounds",
    "out of bounds",
    "Out-of-bounds",
    "Out of bounds",
    "use-after-free",
    "use after free",
    "Use-after-free",
    "Use after free",
    "freed memory",
    "already freed",
    "been freed",
    "was freed",
    "double free",
    "double-free",
    "Double free",
    "ull pointer",
    "ULL pointer",
    "overflow",
    "Overflow",
    "overrun",
    "berlauf",  # (Puffer|Heap|Stapel)überlauf
    "das Ende",
    "freigegeben",
    "Nullzeiger",
    "NULL-Zeiger",
    "dépassement",
    "Dépassement",
    "hors limites",
    "hors des limites",
    "libérée",
    "libéré",
    "pointeur nul",
    "pointeur NULL",
    "au-delà de la fin",
    "desbordamiento",
    "Desbordamiento",
    "estouro",
    "Estouro",
    "fuera de los límites",
    "fuera de límites",
    "fora dos limites",
    "liberada",
    "liberado",
    "puntero nulo",
    "puntero NULL",
    "ponteiro nulo",
    "más allá del final",
    "além do fim",
    "liberata",
    "puntatore nullo",
    "fuori dai limiti",
    "oltre la fine",
    "ереполнение",  # [Пп]ереполнение
    "за пределы",
    "за пределами",
    "за границ",
    "освобожд",
    "улевого указател",
    "溢出",
    "越界",
    "释放后",
    "已释放",
    "空指针",
    "オーバーフロー",
    "範囲外",
    "解放後",
    "解放済み",
    "ヌルポインタ",
)


def _folded(pattern: str) -> str:
    """``pattern`` as the detectors see text: folded by :func:`normalise` (Cyrillic letters that
    look Latin become Latin, so the Russian phrases must be written folded too)."""
    return normalise(pattern).text


PROSE_ANCHORS: tuple[str, ...] = tuple(dict.fromkeys(_folded(a) for a in _ANCHORS))

_MECHANISM = re.compile(
    _folded(
        r"\b(?:read\w*|writ\w+|wrote|access\w*|cop(?:y|ies|ied)|load\w*|stor\w+)\b[^.\n]{0,40}?"
        r"\b(?:past|beyond|before) the (?:end|start|beginning)|"
        r"\bout[- ]of[- ]bounds (?:read|write|access|index)|\bout of bounds\b|"
        r"\buse[- ]after[- ]free\b|\b(?:uses?|using|used|touch\w*|deref\w*|access\w*|reads?|"
        r"writes?)\b[^.\n]{0,30}?\b(?:freed memory|memory that (?:was|had been|has been) freed|"
        r"already freed|after it (?:was|has been|had been) freed)|\bdouble[- ]free\b|"
        r"\bnull pointer (?:dereference|deref|access|read|write)|"
        r"\bdereferenc\w+ (?:a |the )?null\b|"
        r"\b(?:heap|stack|buffer|integer)[- ](?:buffer[- ])?(?:overflow|overrun)|"
        r"\boverflow\w* (?:the|a|its|their) (?:\w+ )?(?:buffer|heap|stack|array)|"
        # German
        r"(?:Puffer|Heap|Stapel|Stack|Ganzzahl)-?[üu]berlauf|über das Ende\b|außerhalb der "
        r"(?:Grenzen|Puffergrenzen)|(?:bereits |schon )?freigegebene[nm]? Speicher|"
        r"(?:Nullzeiger|NULL-Zeiger)-?(?:dereferenz\w*|zugriff)?|"
        # French
        r"dépassement (?:de (?:tampon|mémoire|tas|pile|capacité)|d'entier)|hors (?:des )?limites|"
        r"mémoire (?:déjà )?libérée|après (?:sa )?libération|pointeur (?:nul|NULL)|"
        r"au-delà de la fin|"
        # Spanish, Portuguese
        r"desbordamiento (?:de )?(?:búfer|buffer|pila|montículo|heap|enteros?)|"
        r"estouro de (?:buffer|pilha|heap|inteiro)|fuera de (?:los )?límites|fora dos limites|"
        r"memoria (?:ya )?liberada|memória (?:já )?liberada|(?:después|despu[eé]s) de (?:ser )?"
        r"liberad[ao]|puntero (?:nulo|NULL)|ponteiro nulo|más allá del final|além do fim|"
        # Italian
        r"overflow (?:del|dello|di) (?:buffer|heap|stack)|memoria (?:già )?liberata|"
        r"puntatore nullo|fuori dai limiti|oltre la fine|"
        # Russian
        r"[Пп]ереполнение (?:буфера|кучи|стека|целого)|за (?:пределы|пределами|границ\w*) "
        r"(?:буфера|массива|выделенн\w+)|(?:уже )?освобожд\w+ памят\w+|"
        r"(?:разыменовани\w+ )?нулевого указател\w+|"
        # Chinese, Japanese
        r"(?:缓冲区|堆|栈|整数)溢出|越界(?:读|写|访问)|释放后(?:使用|重用)|已释放的内存|空指针(?:解引用)?|"
        r"(?:バッファ|ヒープ|スタック)オーバーフロー|範囲外(?:の)?(?:読み|書き|アクセス)|解放後(?:の)?使用|"
        r"解放済みメモリ|ヌルポインタ"
    ),
    re.I,
)
_SPECIFIC = re.compile(
    _folded(
        r"\b[A-Za-z_][\w:]{2,}\(\)|\b[\w/.-]+\.(?:c|cc|cpp|cxx|h|hpp|rs|go|m|mm|js|py|java|"
        r"swift|zig):\d+\b|\b0x[0-9a-f]{4,}\b|\b\d+ (?:bytes?|Bytes?|octets?|байт\w*|字节|バイト)|"
        r"\b(?:crafted|malformed|fuzz\w*|reproducer|testcase|test case|poc\b|proof of concept|"
        r"attached (?:file|input|sample)|this (?:file|input|sample))|"
        r"präpariert\w*|manipuliert\w*|fehlerhaft\w*|spécialement conçu\w*|malveillant\w*|"
        r"malformé\w*|forgé\w*|especialmente (?:diseñad|elaborad|criad)\w*|malformad\w*|"
        r"manipulad\w*|manipolat\w*|appositamente|специально (?:созданн|сформированн)\w*|"
        r"некорректн\w+|特制|畸形|恶意构造|構造した|細工した|不正な(?:入力|ファイル)"
    ),
    re.I,
)
_CRASH = re.compile(
    _folded(
        r"\bcrash(?:es|ed|ing)?\b|\bsegfault\w*|segmentation fault|\bcore dump\w*|\bSIG(?:SEGV|"
        r"ABRT|BUS)\b|\baborts?\b|\baborted\b|stürzt\w*[^.\n]{0,40}\bab\b|abgestürzt|Absturz|"
        r"Speicherzugriffsfehler|Segmentierungsfehler|\bplant(?:e|é|ait|age)\b|erreur de "
        r"segmentation|se (?:bloquea|cuelga|cae|estrella)|fallo de segmentación|falla de "
        r"segmentación|violación de segmento|falha de segmentação|\btrava\b|si (?:blocca|arresta)|"
        r"errore di segmentazione|пада\w+|упал\w*|аварийно|ошибк\w+ сегментации|сбо\w+|"
        r"崩溃|段错误|闪退|クラッシュ|セグメンテーション違反|異常終了"
    ),
    re.I,
)
_DENIED = re.compile(
    _folded(
        r"\b(?:not|never|no longer|isn'?t|wasn'?t|aren'?t|unlikely|fix(?:e[sd])?|fixing|"
        r"avoid(?:s|ed)?|prevent(?:s|ed|ing)?|resolv(?:e[sd]?)|patch(?:e[sd])?|"
        r"mitigat\w*|protect(?:s|ion)?|against|possible|potential(?:ly)?|could|may|might|"
        r"would|can|cannot|if an?|allows? (?:\w+ ){0,2}(?:attackers?|users?)|denial of service|"
        r"what is|such as|for example|common|typical\w*|class(?:es)? of|"
        r"behoben|korrigiert|verhinder\w*|nicht|kein\w*|könnte|corrig\w+|empêch\w+|pas\b|"
        r"pourrait|corregid\w*|evit\w+|podría|no\b|corrigid\w*|poderia|não|corrett\w*|potrebbe|"
        r"non|исправлен\w*|устранен\w*|не|может)\b|e\.g\.|"
        # Chinese and Japanese have no word boundaries.
        r"修复|修正|防止|可能|已解决|修正済み|防ぐ|可能性"
    ),
    re.I,
)


@dataclass(frozen=True)
class ProseCrash:
    """A sentence that tells a crash: its span and whether it names the crash itself."""

    start: int
    end: int
    crash_named: bool


def _sentence(text: str, lo: int, hi: int) -> tuple[int, int]:
    """The bounds of the sentence around ``[lo, hi)`` (full stops, line breaks, at most
    :data:`_SENTENCE_REACH` characters either way); a full stop right after a word
    character and before one (``1.2``, ``file.c``) does not end it."""
    start = max(0, lo - _SENTENCE_REACH)
    for i in range(lo - 1, start - 1, -1):
        c = text[i]
        if c in "\n!?。！？" or (
            c == "." and i + 1 < len(text) and text[i + 1] in " \t" and i > 0 and text[i - 1] != "."
        ):
            start = i + 1
            break
    end = min(len(text), hi + _SENTENCE_REACH)
    for i in range(hi, end):
        c = text[i]
        if c in "\n!?。！？" or (c == "." and (i + 1 >= len(text) or text[i + 1] in " \t\n")):
            end = i
            break
    return start, end


def _anchor_spots(text: str, lo: int, hi: int) -> list[int]:
    """Where the anchors occur in ``text[lo:hi]``, in order (``str.find`` per literal: the
    mechanism pattern is a long alternation, and read only around these)."""
    spots = []
    for literal in PROSE_ANCHORS:
        at = text.find(literal, lo, hi)
        while at != -1:
            spots.append(at)
            at = text.find(literal, at + 1, hi)
    return sorted(spots)


def prose_crash(text: str, lo: int, hi: int) -> ProseCrash | None:
    """The first sentence of ``text[lo:hi]`` that tells a memory-safety crash in prose (a
    mechanism with something specific, not denied), or None."""
    read_to = lo
    for at in _anchor_spots(text, lo, hi):
        start = max(lo, at - _MECHANISM_REACH, read_to)
        end = min(hi, at + _MECHANISM_REACH)
        if end <= start:
            continue
        read_to = end
        for m in _MECHANISM.finditer(text, start, end):
            s, e = _sentence(text, m.start(), m.end())
            sentence = text[s:e]
            if not _SPECIFIC.search(sentence) or _DENIED.search(sentence):
                continue
            return ProseCrash(s, e, _CRASH.search(sentence) is not None)
    return None
