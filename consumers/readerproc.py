"""``dossier consume run`` as two processes: a Kafka reader and the store's owner.

chDB holds the GIL for the whole of a query (measured, BENCHMARKS.md), so one
process cannot poll Kafka while it stores a batch: the rate would be
1 / (poll + store time per event). The command therefore runs as two
processes that overlap fully on two cores:

- the **reader** (a child process, :func:`reader_main`): the consumer group
  (:class:`consumers.live.LiveLoader`: polling, batching, rebalances,
  broker-reset detection, offset commits) and the per-message work that needs
  no store: the header check, grouping by writer schema, one Avro
  container per run, written to a private memory-backed scratch directory,
  and, on the embedded store, decoding them to ClickHouse Native files with a
  chDB of its own (:mod:`consumers.readerdecode`), so the owner only copies
  rows in;
- the **owner** (the command's own process, :func:`load_live`): the store.
  It stages each batch's containers, checks and publishes them
  (:meth:`consumers.sink.Sink.publish`), writes dead letters, answers; it also
  serves the store to other processes and restarts an embedded broker that
  exited.

One batch at a time over a pipe:

====================================  =========================================
reader → owner                        owner → reader
====================================  =========================================
``("batch", staged, dead)``           ``("stored", result)``: commit, go on
                                      ``("refused", error)``: ClickHouse cannot
                                      decode a block; the reader isolates the
                                      poison with fastavro and sends the rest
                                      ``("failed", error)``: nothing stored
``("raw", values)``                   ``("raw?", positions)``: raw bytes of
                                      messages that become dead letters
``("assigned", partitions, when)``    (progress and benchmarks)
``("said", line)``                    (the owner says it, stamped)
``("done", summary)`` / ``("error",   (the reader's last word)
exception)``
====================================  =========================================

Offsets are committed by the reader only after ``stored``. If the owner dies
(kill -9), the reader notices within half a second (or at once, through the
parent-death signal on Linux) and exits without committing: the next run
replays the batch, which the sink does not store twice. If the reader is
killed by a signal (a crash in a native library, the out-of-memory killer),
the owner starts a new one, which rejoins the group and goes on from the last
committed offsets, replaying what was stored but not committed (stored once):
at most :data:`READER_RESTARTS` times in :data:`READER_RESTART_WINDOW_S`,
each one logged. A reader that stops otherwise, or too often, stops the owner
with a sentence.
"""

from __future__ import annotations

import contextlib
import faulthandler
import gc
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any, Final

from consumers.batch import Gathered, NativeGroup, StagedGroup, store_staged, store_through
from consumers.live import LiveLoader, RunOptions, RunSummary, restart_if_exited, stop_restarted
from consumers.readerdecode import BatchDecoder
from consumers.sink import BatchResult, DeadLetter, RawOf, Sink
from dossier_runtime.broker import BrokerHandle
from dossier_runtime.errors import RuntimeSetupError, StoreError
from dossier_runtime.settings import Settings

_WATCH_S = 0.5


class ReaderError(RuntimeSetupError):
    """The Kafka reader process stopped without its last word."""


class _OwnerGone(Exception):
    pass


# -- the reader (child process) ------------------------------------------------------------


class _Channel:
    """The reader's end: sends from several threads, receives in the store thread only."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.lock = threading.Lock()

    def send(self, message: tuple[Any, ...]) -> None:
        try:
            with self.lock:
                self.conn.send(message)
        except (BrokenPipeError, EOFError, OSError) as exc:
            raise _OwnerGone from exc

    def recv(self) -> tuple[Any, ...]:
        try:
            message: tuple[Any, ...] = self.conn.recv()
        except (EOFError, OSError) as exc:
            raise _OwnerGone from exc
        return message


def _remote_store(channel: _Channel, topic: str, decoder: BatchDecoder | None) -> Callable[[Gathered], BatchResult]:
    """Batches stored by the owner: the containers (decoded to Native files when ``decoder`` is given, ahead
    of time if the batch was sealed) go over the pipe, the raw messages only when asked for."""

    def send(groups: Sequence[StagedGroup | NativeGroup], dead: list[DeadLetter], raw_of: RawOf) -> BatchResult | None:
        channel.send(("batch", groups, dead))
        while (reply := channel.recv())[0] == "raw?":
            channel.send(("raw", raw_of(reply[1])))
        if reply[0] == "refused":
            return None
        if reply[0] != "stored":
            raise StoreError(f"the store did not take the batch: {reply[1]}")
        result: BatchResult = reply[1]
        return result

    def store(batch: Gathered) -> BatchResult:
        ahead = [batch.decoded]

        def submit(staged: list[StagedGroup], dead: list[DeadLetter], raw_of: RawOf) -> BatchResult | None:
            groups: Sequence[StagedGroup | NativeGroup] | None = staged
            if ahead[0] is not None:  # the batch as sealed (a retry after poison is decoded afresh)
                groups, ahead[0] = ahead[0], None
            elif decoder is not None:
                groups = decoder.decode(topic, staged)
            if groups is None:  # a message body does not decode: store_through isolates it and submits the rest
                return None
            return send(groups, dead, raw_of)

        return store_through(topic, batch, submit)

    return store


def _sealer(topic: str, decoder: BatchDecoder | None) -> Callable[[Gathered], None] | None:
    """Decode a full batch while the owner stores the one before (None: the owner parses Avro itself)."""
    if decoder is None:
        return None

    def seal(batch: Gathered) -> None:
        if batch.decoded is None:
            batch.decoded = decoder.decode(topic, batch.staged())

    return seal


def _die_with_parent(parent_pid: int) -> None:
    """Exit at once when the owner is gone: a kill -9 of the command must not leave a reader in the group."""
    with contextlib.suppress(Exception):  # Linux: the kernel sends SIGKILL when the parent dies
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(_WATCH_S)
        os._exit(1)

    threading.Thread(target=watch, name="watch-owner", daemon=True).start()


def _sendable(exc: BaseException) -> BaseException:
    try:
        pickle.dumps(exc)
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


def _tune_gc() -> None:
    """Collect cycles rarely: the Kafka client allocates objects per record, nearly all freed by
    reference counting, and the default thresholds (a young collection every 700 allocations)
    cost about a quarter of the reader's CPU at full speed with kafka-python (BENCHMARKS.md). What is alive at
    start (modules, the schema registry) is frozen out of every collection."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def reader_main(conn: Connection) -> None:
    """The reader process: the consumer group loop, storing through the owner."""
    settings, bootstrap, options, quiet, parent_pid, column_types = conn.recv()
    _tune_gc()
    _die_with_parent(parent_pid)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    channel = _Channel(conn)

    def log(message: str) -> None:
        """Said by the owner, stamped like the command's other lines (printed here only when it is gone)."""
        if quiet:
            return
        try:
            channel.send(("said", message))
        except _OwnerGone:
            print(message, file=sys.stderr, flush=True)

    def assigned(partitions: list[int]) -> None:
        with contextlib.suppress(_OwnerGone):
            channel.send(("assigned", partitions, time.monotonic()))

    decoder = None
    if column_types is not None:
        try:
            decoder = BatchDecoder(column_types)
        except Exception as exc:  # chDB could not start here: the owner parses the Avro itself, as on a server
            log(f"the Kafka reader cannot decode batches itself ({exc}); the store will")
    # A crash in a native library (librdkafka, chDB) names the Python frames it came from. Enabled after chDB
    # started, which installs its own SIGSEGV handler: faulthandler prints, then hands the signal on to it.
    faulthandler.enable()
    loader = LiveLoader(
        settings,
        _remote_store(channel, settings.topic, decoder),
        bootstrap,
        options,
        log=log,
        on_assign=assigned,
        seal=_sealer(settings.topic, decoder),
    )
    try:
        summary = loader.run(stop)
    except _OwnerGone:
        os._exit(1)
    except BaseException as exc:  # the owner re-raises it: user errors become a sentence there
        with contextlib.suppress(_OwnerGone):
            channel.send(("error", _sendable(exc)))
        return
    finally:
        if decoder is not None:
            decoder.close()
    with contextlib.suppress(_OwnerGone):
        channel.send(("done", summary))


# -- the owner (this process) --------------------------------------------------------------


class _Owner:
    def __init__(
        self,
        sink: Sink,
        topic: str,
        conn: Connection,
        on_assign: Callable[[list[int], float], None] | None,
        on_stored: Callable[[BatchResult], None] | None,
        log: Callable[[str], None],
    ) -> None:
        self.sink = sink
        self.log = log
        self.topic = topic
        self.conn = conn
        self.on_assign = on_assign
        self.on_stored = on_stored
        self.summary: RunSummary | None = None
        self.error: BaseException | None = None
        self.tally = RunSummary()  # what this owner stored for the current reader

    def _news(self, message: tuple[Any, ...]) -> bool:
        """Handle ``message`` if it is news (an assignment, a line the reader says); whether it was."""
        if message[0] == "said":
            self.log(message[1])
            return True
        if message[0] != "assigned":
            return False
        if self.on_assign is not None:
            self.on_assign(message[1], message[2])
        return True

    def _recv(self) -> tuple[Any, ...]:
        """The next message that is not news (news is handled on the way): for replies the reader owes."""
        while True:
            message: tuple[Any, ...] = self.conn.recv()
            if not self._news(message):
                return message

    def handle(self) -> None:
        """Handle the one message waiting. News alone returns at once: with no batch coming (an idle topic,
        a broker down) the caller must stay free to pass a SIGTERM on to the reader."""
        message: tuple[Any, ...] = self.conn.recv()
        if self._news(message):
            return
        kind = message[0]
        if kind == "batch":
            self._store(message[1], message[2])
        elif kind == "done":
            self.summary = message[1]
        elif kind == "error":
            self.error = message[1]
        else:
            raise ReaderError(f"the Kafka reader sent an unexpected {kind!r}")

    def _raws(self, positions: Sequence[tuple[int, int]]) -> list[bytes]:
        self.conn.send(("raw?", list(positions)))
        reply = self._recv()
        if reply[0] != "raw":
            raise ReaderError(f"the Kafka reader answered {reply[0]!r} to a request for raw messages")
        values: list[bytes] = reply[1]
        return values

    def _store(self, staged: list[StagedGroup], dead: list[DeadLetter]) -> None:
        """Store a batch and answer; what is stored is also tallied here (a reader that crashes says nothing)."""
        try:
            result = store_staged(self.sink, self.topic, staged, dead, self._raws)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                self.conn.send(("failed", f"{type(exc).__name__}: {exc}"))
            raise
        if result is None:  # the reader isolates the poison and sends the rest as a new batch
            self.conn.send(("refused", "ClickHouse cannot decode a block of this batch"))
            return
        self.tally.batches += 1
        self.tally.totals.merge(result)
        self.conn.send(("stored", result))
        if self.on_stored is not None:
            self.on_stored(result)


def load_live(
    settings: Settings,
    sink: Sink,
    bootstrap: str,
    options: RunOptions,
    stop: threading.Event,
    *,
    broker: BrokerHandle | None = None,
    log: Callable[[str], None] = lambda _m: None,
    quiet: bool = False,
    on_assign: Callable[[list[int], float], None] | None = None,
    on_stored: Callable[[BatchResult], None] | None = None,
    reader_decodes: bool = True,
) -> RunSummary:
    """Run the loader until ``stop`` is set (or ``options.stop_after_idle_s``): the reader in a child process.

    ``on_assign(partitions, monotonic time)`` and ``on_stored(result)`` are
    called in this process (progress, benchmarks). ``reader_decodes=False`` leaves parsing the Avro to this
    process even on the embedded store (as on a server; benchmarks compare the two).
    """
    # On the embedded store the reader decodes each batch itself (consumers.readerdecode), with the store's
    # column types (short lists as their inner type, converted on insert); a server parses Avro on its own cores.
    column_types = sink.read_columns if sink.store.kind == "embedded" and reader_decodes else None

    def start_reader() -> tuple[subprocess.Popen[bytes], Connection]:
        # A fresh interpreter, not fork (never fork a process running chDB's threads) and not
        # multiprocessing's spawn (it re-imports the caller's main module).
        ours_sock, theirs_sock = socket.socketpair()
        process = subprocess.Popen(
            [sys.executable, "-m", "consumers.readerproc", str(theirs_sock.fileno())],
            pass_fds=(theirs_sock.fileno(),),
        )
        theirs_sock.close()
        conn = Connection(ours_sock.detach())
        conn.send((settings, bootstrap, options, quiet, os.getpid(), column_types))
        return process, conn

    original_broker = broker
    reader, ours = start_reader()
    owner = _Owner(sink, settings.topic, ours, on_assign, on_stored, log)
    carried = RunSummary()  # what earlier readers, which crashed, had stored
    crashes: list[float] = []
    signalled = False
    last_check = time.monotonic()
    try:
        while owner.summary is None and owner.error is None:
            if stop.is_set() and not signalled:
                reader.terminate()  # SIGTERM: the reader stores its current batch, commits and says "done"
                signalled = True
            now = time.monotonic()
            if now - last_check >= 2.0:
                broker = restart_if_exited(broker, settings, log) or broker
                last_check = now
            try:
                if ours.poll(0.2):
                    owner.handle()
                    continue
                if reader.poll() is None or ours.poll(0):
                    continue
            except (EOFError, BrokenPipeError, ConnectionResetError):
                pass  # the reader is gone, maybe in the middle of a batch (stored, not committed: replayed)
            if signalled or not _crashed(reader, crashes, log):
                break
            carried.batches += owner.tally.batches
            carried.totals.merge(owner.tally.totals)
            ours.close()
            reader, ours = start_reader()
            owner.conn, owner.tally = ours, RunSummary()
    finally:
        if reader.poll() is None and owner.summary is None:
            reader.terminate()
        try:
            reader.wait(timeout=30)
        except subprocess.TimeoutExpired:
            reader.kill()
            reader.wait()
        ours.close()
        stop_restarted(original_broker, broker)  # a broker restarted here; the caller stops the one it gave
    if owner.error is not None:
        raise owner.error
    if owner.summary is None:
        raise ReaderError(
            f"the Kafka reader process stopped unexpectedly (exit code {reader.returncode}); what it stored is kept "
            "and the next `dossier consume run` goes on from the last committed batch"
        )
    summary = owner.summary
    summary.batches += carried.batches
    summary.totals.merge(carried.totals)
    return summary


#: A reader killed by a signal is started again at most this many times in this many seconds.
READER_RESTARTS: Final = 3
READER_RESTART_WINDOW_S: Final = 600.0


def _crashed(reader: subprocess.Popen[bytes], crashes: list[float], log: Callable[[str], None]) -> bool:
    """Whether the reader that stopped was killed by a signal and may be started again (logged when it was)."""
    try:
        code = reader.wait(timeout=5)
    except subprocess.TimeoutExpired:  # it closed the pipe but lives on: stopped below, not replaced
        return False
    if code >= 0:
        return False
    now = time.monotonic()
    crashes[:] = [t for t in crashes if now - t < READER_RESTART_WINDOW_S]
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    if len(crashes) >= READER_RESTARTS:
        log(
            f"the Kafka reader process was killed by {name}, the {len(crashes) + 1}th time in "
            f"{READER_RESTART_WINDOW_S / 60:.0f} minutes; not starting it again"
        )
        return False
    crashes.append(now)
    log(
        f"the Kafka reader process was killed by {name}; starting a new one, which goes on from the last "
        "committed offsets (what was stored meanwhile is not stored twice)"
    )
    return True


if __name__ == "__main__":
    reader_main(Connection(int(sys.argv[1])))
