"""The latency package does not depend on the search package (one direction only)."""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "tf_nas_seg" / "latency"


def _imports(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def test_latency_never_imports_search():
    offending = {f"{path.name}: {name}" for path in PACKAGE.glob("*.py")
                 for name in _imports(path) if name.startswith("tf_nas_seg.search")}
    assert offending == set()
    assert len(list(PACKAGE.glob("*.py"))) >= 10
