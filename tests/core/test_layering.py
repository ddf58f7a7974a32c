"""The core imports no protocol code: no aiohttp, no grpc, no generated service stubs."""

from __future__ import annotations

import ast
from pathlib import Path

import lightningstor

CORE = Path(lightningstor.__file__).parent
# The generated stubs and the gRPC client live beside the core for internal services.
EXEMPT = {"client.py", "admin_client.py", "testing.py"}
FORBIDDEN = ("aiohttp", "grpc", "lightningstor_server", "lightningstor.v1", "multidict", "yarl")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_core_modules_import_no_protocol_code() -> None:
    modules = [p for p in CORE.glob("*.py") if p.name not in EXEMPT]
    assert len(modules) > 10
    for path in modules:
        bad = {n for n in _imports(path) if n.startswith(FORBIDDEN)}
        assert not bad, f"{path.name} imports {sorted(bad)}"
