"""Request scheduling for the device server: admission, the ``max_pending`` FIFO, tasks.

asyncio layer. :class:`RequestScheduler` runs every admitted request as its
own task, as aiokatcp 2.x does: requests of one connection overlap, and
each reply goes out when its handler finishes. It knows nothing about
handlers or the server: it is given a ``dispatch`` callable (which calls
the handler and returns its result, possibly an awaitable) and a
``set_reading`` callable (which pauses or resumes reading on every
connection), and it turns each handler's outcome into exactly one reply.

Rules:

* a handler's first step runs at once, inside a real task (so
  ``asyncio.current_task()``, ``asyncio.timeout`` and task groups work) and
  in a context of its own: with ``eager_start`` on Python 3.12+, and on
  older versions by entering the task for that step (on 3.11 a spare task
  that the first handler that waits keeps, see :meth:`RequestScheduler._start_shared`).
  A handler that finishes without waiting thus replies at once, in arrival
  order, with no extra loop iteration;
* at most ``max_pending`` requests are in progress over the whole server;
  requests already read wait in one FIFO and start as slots free; while
  the cap is reached and requests wait, every connection's reading is paused;
* at most ``burst`` requests start in one pass of the event loop (the
  count is renewed at the start of the pass after half of it is used); the
  others wait in the same FIFO and start in the next passes, ``burst`` at a
  time. Reading goes on meanwhile, so the loop polls its sockets between
  bursts and requests are served in the order they were read, whichever
  connection they came from (otherwise a connection whose next requests
  arrive just after a pass began waits a whole pass more). The queued
  requests are bounded: past ``max_queued_bytes`` reading pauses until the
  FIFO is empty;
* every admitted request is answered exactly once: ``ok`` (from the return
  value), ``fail``/``invalid`` (from :exc:`FailReply`/:exc:`InvalidReply`),
  ``fail <traceback>`` (any other exception), or ``fail request cancelled``.
  An error after the handler replied becomes ``#log error``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import sys
import threading
import traceback
import types
from collections import deque
from typing import (
    Any,
    Callable,
    Coroutine,
    Deque,
    Dict,
    Generator,
    Iterable,
    List,
    Optional,
    Set,
    Tuple,
)

from ._message import Message, inform_bytes, reply_bytes
from ._server_conn import ClientConnection
from ._typeinfo import encode
from .connection import ConnectionLoggerAdapter, _log_message
from .exceptions import FailReply, InvalidReply

__all__ = ["CANCELLED_TEXT", "RequestContext", "RequestScheduler", "resume_coroutine"]

logger = logging.getLogger("aiokatcp.server")

#: The text of the ``fail`` reply of a cancelled request (as in aiokatcp 2.x).
CANCELLED_TEXT = "request cancelled"

_OK = b"ok"
_FAIL = b"fail"
_INVALID = b"invalid"
_REPLY = Message.Type.REPLY
_EAGER = sys.version_info >= (3, 12)
#: Tasks take a ``context`` argument (Python 3.11+).
_TASK_CONTEXT = sys.version_info >= (3, 11)
_CoroutineType = types.CoroutineType
_enter_task = getattr(asyncio.tasks, "_enter_task", None)
_leave_task = getattr(asyncio.tasks, "_leave_task", None)
_UNSTARTED = object()
_FINISHED = object()  # (what _first_step returns when the handler did not wait)
#: Bytes a queued request is counted for besides its arguments (its Python objects).
_QUEUED_OVERHEAD = 512


def _call(func: Callable[..., Any], *args: Any) -> Any:
    return func(*args)


@types.coroutine
def resume_coroutine(
    coro: Coroutine[Any, Any, Any],
    yielded: Any,
    context: Optional[contextvars.Context] = None,
) -> Generator[Any, Any, Any]:
    """Await `coro` whose first step (run by the caller) yielded `yielded`.

    Passes everything between the task and `coro` as ``await coro`` would.
    With `context`, each later step of `coro` runs in it (rather than in the
    awaiting task's context).
    """
    value = yielded
    send: Callable[[Any], Any] = coro.send
    throw: Callable[[BaseException], Any] = coro.throw
    if context is not None:
        run: Any = context.run
        send = functools.partial(run, coro.send)
        throw = functools.partial(run, coro.throw)
    while True:
        try:
            sent = yield value
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:
            try:
                value = throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                value = send(sent)
            except StopIteration as stop:
                return stop.value


class RequestContext:
    """What a request handler uses to answer its request.

    Every request gets exactly one reply: either the handler sends it with
    :meth:`reply` or :meth:`informs`, or the server sends one from the
    handler's return value (or exception) when the handler finishes.
    :meth:`reply`, :meth:`inform` and :meth:`informs` may be called from any
    thread (off the server's thread they are handed to its loop).

    Parameters
    ----------
    conn
        The connection the request came from.
    req
        The request.

    Attributes
    ----------
    conn : ClientConnection
        As passed.
    req : Message
        As passed.
    """

    __module__ = "aiokatcp.server"
    __slots__ = ("_finished", "_logger", "_queued_size", "_replied", "conn", "req")

    def __init__(self, conn: ClientConnection, req: Message) -> None:
        self.conn = conn
        self.req = req
        self._replied = False
        self._finished = False
        self._logger: Optional[ConnectionLoggerAdapter] = None
        self._queued_size = 0

    @property
    def replied(self) -> bool:
        """Whether the reply has been sent."""
        return self._replied

    @property
    def msg(self) -> Message:
        """The request (the name the aiokatcp 2.x tutorial uses for :attr:`req`)."""
        return self.req

    @property
    def logger(self) -> ConnectionLoggerAdapter:
        """Logger tagging messages with the client address (``extra`` has ``address``, ``req``)."""
        if self._logger is None:
            self._logger = ConnectionLoggerAdapter(
                logger, {"address": self.conn.address, "req": self.req}
            )
        return self._logger

    def _off_thread(self) -> bool:
        thread = self.conn.thread_id
        return thread is not None and thread != threading.get_ident()

    def _call_on_loop(self, func: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        loop = self.conn.loop
        assert loop is not None
        loop.call_soon_threadsafe(lambda: func(*args, **kwargs))

    def _check_not_replied(self) -> None:
        if self._replied:
            raise RuntimeError(f"request ?{self.req.name} has already been replied to")

    def _send_reply(self, arguments: List[bytes], before: bytes = b"") -> None:
        req = self.req
        self._replied = True
        data = reply_bytes(req.name, req.mid, arguments)
        self.conn.write_bytes(before + data if before else data)

    def _send_message(self, msg: Message) -> None:
        req = self.req
        if msg.mtype is not _REPLY or msg.name != req.name or msg.mid != req.mid:
            raise RuntimeError(f"handler for {req.name} returned a message that is not its reply")
        self._replied = True
        self.conn.write_message(msg)

    def make_reply(self, *args: Any) -> Message:
        """Build (without sending) this request's reply; a handler may return it."""
        req = self.req
        return Message._make(_REPLY, req.name, [encode(arg) for arg in args], req.mid)

    def reply(self, *args: Any) -> None:
        """Send the reply (e.g. ``ctx.reply("ok", 3)``); name and message ID are copied.

        Raises
        ------
        RuntimeError
            if the request has already been replied to
        """
        if self._off_thread():
            self._call_on_loop(self.reply, *args)
            return
        self._check_not_replied()
        self._send_reply([encode(arg) for arg in args])

    def inform(self, *args: Any) -> None:
        """Send one inform belonging to this request (sent before the reply).

        Raises
        ------
        RuntimeError
            if the request has already been replied to
        """
        if self._off_thread():
            self._call_on_loop(self.inform, *args)
            return
        self._check_not_replied()
        req = self.req
        self.conn.write_bytes(inform_bytes(req.name, req.mid, [encode(arg) for arg in args]))

    def informs(self, informs: Iterable[Iterable[Any]], *, send_reply: bool = True) -> None:
        """Send several informs and (by default) the reply ``ok <count>``, in one write.

        Parameters
        ----------
        informs
            One iterable of arguments per inform.
        send_reply
            Whether to finish with the ``ok <count>`` reply.

        Raises
        ------
        RuntimeError
            if the request has already been replied to
        """
        if self._off_thread():
            rows = [list(args) for args in informs]
            self._call_on_loop(self.informs, rows, send_reply=send_reply)
            return
        self._check_not_replied()
        req = self.req
        name, mid = req.name, req.mid
        msgs = [inform_bytes(name, mid, [encode(arg) for arg in args]) for args in informs]
        data = b"".join(msgs)
        if send_reply:
            self._send_reply([_OK, encode(len(msgs))], data)
        elif data:
            self.conn.write_bytes(data)

    async def drain(self) -> None:
        """Wait until the client has taken enough of the output (back-pressure).

        Raises
        ------
        OSError
            the connection's error, if it is lost with one while waiting
        """
        await self.conn.drain()


class RequestScheduler:
    """Admit requests, run each as a task, and answer each exactly once.

    Parameters
    ----------
    max_pending
        Maximum number of requests in progress over the whole server.
    dispatch
        Called with the :class:`RequestContext` when a request starts; calls
        the handler and returns its result (a value or an awaitable).
    set_reading
        Called with ``False`` to pause reading on every connection (the FIFO
        is in use) and with ``True`` to resume it.
    tb_limit
        Maximum number of stack frames in the traceback of a ``fail`` reply.
    burst
        Maximum number of requests started in one pass of the event loop.
    max_queued_bytes
        Size of the queued requests (arguments, plus 512 bytes each) past
        which reading pauses until the FIFO is empty.
    """

    def __init__(
        self,
        max_pending: int,
        dispatch: Callable[[RequestContext], Any],
        set_reading: Callable[[bool], None],
        tb_limit: int = 20,
        *,
        burst: int = 64,
        max_queued_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.max_pending = max_pending
        self._dispatch = dispatch
        self._set_reading = set_reading
        self.tb_limit = tb_limit
        self.burst = burst
        self.max_queued_bytes = max_queued_bytes
        self._budget = burst  # requests that may still start in this pass of the loop
        self._refill_at = burst // 2
        self._queued_bytes = 0
        self._pending = 0
        self._fifo: Deque[RequestContext] = deque()
        # Request tasks still running, with their handler's awaitable.
        self._tasks: Dict[asyncio.Task[None], Tuple[RequestContext, Any]] = {}
        self._drainers: Set[asyncio.Task[None]] = set()
        self._paused = False
        self._service_scheduled = False
        self._halting = False
        # Python 3.11: the task that the next handler's first step runs in (see _start_shared).
        self._spare: Optional[asyncio.Task[None]] = None
        self._spare_holder: List[Any] = []

    @property
    def paused(self) -> bool:
        """Whether reading is paused (new connections should start paused)."""
        return self._paused

    @property
    def pending(self) -> int:
        """Requests in progress (not counting those waiting in the FIFO)."""
        return self._pending

    # -- admission --------------------------------------------------------------------------

    def submit(self, ctx: RequestContext) -> None:
        """Start it now if a slot is free, nobody waits and the burst has room; else queue."""
        if self._fifo or self._pending >= self.max_pending or self._budget <= 0:
            self._queue(ctx)
            return
        budget = self._budget - 1
        self._budget = budget
        if budget <= self._refill_at and not self._service_scheduled:
            # Half the burst is spent: the next pass starts a new one. (Not at every
            # request: a lone request would cost an extra loop pass.)
            self._service_scheduled = True
            asyncio.get_running_loop().call_soon(self._service)
        self._start(ctx)

    def _queue(self, ctx: RequestContext) -> None:
        size = _QUEUED_OVERHEAD + sum(map(len, ctx.req.arguments))
        ctx._queued_size = size
        self._fifo.append(ctx)
        self._queued_bytes += size
        if not self._paused and (
            self._pending >= self.max_pending or self._queued_bytes > self.max_queued_bytes
        ):
            self._pause()
        if not self._service_scheduled and self._pending < self.max_pending:
            self._service_scheduled = True
            asyncio.get_running_loop().call_soon(self._service)

    def _pause(self) -> None:
        self._paused = True
        self._set_reading(False)

    def _resume_reading(self) -> None:
        self._paused = False
        self._set_reading(True)

    def _release(self, ctx: RequestContext) -> None:
        conn = ctx.conn
        if conn.write_paused and not conn.closed:
            # As in aiokatcp 2.x, a request keeps its slot until the client takes the reply:
            # a client that does not read cannot make the server buffer without bound.
            task = asyncio.get_running_loop().create_task(self._drain_then_free(ctx))
            self._drainers.add(task)
            task.add_done_callback(self._drainers.discard)
            return
        self._free(ctx)

    async def _drain_then_free(self, ctx: RequestContext) -> None:
        try:
            await ctx.conn.drain()
        except Exception:
            pass  # the connection is lost: nothing more to wait for
        finally:
            self._free(ctx)

    def _free(self, ctx: RequestContext) -> None:
        self._pending -= 1
        ctx.conn.request_finished()
        if self._fifo:
            if not self._service_scheduled:
                self._service_scheduled = True
                asyncio.get_running_loop().call_soon(self._service)
        elif self._paused:
            self._resume_reading()

    def _service(self) -> None:
        """Start a pass's burst: queued requests while slots are free, first come first served."""
        self._service_scheduled = False
        self._budget = budget = self.burst
        fifo = self._fifo
        max_pending = self.max_pending
        while fifo and budget and self._pending < max_pending:
            ctx = fifo.popleft()
            self._queued_bytes -= ctx._queued_size
            if ctx.conn.is_closing():
                continue  # nobody to answer
            budget -= 1
            self._budget = budget
            self._start(ctx)
        if fifo:
            if self._pending < max_pending:
                # The burst is spent: carry on in the next pass (after the sockets are polled).
                if not self._service_scheduled:
                    self._service_scheduled = True
                    asyncio.get_running_loop().call_soon(self._service)
            elif not self._paused:
                self._pause()  # the cap is reached and requests wait
        elif self._paused and not self._halting:
            self._resume_reading()

    def discard(self, conn: Any) -> None:
        """Forget the queued requests of a lost connection (there is nobody to answer)."""
        if self._fifo:
            self._fifo = deque(ctx for ctx in self._fifo if ctx.conn is not conn)
            self._queued_bytes = sum(ctx._queued_size for ctx in self._fifo)
            if not self._fifo and self._paused and self._pending < self.max_pending:
                self._resume_reading()

    # -- execution --------------------------------------------------------------------------

    def _start(self, ctx: RequestContext) -> None:
        self._pending += 1
        ctx.conn.request_started()
        try:
            result = self._dispatch(ctx)
        except asyncio.CancelledError:
            self._cancelled(ctx)
        except Exception as exc:
            self._failed(ctx, exc)
        else:
            if not hasattr(result, "__await__"):
                self._succeeded(ctx, result)
            elif _EAGER:
                # (The loop is given: Python 3.12.0-3.12.1 fail an eager start without it.)
                task = asyncio.Task(  # type: ignore[call-arg,unused-ignore]
                    self._run(ctx, result, _UNSTARTED),
                    loop=asyncio.get_running_loop(),
                    eager_start=True,
                )
                if not task.done():
                    self._track(task, ctx, result)
                return  # the task released the slot if it is done
            else:
                self._start_emulated(ctx, result)
                return
        self._release(ctx)

    def _start_emulated(self, ctx: RequestContext, aw: Any) -> None:
        """Python < 3.12: run the first step inside the request's task, as eager_start does.

        (Python 3.9 and 3.10 tasks take no ``context``: see the note where the task is made.)
        """
        loop = asyncio.get_running_loop()
        if (
            type(aw) is not _CoroutineType
            or _enter_task is None
            or _leave_task is None
            or asyncio.current_task(loop) is not None
        ):
            # Cannot run the first step here: the task runs all of it.
            self._track(loop.create_task(self._run(ctx, aw, _UNSTARTED)), ctx, aw)
            return
        if _TASK_CONTEXT and loop.get_task_factory() is None:
            self._start_shared(ctx, aw, loop)
            return
        context = contextvars.copy_context()
        # The task's coroutine reaches the request only through `holder`, emptied when the
        # first step finishes the handler: the (already scheduled) no-op step of the task
        # then keeps nothing of the request alive (fewer objects survive to older GC
        # generations under pipelining).
        # (The task's own context is the handler's, so no context is passed on.)
        holder: List[Any] = [ctx, aw, _UNSTARTED, None]
        task: asyncio.Task[None]
        if not _TASK_CONTEXT:
            # Python < 3.11: a task copies the context current when it is created, so
            # create it inside `context`. (Context variables the handler sets before its
            # first await are then not seen after it; see doc/server.rst.)
            task = context.run(loop.create_task, self._resume(holder))
        else:  # a task factory is set
            task = loop.create_task(self._resume(holder), context=context)
        yielded = self._first_step(loop, task, ctx, aw, context)
        if yielded is _FINISHED:
            holder.clear()
            self._release(ctx)
        else:
            holder[2] = yielded
            self._track(task, ctx, aw)

    def _first_step(
        self,
        loop: asyncio.AbstractEventLoop,
        task: asyncio.Task[None],
        ctx: RequestContext,
        aw: Any,
        context: contextvars.Context,
    ) -> Any:
        """Run the handler's first step as `task`, in `context`; return what it yielded.

        If the handler finished instead, its outcome is answered and
        ``_FINISHED`` returned (the caller then releases the slot).
        """
        _enter_task(loop, task)  # type: ignore[misc]
        try:
            return context.run(aw.send, None)
        except StopIteration as stop:
            self._succeeded(ctx, stop.value)
        except asyncio.CancelledError:
            self._cancelled(ctx)
        except Exception as exc:
            self._failed(ctx, exc)
        finally:
            _leave_task(loop, task)  # type: ignore[misc]
        return _FINISHED

    def _start_shared(self, ctx: RequestContext, aw: Any, loop: asyncio.AbstractEventLoop) -> None:
        """Python 3.11: run the first step in a spare task, which becomes the request's if it waits.

        Making a task per request costs about a fifth of the server's time on a
        request that never waits (3.11 schedules a first step for every task). So
        handlers run their first step in one spare task, a real one (not started yet):
        ``asyncio.current_task()``, :func:`asyncio.timeout` and task groups work.
        The first handler that waits keeps it (the task resumes it, each step in the
        handler's own context), and the next request gets a new spare; handlers that
        finish at once leave it to the next. A spare that a handler asked to cancel
        is not reused. A spare nobody kept ends on its first (scheduled) step.
        """
        spare = self._spare
        if spare is None or spare.done():
            holder: List[Any] = []
            # (An empty context for the task's own steps: the handler's run in its own. One
            # per task: a context cannot be entered by two threads' loops at once.)
            spare = asyncio.Task(self._resume(holder), loop=loop, context=contextvars.Context())
            self._spare = spare
            self._spare_holder = holder
        context = contextvars.copy_context()
        yielded = self._first_step(loop, spare, ctx, aw, context)
        if yielded is not _FINISHED:
            self._spare = None
            self._spare_holder.extend((ctx, aw, yielded, context))
            self._track(spare, ctx, aw)
            return
        if spare._must_cancel or spare.cancelling():  # type: ignore[attr-defined]
            self._spare = None  # the handler cancelled "its" task: not for the next one
        self._release(ctx)

    async def _resume(self, holder: List[Any]) -> None:
        if holder:
            ctx, aw, yielded, context = holder
            holder.clear()
            await self._run(ctx, aw, yielded, context)

    def _track(self, task: asyncio.Task[None], ctx: RequestContext, aw: Any) -> None:
        self._tasks[task] = (ctx, aw)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        entry = self._tasks.pop(task, None)
        if entry is not None and not entry[0]._finished:
            # Cancelled before its first step could run: end the handler and answer here.
            ctx, aw = entry
            close = getattr(aw, "close", None)
            if close is not None:
                close()
            self._cancelled(ctx)
            self._release(ctx)

    async def _run(
        self,
        ctx: RequestContext,
        aw: Any,
        yielded: Any,
        context: Optional[contextvars.Context] = None,
    ) -> None:
        # With `context` (a spare task's request), the outcome is handled in the handler's
        # context too, as if the task were its own (log records made there see its variables).
        call: Callable[..., Any] = _call if context is None else context.run
        try:
            if yielded is _UNSTARTED:
                result = await aw
            else:
                result = await resume_coroutine(aw, yielded, context)
        except asyncio.CancelledError:
            call(self._cancelled, ctx)
            task = asyncio.current_task()
            if task is not None and not self._halting and hasattr(task, "uncancel"):
                task.uncancel()  # only this request was cancelled
        except Exception as exc:
            call(self._failed, ctx, exc)
        else:
            call(self._succeeded, ctx, result)
        self._release(ctx)

    # -- outcomes ---------------------------------------------------------------------------

    def _succeeded(self, ctx: RequestContext, result: Any) -> None:
        ctx._finished = True
        if ctx._replied:
            if result is not None:
                try:  # raised so that the #log carries a traceback, as in aiokatcp 2.x
                    raise RuntimeError("handler both replied and returned a value")
                except RuntimeError as exc:
                    self._error_after_reply(ctx, exc)
            return
        try:
            if result is None:
                args = [_OK]
            elif type(result) is tuple:
                args = [_OK, *[encode(value) for value in result]]
            elif isinstance(result, Message):
                ctx._send_message(result)
                return
            else:
                args = [_OK, encode(result)]
        except Exception as exc:  # e.g. a value of an unregistered type, a wrong Message
            self._failed(ctx, exc)
        else:
            ctx._send_reply(args)

    def _failed(self, ctx: RequestContext, exc: BaseException) -> None:
        ctx._finished = True
        if isinstance(exc, (FailReply, InvalidReply)) and not ctx._replied:
            code = _FAIL if isinstance(exc, FailReply) else _INVALID
            ctx._send_reply([code, str(exc).encode()])
            return
        if ctx._replied:
            self._error_after_reply(ctx, exc)
            return
        ctx.logger.exception("uncaught exception in request handler", exc_info=exc)
        ctx._send_reply([_FAIL, self._format(exc).encode()])

    def _error_after_reply(self, ctx: RequestContext, exc: BaseException) -> None:
        ctx.logger.error("error in request handler after it replied", exc_info=exc)
        ctx.conn.write_message(_log_message("error", "aiokatcp.server", self._format(exc)))

    def _format(self, exc: BaseException) -> str:
        lines = traceback.format_exception(type(exc), exc, exc.__traceback__, limit=self.tb_limit)
        return "".join(lines)

    def _cancelled(self, ctx: RequestContext) -> None:
        ctx._finished = True
        if not ctx._replied:
            ctx._send_reply([_FAIL, CANCELLED_TEXT.encode()])

    # -- shutdown ---------------------------------------------------------------------------

    async def shutdown(self, cancel: bool) -> None:
        """Answer every admitted request: cancel them, or let them finish (``cancel=False``)."""
        self._halting = True
        if cancel:
            while self._fifo:
                self._cancelled(self._fifo.popleft())
            self._queued_bytes = 0
            for task in list(self._tasks):
                task.cancel()
        for task in list(self._drainers):
            task.cancel()  # replies are written; the connections are closed next
        while self._tasks or self._fifo:
            if self._fifo and not self._service_scheduled:
                self._service()
            waiting = [*self._tasks, *self._drainers]
            if waiting:
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            else:
                await asyncio.sleep(0)
        for task in list(self._drainers):
            task.cancel()
