"""The one class of error that means *bad input*.

Every problem a user can fix by changing what they gave (a config key, a manifest row, an annotation file, a
path, a plug-in) is an ``InputError`` subclass whose message names the key, row, file or plug-in. The CLI
prints such an error on one line and exits 2; anything else that escapes is failed work (exit 1) or a bug
(its traceback). ``InputError`` is a ``ValueError`` so that code catching ``ValueError`` keeps working.
"""

from __future__ import annotations


class InputError(ValueError):
    """Input the user can fix; the message names what is wrong and where."""


class WorkFailed(RuntimeError):
    """Work that started and could not finish (a stalled pass, generator actors that never came up, training that
    failed). The CLI prints it on one line and exits 1; what was finished is kept for ``--resume``."""
