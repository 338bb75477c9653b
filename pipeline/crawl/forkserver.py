"""A fork server for crawl subprocesses: Python, Scrapy, Twisted and pyarrow imported once.

Each crawl part is its own process (Twisted's reactor runs once per process). Started cold,
one spends about 1.6 s of CPU before its first request, most of it importing; 16 parts started
at once on 2 cores kept every part from its first request for 12-13 s on the benchmark web,
its largest sites (the crawl's critical path) included. The server imports all that once,
installs no reactor, and forks one child per part, which runs `python -m pipeline.crawl`'s
main() with the arguments, environment, working directory and log file it is sent.

The server dies with the process that started it (PR_SET_PDEATHSIG, and EOF on its stdin),
and its children with it, as a cold crawl subprocess dies with its parent. If the server
cannot be started, parts start cold (`crawl_subprocess` falls back to Popen).

Protocol, JSON lines: requests on the server's stdin ({"id", "argv", "env", "cwd", "log"}),
answers on its stdout ({"id", "pid"} or {"id", "error"}; {"exit": pid, "code": rc} when a
child ends, rc as Popen's returncode: negative for a signal).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import traceback
from typing import Any

from pipeline.crawl.heap import freeze_built

PRELOAD = (
    "pyarrow.parquet",
    "pyarrow.dataset",  # read_table's own import
    "scrapy.squeues",  # the scheduler's, at start
    "scrapy.pqueues",
    "scrapy.dupefilters",
    "scrapy.robotstxt",
    "scrapy.statscollectors",
    "scrapy.crawler",
    "scrapy.core.downloader.handlers.http11",
    "scrapy.downloadermiddlewares.httpcompression",
    "protego",
    "pipeline.crawl.runner",
    "pipeline.crawl.spider",
    "pipeline.crawl.hosts",
    "pipeline.crawl.throttle",
    "pipeline.crawl.decode",
    "pipeline.crawl.handler",
    "pipeline.crawl.driver",
    "pipeline.crawl.__main__",
)


def die_with_parent(parent_pid: int) -> bool:
    """Linux: get SIGKILL when the parent dies, so a killed driver leaves no orphan crawl
    writing into the part while a rerun starts another one. False if the parent is gone."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    return os.getppid() == parent_pid


# ---- server side (serve(PARENT_PID), started by ForkServer) ----


def _preload() -> None:
    import importlib

    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    # Scrapy imports every component its *_BASE settings name when it reads them, those it
    # is told to leave out included (remote control: aiohttp; cookies: tldextract): 0.3 s of
    # CPU per child, 5 s of start-up for 16 parts on 2 cores, paid once here instead.
    from scrapy.settings import default_settings
    from scrapy.utils.misc import load_object

    bases = ("EXTENSIONS_BASE", "DOWNLOADER_MIDDLEWARES_BASE", "SPIDER_MIDDLEWARES_BASE")
    paths = [p for base in bases for p in getattr(default_settings, base, {})]
    paths += getattr(default_settings, "DOWNLOAD_HANDLERS_BASE", {}).values()
    for path in paths:
        with contextlib.suppress(Exception):
            load_object(path)
    # A child installs the reactor its settings name; one installed here would be inherited.
    assert "twisted.internet.reactor" not in sys.modules, "preloading installed a reactor"


def _child(req: dict[str, Any], keep_closed: list[int]) -> None:
    """In the forked child: become the crawl subprocess; never returns."""
    code = 1
    try:
        for fd in keep_closed:
            with contextlib.suppress(OSError):
                os.close(fd)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        die_with_parent(os.getppid())  # dies with the server, as the server with the driver
        log = os.open(req["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.environ.clear()
        os.environ.update(req["env"])
        os.chdir(req["cwd"])
        from pipeline.crawl.__main__ import main

        code = main(req["argv"])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:  # noqa: BLE001 (the child must reach os._exit whatever happened)
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def serve(parent_pid: int) -> int:
    if not die_with_parent(parent_pid):
        return 3
    # Answers go to a private copy of stdout; fd 1 itself goes to stderr, so that a stray
    # print of an imported module cannot break the protocol.
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    _preload()
    freeze_built()  # the children share these pages: their collections must not touch them
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    stdin = sys.stdin.fileno()
    pending = b""

    def answer(msg: dict[str, Any]) -> None:
        answers.write(json.dumps(msg) + "\n")
        answers.flush()

    while True:
        try:
            ready, _, _ = select.select([stdin, wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(wake_r, 4096)
            while True:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                answer({"exit": pid, "code": os.waitstatus_to_exitcode(status)})
        if stdin in ready:
            data = os.read(stdin, 65536)
            if not data:
                return 0  # the driver is gone; the children die with this process
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                req = json.loads(line)
                try:
                    pid = os.fork()
                except OSError as e:
                    answer({"id": req["id"], "error": str(e)})
                    continue
                if pid == 0:
                    _child(req, [stdin, wake_r, wake_w, answers.fileno()])
                answer({"id": req["id"], "pid": pid})


# ---- client side ----


class ForkedProcess:
    """The part's crawl process, with the Popen methods the driver uses."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None
        self._done = threading.Event()

    def _exited(self, code: int) -> None:
        self.returncode = code
        self._done.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._done.wait(timeout):
            raise subprocess.TimeoutExpired(f"crawl process {self.pid}", timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


# Not `-m pipeline.crawl.forkserver`: the package imports this module first, and runpy would
# then run it a second time as __main__.
_SERVE = (
    "import sys; from pipeline.crawl.forkserver import serve; sys.exit(serve(int(sys.argv[1])))"
)


class ForkServer:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SERVE, str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.pid = self.proc.pid
        self._lock = threading.Lock()
        self._next_id = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self._reply = threading.Condition(self._lock)
        self._children: dict[int, ForkedProcess] = {}
        self.alive = True
        threading.Thread(target=self._read, name="crawl-forkserver", daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            msg = json.loads(line)
            with self._lock:
                if "exit" in msg:
                    child = self._children.pop(msg["exit"], None)
                    if child is not None:
                        child._exited(msg["code"])
                else:
                    if "pid" in msg:
                        # Registered here, before its exit can be read: a child may end fast.
                        msg["child"] = self._children[msg["pid"]] = ForkedProcess(msg["pid"])
                    self._replies[msg["id"]] = msg
                    self._reply.notify_all()
        # The server is gone, and its children with it (PR_SET_PDEATHSIG).
        with self._lock:
            self.alive = False
            for child in self._children.values():
                child._exited(-signal.SIGKILL)
            self._children.clear()
            self._reply.notify_all()

    def spawn(self, argv: list[str], log: str) -> ForkedProcess:
        """Start `python -m pipeline.crawl ARGV` as a child of the server, output to `log`."""
        assert self.proc.stdin is not None
        with self._lock:
            if not self.alive:
                raise OSError("crawl fork server is gone")
            self._next_id += 1
            rid = self._next_id
            req = {"id": rid, "argv": argv, "env": dict(os.environ), "cwd": os.getcwd()}
            self.proc.stdin.write((json.dumps({**req, "log": log}) + "\n").encode())
            self.proc.stdin.flush()
            while rid not in self._replies:
                if not self.alive:
                    raise OSError("crawl fork server is gone")
                self._reply.wait()
            msg = self._replies.pop(rid)
            if "error" in msg:
                raise OSError(f"crawl fork server: {msg['error']}")
            child: ForkedProcess = msg["child"]
            return child


_server: ForkServer | None = None
_server_lock = threading.Lock()


def current_server() -> ForkServer | None:
    """The fork server this process started, if any (not starting one)."""
    return _server


def get_server() -> ForkServer | None:
    """This process's fork server, started on first use; None if it cannot run here."""
    global _server
    if not hasattr(os, "fork"):
        return None
    with _server_lock:
        if _server is None or not _server.alive:
            try:
                _server = ForkServer()
            except OSError:
                _server = None
        return _server
