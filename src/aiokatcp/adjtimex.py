"""Read the kernel's clock-synchronisation state with ``adjtimex(2)`` (Linux).

Pure: no asyncio. A thin :mod:`ctypes` binding kept for compatibility with
aiokatcp 2.x; :mod:`aiokatcp.time_sync` builds sensors on top of it. Where
libc (or the call) is unavailable, :func:`adjtimex` raises
:exc:`NotImplementedError`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Any, Callable, Optional, Tuple

__all__ = ["Timeval", "Timex", "adjtimex", "get_adjtimex"]

# Clock states returned by adjtimex
TIME_OK = 0
TIME_INS = 1
TIME_DEL = 2
TIME_OOP = 3
TIME_WAIT = 4
TIME_ERROR = 5
TIME_BAD = TIME_ERROR

# Bits of Timex.modes
ADJ_OFFSET = 0x0001
ADJ_FREQUENCY = 0x0002
ADJ_MAXERROR = 0x0004
ADJ_ESTERROR = 0x0008
ADJ_STATUS = 0x0010
ADJ_TIMECONST = 0x0020
ADJ_TAI = 0x0080
ADJ_SETOFFSET = 0x0100
ADJ_MICRO = 0x1000
ADJ_NANO = 0x2000
ADJ_TICK = 0x4000
ADJ_OFFSET_SINGLESHOT = 0x8001
ADJ_OFFSET_SS_READ = 0xA001

# Bits of Timex.status
STA_PLL = 0x0001
STA_PPSFREQ = 0x0002
STA_PPSTIME = 0x0004
STA_FLL = 0x0008
STA_INS = 0x0010
STA_DEL = 0x0020
STA_UNSYNC = 0x0040
STA_FREQHOLD = 0x0080
STA_PPSSIGNAL = 0x0100
STA_PPSJITTER = 0x0200
STA_PPSWANDER = 0x0400
STA_PPSERROR = 0x0800
STA_CLOCKERR = 0x1000
STA_NANO = 0x2000
STA_MODE = 0x4000
STA_CLK = 0x8000
STA_RONLY = (
    STA_PPSSIGNAL
    | STA_PPSJITTER
    | STA_PPSWANDER
    | STA_PPSERROR
    | STA_CLOCKERR
    | STA_NANO
    | STA_MODE
    | STA_CLK
)


class Timeval(ctypes.Structure):
    """``struct timeval`` (``tv_usec`` holds nanoseconds when ``STA_NANO`` is set)."""

    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class Timex(ctypes.Structure):
    """``struct timex`` from ``<sys/timex.h>``."""

    _fields_ = [
        ("modes", ctypes.c_int),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_padding", ctypes.c_int * 11),
    ]


def _load_adjtimex() -> Optional[Callable[[Any], int]]:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        func = libc.adjtimex
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.POINTER(Timex)]
    func.restype = ctypes.c_int
    return func


_adjtimex = _load_adjtimex()


def adjtimex(timex: Timex) -> int:
    """Call ``adjtimex(2)``, returning the clock state (one of the ``TIME_*`` constants).

    Raises
    ------
    OSError
        if the call fails
    NotImplementedError
        if the system has no ``adjtimex`` (not Linux/glibc)
    """
    if _adjtimex is None:
        raise NotImplementedError("adjtimex is not available on this system")
    ret = _adjtimex(ctypes.byref(timex))
    if ret == -1:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def get_adjtimex() -> Tuple[int, Timex]:
    """Read (without changing) the kernel clock state: ``(state, timex)``."""
    timex = Timex()
    timex.modes = 0
    return adjtimex(timex), timex
