"""pd-analyse: analyse signal files and folders against a running PD service.

    pd-analyse captures/ more.parquet --url http://127.0.0.1:8080 --out results/

Writes results.jsonl (the service's answer per signal), regions.csv (one row per region),
prpd.png and report.html into --out. Ctrl-C keeps what is finished; running the same command
again skips it. Exit status: 0 all analysed, 1 something failed (each failure is listed with
the service's message), 2 bad usage, 130 interrupted.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import os
import queue
import signal as signals_module
import sys
import threading
from pathlib import Path
from typing import Iterator

from tqdm import tqdm

from . import __version__
from .batching import (DEFAULT_MAX_COST, DEFAULT_MAX_SIGNALS, MIN_SIGNAL_COST, SIGNAL_OVERHEAD, Batch, Budget, Item,
                       batches)
from .inputs import InputFile, InputFileError, count_signals, discover, iter_signals, load_signal, signal_problem
from .report import build_report, signal_warnings
from .service import Outcome, Service, ServiceError
from .store import ResultStore, SettingsMismatch, StoreDamaged

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
ANALYSIS_OPTIONS = ("threshold", "sampling_rate_hz", "power_frequency_hz", "samples_per_cycle")


def _parsed(text: str, kind=float):
    """``text`` as a number of ``kind``; argparse's own message for a ValueError named the
    function ("invalid _threshold value")."""
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'a whole number' if kind is int else 'a number'}") from None


def _positive(text: str) -> float:
    value = _parsed(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a positive, finite number")
    return value


def _retries(text: str) -> int:
    value = _parsed(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text}: retries are 0 or more")
    return value


def _url(text: str) -> str:
    # Without a scheme every request failed with a connection adapter's error, one batch at a time.
    if not text.lower().startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"{text}: give the inference address with http:// or https://")
    # The README's curl lines name the whole prediction address; the client adds that path itself.
    if "/predictions" in text.split("://", 1)[1].lower():
        raise argparse.ArgumentTypeError(f"{text}: give the server's address without the path "
                                         "(http://host:8080): the client adds /predictions/pd_segmenter")
    return text


def _finite_from(least: float, what: str, strictly: bool = False):
    """An argparse type: a finite number of at least ``least`` (over it with ``strictly``)."""
    def number(text: str) -> float:
        value = _parsed(text)
        if not (value > least if strictly else value >= least) or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{text}: {what}")
        return value
    return number


_sampling_rate = _finite_from(1.0, "a sampling rate is at least 1 Hz (and finite)")
_frequency = _finite_from(0.0, "not a positive, finite number", strictly=True)
_samples_per_cycle = _finite_from(3.0, "a period is at least 3 samples (and finite)")


def _threshold(text: str) -> float:
    value = _parsed(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError("the threshold lies between 0 and 1")
    return value


def _count(text: str) -> int:
    value = _parsed(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a count of at least 1")
    return value


def _work(text: str) -> int:
    # Under one smallest signal's cost every signal failed, each with a negative limit named as the service's.
    value = _parsed(text, int)
    if value < Budget.cost(1):
        raise argparse.ArgumentTypeError(f"{text}: the work of one signal is at least {Budget.cost(1):,} "
                                         f"({MIN_SIGNAL_COST:,} samples, its smallest window, plus {SIGNAL_OVERHEAD:,})")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pd-analyse", description="Analyse .npy, .csv, .f32 and Parquet (VSB layout) files or folders "
        "with a running PD segmentation service.")
    parser.add_argument("inputs", nargs="+", help="files or folders (searched recursively)")
    parser.add_argument("--url", type=_url, default=os.environ.get("PD_URL", "http://127.0.0.1:8080"),
                        help="the service's inference address (default: $PD_URL or %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("pd-results"), help="output folder (default: %(default)s)")
    analysis = parser.add_argument_group("analysis options (sent with every request)")
    analysis.add_argument("--threshold", type=_threshold, help="PD probability threshold, 0-1 (default: the model's)")
    analysis.add_argument("--sampling-rate-hz", type=_sampling_rate)
    analysis.add_argument("--power-frequency-hz", type=_frequency)
    analysis.add_argument("--samples-per-cycle", type=_samples_per_cycle)
    connection = parser.add_argument_group("connection")
    connection.add_argument("--concurrency", type=_count, default=2, help="requests in flight (default: %(default)s)")
    connection.add_argument("--timeout", type=_positive, default=300.0, help="seconds to wait for one answer (default: %(default)s)")
    connection.add_argument("--retries", type=_retries, default=8,
                            help="retries after a 503 or a connection error, with backoff (default: %(default)s)")
    tokens = connection.add_mutually_exclusive_group()
    tokens.add_argument("--token", help="inference key of a server with token authorization (or $PD_TOKEN)")
    tokens.add_argument("--token-file", type=Path,
                        help="file holding the key, or TorchServe's key_file.json (or $PD_TOKEN_FILE)")
    limits = parser.add_argument_group("request size")
    limits.add_argument("--max-signals-per-request", type=_count, default=DEFAULT_MAX_SIGNALS)
    limits.add_argument("--max-samples-per-request", type=_work, default=DEFAULT_MAX_COST,
                        help="work per request: each signal counts its samples, at least 1024, plus 14336 "
                        "(the service's reckoning; default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


@dataclasses.dataclass
class Failure:
    file: str
    signal: object  # None: the whole file
    status: int | None
    message: str

    def line(self) -> str:
        where = self.file if self.signal is None else f"{self.file} signal {self.signal}"
        return f"{where}: {'HTTP ' + str(self.status) + ': ' if self.status else ''}{self.message}"


@dataclasses.dataclass
class Run:
    """One invocation's state, shared by the reading loop and the finishing steps."""
    args: argparse.Namespace
    store: ResultStore
    service: Service
    files: dict[str, InputFile]
    failures: list[Failure] = dataclasses.field(default_factory=list)
    analysed: int = 0
    stop_reason: str | None = None
    stop: threading.Event = dataclasses.field(default_factory=threading.Event)

    def fail(self, failure: Failure) -> None:
        self.failures.append(failure)
        self.store.add_failure(failure.file, failure.signal, failure.status, failure.message)


def analysis_options(args: argparse.Namespace) -> dict:
    return {name: getattr(args, name) for name in ANALYSIS_OPTIONS if getattr(args, name) is not None}


def make_service(args: argparse.Namespace) -> Service:
    token = args.token or (None if args.token_file else os.environ.get("PD_TOKEN"))
    key_file = args.token_file or (Path(os.environ["PD_TOKEN_FILE"]) if not token and os.environ.get("PD_TOKEN_FILE") else None)
    return Service(args.url, analysis_options(args), token=token, key_file=key_file,
                   timeout=args.timeout, retries=args.retries)


def pending_items(run: Run, done: dict[str, frozenset], progress: tqdm) -> Iterator[Item]:
    """Every signal not analysed yet; unreadable files and signals the service would refuse
    become failures here, without a request."""
    for source in run.files.values():
        try:
            for signal_id, values in iter_signals(source, skip=done.get(source.name, frozenset())):
                problem = signal_problem(values) or too_long(values, run.args.max_samples_per_request)
                if problem:
                    run.fail(Failure(source.name, signal_id, None, problem))
                    progress.update(1)
                    continue
                yield Item(source.name, signal_id, values)
        except Exception as error:  # an unreadable file, or a reader's own failure on it: the run goes on
            run.fail(Failure(source.name, None, None, file_problem(error)))


def too_long(values, max_cost: int) -> str | None:
    """Why the service would refuse a signal over its work limit on its own, said before its
    body is sent (a stranger's probe: 12-50 MB were uploaded for a 413 that spoke of float64)."""
    if Budget.cost(len(values)) <= max_cost:
        return None
    return (f"{len(values):,} samples: the service analyses one signal of up to "
            f"{max_cost - SIGNAL_OVERHEAD:,} samples (its work limit): cut the capture into parts, or decimate it")


def file_problem(error: Exception) -> str:
    """What a file that could not be read gets said of it: the reader's words, or, where a reader
    failed in a way of its own, its error named (a Parquet file with two columns of one name
    raised a KeyError that ended the whole run)."""
    if isinstance(error, (InputFileError, OSError, UnicodeDecodeError)):
        return str(error)
    return f"could not be read ({type(error).__name__}: {error})"


def _worker(run: Run, work: queue.Queue, finished: queue.Queue) -> None:
    while True:
        batch = work.get()
        if run.stop.is_set():
            finished.put((batch, None))  # not sent: stays to do for the next run
            continue
        try:
            finished.put((batch, run.service.analyse(batch)))
        except Exception as error:  # a bug must not hang the run: the batch fails, visibly
            finished.put((batch, Outcome(failures=[(item, ServiceError(None, f"client error: {error!r}"))
                                                   for item in batch.items])))


def _record(run: Run, batch: Batch, outcome: Outcome | None, progress: tqdm) -> None:
    if outcome is None:
        return
    for item, entry, model in outcome.answers:
        run.store.add_result(item.file, item.signal, model, entry)
    for item, error in outcome.failures:
        run.fail(Failure(item.file, item.signal, error.status, error.message))
        if error.fatal and not run.stop.is_set():
            run.stop_reason = (f"the service answered {error}" if error.status is not None
                               else f"the service could not be reached or read: {error}")
            run.stop.set()
    run.store.flush()
    run.analysed += len(outcome.answers)
    progress.update(len(outcome.answers) + len(outcome.failures))
    progress.set_postfix(failed=len(run.failures), refresh=False)


def send_all(run: Run, items: Iterator[Item], progress: tqdm) -> None:
    """Batches to ``--concurrency`` threads, answers recorded as they come (this thread only
    writes files). A bounded queue keeps reading just ahead of sending."""
    work: queue.Queue = queue.Queue(maxsize=run.args.concurrency)
    finished: queue.Queue = queue.Queue()
    for _ in range(run.args.concurrency):
        # Daemon threads: an interrupted run leaves without waiting for answers in flight.
        threading.Thread(target=_worker, args=(run, work, finished), daemon=True).start()
    sent = received = 0

    def drain(wait: float) -> None:
        nonlocal received
        try:
            while True:
                batch, outcome = finished.get(timeout=wait)
                received += 1
                _record(run, batch, outcome, progress)
                wait = 0
        except queue.Empty:
            pass

    budget = Budget(run.args.max_signals_per_request, run.args.max_samples_per_request)
    for batch in batches(items, budget):
        while not run.stop.is_set():
            drain(0)
            try:
                work.put(batch, timeout=0.1)
                sent += 1
                break
            except queue.Full:
                continue
        if run.stop.is_set():
            break
    while received < sent:
        drain(0.1)


def _loader(run: Run):
    def load(file: str, signal_id):
        source = run.files.get(file) or InputFile(Path(file), file)
        try:
            return load_signal(source, signal_id)
        except (InputFileError, OSError, ValueError, KeyError, IndexError):
            return None  # the file moved or changed since: the report goes without its picture
    return load


def finish(run: Run, settings: dict) -> list[tuple[str, object, str]]:
    """regions.csv, prpd.png and report.html over everything the folder holds; returns the
    signals that carry the service's warnings (file, signal, text)."""
    run.store.flush()
    run.store.sort_results(list(run.files))
    run.store.write_regions_csv()
    records = list(run.store.records())
    failures = [dataclasses.asdict(failure) | {"error": failure.message} for failure in run.failures]
    page, prpd_png, _ = build_report(records, settings, failures, _loader(run), run.args.sampling_rate_hz)
    (run.store.folder / "prpd.png").write_bytes(prpd_png)
    (run.store.folder / "report.html").write_text(page, encoding="utf-8")
    return signal_warnings(records)


def run_settings(run: Run, started: datetime.datetime, already: int, state: str) -> dict:
    """What the report says about this run."""
    options = analysis_options(run.args)
    return {"service": run.args.url, "inputs": ", ".join(run.args.inputs),
            "analysis options": ", ".join(f"{key}={value:g}" for key, value in options.items()) or "the model's defaults",
            "client": f"pd-analyse {__version__}", "started": started.isoformat(timespec="seconds"),
            "finished": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "signals analysed in this run": run.analysed, "analysed before (resumed)": already,
            "requests retried (503, connection)": run.service.retried, "state": state}


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def count_signals_to_do(run: Run, done: dict[str, frozenset]) -> tuple[int, int]:
    """(signals in all readable files, of which already analysed); an unreadable file fails."""
    total = already = 0
    for source in list(run.files.values()):
        try:
            count = count_signals(source)
        except Exception as error:  # an unreadable file, or a reader's own failure on it
            run.fail(Failure(source.name, None, None, file_problem(error)))
            run.files.pop(source.name)
            continue
        if count == 0:
            # docs/client.md: a file without signals fails with a message (it passed in silence).
            run.fail(Failure(source.name, None, None, "holds no signals"))
            run.files.pop(source.name)
            continue
        total += count
        already += min(len(done.get(source.name, ())), count)
    return total, already


def analyse_until_done_or_interrupted(run: Run, done: dict[str, frozenset], to_do: int) -> bool:
    """Send everything not done; True when Ctrl-C or SIGTERM cut the run short."""
    progress = tqdm(total=to_do, unit="signal", desc="pd-analyse", disable=run.args.no_progress,
                    dynamic_ncols=True, mininterval=0.5)
    run.service.on_first_retry = lambda problem, retries: tqdm.write(
        f"pd-analyse: {problem}; retrying, with backoff, up to {retries} times a request", file=sys.stderr)
    try:
        send_all(run, pending_items(run, done, progress), progress)
        return False
    except KeyboardInterrupt:
        run.stop.set()
        return True
    finally:
        progress.close()


@contextlib.contextmanager
def interrupts_as(handler):
    """SIGTERM (a stopped job or container) and Ctrl-C handled by ``handler`` within the block,
    on the main thread (a signal handler can be set nowhere else)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signals_module.signal(number, handler)
                for number in (signals_module.SIGINT, signals_module.SIGTERM)}
    try:
        yield
    finally:
        for number, handler_before in previous.items():
            signals_module.signal(number, handler_before)


def finish_whatever_comes(run: Run, settings: dict) -> tuple[list[tuple[str, object, str]], bool]:
    """:func:`finish`, with Ctrl-C and SIGTERM held until its files are written (a stranger's
    probe: one in its last seconds left a report stale against the new regions.csv, or a
    traceback); also whether one came meanwhile."""
    came: list[int] = []
    with interrupts_as(lambda signum, frame: came.append(signum)):
        warned = finish(run, settings)
    return warned, bool(came)


def run_analysis(args: argparse.Namespace) -> int:
    started = datetime.datetime.now().astimezone()
    try:
        store = ResultStore(args.out)
        store.check_settings(analysis_options(args))
        done = store.done()
    except SettingsMismatch as error:
        print(f"pd-analyse: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (StoreDamaged, OSError) as error:  # not this client's folder, or damaged
        print(f"pd-analyse: --out {args.out}: {error}: use another --out folder, or delete this one to "
              "start over", file=sys.stderr)
        return EXIT_USAGE
    try:
        service = make_service(args)
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"pd-analyse: the key file {args.token_file or os.environ.get('PD_TOKEN_FILE')} cannot be read: "
              f"{error}", file=sys.stderr)
        return EXIT_USAGE
    sources, rejected = discover(args.inputs, leave_out=args.out)
    run = Run(args, store, service, {source.name: source for source in sources})
    for name, reason in rejected:
        run.fail(Failure(name, None, None, reason))
    # Ctrl-C or SIGTERM while the inputs are counted or sent: what is finished is kept and reported.
    with interrupts_as(_raise_interrupt):
        try:
            total, already = count_signals_to_do(run, done)
            print(f"{len(run.files)} files, {total} signals; {already} already analysed in {args.out}, "
                  f"{total - already} to go, to {run.service.predict_url}", file=sys.stderr, flush=True)
            interrupted = analyse_until_done_or_interrupted(run, done, total - already)
        except KeyboardInterrupt:  # while counting: nothing sent
            run.stop.set()
            interrupted, already = True, sum(len(signals) for signals in done.values())
    state = "interrupted" if interrupted else (f"stopped: {run.stop_reason}" if run.stop_reason else "complete")
    warned, interrupted_while_finishing = finish_whatever_comes(run, run_settings(run, started, already, state))
    interrupted = interrupted or interrupted_while_finishing
    store.close()
    for failure in run.failures:
        print(f"FAILED {failure.line()}", file=sys.stderr)
    if warned:
        texts = sorted({text for _, _, text in warned})
        print(f"{len(warned)} signals carry warnings from the service (report.html, results.jsonl): "
              + " | ".join(texts[:3]) + (f" | and {len(texts) - 3} more" if len(texts) > 3 else ""), file=sys.stderr)
    print(f"{run.analysed} signals analysed, {len(run.failures)} failed; results in {args.out}/ "
          f"(report.html, regions.csv, results.jsonl)", file=sys.stderr)
    if interrupted:
        print("interrupted: run the same command again to analyse the rest", file=sys.stderr)
        return EXIT_INTERRUPTED
    if run.stop_reason:
        print(f"stopped early: {run.stop_reason}", file=sys.stderr)
    return EXIT_FAILED if run.failures or run.stop_reason else EXIT_OK


# The service's rule (pdseg.decode.PERIOD_AGREEMENT): both ways of giving the period must agree.
PERIOD_AGREEMENT = 0.01


def check_period_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The period options the service would refuse for every signal, refused once here (exit 2)."""
    if args.power_frequency_hz is not None and args.sampling_rate_hz is None:
        parser.error("--power-frequency-hz needs --sampling-rate-hz (the period is their ratio): "
                     "add it, or leave --power-frequency-hz out")
    if args.power_frequency_hz is not None and args.sampling_rate_hz is not None:
        derived = args.sampling_rate_hz / args.power_frequency_hz
        given = args.samples_per_cycle
        if given is not None and abs(derived - given) > PERIOD_AGREEMENT * given:
            parser.error(f"--samples-per-cycle {given:g} and --sampling-rate-hz / --power-frequency-hz "
                         f"({derived:.6g}) give two periods: give one of them")
        if given is None and not 3 <= derived < float("inf"):
            parser.error(f"--sampling-rate-hz / --power-frequency-hz gives {derived:.3g} samples per cycle; "
                         "a period is at least 3 (and finite)")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_period_options(parser, args)
    if Path(args.out).exists() and not Path(args.out).is_dir():
        parser.error(f"--out {args.out} is a file: name a folder (made if missing)")
    try:
        Path(args.out).mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a file on its path, no permission, a read-only disk
        parser.error(f"--out {args.out} cannot be made: {error.strerror or error}")
    return run_analysis(args)


if __name__ == "__main__":
    sys.exit(main())
