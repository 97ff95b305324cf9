"""Code fingerprints that let Snakemake see edits to the library.

Snakemake tracks a rule's script by its modification time, not the modules it imports. Each rule
passes `script_fingerprint(its script)` as a param: a hash of the script and of every
`i2crc_core` module it imports, transitively. Editing a module reruns exactly the rules whose
scripts reach it through their imports.

The hash follows the code, not where it lives. A module's digest is its source without its
package imports, plus what each of those binds: the name, the scope it is bound in, and the
digest of the module it comes from (so the digests chain along the imports, which must not form
a cycle). Moving or renaming modules and rewriting the imports to match leaves every digest
unchanged, however the import lines are then sorted and wrapped; any other edit but blank lines
changes the module's digest and those of all that import it. A package's `__init__.py` counts
only where a name is imported from it: the library's hold a docstring and nothing else (tested).
"""

import ast
import hashlib
import importlib.util
import json
from functools import cache
from pathlib import Path

PACKAGE = "i2crc_core"
PACKAGE_DIR = Path(__file__).parents[1]


def _module_path(module: str) -> Path:
    relative = Path(*module.split(".")[1:])
    package_init = PACKAGE_DIR / relative / "__init__.py"
    return package_init if package_init.exists() else PACKAGE_DIR / relative.with_suffix(".py")


def _is_module(name: str) -> bool:
    return (name == PACKAGE or name.startswith(PACKAGE + ".")) and _module_path(name).exists()


def _package_module(path: Path, module: str | None) -> str | None:
    """The package that relative imports in the file of `module` resolve against (None for a
    script outside the package)."""
    if module is None or path.name == "__init__.py":
        return module
    return module.rpartition(".")[0]


def _targets(node: ast.Import | ast.ImportFrom, package: str | None) -> list[tuple]:
    """(name bound, module imported, attribute taken from it or None) per alias."""
    if isinstance(node, ast.Import):
        return [
            (alias.asname or alias.name.partition(".")[0], alias.name, None) for alias in node.names
        ]
    base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
    return [
        (alias.asname or alias.name, f"{base}.{alias.name}", None)
        if _is_module(f"{base}.{alias.name}")
        else (alias.asname or alias.name, base, alias.name)
        for alias in node.names
    ]


def _package_imports(path: Path, module: str | None) -> list[tuple]:
    """The import statements of the file at `path` that import package modules: (statement,
    scope it binds in, its targets)."""
    package = _package_module(path, module)
    found = []

    def visit(node: ast.AST, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                targets = _targets(child, package)
                if any(_is_module(imported) for _, imported, _ in targets):
                    found.append((child, scope, targets))
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                visit(child, f"{scope}.{child.name}" if scope else child.name)
            else:
                visit(child, scope)

    visit(ast.parse(path.read_bytes(), filename=str(path)), "")
    return found


def _imported_modules(module: str) -> set[str]:
    path = _module_path(module)
    return {
        imported
        for _, _, targets in _package_imports(path, module)
        for _, imported, _ in targets
        if _is_module(imported)
    } - {module}


def import_closure(*modules: str) -> set[str]:
    """`modules` and every package module reachable through their imports."""
    closure, pending = set(), list(modules)
    while pending:
        current = pending.pop()
        if current not in closure:
            closure.add(current)
            pending.extend(_imported_modules(current) - closure)
    return closure


def _without(source: bytes, statements: list[ast.stmt]) -> bytes:
    """`source` with `statements` cut out and its blank lines dropped, so that neither the
    grouping of the imports nor how they wrap counts."""
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    text = bytearray(source)
    # From the end, so that earlier offsets stay valid (ast's columns count UTF-8 bytes).
    for node in sorted(statements, key=lambda node: (node.lineno, node.col_offset), reverse=True):
        start = starts[node.lineno - 1] + node.col_offset
        end = starts[node.end_lineno - 1] + node.end_col_offset
        text[start:end] = b""
    return b"".join(line for line in bytes(text).splitlines(keepends=True) if line.strip())


def _digest(path: Path, module: str | None) -> str:
    """sha256 of the file at `path` (the package module `module`, or a script for None) with
    its package imports canonicalised."""
    imports = _package_imports(path, module)
    bindings = sorted(
        [
            scope,
            name,
            _module_digest(imported) if _is_module(imported) else imported,
            attribute,
        ]
        for _, scope, targets in imports
        for name, imported, attribute in targets
    )
    digest = hashlib.sha256(_without(path.read_bytes(), [node for node, _, _ in imports]))
    digest.update(json.dumps(bindings).encode())
    return digest.hexdigest()


_IN_PROGRESS = set()


@cache
def _module_digest(module: str) -> str:
    if module in _IN_PROGRESS:
        raise RuntimeError(f"import cycle through {module}: code fingerprints need none")
    _IN_PROGRESS.add(module)
    try:
        return _digest(_module_path(module), module)
    finally:
        _IN_PROGRESS.discard(module)


def script_fingerprint(script: Path) -> str:
    """A short sha256 over `script` and the package modules it reaches, each with its package
    imports canonicalised (the module docstring)."""
    return _digest(Path(script), None)[:16]
