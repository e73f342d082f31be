"""soundloc_training is layered: no import cycle, and only the console commands import cli/.

Imports are read from the source with `ast` at any depth, so an import inside a function (which
the interpreter only runs late, hiding a cycle from it) counts like one at the top.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "training" / "soundloc_training"
CLI = "soundloc_training.cli"


def module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, name: str, modules: set[str]) -> set[str]:
    """The package's modules that `path` (module `name`) imports anywhere in its code: `from A
    import B` counts as importing A.B where that is a module, else A."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                prefixes = (".".join(parts[:n]) for n in range(len(parts), 0, -1))
                targets.add(next((p for p in prefixes if p in modules), None))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module
            for alias in node.names:
                child = f"{source}.{alias.name}"
                targets.add(child if child in modules else source)
    return {t for t in targets if t in modules and t != name}


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    paths = {module_name(p, package): p for p in package.rglob("*.py")}
    return {name: imported(path, name, set(paths)) for name, path in paths.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per back edge of a depth-first search (none iff the graph is acyclic)."""
    found, done, stack = [], set(), []

    def visit(node: str) -> None:
        stack.append(node)
        for target in sorted(graph[node]):
            if target in stack:
                found.append([*stack[stack.index(target) :], target])
            elif target not in done:
                visit(target)
        stack.pop()
        done.add(node)

    for node in sorted(graph):
        if node not in done:
            visit(node)
    return found


def test_imports_inside_functions_are_read():
    graph = import_graph()
    assert "soundloc_training.affinity" in graph["soundloc_training.config"]  # a lazy import
    assert "soundloc_training.datasets.records" in graph["soundloc_training.datasets.public"]


def test_the_package_has_no_import_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_only_the_cli_imports_the_cli():
    graph = import_graph()
    offenders = {
        name: sorted(t for t in targets if t == CLI or t.startswith(CLI + "."))
        for name, targets in graph.items()
        if not (name == CLI or name.startswith(CLI + "."))
    }
    assert not {name: cli for name, cli in offenders.items() if cli}
