"""Structure figures of custodes beside an anchor codebase (sigstore-python by default).

Prints, for each package tree: module size (median, 90th percentile, largest), import cycles
(strongly connected components of the module import graph, and of the graph between top-level
packages), private cross-package imports, comment and docstring lines per code line, and the
public objects that lack a docstring (or, raising, a ``Raises:`` section).

    python benchmarks/code_stats.py                 # custodes (src/) beside the installed sigstore
    python benchmarks/code_stats.py --anchor PATH   # beside another package directory
    python benchmarks/code_stats.py --by-package    # also the density figures per package
    python benchmarks/code_stats.py --list-undocumented   # name each undocumented public object

Definitions (the same for both trees, so the columns compare):

- A *module* is one ``.py`` file; its size is its physical line count.
- A *code line* holds at least one token that is not a comment, a docstring or layout.
- A *comment line* holds a ``#`` comment that says something: a line whose only comment is a tool
  pragma (``# noqa``, ``# type: ignore``, ``# pragma: ...``, ``# fmt: ...``, ``# nosec``) does not
  count.
- A *licence-header line* is a comment line of the block of comments a module opens with, before
  its first code or docstring (sigstore-python opens every module with 13 lines of Apache
  licence: they say nothing about the code, so the comment density is also given without them).
- A *docstring line* is a line of a module, class or function docstring (``ast.get_docstring``
  positions).
- A *private cross-package import* is an import of a module with a private component
  (``pkg._mod``, ``pkg.sub._mod.x``) from outside the package that holds that private component:
  the rule of import-linter's ``private_modules`` contract, which ``pyproject.toml`` enforces. The
  imports come from grimp, so function-level and ``TYPE_CHECKING`` imports count. Names imported
  with ``from pkg.mod import _name`` from another top-level package count separately (ast).
- A *public object* is a module-level function or class, or a method of a public class, that a
  user of the package may call: a module-level name listed in the module's ``__all__`` (custodes'
  private ``_modules`` list there what their package re-exports), or, in a module without
  ``__all__``, a name without a leading underscore in a module whose dotted path has no private
  component; a method is public if its class is and its name has no leading underscore (dunders
  are not counted, nor ``@overload`` stubs, property setters and deleters, or nested functions).
  Only modules of regular packages count, not the scripts alembic loads by path.
- A public function *raises* if its own body (not a nested function or class) holds a ``raise``
  of an exception other than ``NotImplementedError`` (a bare re-raise does not count); its
  docstring *names what it raises* if it has a ``Raises:`` section (Google style).
- A *cycle* is a strongly connected component of more than one module (networkx); the
  package-level row collapses modules to their top-level package (``custodes.gateway``).
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import io
import statistics
import sys
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import grimp
import networkx as nx
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]

_LAYOUT_TOKENS = frozenset(
    {
        tokenize.COMMENT,
        tokenize.NL,
        tokenize.NEWLINE,
        tokenize.INDENT,
        tokenize.DEDENT,
        tokenize.ENDMARKER,
        tokenize.ENCODING,
    }
)
_PRAGMAS = ("noqa", "type:", "pragma:", "fmt:", "nosec", "pyright:", "mypy:")


@dataclass(frozen=True)
class LineCounts:
    """The lines of one module, by kind."""

    total: int
    code: int
    comment: int
    docstring: int
    header: int


@dataclass(frozen=True)
class DocGaps:
    """The public objects of one module (or tree) and the docstrings they lack."""

    public: int = 0
    undocumented: int = 0
    raising: int = 0
    raising_without_raises: int = 0
    undocumented_names: tuple[str, ...] = ()
    without_raises_names: tuple[str, ...] = ()

    def __add__(self, other: DocGaps) -> DocGaps:
        return DocGaps(
            public=self.public + other.public,
            undocumented=self.undocumented + other.undocumented,
            raising=self.raising + other.raising,
            raising_without_raises=self.raising_without_raises + other.raising_without_raises,
            undocumented_names=self.undocumented_names + other.undocumented_names,
            without_raises_names=self.without_raises_names + other.without_raises_names,
        )


@dataclass(frozen=True)
class PackageStats:
    """The density figures of one top-level package of a tree (``custodes.log``)."""

    name: str
    code: int
    comment: int
    docstring: int
    header: int
    gaps: DocGaps


@dataclass(frozen=True)
class TreeStats:
    """The figures of one package tree."""

    name: str
    modules: int
    median_lines: float
    p90_lines: float
    largest: tuple[str, int]
    code: int
    comment: int
    docstring: int
    header: int
    module_cycles: int
    modules_in_cycles: int
    package_cycles: int
    private_imports: int
    private_import_pairs: list[tuple[str, str]]
    private_names: int
    gaps: DocGaps
    packages: list[PackageStats]


def _is_pragma(comment: str) -> bool:
    text = comment.lstrip("#").strip()
    return any(text.startswith(p) for p in _PRAGMAS)


def _docstring_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    nodes: Iterable[ast.AST] = [tree, *ast.walk(tree)]
    for node in nodes:
        if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if ast.get_docstring(node, clean=False) is None:
            continue
        first = node.body[0]
        assert first.end_lineno is not None
        lines.update(range(first.lineno, first.end_lineno + 1))
    return lines


def count_lines(source: str) -> LineCounts:
    """Counts the code, comment and docstring lines of one module's source."""
    docstrings = _docstring_lines(ast.parse(source))
    code: set[int] = set()
    comments: set[int] = set()
    header: set[int] = set()
    opening = True  # still in the comments the module opens with
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            if not _is_pragma(tok.string) and not tok.string.startswith("#!"):
                comments.add(tok.start[0])
                if opening:
                    header.add(tok.start[0])
        elif tok.type not in _LAYOUT_TOKENS:
            opening = False
            # A multi-line string token spans lines; each is a code line unless a docstring.
            code.update(range(tok.start[0], tok.end[0] + 1))
    code -= docstrings
    return LineCounts(
        total=len(source.splitlines()),
        code=len(code),
        comment=len(comments),
        docstring=len(docstrings),
        header=len(header),
    )


def _percentile(values: list[int], q: float) -> float:
    # Inclusive method: the 90th percentile is a size some module actually reaches or lies between.
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def _exported_names(tree: ast.Module) -> set[str] | None:
    """The names a module's ``__all__`` lists (``None`` if it has no literal ``__all__``)."""
    for node in tree.body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            if isinstance(value, ast.List | ast.Tuple):
                return {e.value for e in value.elts if isinstance(e, ast.Constant)}
    return None


def _decorated_away(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """An ``@overload`` stub or a property's setter/deleter: documented on another def."""
    for d in node.decorator_list:
        name = ast.unparse(d)
        if name.endswith(("overload", ".setter", ".deleter")):
            return True
    return False


def _raises(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Whether the function's own body raises an exception (see the module docstring)."""
    stack: list[ast.AST] = list(node.body)
    while stack:
        child = stack.pop()
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        if isinstance(child, ast.Raise) and child.exc is not None:
            exc = child.exc.func if isinstance(child.exc, ast.Call) else child.exc
            if not (isinstance(exc, ast.Name) and exc.id == "NotImplementedError"):
                return True
        stack.extend(ast.iter_child_nodes(child))
    return False


def doc_gaps(source: str, module: str) -> DocGaps:
    """The public objects of one module's source that lack a docstring or a ``Raises:``."""
    tree = ast.parse(source)
    exported = _exported_names(tree)
    public_module = _private_parent(module) is None

    def is_public(name: str) -> bool:
        if exported is not None:
            return name in exported
        return public_module and not name.startswith("_")

    gaps = DocGaps()

    def visit(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, qualname: str) -> None:
        nonlocal gaps
        doc = ast.get_docstring(node)
        raising = not isinstance(node, ast.ClassDef) and _raises(node)
        without = (
            raising
            and doc is not None
            and not any(line.strip() == "Raises:" for line in doc.splitlines())
        )
        gaps += DocGaps(
            public=1,
            undocumented=int(doc is None),
            raising=int(raising and doc is not None),
            raising_without_raises=int(without),
            undocumented_names=(qualname,) if doc is None else (),
            without_raises_names=(qualname,) if without else (),
        )

    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        if not is_public(node.name) or (
            not isinstance(node, ast.ClassDef) and _decorated_away(node)
        ):
            continue
        visit(node, f"{module}.{node.name}")
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if (
                    isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                    and not item.name.startswith("_")
                    and not _decorated_away(item)
                ):
                    visit(item, f"{module}.{node.name}.{item.name}")
    return gaps


def _private_parent(module: str) -> str | None:
    """The package a private module belongs to (import-linter's ``private_modules`` rule)."""
    parts = module.split(".")
    for index in range(len(parts) - 1, 0, -1):
        name = parts[index]
        if name.startswith("_") and not (name.startswith("__") and name.endswith("__")):
            return ".".join(parts[:index])
    return None


def _top(module: str, root: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == root and len(parts) > 1 else parts[0]


def _private_names(path: Path, module: str, root: str) -> int:
    """``from other_pkg.mod import _name`` across top-level packages, in one file."""
    count = 0
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
            continue
        if not node.module.startswith(root + ".") and node.module != root:
            continue
        if _top(node.module, root) == _top(module, root):
            continue
        # Dunder names (``__version__``) are public by convention.
        count += sum(1 for alias in node.names if _private_parent(f"x.{alias.name}") is not None)
    return count


def _in_regular_package(path: Path, package_dir: Path) -> bool:
    """Whether every folder from ``package_dir`` down to ``path`` has an ``__init__.py``: the
    scripts alembic loads by path (``store/migrations/versions/*.py``) are not modules of the
    package, so their ``upgrade``/``downgrade`` hooks are no public API."""
    folder = path.parent
    while True:
        if not (folder / "__init__.py").is_file():
            return False
        if folder == package_dir:
            return True
        folder = folder.parent


def _module_name(path: Path, package_dir: Path) -> str:
    rel = path.relative_to(package_dir.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def tree_stats(package_dir: Path) -> TreeStats:
    """Measures one package directory (its parent must be importable)."""
    root = package_dir.name
    files = sorted(package_dir.rglob("*.py"))
    sources = {path: path.read_text(encoding="utf-8") for path in files}
    counts = {path: count_lines(text) for path, text in sources.items()}
    gaps = {
        path: doc_gaps(text, _module_name(path, package_dir))
        if _in_regular_package(path, package_dir)
        else DocGaps()
        for path, text in sources.items()
    }
    by_package: dict[str, list[Path]] = {}
    for path in files:
        by_package.setdefault(_top(_module_name(path, package_dir), root), []).append(path)
    sizes = [c.total for c in counts.values()]
    largest = max(counts.items(), key=lambda item: item[1].total)

    graph = grimp.build_graph(root, cache_dir=None)
    modules = nx.DiGraph()
    packages = nx.DiGraph()
    private: list[tuple[str, str]] = []
    private_lines = 0
    for importer in graph.modules:
        modules.add_node(importer)
        for imported in graph.find_modules_directly_imported_by(importer):
            modules.add_edge(importer, imported)
            if _top(importer, root) != _top(imported, root):
                packages.add_edge(_top(importer, root), _top(imported, root))
            parent = _private_parent(imported)
            if parent is not None and importer != parent and not importer.startswith(parent + "."):
                private.append((importer, imported))
                details = graph.get_import_details(importer=importer, imported=imported)
                private_lines += max(1, len(details))
    cycles = [c for c in nx.strongly_connected_components(modules) if len(c) > 1]
    package_cycles = [c for c in nx.strongly_connected_components(packages) if len(c) > 1]
    names = sum(_private_names(p, _module_name(p, package_dir), root) for p in files)
    return TreeStats(
        name=root,
        modules=len(files),
        median_lines=statistics.median(sizes),
        p90_lines=_percentile(sizes, 0.9),
        largest=(str(largest[0].relative_to(package_dir)), largest[1].total),
        code=sum(c.code for c in counts.values()),
        comment=sum(c.comment for c in counts.values()),
        docstring=sum(c.docstring for c in counts.values()),
        header=sum(c.header for c in counts.values()),
        module_cycles=len(cycles),
        modules_in_cycles=sum(len(c) for c in cycles),
        package_cycles=len(package_cycles),
        private_imports=private_lines,
        private_import_pairs=sorted(private),
        private_names=names,
        gaps=sum(gaps.values(), DocGaps()),
        packages=[
            PackageStats(
                name=name,
                code=sum(counts[p].code for p in paths),
                comment=sum(counts[p].comment for p in paths),
                docstring=sum(counts[p].docstring for p in paths),
                header=sum(counts[p].header for p in paths),
                gaps=sum((gaps[p] for p in paths), DocGaps()),
            )
            for name, paths in sorted(by_package.items())
        ],
    )


def _anchor_dir() -> Path:
    spec = importlib.util.find_spec("sigstore")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("sigstore is not installed: pass --anchor PATH (a package directory)")
    return Path(next(iter(spec.submodule_search_locations)))


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def _package_table(s: TreeStats) -> Table:
    """One row per top-level package, by comment lines missing to reach 0.1 per code line."""
    table = Table(title=f"{s.name}, by package (largest comment gap first)")
    for column in (
        "package",
        "code lines",
        "comments / code",
        "docstrings / code",
        "public",
        "no docstring",
        "raising, no Raises:",
    ):
        table.add_column(
            column, justify="left" if column == "package" else "right", no_wrap=column == "package"
        )
    for p in sorted(s.packages, key=lambda p: p.code * 0.1 - (p.comment - p.header), reverse=True):
        if not p.code:
            continue
        table.add_row(
            p.name.removeprefix(s.name + ".") if p.name != s.name else "(__init__)",
            str(p.code),
            f"{(p.comment - p.header) / p.code:.3f}",
            f"{p.docstring / p.code:.3f}",
            str(p.gaps.public),
            str(p.gaps.undocumented),
            f"{p.gaps.raising_without_raises}/{p.gaps.raising}",
        )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=ROOT / "src" / "custodes")
    parser.add_argument("--anchor", type=Path, default=None, help="default: installed sigstore")
    parser.add_argument(
        "--list-private", action="store_true", help="list each private cross-package import"
    )
    parser.add_argument(
        "--by-package", action="store_true", help="the density figures of each top-level package"
    )
    parser.add_argument(
        "--list-undocumented",
        action="store_true",
        help="name each public object without a docstring, or raising without a Raises: section",
    )
    args = parser.parse_args(argv)
    anchor: Path = args.anchor or _anchor_dir()
    for tree in (args.src, anchor):
        if not (tree / "__init__.py").is_file():
            raise SystemExit(f"{tree}: expected a package directory (with __init__.py)")
        sys.path.insert(0, str(tree.parent))

    stats = [tree_stats(args.src.resolve()), tree_stats(anchor.resolve())]
    table = Table(title="code structure")
    table.add_column("figure")
    for s in stats:
        table.add_column(s.name, justify="right")
    rows: list[tuple[str, list[str]]] = [
        ("modules (.py files)", [str(s.modules) for s in stats]),
        ("module lines, median", [f"{s.median_lines:g}" for s in stats]),
        ("module lines, 90th percentile", [f"{s.p90_lines:g}" for s in stats]),
        ("largest module", [f"{s.largest[0]} ({s.largest[1]})" for s in stats]),
        ("code lines", [str(s.code) for s in stats]),
        ("comment lines per code line", [f"{s.comment / s.code:.3f}" for s in stats]),
        (
            "  the same without licence headers",
            [f"{(s.comment - s.header) / s.code:.3f}" for s in stats],
        ),
        ("docstring lines per code line", [f"{s.docstring / s.code:.3f}" for s in stats]),
        ("import cycles (module SCCs)", [str(s.module_cycles) for s in stats]),
        ("modules in cycles", [str(s.modules_in_cycles) for s in stats]),
        ("package-level cycles", [str(s.package_cycles) for s in stats]),
        ("private cross-package imports", [str(s.private_imports) for s in stats]),
        ("  (importer, module) pairs", [str(len(s.private_import_pairs)) for s in stats]),
        ("private names imported across packages", [str(s.private_names) for s in stats]),
        ("public objects (functions, classes, methods)", [str(s.gaps.public) for s in stats]),
        (
            "  without a docstring (share)",
            [
                f"{s.gaps.undocumented} ({_share(s.gaps.undocumented, s.gaps.public)})"
                for s in stats
            ],
        ),
        ("  raising, with a docstring", [str(s.gaps.raising) for s in stats]),
        (
            "    of which without a Raises: section",
            [
                f"{s.gaps.raising_without_raises} "
                f"({_share(s.gaps.raising_without_raises, s.gaps.raising)})"
                for s in stats
            ],
        ),
    ]
    for label, values in rows:
        table.add_row(label, *values)
    # Wide enough for the largest module's path when the output is piped to a file.
    console = Console(width=max(Console().width, 110))
    console.print(table)
    if args.by_package:
        for s in stats:
            console.print(_package_table(s))
    if args.list_undocumented:
        for s in stats:
            for name in s.gaps.undocumented_names:
                console.print(f"{s.name}: no docstring: {name}", highlight=False)
            for name in s.gaps.without_raises_names:
                console.print(f"{s.name}: raises, no Raises: section: {name}", highlight=False)
    if args.list_private:
        for s in stats:
            for importer, imported in s.private_import_pairs:
                console.print(f"{s.name}: {importer} -> {imported}", highlight=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
