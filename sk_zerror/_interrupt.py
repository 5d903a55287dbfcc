"""Ctrl-C and SIGTERM stop the audit command anywhere, with nothing written.

skorch's ``fit`` catches ``KeyboardInterrupt`` and returns the network as
trained so far: right in a notebook, where the estimators keep that
behaviour, and wrong for the command, which would then report on a
half-trained model as if it were finished. While :func:`stop_on_signals` is
active, SIGINT and SIGTERM raise :class:`Interrupted` instead, which no
library code catches. Steps that a signal must not cut in two (creating the
staging folder, moving the outputs into place) run under :func:`held`: a
signal during one is acted on at its end; once the outputs are in place,
signals are ignored, since the audit is complete.
"""

import signal
import threading
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """SIGINT or SIGTERM received by the audit command.

    A ``BaseException``, like ``KeyboardInterrupt``, so that ``except
    Exception`` clauses let it through; unlike it, skorch does not catch it.
    """

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self):
        """128 + the signal number, as shells report: 130 or 143."""
        return 128 + self.signum

    @property
    def name(self):
        return signal.Signals(self.signum).name


class _State:
    def __init__(self):
        self.active = False  # within stop_on_signals
        self.received = None  # the first signal's number
        self.held = 0  # depth of held() steps
        self.deferred = False  # a signal arrived during a held step
        self.committed = False  # the outputs are in place


_state = _State()


def _handler(signum, frame):
    if _state.received is not None or _state.committed:
        # The first signal is being acted on, or the audit is complete.
        return
    _state.received = signum
    if _state.held:
        _state.deferred = True
    else:
        raise Interrupted(signum)


@contextmanager
def stop_on_signals():
    """Within the block, SIGINT and SIGTERM raise :class:`Interrupted` once.

    Further signals are ignored while the first is acted on, so that the
    clean-up it triggers runs to its end. Outside the main thread (where
    Python cannot set signal handlers) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    global _state
    _state = _State()
    _state.active = True
    previous = {signum: signal.signal(signum, _handler) for signum in SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _state = _State()


@contextmanager
def held(*, commit=False):
    """Run a step whole: a signal during it raises at its end.

    Parameters
    ----------
    commit : bool, default=False
        The step puts the outputs in place: after it ends without error,
        signals are ignored (the audit is complete, nothing is left to undo).
    """
    state = _state
    state.held += 1
    try:
        yield
    finally:
        state.held -= 1
    if commit and state.active:
        state.committed = True
    if state.deferred and not state.held and not state.committed:
        state.deferred = False
        raise Interrupted(state.received)
