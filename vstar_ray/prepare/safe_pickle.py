"""A restricted unpickler: builtins containers/scalars and numpy arrays, nothing that can run code.

FineDiving ships its annotations as pickles written under numpy 1.x. ``pickle.load`` on a user path
would run whatever the file names; ``load`` below resolves only the globals in ``ALLOWED``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

ALLOWED = {
    ("builtins", "dict"), ("builtins", "list"), ("builtins", "tuple"), ("builtins", "set"),
    ("builtins", "frozenset"), ("builtins", "int"), ("builtins", "float"), ("builtins", "str"),
    ("builtins", "bytes"), ("builtins", "bool"), ("builtins", "complex"), ("builtins", "slice"),
    ("collections", "OrderedDict"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
}


class UnsafePickleError(pickle.UnpicklingError):
    pass


class _Restricted(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED:
            raise UnsafePickleError(f"refusing to load {module}.{name} from a pickle (only builtins and numpy arrays)")
        if module.startswith("numpy.core"):  # numpy 1.x pickles under numpy 2
            module = module.replace("numpy.core", "numpy._core", 1)
        return super().find_class(module, name)


def load(path: str | Path) -> Any:
    """Unpickle ``path`` allowing only builtins and numpy arrays/scalars; anything else is an error."""
    with open(path, "rb") as f:
        try:
            return _Restricted(f, encoding="latin1").load()
        except UnsafePickleError as e:
            raise UnsafePickleError(f"{path}: {e}") from e
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as e:
            raise pickle.UnpicklingError(f"{path}: not a readable annotation pickle: {e}") from e
