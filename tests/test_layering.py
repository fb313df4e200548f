"""The import rule holds: federated -> ehr -> access -> contracts -> healthhash, nothing upward, and no app
imports the tools on top (bench, demo). Every module is parsed with `ast`, so an import inside a function
or under `if TYPE_CHECKING:` counts too; a lower layer that must react to a higher one registers a callback.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Lowest first: a package may import itself and any package before it in this list.
LAYERS = ("healthhash", "contracts", "access", "ehr", "federated")
TOOLS = ("bench", "demo")


def _modules(package: str) -> list[Path]:
    return sorted(path for path in (ROOT / package).rglob("*.py") if "node_modules" not in path.parts)


def imported_packages(source: str, *, module: str, is_package: bool = False) -> set[tuple[str, int]]:
    """(top-level package, line) of every import in `source`, the text of the dotted `module`."""
    own = module.split(".") if is_package else module.split(".")[:-1]
    found: set[tuple[str, int]] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update((alias.name.split(".")[0], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.module.split(".")[0], node.lineno))
        elif isinstance(node, ast.ImportFrom) and node.level:
            # A relative import climbs level - 1 packages above the module's own package.
            anchor = own[: len(own) - (node.level - 1)]
            if anchor:
                found.add((anchor[0], node.lineno))
            elif node.module:  # climbed above the top-level package: the name itself is the target
                found.add((node.module.split(".")[0], node.lineno))
            else:
                found.update((alias.name, node.lineno) for alias in node.names)
    return found


def upward_imports(package: str) -> list[str]:
    """'path:line imports X' for each import of a higher layer or a tool by a module of `package`."""
    forbidden = set(LAYERS[LAYERS.index(package) + 1 :]) | set(TOOLS)
    found = []
    for path in _modules(package):
        parts = path.relative_to(ROOT).with_suffix("").parts
        module = ".".join(parts[:-1] if path.name == "__init__.py" else parts)
        imports = imported_packages(
            path.read_text(encoding="utf-8"), module=module, is_package=path.name == "__init__.py"
        )
        found += [
            f"{path.relative_to(ROOT)}:{line} imports {target}"
            for target, line in sorted(imports, key=lambda pair: pair[1])
            if target in forbidden
        ]
    return found


@pytest.mark.parametrize("package", LAYERS)
def test_no_module_imports_a_higher_layer_or_a_tool(package: str) -> None:
    assert _modules(package), f"no modules found under {package}/"
    assert upward_imports(package) == []


def test_absolute_relative_and_nested_imports_are_all_seen() -> None:
    # The rule is only as good as its parser: each way of writing an import is found, with its line.
    source = (
        "from __future__ import annotations\n"
        "import access.models\n"
        "from ..ehr import records\n"
        "from . import relayer\n"
        "def later():\n"
        "    from bench import gas_report\n"
        "if TYPE_CHECKING:\n"
        "    import federated.tasks as tasks\n"
    )
    found = imported_packages(source, module="contracts.indexer")
    assert found == {
        ("__future__", 1),
        ("access", 2),
        ("ehr", 3),
        ("contracts", 4),
        ("bench", 6),
        ("federated", 8),
    }
