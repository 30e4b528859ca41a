"""Affected versions and the affected package: parsed once, exported as each format wants.

A finding's ``versions`` are exact versions (``2.4.0``) or ranges of comparators joined by
commas (``< 2.4.1``, ``>= 2.0, < 2.5``, ``<= 1.2``, ``*`` for every version). A range has at
most one inclusive lower bound and one upper bound, which is what OSV (``introduced`` with
``fixed`` or ``last_affected``) and CVE 5.x (``version`` with ``lessThan`` or
``lessThanOrEqual``) can both say exactly; anything else is refused at registration, with
what was expected, rather than exported as text no scanner can match.

The package is a Package URL (purl-spec); OSV's ecosystem comes from its type, as the OSV
schema's ecosystem table maps them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from packageurl import PackageURL

from custodes.errors import InputError

__all__ = [
    "OSV_PURL_TYPES",
    "AffectedPackage",
    "AffectedVersions",
    "VersionRange",
    "parse_package",
    "parse_versions",
]

_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_:~!-]{0,127}$")
_COMPARATOR = re.compile(r"^(>=|<=|==|<|>|=|~=|~|\^|!=)?\s*(.*)$")
_EXPECTED = (
    "an exact version (2.4.0), or comparators joined by commas: '< 2.4.1', '>= 2.0, < 2.5', "
    "'<= 1.2', or '*' for every version"
)

# purl type -> (OSV ecosystem, CVE 5.x versionType, CVE collectionURL). OSV schema,
# "Affected package -> ecosystem" table; CVE versions.md names python, semver, maven, ...
_ECOSYSTEMS: Mapping[str, tuple[str, str, str]] = MappingProxyType(
    {
        "pypi": ("PyPI", "python", "https://pypi.org"),
        "npm": ("npm", "semver", "https://www.npmjs.com"),
        "maven": ("Maven", "maven", "https://repo.maven.apache.org/maven2"),
        "golang": ("Go", "semver", "https://pkg.go.dev"),
        "cargo": ("crates.io", "semver", "https://crates.io"),
        "gem": ("RubyGems", "custom", "https://rubygems.org"),
        "nuget": ("NuGet", "custom", "https://www.nuget.org"),
        "composer": ("Packagist", "custom", "https://packagist.org"),
        "hex": ("Hex", "custom", "https://hex.pm"),
        "pub": ("Pub", "custom", "https://pub.dev"),
        "hackage": ("Hackage", "custom", "https://hackage.haskell.org"),
        "cran": ("CRAN", "custom", "https://cran.r-project.org"),
        "swift": ("SwiftURL", "custom", ""),
    }
)


OSV_PURL_TYPES: tuple[str, ...] = tuple(_ECOSYSTEMS)


@dataclass(frozen=True)
class VersionRange:
    """``introduced`` <= V, and V < ``fixed`` or V <= ``last_affected`` (None: unbounded)."""

    introduced: str | None = None
    fixed: str | None = None
    last_affected: str | None = None


@dataclass(frozen=True)
class AffectedVersions:
    """The exact versions and the ranges, and both in the order given (``items``)."""

    exact: tuple[str, ...]
    ranges: tuple[VersionRange, ...]
    items: tuple[str | VersionRange, ...]


@dataclass(frozen=True)
class AffectedPackage:
    """A package named by its purl, and what OSV and CVE call it."""

    purl: str
    type: str
    name: str  # the ecosystem's own name: Maven group:artifact, Go module path, npm @scope/name
    osv_ecosystem: str | None
    cve_version_type: str
    collection_url: str


def _version(text: str, where: str, original: str) -> str:
    """``text`` if it is a version (``_VERSION``).

    Raises:
        InputError: it is not.
    """
    if not _VERSION.match(text):
        raise InputError(
            f"not a version: {text!r}", where=where, expected=_EXPECTED, actual=repr(original)
        )
    return text


def _parse_one(text: str, where: str) -> str | VersionRange:
    """One entry of ``versions``: an exact version (``1.2.3``, ``=1.2.3``), ``*`` (every
    version), or a range of at most one inclusive lower bound (``>=``) and one upper bound
    (``<`` fixed in, ``<=`` last affected), comma-separated.

    Raises:
        InputError: another comparator, two bounds of one side, or not a version.
    """
    t = text.strip()
    if t == "*":
        return VersionRange()
    parts = [p.strip() for p in t.split(",")]
    if len(parts) == 1:
        m = _COMPARATOR.match(parts[0])
        assert m is not None  # the pattern matches every string
        if m.group(1) in (None, "=", "=="):
            return _version(m.group(2).strip(), where, text)
    lower: str | None = None
    upper: tuple[str, str] | None = None
    for part in parts:
        m = _COMPARATOR.match(part)
        assert m is not None
        op, value = m.group(1), m.group(2).strip()
        if op == ">=":
            if lower is not None:
                raise InputError("two lower bounds", where=where, expected=_EXPECTED, actual=text)
            lower = _version(value, where, text)
        elif op in ("<", "<="):
            if upper is not None:
                raise InputError("two upper bounds", where=where, expected=_EXPECTED, actual=text)
            upper = (op, _version(value, where, text))
        else:
            # OSV and CVE lower bounds are inclusive and neither has ~, ^ or !=: say which form
            # is meant instead of guessing a version's successor.
            raise InputError(
                f"comparator {op or '(none)'!r} cannot be exported exactly",
                where=where,
                expected=_EXPECTED + ("; a lower bound is inclusive: '>= X'" if op == ">" else ""),
                actual=repr(text),
            )
    if upper is None:
        return VersionRange(introduced=lower)
    op, value = upper
    return VersionRange(
        introduced=lower,
        fixed=value if op == "<" else None,
        last_affected=value if op == "<=" else None,
    )


def parse_versions(texts: Iterable[str], *, where: str = "versions") -> AffectedVersions:
    """The exact versions and ranges of a finding's ``versions``.

    Raises:
        InputError: a text is neither an exact version nor a range OSV and CVE can express.
    """
    items = tuple(dict.fromkeys(_parse_one(text, f"{where}[{i}]") for i, text in enumerate(texts)))
    return AffectedVersions(
        tuple(v for v in items if isinstance(v, str)),
        tuple(v for v in items if isinstance(v, VersionRange)),
        items,
    )


def parse_package(purl: str, *, where: str = "purl") -> AffectedPackage:
    """The package a purl names (without a version: the finding's versions say which).

    Raises:
        InputError: not a purl, or one with a version.
    """
    try:
        p = PackageURL.from_string(purl)
    except ValueError as exc:
        raise InputError(
            f"not a Package URL: {exc}",
            where=where,
            expected="pkg:<type>/<namespace>/<name>, e.g. pkg:pypi/requests or "
            "pkg:maven/org.apache.logging.log4j/log4j-core",
            actual=repr(purl),
        ) from exc
    if p.version:
        raise InputError(
            "the purl names a version",
            where=where,
            expected="the package without @version (the finding's versions say which)",
            actual=repr(purl),
        )
    ecosystem, version_type, collection = _ECOSYSTEMS.get(p.type, (None, "custom", ""))
    if p.type == "maven" and p.namespace:
        name = f"{p.namespace}:{p.name}"
    elif p.namespace and p.type in ("golang", "composer", "npm", "swift"):
        name = f"{p.namespace}/{p.name}"
    else:
        name = p.name
    return AffectedPackage(
        purl=p.to_string(),
        type=p.type,
        name=name,
        osv_ecosystem=ecosystem,
        cve_version_type=version_type,
        collection_url=collection,
    )
