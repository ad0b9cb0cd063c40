"""``katcpcmd``: talk to KATCP devices from the command line.

Written against the public API only (``aiokatcp.Client``), as an example of
a small client. Usage (options may go anywhere on the line)::

    katcpcmd [ADDRESS...] REQUEST [ARGS...]         # informs as they arrive, then the reply
    katcpcmd wait [ADDRESS] SENSOR [VALUE] [--status S] [--expr 'OP N'] --timeout T
    katcpcmd log [ADDRESS...] [--level LEVEL]       # follow the devices' #log
    katcpcmd watch [ADDRESS...] SENSOR...           # live table (plain lines if not a tty)
    katcpcmd export [ADDRESS] --port N              # serve the sensors to Prometheus
    katcpcmd --cafile ca.pem ADDRESS REQUEST        # any of these over TLS

An ADDRESS is ``[host:]port`` (``[v6-address]:port``); several may be given
(or joined by commas); without one, ``$KATCP_SERVER`` is used. Exit status:
see ``EXIT_*`` and ``katcpcmd --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import ssl
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, TextIO, Tuple

import aiokatcp
from aiokatcp._compat import timeout as _timeout
from aiokatcp.tools import _format
from aiokatcp.tools._format import Condition, Style

__all__ = [
    "EXIT_CONNECTION",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_REPLY",
    "EXIT_TIMEOUT",
    "amain",
    "main",
    "make_parser",
]

EXIT_OK = 0
EXIT_CONNECTION = 1
EXIT_REPLY = 2
EXIT_TIMEOUT = 3
EXIT_INTERRUPTED = 130

MODES = ("wait", "log", "watch", "export")
_LOG_LEVELS = ("all", "trace", "debug", "info", "warn", "error", "fatal", "off")
_ADDRESS_LIKE = re.compile(r"[0-9\[]|.*:")
_EPILOG = """\
commands:
  REQUEST [ARGS...]   send ?REQUEST to each ADDRESS; print informs as they arrive, then the reply
  wait SENSOR ...     wait until SENSOR has VALUE (or --status / --expr); needs --timeout
  log                 print the devices' #log messages (filtered with --level)
  watch SENSOR...     follow sensors: a live table on a terminal, one line per update otherwise
  export --port N     serve the device's sensors on a Prometheus endpoint (aiokatcp[prometheus])

ADDRESS is [host:]port or [ipv6-address]:port (host defaults to localhost); several
addresses (or host:port,host:port) run the request on each device concurrently, each
output line prefixed by its device. Without an ADDRESS, $KATCP_SERVER is used.

exit status:
  0    the reply was ok (all of them), the wait condition was met, or watching ended
  1    could not connect, or the connection was lost
  2    a reply was not ok, a sensor could not be followed, or the command line is wrong
  3    timed out (--timeout)
  130  interrupted (Ctrl-C) before the reply
With several devices the status is the highest of theirs.
"""


def _address(text: str) -> Tuple[str, int]:
    """Parse ``[host:]port`` (``[v6-address]:port`` for IPv6); the host defaults to localhost."""
    host = "localhost"
    port_text = text
    if text.startswith("["):
        close = text.find("]")
        if close < 0 or text[close + 1 : close + 2] != ":":
            raise argparse.ArgumentTypeError(f"expected [ipv6-address]:port, not {text!r}")
        host, port_text = text[1:close], text[close + 2 :]
    elif ":" in text:
        host, port_text = text.rsplit(":", 1)
    try:
        port = int(port_text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port in {text!r}") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"port {port} is out of range")
    return host or "localhost", port


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value < 65536:
        raise argparse.ArgumentTypeError(f"port {value} is out of range")
    return value


def _expr(text: str) -> Tuple[str, float]:
    try:
        return _format.parse_condition(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def make_parser() -> argparse.ArgumentParser:
    """The command-line parser (exposed for the documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="katcpcmd",
        usage="katcpcmd [options] [wait|log|watch|export] [ADDRESS...] [REQUEST|SENSOR] [ARGS...]",
        description="Send a KATCP request to one or more devices and print the informs and "
        "reply; or wait for, watch or export sensors; or follow a device's log.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "words", nargs="*", metavar="WORD", help="command, addresses, request and arguments"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {aiokatcp.__version__}")
    out = parser.add_argument_group("output")
    fmt = out.add_mutually_exclusive_group()
    fmt.add_argument("--raw", action="store_true", help="print messages in wire format")
    fmt.add_argument("--json", action="store_true", help="print one JSON object per message")
    fmt.add_argument(
        "-p",
        "--field",
        type=int,
        metavar="N",
        help="print only field N of the reply (0: the status, 1: the first value)",
    )
    out.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (repeat for debug)"
    )
    out.add_argument("-q", "--quiet", action="count", default=0, help="log less")
    parser.add_argument(
        "--timeout",
        "--request-timeout",
        dest="timeout",
        type=_positive,
        metavar="SECONDS",
        help="give up if the reply (or for wait: the condition) takes longer (default: the "
        "device's timeout hint, else no limit)",
    )
    parser.add_argument(
        "--connect-timeout",
        type=_positive,
        default=30.0,
        metavar="SECONDS",
        help="give up if connecting takes longer (default: %(default)s)",
    )
    parser.add_argument(
        "--watch",
        nargs="+",
        metavar="SENSOR",
        help="same as the watch command (kept from earlier versions)",
    )
    parser.add_argument(
        "--duration",
        type=_positive,
        metavar="SECONDS",
        help="watch/log: stop after this long (default: until interrupted)",
    )
    parser.add_argument(
        "--reconnect",
        action="store_true",
        help="watch/log: reconnect when the connection is lost instead of exiting",
    )
    wait = parser.add_argument_group("wait")
    wait.add_argument("--status", help="wait until the sensor has this status (e.g. nominal)")
    wait.add_argument(
        "--expr",
        type=_expr,
        metavar="'OP NUMBER'",
        help="wait until the value compares so (OP: < <= > >= == !=), e.g. '>=20.5'",
    )
    log = parser.add_argument_group("log")
    log.add_argument(
        "--level",
        choices=_LOG_LEVELS,
        default="all",
        help="print only #log messages at this level or above (filtered locally)",
    )
    export = parser.add_argument_group("export")
    export.add_argument("--port", type=_port, help="HTTP port of the Prometheus endpoint")
    export.add_argument(
        "--bind",
        default="127.0.0.1",
        help="HTTP address of the Prometheus endpoint (default: %(default)s)",
    )
    tls = parser.add_argument_group("TLS")
    tls.add_argument("--tls", action="store_true", help="connect over TLS (see doc/security)")
    tls.add_argument(
        "--cafile",
        metavar="FILE",
        help="CA certificate(s) to verify the server with (implies --tls)",
    )
    tls.add_argument("--cert", metavar="FILE", help="client certificate (implies --tls)")
    tls.add_argument("--key", metavar="FILE", help="private key of --cert (default: in --cert)")
    tls.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify the server's certificate (implies --tls; for testing only)",
    )
    return parser


def _ssl_context(args: argparse.Namespace) -> Optional[ssl.SSLContext]:
    """The client TLS context the options ask for (``None``: plain TCP)."""
    if not (args.tls or args.cafile or args.cert or args.insecure):
        return None
    ctx = ssl.create_default_context(cafile=args.cafile)
    if args.insecure:
        _error("warning: --insecure: the server's certificate is NOT verified")
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if args.cert:
        ctx.load_cert_chain(args.cert, args.key)
    return ctx


class _Options:
    """The parsed command line: mode, addresses and the rest of the words."""

    def __init__(self, args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
        self.args = args
        words: List[str] = list(args.words)
        self.mode = "request"
        if words and words[0] in MODES:
            self.mode = words.pop(0)
        if args.watch is not None:
            if self.mode != "request":
                parser.error("--watch cannot be combined with a command")
            self.mode = "watch"
        self.addresses: List[Tuple[str, int]] = []
        while words and _ADDRESS_LIKE.match(words[0]):
            for part in words.pop(0).split(","):
                try:
                    self.addresses.append(_address(part))
                except argparse.ArgumentTypeError as exc:
                    parser.error(f"argument ADDRESS: {exc}")
        if not self.addresses:
            env = os.environ.get("KATCP_SERVER")
            if not env:
                parser.error("no ADDRESS given and $KATCP_SERVER is not set")
            try:
                self.addresses = [_address(part) for part in env.split(",")]
            except argparse.ArgumentTypeError as exc:
                parser.error(f"$KATCP_SERVER: {exc}")
        self.words = words
        self._check(parser)

    def _check(self, parser: argparse.ArgumentParser) -> None:
        args, mode, words = self.args, self.mode, self.words
        if args.watch is not None:
            if words:
                parser.error("give either a request or --watch SENSOR...")
            self.words = list(args.watch)
        if mode == "request" and not words:
            parser.error("give a REQUEST (or a command: wait, log, watch, export)")
        if mode == "watch" and not self.words:
            parser.error("watch needs at least one SENSOR")
        if mode == "wait":
            if not 1 <= len(words) <= 2:
                parser.error("wait needs SENSOR [VALUE]")
            if len(words) == 1 and args.status is None and args.expr is None:
                parser.error("wait needs a VALUE, --status or --expr")
            if args.timeout is None:
                parser.error("wait needs --timeout")
        if mode in ("log", "export") and words:
            parser.error(f"unexpected argument for {mode}: {words[0]!r}")
        if mode in ("wait", "export") and len(self.addresses) > 1:
            parser.error(f"{mode} takes one ADDRESS")
        if mode == "export" and args.port is None:
            parser.error("export needs --port")
        if args.duration is not None and mode not in ("watch", "log"):
            parser.error("--duration needs watch or log")
        if args.field is not None and mode != "request":
            parser.error("--field is for requests")
        if args.key is not None and args.cert is None:
            parser.error("--key needs --cert")


class _Output:
    """Writes formatted messages to `out`, each prefixed by its device when there are several."""

    def __init__(self, args: argparse.Namespace, out: TextIO, device: Optional[str]) -> None:
        self.out = out
        self.raw: bool = args.raw
        self.json: bool = args.json
        self.device = device
        isatty = getattr(out, "isatty", None)
        colour = bool(isatty and isatty()) and "NO_COLOR" not in os.environ
        self.style = Style(colour and not self.raw and not self.json)

    def line(self, text: str) -> None:
        prefix = f"{self.device}: " if self.device is not None and not self.json else ""
        self.out.write(f"{prefix}{text}\n")
        self.out.flush()

    def message(self, msg: aiokatcp.Message) -> None:
        if self.json:
            self.line(_format.format_json(msg, self.device))
        elif self.raw:
            self.line(_format.format_raw(msg))
        else:
            self.line(_format.format_human(msg, self.style))


class _PrintingClient(aiokatcp.Client):
    """A client that passes every asynchronous inform to `on_inform` as it arrives."""

    def __init__(
        self, host: str, port: int, *, on_inform: Callable[[aiokatcp.Message], None], **kwargs: Any
    ) -> None:
        super().__init__(host, port, **kwargs)
        self.on_inform = on_inform

    def unhandled_inform(self, msg: aiokatcp.Message) -> None:
        self.on_inform(msg)

    def inform_log(self, *args: bytes) -> None:
        # Show the device's log messages rather than re-logging them locally.
        self.on_inform(aiokatcp.Message.inform("log", *args))


def _error(text: str, device: Optional[str] = None) -> None:
    where = f"{device}: " if device is not None else ""
    print(f"katcpcmd: {where}{text}", file=sys.stderr, flush=True)


def _name(address: Tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Device:
    """One device's connection and output, for one run of a command."""

    def __init__(
        self,
        opts: _Options,
        address: Tuple[str, int],
        out: TextIO,
        several: bool,
        ssl_context: Optional[ssl.SSLContext],
    ) -> None:
        self.opts = opts
        self.ssl_context = ssl_context
        self.args = opts.args
        self.address = address
        self.label = _name(address) if several else None
        self.output = _Output(opts.args, out, self.label)
        self.informs_to: Callable[[aiokatcp.Message], None] = self.output.message
        self.client: Optional[_PrintingClient] = None

    def error(self, text: str) -> None:
        _error(text, self.label)

    async def connect(self, reconnect: bool = False) -> bool:
        host, port = self.address
        client = _PrintingClient(
            host,
            port,
            on_inform=lambda msg: self.informs_to(msg),
            auto_reconnect=reconnect,
            ssl=self.ssl_context,
        )
        try:
            async with _timeout(self.args.connect_timeout):
                await client.wait_connected()
        except asyncio.TimeoutError:
            self.error(f"timed out connecting to {host}:{port}")
        except (OSError, aiokatcp.ProtocolError) as exc:
            self.error(f"could not connect to {host}:{port}: {exc}")
        else:
            self.client = client
            return True
        client.close()
        await client.wait_closed()
        return False

    async def close(self) -> None:
        if self.client is not None:
            self.client.close()
            await self.client.wait_closed()

    async def run(self) -> int:
        if not await self.connect(reconnect=self.args.reconnect):
            return EXIT_CONNECTION
        try:
            if self.opts.mode == "request":
                return await self.request()
            if self.opts.mode == "wait":
                return await self.wait()
            if self.opts.mode == "export":
                return await self.export()
            return await self.follow()
        finally:
            await self.close()

    # -- request ---------------------------------------------------------------------------

    async def request(self) -> int:
        assert self.client is not None
        name, *req_args = self.opts.words
        args = self.args
        table = not (args.raw or args.json) and name in _format.TABLE_REQUESTS
        live = args.field is None and not table
        callback = self.output.message if live else None
        try:
            reply, informs = await self.client.request_raw(
                name, *req_args, timeout=args.timeout, inform_callback=callback
            )
        except asyncio.TimeoutError:
            self.error(f"no reply to ?{name} within {args.timeout} s")
            return EXIT_TIMEOUT
        except ConnectionError as exc:
            self.error(f"connection lost: {exc}")
            return EXIT_CONNECTION
        except ValueError as exc:
            self.error(str(exc))
            return EXIT_REPLY
        ok = reply.reply_ok()
        if args.field is not None:
            fields = reply.arguments
            if not 0 <= args.field < len(fields):
                self.error(f"the reply has no field {args.field} ({len(fields)} fields)")
                return EXIT_REPLY
            self.output.line(_format.text(fields[args.field]))
            return EXIT_OK if ok else EXIT_REPLY
        if table:
            for line in _format.format_table(name, informs, self.output.style):
                self.output.line(line)
        self.output.message(reply)
        return EXIT_OK if ok else EXIT_REPLY

    # -- sensors ---------------------------------------------------------------------------

    async def _subscribe(self, names: Sequence[str]) -> int:
        """``?sensor-sampling NAME auto`` for each sensor (one request with flag ``B``)."""
        client = self.client
        assert client is not None
        groups = [",".join(names)] if "B" in client.protocol_flags else list(names)
        group = ""
        try:
            for group in groups:
                await client.request("sensor-sampling", group, "auto", timeout=self.args.timeout)
        except (aiokatcp.FailReply, aiokatcp.InvalidReply) as exc:
            self.error(f"cannot follow {group}: {exc}")
            return EXIT_REPLY
        except asyncio.TimeoutError:
            self.error("no reply to ?sensor-sampling")
            return EXIT_TIMEOUT
        except ConnectionError as exc:
            self.error(f"connection lost: {exc}")
            return EXIT_CONNECTION
        return EXIT_OK

    async def wait(self) -> int:
        assert self.client is not None
        args = self.args
        sensor = self.opts.words[0]
        value = self.opts.words[1] if len(self.opts.words) > 1 else None
        condition = Condition(value, args.status, args.expr)
        met: asyncio.Future[aiokatcp.Message] = asyncio.get_running_loop().create_future()

        def check(msg: aiokatcp.Message) -> None:
            margs = msg.arguments
            if msg.name == "sensor-status" and len(margs) >= 5 and not met.done():
                if margs[2] == sensor.encode() and condition.met(margs[3], margs[4]):
                    met.set_result(msg)

        self.informs_to = check
        lost = asyncio.ensure_future(self.client.wait_disconnected())
        try:
            async with _timeout(args.timeout):
                code = await self._subscribe([sensor])
                if code != EXIT_OK:
                    return code
                waiters: Set[asyncio.Future[Any]] = {met, lost}
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.TimeoutError:
            self.error(f"{sensor}: not {condition!r} within {args.timeout} s")
            return EXIT_TIMEOUT
        finally:
            lost.cancel()
        if not met.done():
            self.error(f"connection lost: {self.client.last_exc}")
            return EXIT_CONNECTION
        self.output.message(met.result())
        return EXIT_OK

    async def follow(self) -> int:
        """``watch`` and ``log``: print updates until interrupted, --duration or a lost link."""
        client = self.client
        assert client is not None
        args = self.args
        mode = self.opts.mode
        if mode == "log":
            floor = _LOG_LEVELS.index(args.level)

            def show_log(msg: aiokatcp.Message) -> None:
                if msg.name != "log" or not msg.arguments:
                    return
                level = msg.arguments[0].decode("ascii", "replace").lower()
                if level in _LOG_LEVELS and _LOG_LEVELS.index(level) < floor:
                    return
                self.output.message(msg)

            self.informs_to = show_log
        else:
            self.informs_to = self._watch_printer()
            code = await self._subscribe(self.opts.words)
            if code != EXIT_OK:
                return code
        if args.reconnect:
            return await self._follow_reconnecting(client)
        disconnected = asyncio.ensure_future(client.wait_disconnected())
        try:
            done, _ = await asyncio.wait({disconnected}, timeout=args.duration)
        finally:
            disconnected.cancel()
        if done:
            self.error(f"connection lost: {client.last_exc}")
            return EXIT_CONNECTION
        return EXIT_OK

    async def _follow_reconnecting(self, client: aiokatcp.Client) -> int:
        loop = asyncio.get_running_loop()
        tasks: List[asyncio.Task[int]] = []

        def connected() -> None:
            _error("reconnected", self.label)
            if self.opts.mode == "watch":
                tasks.append(loop.create_task(self._subscribe(self.opts.words)))

        def disconnected() -> None:
            _error(f"connection lost ({client.last_exc}); reconnecting", self.label)

        client.add_connected_callback(connected)
        client.add_disconnected_callback(disconnected)
        try:
            await asyncio.sleep(self.args.duration if self.args.duration is not None else 1e100)
        finally:
            client.remove_connected_callback(connected)
            client.remove_disconnected_callback(disconnected)
            for task in tasks:
                task.cancel()
        return EXIT_OK

    def _watch_printer(self) -> Callable[[aiokatcp.Message], None]:
        output = self.output
        if not output.style.colour:  # not a terminal (or --raw/--json): one line per update
            return output.message
        readings: Dict[str, Tuple[bytes, bytes, bytes]] = {}

        def redraw(msg: aiokatcp.Message) -> None:
            margs = msg.arguments
            if msg.name != "sensor-status" or len(margs) < 5:
                output.message(msg)
                return
            rest = margs[2:]
            while len(rest) >= 3:
                readings[_format.text(rest[0])] = (margs[0], rest[1], rest[2])
                rest = rest[3:]
            title = f"katcpcmd watch {_name(self.address)}   (Ctrl-C to stop)"
            lines = _format.render_watch_table(readings, output.style, title)
            output.out.write("\x1b[H\x1b[J" + "\n".join(lines) + "\n")
            output.out.flush()

        return redraw

    # -- export ----------------------------------------------------------------------------

    async def export(self) -> int:
        client = self.client
        assert client is not None
        try:
            from aiokatcp import prometheus
        except ImportError as exc:  # pragma: no cover - depends on the environment
            self.error(
                f"export needs prometheus-client (pip install 'aiokatcp[prometheus]'): {exc}"
            )
            return EXIT_REPLY
        watcher = aiokatcp.SensorWatcher(client)
        client.add_sensor_watcher(watcher)
        exporter = prometheus.Exporter(watcher.sensors)
        await watcher.synced.wait()  # serve (and say so) once the mirror is complete
        try:
            host, port = await exporter.start(self.args.bind, self.args.port)
        except OSError as exc:
            self.error(f"cannot serve on {self.args.bind}:{self.args.port}: {exc}")
            return EXIT_CONNECTION
        _error(f"serving the sensors of {_name(self.address)} on http://{host}:{port}/metrics")
        try:
            if self.args.reconnect:
                await asyncio.Event().wait()  # until interrupted; the client reconnects
            await client.wait_disconnected()
        finally:
            exporter.close()
        self.error(f"connection lost: {client.last_exc}")
        return EXIT_CONNECTION


def _setup_logging(args: argparse.Namespace) -> None:
    level = logging.WARNING - 10 * args.verbose + 10 * args.quiet
    logging.basicConfig(
        level=max(logging.DEBUG, min(logging.CRITICAL, level)),
        format="katcpcmd: %(levelname)s: %(name)s: %(message)s",
    )


async def amain(argv: Optional[Sequence[str]] = None, out: Optional[TextIO] = None) -> int:
    """Run katcpcmd in the running event loop and return its exit status."""
    return await _run(argv, out, configure_logging=False)


async def _run(
    argv: Optional[Sequence[str]], out: Optional[TextIO], configure_logging: bool
) -> int:
    parser = make_parser()
    args = parser.parse_intermixed_args(argv)
    opts = _Options(args, parser)
    if configure_logging:
        _setup_logging(args)
    try:
        ssl_context = _ssl_context(args)
    except (OSError, ValueError) as exc:
        _error(f"cannot set up TLS: {exc}")
        return EXIT_CONNECTION
    out = sys.stdout if out is None else out
    several = len(opts.addresses) > 1
    devices = [_Device(opts, address, out, several, ssl_context) for address in opts.addresses]
    codes = await asyncio.gather(*(device.run() for device in devices))
    return max(codes)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Console-script entry point: run :func:`amain` in a new event loop."""
    args = list(sys.argv[1:] if argv is None else argv)
    following = any(word in args for word in ("watch", "log", "--watch", "export"))
    try:
        return asyncio.run(_run(args, None, configure_logging=True))
    except KeyboardInterrupt:
        # Ctrl-C is how watch and log are normally stopped; for a request it means "gave up".
        _error("interrupted")
        return EXIT_OK if following else EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
