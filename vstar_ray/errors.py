"""The one class of error that means *bad input*.

Every problem a user can fix by changing what they gave (a config key, a manifest row, an annotation file, a
path, a plug-in) is an ``InputError`` subclass whose message names the key, row, file or plug-in. The CLI
prints such an error on one line and exits 2; anything else that escapes is failed work (exit 1) or a bug
(its traceback). ``InputError`` is a ``ValueError`` so that code catching ``ValueError`` keeps working.
"""

from __future__ import annotations

import signal
import threading


class InputError(ValueError):
    """Input the user can fix; the message names what is wrong and where."""


class WorkFailed(RuntimeError):
    """Work that started and could not finish (a stalled pass, generator actors that never came up, training that
    failed). The CLI prints it on one line and exits 1; what was finished is kept for ``--resume``."""


def _from_ray(e: BaseException) -> bool:
    return any(c.__module__.startswith("ray.") for c in type(e).__mro__)


def cause_inside(e: BaseException, kinds: tuple[type[BaseException], ...]) -> BaseException | None:
    """The first error of ``kinds`` that a Ray task or Ray Train worker raised inside the Ray error ``e``, found
    through Ray's wrappers (``RayTaskError(UserCodeException)``, their ``cause`` and ``__cause__``, a
    ``WorkerGroupError``'s worker failures): bad input (a verifier plug-in's contract, ``verify.plugin_errors:
    fail``), or a file that could not be written (a full disk under a shard or a checkpoint). None if ``e`` is not a
    Ray error or holds none."""
    if not _from_ray(e):
        return None
    seen: set[int] = set()
    todo: list[BaseException | None] = [e]
    while todo:
        x = todo.pop()
        if x is None or id(x) in seen:
            continue
        seen.add(id(x))
        if isinstance(x, kinds) and not _from_ray(x):
            return x
        todo += [getattr(x, "cause", None), x.__cause__, x.__context__, getattr(x, "controller_failure", None),
                 *getattr(x, "worker_failures", {}).values()]
    return None


class Terminated(KeyboardInterrupt):
    """SIGTERM (what Kubernetes, Slurm and ``ray job stop`` send): handled as Ctrl-C is, exit 143."""


_on_sigterm = False


_received_sigterm = False


def _raise_terminated(signum, frame) -> None:
    global _received_sigterm
    _received_sigterm = True
    raise Terminated()


def received_sigterm() -> bool:
    """Whether SIGTERM arrived: Ray's ``get`` turns any exception a signal handler raises inside it into a plain
    ``KeyboardInterrupt``, so the exception's type alone cannot tell SIGTERM from Ctrl-C."""
    return _received_sigterm


def handle_sigterm(install: bool = False) -> None:
    """``install=True`` (the CLI): from now on SIGTERM unwinds the command as Ctrl-C does, so that finished work is
    recorded and Ray's processes are stopped in order. Called again after ``ray.init``, which replaces the handler
    with its own (``sys.exit``, and a head node's abort of every process: exit 134 and a C++ dump)."""
    global _on_sigterm
    _on_sigterm = _on_sigterm or install
    if _on_sigterm and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)
