"""Imports only point down (cli → node → protocol → crypto); modules stay small."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
FORBIDDEN = {
    "crypto": {"protocol", "node", "cli", "trio", "libp2p"},
    "protocol": {"node", "cli", "trio", "libp2p", "socket", "sqlite3", "os", "pathlib",
                 "time", "asyncio"},
    "node": {"cli"},
}


def _imports(path: Path):
    tree = ast.parse(path.read_text("utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0], node.lineno


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_imports_point_down(layer):
    bad = [f"{p.relative_to(ROOT)}:{line} imports {mod}"
           for p in (ROOT / layer).rglob("*.py")
           for mod, line in _imports(p) if mod in FORBIDDEN[layer]]
    assert not bad, "\n".join(bad)


def test_only_crypto_imports_cryptography():
    bad = [str(p.relative_to(ROOT)) for layer in ("protocol", "node", "cli")
           for p in (ROOT / layer).rglob("*.py")
           for mod, _ in _imports(p) if mod == "cryptography"]
    assert not bad


def test_modules_under_800_lines():
    big = [f"{p.relative_to(ROOT)} ({n})" for layer in ("crypto", "protocol", "node", "cli")
           for p in (ROOT / layer).rglob("*.py")
           if (n := len(p.read_text("utf-8").splitlines())) > 800]
    assert not big


def _module_imports() -> dict[str, set[str]]:
    """Every project module -> the project modules it imports (lazily or not)."""
    mods = {}
    for layer in ("crypto", "protocol", "node", "cli"):
        for p in (ROOT / layer).rglob("*.py"):
            parts = list(p.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = p
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        found = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                    pkg = pkg[:len(pkg) - (node.level - 1)]
                    base = ".".join(pkg + ([node.module] if node.module else []))
                # `from . import x` imports the submodule x, not (only) the package
                targets = [f"{base}.{a.name}" for a in node.names] or [base]
                if node.module:
                    targets.append(base)
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != name and not (t in name.split(".") or name.startswith(t + ".")):
                    found.add(t)
        graph[name] = found
    return graph


def test_no_import_cycles():
    """No module imports (even lazily) one that imports it back, directly or not (issue 13)."""
    graph = _module_imports()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:   # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, cycles


def test_libp2p_only_under_node_p2p():
    bad = [f"{p.relative_to(ROOT)}" for layer in ("protocol", "node", "cli", "crypto")
           for p in (ROOT / layer).rglob("*.py")
           if not p.relative_to(ROOT).as_posix().startswith("node/p2p/")
           for mod, _ in _imports(p) if mod == "libp2p"]   # function-level imports too
    assert not bad, bad


def test_node_layout_names_every_module():
    """node/__init__.py's docstring describes the layout: every module has its line."""
    import node
    missing = [str(p.relative_to(ROOT / "node")) for p in (ROOT / "node").rglob("*.py")
               if p.name != "__init__.py" and p.name not in node.__doc__]
    assert not missing, missing
