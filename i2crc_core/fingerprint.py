"""Code fingerprints that let Snakemake see edits to the library.

Snakemake tracks a rule's script, not the modules it imports. Each rule passes
`script_fingerprint(its script)` as a param: a hash of the source of every `i2crc_core` module
the script imports, transitively. Editing a module reruns exactly the rules whose scripts reach
it through their imports.
"""

import ast
import hashlib
import importlib.util
from functools import cache
from pathlib import Path

PACKAGE = "i2crc_core"
PACKAGE_DIR = Path(__file__).parent


def _module_path(module: str) -> Path:
    relative = Path(*module.split(".")[1:])
    package_init = PACKAGE_DIR / relative / "__init__.py"
    return package_init if package_init.exists() else PACKAGE_DIR / relative.with_suffix(".py")


def _package_imports(path: Path, package: str | None) -> set[str]:
    """The package modules that the file at `path` imports; `package` resolves relative
    imports (None for a script outside the package)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(
            name
            for name in names
            if (name == PACKAGE or name.startswith(PACKAGE + ".")) and _module_path(name).exists()
        )
    return found


def _imported_modules(module: str) -> set[str]:
    path = _module_path(module)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    return _package_imports(path, package) - {module}


def import_closure(*modules: str) -> set[str]:
    """`modules` and every package module reachable through their imports."""
    closure, pending = set(), list(modules)
    while pending:
        current = pending.pop()
        if current not in closure:
            closure.add(current)
            pending.extend(_imported_modules(current) - closure)
    return closure


@cache
def script_fingerprint(script: Path) -> str:
    """A short sha256 over the sources of the package modules that `script` reaches."""
    digest = hashlib.sha256()
    for name in sorted(import_closure(*_package_imports(Path(script), None))):
        digest.update(name.encode())
        digest.update(_module_path(name).read_bytes())
    return digest.hexdigest()[:16]
