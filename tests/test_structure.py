"""The shape of the package: no import cycles, a docstring per module, no module too long,
and Prefect imported only by the adapter module and the flows."""

from __future__ import annotations

import ast
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MAX_LINES = 400
PREFECT_ADAPTER = "bulletin.orchestration"


def package_modules(repo: Path = REPO) -> dict[str, Path]:
    """Every module of the installed package, by dotted name: bulletin/ as `bulletin`,
    flows/ as `bulletin.flows` (as pyproject's package-dir installs it)."""
    modules: dict[str, Path] = {}
    for folder, package in ((repo / "bulletin", "bulletin"), (repo / "flows", "bulletin.flows")):
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([package, *parts])] = path
    return modules


def imported_names(name: str, path: Path) -> set[str]:
    """The absolute names a module imports anywhere in it (functions included), relative
    imports resolved; `from a import b` counts as importing `a.b` and `a`."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                # A package's own relative imports start from itself, a module's from its package.
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def import_graph(modules: Mapping[str, Path]) -> dict[str, set[str]]:
    """Module → the package modules it names in an import. A module importing from its own
    package's `__init__` counts: if that `__init__` imports the module back, it is a cycle."""
    return {
        name: {t for t in imported_names(name, path) if t in modules and t != name}
        for name, path in modules.items()
    }


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Each import cycle once, as the modules along it with the first repeated at the end
    (Tarjan's strongly connected components, then one path round each)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_path_round(graph, component) for component in sorted(components)]


def _path_round(graph: Mapping[str, Iterable[str]], component: list[str]) -> list[str]:
    """A shortest path from the component's first module back to itself, inside it."""
    start, members = component[0], set(component)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph.get(node, ())):
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if target in members and target not in came_from:
                    came_from[target] = node
                    following.append(target)
        frontier = following
    raise AssertionError(f"{component} is not a cycle")


MODULES = package_modules()


def test_the_module_list_sees_the_package_and_the_flows():
    assert {"bulletin", "bulletin.cli", "bulletin.config", "bulletin.flows.publish"} <= set(MODULES)
    assert not any(name.startswith("flows") for name in MODULES)


def test_the_import_graph_has_the_imports_of_functions_and_relative_imports(tmp_path):
    package = tmp_path / "bulletin"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text('"""Root."""\n')
    (package / "sub" / "__init__.py").write_text('"""Sub."""\nfrom .a import thing\n')
    (package / "sub" / "a.py").write_text('"""A."""\ndef f():\n    from ..b import other\n')
    (package / "b.py").write_text('"""B."""\nfrom bulletin.sub import a\n')
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "run.py").write_text('"""Run."""\nfrom bulletin import b\n')
    graph = import_graph(package_modules(tmp_path))
    assert graph == {
        "bulletin": set(),
        "bulletin.sub": {"bulletin.sub.a"},
        "bulletin.sub.a": {"bulletin.b"},
        "bulletin.b": {"bulletin.sub", "bulletin.sub.a"},
        "bulletin.flows.run": {"bulletin", "bulletin.b"},
    }
    assert find_cycles(graph) == [["bulletin.b", "bulletin.sub.a", "bulletin.b"]]


def test_the_cycle_finder_finds_every_cycle_and_only_cycles():
    graph = {
        "a": {"b"},
        "b": {"c"},
        "c": {"a", "d"},
        "d": set(),
        "e": {"e"},
        "f": {"d"},
    }
    assert find_cycles(graph) == [["a", "b", "c", "a"], ["e", "e"]]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_bulletin_has_no_import_cycles():
    cycles = find_cycles(import_graph(MODULES))
    assert not cycles, "import cycles:\n" + "\n".join("  " + " → ".join(c) for c in cycles)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_says_its_job_in_a_docstring(name):
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    docstring = ast.get_docstring(tree)
    assert docstring and docstring.strip(), f"{MODULES[name]} has no module docstring"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if not n.startswith("bulletin.flows")))
def test_no_module_is_longer_than_the_limit(name):
    lines = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{MODULES[name]} has {lines} lines; split it (limit {MAX_LINES})"


def test_only_the_adapter_and_the_flows_import_prefect():
    importers = sorted(
        name
        for name, path in MODULES.items()
        if name != PREFECT_ADAPTER
        and not name.startswith("bulletin.flows")
        and any(n.split(".")[0] == "prefect" for n in imported_names(name, path))
    )
    assert importers == [], f"only {PREFECT_ADAPTER} (and flows/) may import prefect"


def test_warnings_and_unknown_markers_fail_the_tests(pytestconfig):
    # pyproject's pytest settings: a warning raised under test is an exception, and a
    # misspelt marker stops the run instead of quietly marking nothing.
    assert pytestconfig.getini("filterwarnings") == ["error"]
    assert pytestconfig.getoption("strict_markers")
    with pytest.raises(DeprecationWarning):
        warnings.warn("an old way of doing things", DeprecationWarning, stacklevel=1)


def test_every_package_is_installed():
    """A package missing from pyproject's list works in the editable install of the tests and
    is silently left out of a real one."""
    import tomllib

    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(["bulletin", *init.parent.relative_to(REPO / "bulletin").parts])
        for init in (REPO / "bulletin").rglob("__init__.py")
    }
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
