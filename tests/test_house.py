"""The package layout holds: rungs imported one way, no cycles, no dodging imports, small pieces, no UI in the engine."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "embspace"

# docs/ARCHITECTURE.md's rungs: a module may import only from its own rung's package or a lower rung.
RUNGS = {
    "errors": 0,
    "files": 0,
    "runtime": 0,
    "settings": 0,
    "views": 0,
    "vocab": 1,
    "model": 2,
    "compute": 3,
    "atlas": 4,
    "search": 4,
    "compare": 4,
    "annotations": 5,
    "export": 5,
    "hosting": 5,
    "editing": 5,
    "tours": 5,
    "__init__": 6,  # the public API; the CLI uses it, as the dashboard does
    "cli": 7,
    "__main__": 8,
}
SEARCH_READS_ATLAS = ("search", "atlas")  # the one same-rung import the layout allows


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def engine_modules() -> dict[str, ast.Module]:
    return {module_name(path): ast.parse(path.read_text(encoding="utf-8")) for path in sorted(ENGINE.rglob("*.py"))}


def imported_modules(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        # `from embspace import settings` imports the module embspace.settings, not the public API
        submodules = [
            f"{node.module}.{alias.name}" for alias in node.names if is_engine_module(f"{node.module}.{alias.name}")
        ]
        return submodules or [node.module]
    return []


def is_engine_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return name.startswith("embspace.") and (path.with_suffix(".py").is_file() or (path / "__init__.py").is_file())


def rung_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def top_level_imports(tree: ast.Module) -> list[str]:
    return [name for node in tree.body for name in imported_modules(node)]


def test_each_rung_imports_only_its_own_package_or_lower_rungs():
    wrong = []
    for module, tree in engine_modules().items():
        mine = rung_of(module)
        for target in top_level_imports(tree):
            if not target.startswith("embspace"):
                continue
            theirs = rung_of(target)
            allowed = theirs == mine or RUNGS[theirs] < RUNGS[mine] or (mine, theirs) == SEARCH_READS_ATLAS
            allowed |= RUNGS[theirs] == RUNGS[mine] == 0  # the base modules may use each other (no cycle: below)
            if not allowed:
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_no_import_cycle_between_engine_modules():
    modules = engine_modules()
    graph = {name: {t for t in top_level_imports(tree) if t in modules and t != name} for name, tree in modules.items()}
    for name in list(graph):  # importing a.b.c runs a and a.b first
        for target in list(graph[name]):
            parts = target.split(".")
            graph[name] |= {
                ".".join(parts[:i]) for i in range(2, len(parts)) if not name.startswith(".".join(parts[:i]))
            }
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            assert state.get(target) != "open", "import cycle: " + " -> ".join([*path, name, target])
            if target not in state:
                visit(target, [*path, name])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def test_no_embspace_or_dashboard_import_inside_a_function():
    found = []
    for path in [*ENGINE.rglob("*.py"), *(ROOT / "dashboard").rglob("*.py"), *(ROOT / "pages").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for inner in ast.walk(node):
                    targets = [t for t in imported_modules(inner) if t.split(".")[0] in ("embspace", "dashboard")]
                    found += [f"{path.relative_to(ROOT)}:{inner.lineno} {t}" for t in targets]
    assert found == []


@pytest.mark.parametrize("ui", ["streamlit", "plotly"])
def test_the_engine_never_imports_ui_libraries(ui):
    offenders = [
        module
        for module, tree in engine_modules().items()
        for node in ast.walk(tree)
        for name in imported_modules(node)
        if name.split(".")[0] == ui
    ]
    assert offenders == []


def test_at_most_ten_modules_directly_in_embspace():
    assert len(list(ENGINE.glob("*.py"))) <= 10


def test_functions_fit_on_a_screen_and_classes_stay_small():
    too_long = []
    for path in [*ENGINE.rglob("*.py"), *(ROOT / "dashboard").rglob("*.py"), *(ROOT / "pages").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            limit = 60 if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) else 150
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert too_long == []


def test_no_private_name_is_imported_from_another_module():
    found = []
    for path in [*ENGINE.rglob("*.py"), *(ROOT / "dashboard").rglob("*.py"), *(ROOT / "pages").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                found += [
                    f"{path.relative_to(ROOT)}: {alias.name}" for alias in node.names if alias.name.startswith("_")
                ]
    assert found == []
