"""Code fingerprints that let Snakemake see edits to the library.

Snakemake tracks a rule's script, not the modules it imports. Each rule passes
`code_fingerprint(stage_module)` as a param: a hash of the source of that module and of every
`i2crc_core` module it imports, transitively. Editing a module reruns exactly the stages
whose import closure contains it.
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


def _imported_modules(module: str) -> set[str]:
    """The package modules that `module` imports (absolute or relative)."""
    path = _module_path(module)
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if (name == PACKAGE or name.startswith(PACKAGE + ".")) and _module_path(name).exists():
                found.add(name)
    found.discard(module)
    return found


def import_closure(module: str) -> set[str]:
    """`module` and every package module reachable through its imports."""
    closure, pending = set(), [module]
    while pending:
        current = pending.pop()
        if current not in closure:
            closure.add(current)
            pending.extend(_imported_modules(current) - closure)
    return closure


@cache
def code_fingerprint(module: str) -> str:
    """A short sha256 over the sources in the import closure of `module`."""
    digest = hashlib.sha256()
    for name in sorted(import_closure(module)):
        digest.update(name.encode())
        digest.update(_module_path(name).read_bytes())
    return digest.hexdigest()[:16]
