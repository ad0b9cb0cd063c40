"""The client's connection life cycle as data: states, events and the transition table.

Pure module (no asyncio), in the style of h11's ``_state.py``. The rules:

* the client is in exactly one :class:`State`; ``CLOSED`` is final;
* a connection (transport) exists exactly in :data:`HAVE_CONNECTION`;
* the state changes only through :func:`next_state`, which refuses an
  event that the table does not allow in the current state (a bug in the
  client, reported as :exc:`LifecycleError`);
* ``Client._set_state`` is the one caller: it also fires the connected and
  disconnected callbacks and fails pending requests whenever no usable
  connection is left.

``doc/dev/client-fsm.rst`` includes :data:`TRANSITIONS` from here.
"""

from __future__ import annotations

import enum
from typing import Dict, List, Tuple

__all__ = ["HAVE_CONNECTION", "TRANSITIONS", "Event", "LifecycleError", "State", "next_state"]


class State(enum.Enum):
    """Life-cycle states of a :class:`~aiokatcp.client.Client`."""

    CONNECTING = 1  #: opening the TCP connection (also the state before the loop runs)
    NEGOTIATING = 2  #: TCP is up; waiting to learn the protocol version
    CONNECTED = 3  #: ready for requests
    DISCONNECTING = 4  #: we are closing the connection and waiting for it to go
    SLEEPING = 5  #: waiting (back-off) before the next attempt
    CLOSED = 6  #: final: closed by the user or given up (``auto_reconnect=False``)


class Event(enum.Enum):
    """What makes the state change."""

    TCP_UP = "TCP connection made"
    CONNECT_FAILED = "connection attempt failed"
    NEGOTIATED = "protocol known (or assumed)"
    DROP = "we close the connection"
    LOST = "connection gone; will retry"
    RETRY = "back-off elapsed"
    FINISH = "closed by the user, or given up"


class LifecycleError(RuntimeError):
    """An event that the transition table does not allow (a bug in the client)."""


_S, _E = State, Event
#: ``TRANSITIONS[state][event]`` is the next state; a missing entry is illegal.
TRANSITIONS: Dict[State, Dict[Event, State]] = {
    _S.CONNECTING: {
        _E.TCP_UP: _S.NEGOTIATING,
        _E.CONNECT_FAILED: _S.SLEEPING,
        _E.FINISH: _S.CLOSED,
    },
    _S.NEGOTIATING: {
        _E.NEGOTIATED: _S.CONNECTED,
        _E.DROP: _S.DISCONNECTING,
        _E.LOST: _S.SLEEPING,
        _E.FINISH: _S.CLOSED,
    },
    _S.CONNECTED: {
        _E.DROP: _S.DISCONNECTING,
        _E.LOST: _S.SLEEPING,
        _E.FINISH: _S.CLOSED,
    },
    _S.DISCONNECTING: {
        _E.LOST: _S.SLEEPING,
        _E.FINISH: _S.CLOSED,
    },
    _S.SLEEPING: {
        _E.RETRY: _S.CONNECTING,
        _E.FINISH: _S.CLOSED,
    },
    _S.CLOSED: {},
}

#: States in which a connection exists.
HAVE_CONNECTION = frozenset({State.NEGOTIATING, State.CONNECTED, State.DISCONNECTING})


def next_state(state: State, event: Event) -> State:
    """The state after `event` in `state`.

    Raises
    ------
    LifecycleError
        if the table does not allow `event` in `state`
    """
    try:
        return TRANSITIONS[state][event]
    except KeyError:
        raise LifecycleError(f"event {event.name} is not allowed in state {state.name}") from None


def table_rows() -> List[Tuple[str, str, str]]:
    """``(from, event, to)`` rows of the table, for the developer documentation."""
    return [
        (state.name, f"{event.name} ({event.value})", target.name)
        for state, row in TRANSITIONS.items()
        for event, target in row.items()
    ]
