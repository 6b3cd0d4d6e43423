"""Modal's answer to "is this call still waiting or running?", for the reconciler.

`handlers/calls.py` defines the question; this is Modal 1.x's answer. `FunctionCall.get(
timeout=0)` is the documented, supported way to look at a spawned call without waiting: it
raises Python's own `TimeoutError` while the call has no output yet (queued, its container
starting, or running), returns its value once it finished, and raises the call's failure
otherwise (`modal.exception.FunctionTimeoutError` for a call past its timeout, the remote
exception for a crash, `OutputExpiredError` for a call whose result Modal no longer keeps).
`FunctionCall.cancel()` stops a superseded call, queued or running.

(`FunctionCall.get_call_graph()` would tell queued from running, but Modal documents it as
best-effort and not for critical use, and the decision here does not need the difference.)
"""

from __future__ import annotations

import logging

import modal
import modal.exception

from handlers.calls import CallState

log = logging.getLogger(__name__)


class ModalCalls:
    """The `CallRegistry` port on Modal."""

    def state(self, call_id: str) -> CallState:
        try:
            modal.FunctionCall.from_id(call_id).get(timeout=0)
        except TimeoutError:  # Python's own: no output yet
            return CallState.WAITING
        except (modal.exception.OutputExpiredError, modal.exception.NotFoundError):
            return CallState.UNKNOWN
        except (Exception, modal.exception.InputCancellation) as err:  # timed out, crashed,
            log.info("call %s ended without a result: %s", call_id, type(err).__name__)
            return CallState.DEAD  # cancelled, or Modal could not be asked: take the job back
        return CallState.FINISHED

    def cancel(self, call_id: str) -> None:
        try:
            modal.FunctionCall.from_id(call_id).cancel(terminate_containers=False)
        except Exception as err:  # a call that is gone needs no cancelling
            log.warning("could not cancel superseded call %s: %s", call_id, err)
