"""Structure figures of custodes beside an anchor codebase (sigstore-python by default).

Prints, for each package tree: module size (median, 90th percentile, largest), import cycles
(strongly connected components of the module import graph, and of the graph between top-level
packages), private cross-package imports, and comment and docstring lines per code line.

    python benchmarks/code_stats.py                 # custodes (src/) beside the installed sigstore
    python benchmarks/code_stats.py --anchor PATH   # beside another package directory

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
    counts = {path: count_lines(path.read_text(encoding="utf-8")) for path in files}
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
    )


def _anchor_dir() -> Path:
    spec = importlib.util.find_spec("sigstore")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("sigstore is not installed: pass --anchor PATH (a package directory)")
    return Path(next(iter(spec.submodule_search_locations)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=ROOT / "src" / "custodes")
    parser.add_argument("--anchor", type=Path, default=None, help="default: installed sigstore")
    parser.add_argument(
        "--list-private", action="store_true", help="list each private cross-package import"
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
    ]
    for label, values in rows:
        table.add_row(label, *values)
    # Wide enough for the largest module's path when the output is piped to a file.
    console = Console(width=max(Console().width, 110))
    console.print(table)
    if args.list_private:
        for s in stats:
            for importer, imported in s.private_import_pairs:
                console.print(f"{s.name}: {importer} -> {imported}", highlight=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
