"""Every Python code block in ``doc/`` runs (each page's blocks in order, in one namespace).

How a page's blocks are found and run (documented for writers in
``doc/dev/doc-blocks.rst``):

* Python blocks are ``.. code-block:: python`` (``py``, ``python3``, ``pycon``)
  and ``::`` literal blocks whose text is valid Python. Other literal blocks
  (wire transcripts, shell sessions, ``console``/``text``/``sh`` blocks) are
  not Python and are not run.
* A page's Python blocks run in page order in one namespace, so a tutorial can
  build on its earlier blocks. Top-level ``await`` works (the page has one
  event loop for its awaiting blocks); blocks made of ``>>>`` lines run as
  doctests (their printed output is checked).
* ``.. doc-test: setup`` (an RST comment, not shown) followed by an indented
  body runs that body first, e.g. to start a device the page talks to;
  ``.. doc-test: hidden`` runs its body where it stands (e.g. to check what the
  blocks above did, or to prepare the next ones); ``.. doc-test: cleanup`` runs
  at the end of the page, even after a failure. All three may ``await``.
* A page whose examples must use a fixed port calls ``doc_test_port(port)`` in
  its setup: it waits while another page (of any checkout on the machine)
  holds that port, and returns it. ``doc_test_device(port)`` starts (on its
  own loop thread, so that blocks may also call ``asyncio.run``) the small
  device the client pages talk to; its ``close()`` goes in the cleanup.
* Not runnable: ``:class: doc-test-skip`` on a ``code-block``, or the comment
  ``.. doc-test: skip`` on the line before any block. Say why nearby.

Each page runs in its own interpreter with a time limit, so a page cannot
affect another, and sockets are real (127.0.0.1 only, like every test).
"""

from __future__ import annotations

import ast
import asyncio
import doctest
import os
import pathlib
import re
import subprocess
import sys
import textwrap
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import pytest

import aiokatcp

DOC = pathlib.Path(__file__).resolve().parent.parent / "doc"
PAGE_TIMEOUT = 60
#: Pages whose blocks are fragments that do not run yet (they need a device on a fixed
#: port, or run forever). Their owners are rewriting them; a page listed here is not run,
#: and an entry must be removed once the page runs.
PENDING: Dict[str, str] = {}
_PYTHON_LANGS = {"python", "py", "python3", "pycon"}
_DIRECTIVE = re.compile(r"^(\s*)\.\. (?:code-block|code|sourcecode)::\s*(\S*)\s*$")
_MARKER = re.compile(r"^(\s*)\.\. doc-test:\s*(skip|setup|hidden|cleanup)\b")


class Block(NamedTuple):
    line: int  # 1-based line of the first code line
    code: str
    role: str  # "run" (shown or hidden), "setup" or "cleanup"


def _indented_body(lines: List[str], start: int, indent: int) -> tuple[List[str], int]:
    """The lines after `start` indented deeper than `indent` (blank lines kept), and the end."""
    body: List[str] = []
    i = start
    while i < len(lines):
        line = lines[i]
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        body.append(line)
        i += 1
    while body and not body[-1].strip():
        body.pop()
    return body, i


def _is_python(code: str) -> bool:
    if _is_doctest(code):
        return _doctest_source_is_python(code)
    try:
        ast.parse(code)
    except SyntaxError:
        return False
    return True


def _is_doctest(code: str) -> bool:
    return code.lstrip().startswith(">>> ")


def _doctest_source_is_python(code: str) -> bool:
    examples = doctest.DocTestParser().get_examples(code)
    try:
        for example in examples:
            ast.parse(example.source)
    except SyntaxError:
        return False
    return bool(examples)


def extract_blocks(text: str) -> List[Block]:
    """The Python blocks of one reST page, with their roles (see the module docstring)."""
    lines = text.splitlines()
    blocks: List[Block] = []
    skip_next = False
    i = 0
    while i < len(lines):
        line = lines[i]
        marker = _MARKER.match(line)
        if marker:
            indent = len(marker.group(1))
            if marker.group(2) == "skip":
                skip_next = True
                i += 1
                continue
            body, end = _indented_body(lines, i + 1, indent)
            code = textwrap.dedent("\n".join(body)).strip("\n")
            role = "run" if marker.group(2) == "hidden" else marker.group(2)
            blocks.append(Block(i + 2, code + "\n", role))
            i = end
            continue
        directive = _DIRECTIVE.match(line)
        literal = (
            line.rstrip().endswith("::") and not line.lstrip().startswith("..") and not directive
        )
        if not (directive or literal):
            i += 1
            continue
        indent = len(line) - len(line.lstrip())
        j = i + 1
        options_skip = False
        if directive:
            while j < len(lines) and re.match(r"^\s+:[\w-]+:", lines[j]):
                if "doc-test-skip" in lines[j]:
                    options_skip = True
                j += 1
        body, end = _indented_body(lines, j, indent)
        code = textwrap.dedent("\n".join(body)).strip("\n") + "\n"
        first = j + 1 + next((k for k, b in enumerate(body) if b.strip()), 0)
        lang = directive.group(2).lower() if directive else None
        is_python = lang in _PYTHON_LANGS if directive else _is_python(code)
        if is_python and not (skip_next or options_skip) and code.strip():
            blocks.append(Block(first, code, "run"))
        skip_next = False
        i = end
    return blocks


def pages() -> List[pathlib.Path]:
    return sorted(p for p in DOC.rglob("*.rst") if "_build" not in p.parts)


def _page_id(page: pathlib.Path) -> str:
    return str(page.relative_to(DOC))


@pytest.mark.parametrize("page", pages(), ids=_page_id)
def test_page_blocks_run(page: pathlib.Path) -> None:
    if _page_id(page) in PENDING:
        pytest.skip(f"not runnable yet: {PENDING[_page_id(page)]}")
    blocks = extract_blocks(page.read_text())
    if not any(block.role == "run" for block in blocks):
        pytest.skip("no Python blocks")
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(
        [sys.executable, __file__, str(page)],
        capture_output=True,
        text=True,
        timeout=PAGE_TIMEOUT,
        env=env,
        cwd=str(DOC.parent),
    )
    assert proc.returncode == 0, f"{_page_id(page)}:\n{proc.stdout}\n{proc.stderr}"


def test_pending_pages_exist() -> None:
    """A PENDING entry for a page that was renamed or removed is stale."""
    assert {name for name in PENDING if not (DOC / name).exists()} == set()


# -- the extractor, tested on literal pages ------------------------------------------------

SAMPLE = """\
Title
=====

A literal Python block::

    x = 1

A wire transcript::

    ?help
    !help ok 3

.. code-block:: python

    y = x + 1

.. code-block:: console

    $ katcpcmd 7147 help

.. code-block:: python
   :class: doc-test-skip

    not_run()

.. doc-test: skip

::

    also_not_run()

.. doc-test: setup

   hidden = 3

.. code-block:: pycon

    >>> y + hidden
    5

.. doc-test: hidden

   assert y == 2
"""


def test_extract_blocks() -> None:
    blocks = extract_blocks(SAMPLE)
    assert [(b.role, b.code) for b in blocks] == [
        ("run", "x = 1\n"),
        ("run", "y = x + 1\n"),
        ("setup", "hidden = 3\n"),
        ("run", ">>> y + hidden\n5\n"),
        ("run", "assert y == 2\n"),
    ]
    assert blocks[0].line == 6


def test_runner_reports_the_failing_line(tmp_path: pathlib.Path) -> None:
    page = tmp_path / "bad.rst"
    page.write_text("T\n=\n\n.. code-block:: python\n\n    a = 1\n    assert a == 2\n")
    proc = subprocess.run([sys.executable, __file__, str(page)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "bad.rst, line 6" in proc.stderr and "AssertionError" in proc.stderr


def test_runner_checks_doctest_output(tmp_path: pathlib.Path) -> None:
    page = tmp_path / "doctest.rst"
    page.write_text("T\n=\n\n::\n\n    >>> 1 + 1\n    3\n")
    proc = subprocess.run([sys.executable, __file__, str(page)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Expected:" in proc.stderr


# -- the runner (python tests/test_doc_blocks.py PAGE) -------------------------------------


def doc_test_port(port: int) -> int:
    """Hold `port` for this page: block (across processes) while another page holds it.

    The lock is released when the page's process exits; the page's time limit
    bounds the wait.
    """
    import fcntl
    import tempfile

    lock = open(os.path.join(tempfile.gettempdir(), f"aiokatcp-doc-test-port-{port}.lock"), "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    _held_locks.append(lock)
    return port


_held_locks: List[Any] = []


class _DocDevice:
    """The device the client pages' examples talk to, served on its own loop thread."""

    def __init__(self, port: int) -> None:
        import enum

        class Mode(enum.Enum):
            IDLE = 0
            CAPTURING = 1

        class Device(aiokatcp.DeviceServer):
            VERSION = "doc-device-1.0"
            BUILD_STATE = "doc-device-1.0.0"

            def __init__(self, host: str, port: int) -> None:
                super().__init__(host, port)
                nominal = aiokatcp.Sensor.Status.NOMINAL
                for sensor in [
                    aiokatcp.Sensor(float, "temperature", "Air", "degC", 21.5, nominal),
                    aiokatcp.Sensor(Mode, "mode", "Mode", "", Mode.IDLE, nominal),
                    aiokatcp.Sensor(float, "cryo.temp", "Cryostat", "degC", -200.0, nominal),
                ]:
                    self.sensors.add(sensor)

            async def request_get_gain(self, ctx: aiokatcp.RequestContext, channel: int) -> float:
                """Gain of a channel."""
                return 0.5 * channel

            async def request_capture_start(
                self, ctx: aiokatcp.RequestContext, stream: str = "cb0"
            ) -> None:
                """Start capturing."""

            async def request_configure(self, ctx: aiokatcp.RequestContext, value: int) -> None:
                """Configure."""

            async def request_echo(
                self, ctx: aiokatcp.RequestContext, *args: str
            ) -> Tuple[str, ...]:
                """Return the arguments."""
                return tuple(args)

        async def start() -> aiokatcp.DeviceServer:
            server = Device("127.0.0.1", doc_test_port(port))
            await server.start()
            return server

        self.Mode = Mode
        self.thread = aiokatcp.LoopThread()
        self.thread.start()
        self.server = self.thread.run(start())

    def close(self) -> None:
        self.thread.run(self.server.stop())
        self.thread.close()


def doc_test_device(port: int) -> _DocDevice:
    """Start the client pages' device on 127.0.0.1:`port` (see the module docstring)."""
    return _DocDevice(port)


def _run_code(
    block: Block, path: pathlib.Path, namespace: Dict[str, Any], loop: Optional[Any]
) -> Optional[asyncio.AbstractEventLoop]:
    """Run one block (top-level ``await`` on the page's loop); return the page's loop."""
    padded = "\n" * (block.line - 1) + block.code  # tracebacks show the page's lines
    code = compile(padded, str(path), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, namespace)
    if asyncio.iscoroutine(result):
        if loop is None:
            loop = asyncio.new_event_loop()
        loop.run_until_complete(asyncio.wait_for(result, PAGE_TIMEOUT))
    return loop


def _run_page(path: pathlib.Path) -> int:
    blocks = extract_blocks(path.read_text())
    namespace: Dict[str, Any] = {
        "__name__": "__doc_block__",
        "doc_test_port": doc_test_port,
        "doc_test_device": doc_test_device,
    }
    loop: Optional[asyncio.AbstractEventLoop] = None
    order = [b for b in blocks if b.role == "setup"] + [b for b in blocks if b.role == "run"]
    cleanup = [b for b in blocks if b.role == "cleanup"]
    status = 0
    where = path.name
    try:
        for block in order:
            where = f"{path.name}, line {block.line}"
            if _is_doctest(block.code):
                loop = _run_doctest(block, where, namespace, loop)
                continue
            loop = _run_code(block, path, namespace, loop)
    except BaseException:
        import traceback

        print(f"doc block failed: {where}", file=sys.stderr)
        traceback.print_exc()
        status = 1
    finally:
        for block in cleanup:
            loop = _run_code(block, path, namespace, loop)
        if loop is not None:
            loop.close()
    return status


def _run_doctest(
    block: Block,
    where: str,
    namespace: Dict[str, Any],
    loop: Optional[asyncio.AbstractEventLoop],
) -> Optional[asyncio.AbstractEventLoop]:
    test = doctest.DocTestParser().get_doctest(block.code, namespace, where, where, block.line)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    out: List[str] = []
    runner.run(test, out=out.append, clear_globs=False)
    if runner.failures:
        raise AssertionError(f"{where}: doctest failed\n" + "".join(out))
    return loop


if __name__ == "__main__":
    sys.exit(_run_page(pathlib.Path(sys.argv[1])))
