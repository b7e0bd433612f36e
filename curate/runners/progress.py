"""Progress of a local run on stderr: rows read, rows left after each stage, rows written.

A pass-through step after the read and after every stage counts the rows of each batch into a
per-process meter; a daemon thread prints one status line from it every PERIOD seconds, with
the rate and, when the input's row count is known (Parquet lists say it without being read),
the share read and an ETA. On a terminal the line is redrawn in place; elsewhere (a log file,
a worker process) it is a plain line every LOG_PERIOD seconds. `--progress` decides: default
on when stderr is a terminal, `--progress=true` forces it, `--progress=false` silences it.
On several worker processes each one reports its own rows (prefixed with its pid).
"""
from __future__ import annotations

import os
import sys
import threading
import time

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from curate.flags import bool_flag

PERIOD = 1.0  # seconds between redraws on a terminal
LOG_PERIOD = 10.0  # seconds between lines elsewhere


class ProgressOptions(PipelineOptions):
    """Progress lines."""

    @classmethod
    def _add_argparse_args(cls, parser):
        bool_flag(parser, "--progress", None,
                  "print progress on stderr (rows read, left after each stage, written; rate, ETA when "
                  "the input's size is known); default: only when stderr is a terminal")


def enabled(flag: bool | None, stream=None) -> bool:
    """The --progress decision: the flag when given, else whether stderr is a terminal."""
    stream = stream or sys.stderr
    return bool(flag) if flag is not None else bool(getattr(stream, "isatty", lambda: False)())


def total_rows(source) -> int | None:
    """Rows of a Parquet URL list from its footers (cheap); None for anything else."""
    files = getattr(source, "files", None) or []
    if not files or not all(str(f).endswith(".parquet") for f in files):
        return None
    from curate.io.safe_paths import refusal

    if any(refusal(path, getattr(source, "within", None)) for path in files):
        return None  # a FIFO would block here; a list out of the input folder is not read
    try:
        import pyarrow.parquet as pq
        from apache_beam.io.filesystems import FileSystems

        total = 0
        for path in files:
            with FileSystems.open(path) as f:
                total += pq.ParquetFile(f).metadata.num_rows
        return total
    except Exception:  # noqa: BLE001 (a progress estimate never fails a run)
        return None


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Meter:
    """Counts per step in this process and the thread that prints them."""

    def __init__(self, stream=None):
        self._stream = stream  # None: whatever sys.stderr is when a line is drawn
        self.counts: dict[str, int] = {}
        self.total: int | None = None
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.drawn = False
        self.in_place = bool(getattr(self.stream, "isatty", lambda: False)())

    def add(self, step: str, rows: int, total: int | None = None) -> None:
        with self.lock:
            self.counts[step] = self.counts.get(step, 0) + rows
            if total is not None:
                self.total = total
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name="curate-progress", daemon=True)
                self.thread.start()

    def line(self) -> str:
        with self.lock:
            counts, total = dict(self.counts), self.total
        elapsed = max(time.monotonic() - self.started, 1e-9)
        read = counts.pop("read", 0)
        head = f"read {read:,} rows ({read / elapsed:,.0f}/s"
        if total:
            done = read / total
            eta = f", ETA {_clock(elapsed * (1 - done) / done)}" if 0 < done < 1 else ""
            head += f", {min(done, 1):.0%} of {total:,}{eta}"
        parts = [head + ")"] + [f"{step} {n:,}" if step == "written" else f"after {step} {n:,}"
                                for step, n in counts.items()]
        pid = "" if os.getpid() == _MAIN_PID else f"[worker {os.getpid()}] "
        return f"curate: {pid}" + " | ".join(parts)

    @property
    def stream(self):
        return self._stream or sys.stderr

    def show(self, final: bool = False) -> None:
        if not self.counts:
            return
        end = "\n" if final or not self.in_place else ""
        self.stream.write(("\r\033[K" if self.in_place else "") + self.line() + end)
        self.stream.flush()
        self.drawn = not final

    def _loop(self) -> None:
        period = PERIOD if self.in_place else LOG_PERIOD
        while _meter is self:  # a finished run's meter stops drawing
            time.sleep(period)
            if _meter is self:
                self.show()


_MAIN_PID = os.getpid()
_meter: Meter | None = None
_meter_lock = threading.Lock()


def meter() -> Meter:
    global _meter
    with _meter_lock:
        if _meter is None or getattr(_meter, "pid", None) != os.getpid():
            _meter = Meter()
            _meter.pid = os.getpid()
        return _meter


def finish() -> None:
    """The run is over: this process's last line, ended (nothing when nothing was counted); the
    next run in this process starts from zero."""
    global _meter
    with _meter_lock:
        done, _meter = _meter, None
    if done is not None and done.counts:
        done.show(final=True)


class _Tally(beam.DoFn):
    def __init__(self, step: str, total: int | None):
        self.step, self.total = step, total

    def process(self, batch):
        meter().add(self.step, len(batch), self.total)
        yield batch


def tally(batches, step: str, total: int | None = None):
    """Pass-through: counts the rows of each batch under `step`."""
    from curate.sample import SampleBatch

    return batches | f"Progress[{step}]" >> beam.ParDo(_Tally(step, total)).with_output_types(SampleBatch)
