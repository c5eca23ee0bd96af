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
