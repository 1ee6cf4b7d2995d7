"""A project's own Python code imported apart for each source folder (each side of a diff, each bisect step), so
that code from one folder never runs another folder's modules: not the module promptci names, nor a helper it
imports.

Why in-process and not a subprocess per side: both sides share one Session (one store and cache, one budget,
one rate limiter, one progress display), and a side's modules are only ever imported by promptci's loaders. The
limit: a side's code that changes shared state outside its own modules (patches a library, sets an environment
variable) still leaks into the next side, as it would into the next case of a run.
"""

from __future__ import annotations

import importlib
import os
import sys
import sysconfig
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType


class SeparateImports:
    """The modules each source folder's code imported, kept out of sys.modules while another folder's code runs."""

    def __init__(self) -> None:
        self._prefixes: list[str] = []  # every folder seen, as it is written and resolved, ending in a separator
        self._own: dict[str, dict[str, ModuleType]] = {}  # folder -> the modules its code imported
        self._hidden: dict[str, ModuleType] = {}  # what was imported before we started: restored at the end
        self._libraries = library_prefixes()  # never project code, even inside a project folder (its .venv)

    @contextmanager
    def of(self, folder: Path) -> Iterator[None]:
        """While inside, imports resolve as if `folder`'s code were the only project code ever imported: the
        modules of every other folder (and any module named like one of folder's own) are out of sys.modules."""
        key = str(folder.resolve())
        self._prefixes += [p for p in {str(folder) + os.sep, key + os.sep} if p not in self._prefixes]
        shadowed = top_level_modules(folder)
        path = list(sys.path)
        self._hide(lambda name, module: self._is_project_code(module) or
                   (name.partition(".")[0] in shadowed and not is_under(module, key + os.sep)))
        sys.modules.update(self._own.get(key, {}))
        importlib.invalidate_caches()
        try:
            yield
        finally:
            own = {name: m for name, m in list(sys.modules.items()) if self._is_project_code(m)}
            self._own[key] = own
            for name in own:
                del sys.modules[name]
            sys.path[:] = path

    def restore(self) -> None:
        """sys.modules as it was before the first folder: every folder's modules out, the hidden ones back."""
        for name, module in list(sys.modules.items()):
            if self._is_project_code(module):
                del sys.modules[name]
        for name, module in self._hidden.items():
            sys.modules.setdefault(name, module)
        self._own.clear()

    def _hide(self, should_hide: Callable[[str, ModuleType], bool]) -> None:
        for name, module in list(sys.modules.items()):
            if module is not None and should_hide(name, module):
                self._hidden.setdefault(name, module)
                del sys.modules[name]

    def _is_project_code(self, module: ModuleType | None) -> bool:
        return (module is not None and any(is_under(module, prefix) for prefix in self._prefixes)
                and not any(is_under(module, prefix) for prefix in self._libraries))


@contextmanager
def separate_imports() -> Iterator[SeparateImports]:
    """A SeparateImports that leaves sys.modules and sys.path as it found them."""
    imports, path = SeparateImports(), list(sys.path)
    try:
        yield imports
    finally:
        imports.restore()
        sys.path[:] = path


def library_prefixes() -> tuple[str, ...]:
    """Where installed code lives: the interpreter's prefixes and install paths (a virtual environment inside
    the project folder among them) and promptci itself (run from its own checkout, which is a project too)."""
    install = sysconfig.get_paths()
    folders = {sys.prefix, sys.base_prefix, sys.exec_prefix, install["stdlib"], install["purelib"],
               install["platlib"], str(Path(__file__).resolve().parent)}
    forms = [str(path) + os.sep for folder in folders for path in (Path(folder), Path(folder).resolve())]
    return tuple(dict.fromkeys(forms))


def is_under(module: ModuleType, prefix: str) -> bool:
    file = getattr(module, "__file__", None)
    return isinstance(file, str) and file.startswith(prefix)


def top_level_modules(folder: Path) -> set[str]:
    """The names `import NAME` finds in folder: NAME.py files and NAME/__init__.py packages."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return set()
    return ({p.stem for p in entries if p.suffix == ".py" and p.is_file()} |
            {p.name for p in entries if (p / "__init__.py").is_file()})
