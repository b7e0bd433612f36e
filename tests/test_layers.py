"""The layers of docs/architecture.md, read from the imports of every module (function-level
imports included): lower layers never import upward, no module imports itself back through
others, recipe wiring lives in pipelines/, and a recipe costs no torch import."""
from __future__ import annotations

import ast
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the framework and everything below the stages: they know no stage package, no recipe, no CLI
LOWER = {"curate.sample", "curate.ledger_layout", "curate.errors", "curate.flags", "curate.options", "curate.coders",
         "curate.stage", "curate.run_context", "curate.inputs", "curate.flow"}
LOWER_PACKAGES = {"io", "models", "filters", "runners", "clusters", "hashes", "blocklist"}
READERS = {"stats", "ledger"}  # read outputs (notebooks, SQL over the ledger); not stages
# every other package of curate/ is a stage package (a new stage needs no entry here)
STAGE_PACKAGES = {name for name in os.listdir(os.path.join(ROOT, "curate"))
                  if os.path.isfile(os.path.join(ROOT, "curate", name, "__init__.py"))} - LOWER_PACKAGES - READERS
TOP = {"curate.run", "curate.recipes", "curate.summary"}


def _modules() -> dict[str, str]:
    found = {}
    for base in ("curate", "pipelines"):
        for folder, _, files in os.walk(os.path.join(ROOT, base)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    module = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                    found[module.removesuffix(".__init__")] = path
    return found


def _imports(path: str, module: str, known: set[str]) -> set[str]:
    """The curate/pipelines modules `module` imports anywhere in its file."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    package = module if path.endswith("__init__.py") else module.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                out.add(name)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {m: _imports(path, m, known) for m, path in modules.items()}


def _layer(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "pipelines" or module in TOP:
        return "top"
    if module in LOWER or (len(parts) > 1 and parts[1] in LOWER_PACKAGES):
        return "lower"
    if len(parts) > 1 and parts[1] in STAGE_PACKAGES:
        return "stage"
    return "other"  # stats/ (notebooks' readers), __main__ tools


def test_lower_layers_never_import_stage_packages_recipes_or_the_cli():
    upward = sorted(f"{m} -> {d}" for m, deps in _graph().items() if _layer(m) == "lower"
                    for d in deps if _layer(d) in ("stage", "top"))
    assert not upward, "\n".join(upward)


def test_stage_packages_do_not_wire_each_others_stages():
    """A stage package may use another's helpers (keys, settings), never its Stage module:
    which stage feeds which is said in pipelines/ (Stage.using)."""
    wired = sorted(f"{m} -> {d}" for m, deps in _graph().items() if _layer(m) == "stage" for d in deps
                   if _layer(d) == "stage" and d.split(".")[1] != m.split(".")[1]
                   and d.rsplit(".", 1)[-1] in ("stage", "stages"))
    assert not wired, "\n".join(wired)


def test_no_package_imports_another_packages_private_names():
    """What a stage needs from another is declared on the Stage type or public in its package:
    `from curate.score.handler import _pool` from another package is the coupling it replaces."""
    found = []
    for module, path in _modules().items():
        package = module.split(".")[:2]
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                other = node.module.split(".")[:2]
                if other[0] in ("curate", "pipelines") and other != package:
                    found += [f"{module}: {node.module}.{a.name}" for a in node.names
                              if a.name.startswith("_") and not a.name.endswith("__")]
    assert not found, "\n".join(found)


def test_no_import_cycles():
    graph = _graph()
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node):  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in graph.get(node, ()):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for module in sorted(graph):
        if module not in index:
            visit(module)
    assert not cycles, cycles


def test_importing_every_recipe_imports_no_model_library():
    code = ("import sys; from curate.recipes import recipes; recipes(); import curate.run; "
            "print(sorted(m for m in ('torch', 'open_clip', 'faiss', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
