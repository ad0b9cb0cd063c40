"""``katcpcmd``: send one KATCP request, or watch sensors, from the command line.

Written against the public API only (``aiokatcp.Client``), as an example of
a small client. Usage::

    katcpcmd [host:]port request [args...]      # print the informs and the reply
    katcpcmd [host:]port --watch SENSOR...      # print #sensor-status until Ctrl-C
    katcpcmd --cafile ca.pem host:port request  # the same over TLS

Exit status: 0 on success, 1 if the connection failed or was lost (or the
request was interrupted), 2 if the reply was not ``ok`` (or a sensor could not
be watched, or the command line is wrong), 3 if the request timed out.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys
from typing import Any, List, Optional, Sequence, TextIO, Tuple

import aiokatcp

__all__ = ["EXIT_CONNECTION", "EXIT_OK", "EXIT_REPLY", "EXIT_TIMEOUT", "amain", "main"]

EXIT_OK = 0
EXIT_CONNECTION = 1
EXIT_REPLY = 2
EXIT_TIMEOUT = 3


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


def make_parser() -> argparse.ArgumentParser:
    """The command-line parser (exposed for the documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="katcpcmd",
        description="Send a KATCP request and print the informs and reply, "
        "or watch sensors and print their updates.",
    )
    parser.add_argument("address", type=_address, help="server address, [host:]port")
    parser.add_argument("request", nargs="?", help="request name (without the '?')")
    parser.add_argument("args", nargs="*", help="request arguments")
    parser.add_argument(
        "--watch",
        nargs="+",
        metavar="SENSOR",
        help="subscribe to these sensors and print #sensor-status until interrupted",
    )
    parser.add_argument(
        "--duration",
        type=_positive,
        metavar="SECONDS",
        help="with --watch: stop after this long (default: until interrupted)",
    )
    parser.add_argument(
        "--timeout",
        "--request-timeout",
        dest="timeout",
        type=_positive,
        metavar="SECONDS",
        help="give up if the reply takes longer (default: the server's timeout hint, "
        "else no limit)",
    )
    parser.add_argument(
        "--connect-timeout",
        type=_positive,
        default=30.0,
        metavar="SECONDS",
        help="give up if connecting takes longer (default: %(default)s)",
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


class _PrintingClient(aiokatcp.Client):
    """A client that prints every asynchronous inform as it arrives."""

    def __init__(self, host: str, port: int, *, out: TextIO, **kwargs: Any) -> None:
        super().__init__(host, port, **kwargs)
        self.out = out

    def unhandled_inform(self, msg: aiokatcp.Message) -> None:
        _print(self.out, msg)

    def inform_log(self, *args: bytes) -> None:
        # Print the server's log messages rather than re-logging them locally.
        _print(self.out, aiokatcp.Message.inform("log", *args))


def _print(out: TextIO, msg: aiokatcp.Message) -> None:
    out.write(bytes(msg).decode("utf-8", errors="backslashreplace"))
    out.flush()


def _error(text: str) -> None:
    print(f"katcpcmd: {text}", file=sys.stderr)


async def _connect(args: argparse.Namespace, out: TextIO) -> Optional[_PrintingClient]:
    host, port = args.address
    try:
        ssl_context = _ssl_context(args)
    except (OSError, ValueError) as exc:
        _error(f"cannot set up TLS: {exc}")
        return None
    client = _PrintingClient(host, port, out=out, auto_reconnect=False, ssl=ssl_context)
    try:
        await asyncio.wait_for(client.wait_connected(), args.connect_timeout)
    except asyncio.TimeoutError:
        _error(f"timed out connecting to {host}:{port}")
    except (OSError, aiokatcp.ProtocolError) as exc:
        _error(f"could not connect to {host}:{port}: {exc}")
    else:
        return client
    client.close()
    await client.wait_closed()
    return None


async def _request(client: _PrintingClient, args: argparse.Namespace, out: TextIO) -> int:
    try:
        reply, informs = await client.request_raw(args.request, *args.args, timeout=args.timeout)
    except asyncio.TimeoutError:
        _error(f"no reply to ?{args.request} within {args.timeout} s")
        return EXIT_TIMEOUT
    except ConnectionError as exc:
        _error(f"connection lost: {exc}")
        return EXIT_CONNECTION
    except ValueError as exc:
        _error(str(exc))
        return EXIT_REPLY
    for inform in informs:
        _print(out, inform)
    _print(out, reply)
    return EXIT_OK if reply.reply_ok() else EXIT_REPLY


async def _watch(client: _PrintingClient, args: argparse.Namespace) -> int:
    names: List[str] = args.watch
    groups = [",".join(names)] if "B" in client.protocol_flags else names
    try:
        for group in groups:
            await client.request("sensor-sampling", group, "auto", timeout=args.timeout)
    except (aiokatcp.FailReply, aiokatcp.InvalidReply) as exc:
        _error(f"cannot watch {group}: {exc}")
        return EXIT_REPLY
    except asyncio.TimeoutError:
        _error("no reply to ?sensor-sampling")
        return EXIT_TIMEOUT
    except ConnectionError as exc:
        _error(f"connection lost: {exc}")
        return EXIT_CONNECTION
    disconnected = asyncio.ensure_future(client.wait_disconnected())
    try:
        done, _ = await asyncio.wait({disconnected}, timeout=args.duration)
    finally:
        disconnected.cancel()
    if done:
        _error(f"connection lost: {client.last_exc}")
        return EXIT_CONNECTION
    return EXIT_OK


async def amain(argv: Optional[Sequence[str]] = None, out: Optional[TextIO] = None) -> int:
    """Run katcpcmd in the running event loop and return its exit status."""
    parser = make_parser()
    args = parser.parse_args(argv)
    if (args.request is None) == (args.watch is None):
        parser.error("give either a request or --watch SENSOR...")
    if args.duration is not None and args.watch is None:
        parser.error("--duration needs --watch")
    if args.key is not None and args.cert is None:
        parser.error("--key needs --cert")
    out = sys.stdout if out is None else out
    client = await _connect(args, out)
    if client is None:
        return EXIT_CONNECTION
    try:
        if args.watch is not None:
            return await _watch(client, args)
        return await _request(client, args, out)
    finally:
        client.close()
        await client.wait_closed()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Console-script entry point: run :func:`amain` in a new event loop."""
    watching = False
    try:
        args = list(sys.argv[1:] if argv is None else argv)
        watching = "--watch" in args
        return asyncio.run(amain(args))
    except KeyboardInterrupt:
        # Ctrl-C is how --watch is normally stopped; for a request it means "gave up".
        return EXIT_OK if watching else EXIT_CONNECTION


if __name__ == "__main__":
    sys.exit(main())
