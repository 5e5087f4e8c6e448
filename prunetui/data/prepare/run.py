"""One preparation run: plan batches, detect and save in worker threads, journal in order."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from prunetui.data.prepare.crop import crop_face
from prunetui.data.prepare.decode import Key, Loaded, header_key, load_for_detection, load_photo
from prunetui.data.prepare.detect import Detection, FaceDetector, choose_faces, device_name
from prunetui.data.prepare.journal import Journal, Outcome
from prunetui.data.prepare.output import (
    is_done,
    locked,
    output_names,
    remove_empty_person_dirs,
    replace_file,
    save_png,
    tidy,
    unlink_outputs,
)
from prunetui.data.prepare.report import PrepareReport, build_report
from prunetui.data.prepare.scan import Photo, check_paths, scan_source
from prunetui.data.prepare.settings import PrepareError, Settings, default_min_face_size
from prunetui.data.prepare.skips import Skip
from prunetui.events import EventSink, Log, PrepareFinished, PrepareProgress, PrepareStarted, ignore
from prunetui.threads import allowed_cpus

MAX_WORKERS = 8  # past this the Python parts of MTCNN (per-box loops) hold the GIL


def plan_batches(photos: Sequence[Photo], keys: dict[str, Key],
                 batch_size: int) -> list[list[Photo]]:
    """Same-key photos in listing order, cut into batches.

    Detection results depend slightly on what else is in the batch (a tie in MTCNN's
    non-maximum suppression moved one box by 5 px), so batches are a function of the whole
    listing, finished photos included: a resumed run detects exactly what one run would.
    """
    groups: dict[Key, list[Photo]] = {}
    for photo in photos:
        if photo.rel in keys:
            groups.setdefault(keys[photo.rel], []).append(photo)
    batches = [g[i:i + batch_size] for g in groups.values() for i in range(0, len(g), batch_size)]
    order = {photo.rel: i for i, photo in enumerate(photos)}
    return sorted(batches, key=lambda b: order[b[0].rel])


def default_workers() -> int:
    """One detection thread per core this process may use. Not only the free ones: workers run
    torch on one thread each, so none spin-waits; beside a busy process they only share cores
    (fitting to free cores gave a run beside busy processes one worker: it took longer)."""
    return min(MAX_WORKERS, len(allowed_cpus()))


Result = tuple[Photo, list[str] | Skip]  # saved names, or why not


class _Run:
    """One pass over SRC's photos: batches are detected and saved in worker threads, while
    this thread journals them in order and sends the events."""

    def __init__(self, dst: Path, settings: Settings, journal: Journal, batch_size: int,
                 device: str, workers: int | None, on_event: EventSink,
                 should_stop: Callable[[], bool] | None) -> None:
        self.dst, self.settings, self.journal = dst, settings, journal
        self.batch_size, self.device = batch_size, device
        self.workers = workers or default_workers()
        self.on_event, self.should_stop = on_event, should_stop or (lambda: False)
        self.resolved_device: str | None = None  # set once a batch needs the detector
        self.faces = sum(len(r.faces) for r in journal.records.values())
        self.total = self.done = self.processed = 0
        self.finished: set[str] = set()
        self.keys: dict[str, Key] = {}
        self._local = threading.local()

    def execute(self, photos: Sequence[Photo], finished: set[str]) -> bool:
        """Do every photo not in ``finished``; False when stopped early (between batches)."""
        self.total, self.done, self.finished = len(photos), len(finished), finished
        try:
            self._read_keys(photos)
            batches = [b for b in plan_batches(photos, self.keys, self.batch_size)
                       if not all(p.rel in finished for p in b)]
            return self._run_batches(batches) if batches else True
        finally:
            self.journal.close()

    def _read_keys(self, photos: Sequence[Photo]) -> None:
        for photo in photos:
            if photo.rel in self.finished:
                rec = self.journal.records[photo.rel]
                if rec.key is not None:
                    self.keys[photo.rel] = (rec.key[0], rec.key[1])
                continue
            try:
                self.keys[photo.rel] = header_key(photo)
            except Skip as skip:  # not an image at all: never part of a batch
                self._finish(photo, skip)
        self.journal.flush()

    def _run_batches(self, batches: list[list[Photo]]) -> bool:
        self.resolved_device = device_name(self.device)
        import torch

        threads = torch.get_num_threads()
        pool = ThreadPoolExecutor(self.workers)
        in_flight: deque[Future[list[Result]]] = deque()
        stopped = False
        try:
            for batch in batches:
                if self.should_stop():
                    stopped = True
                    break
                in_flight.append(pool.submit(self._work, batch))
                if len(in_flight) > self.workers:
                    self._collect(in_flight.popleft().result())
            while in_flight:  # batches under way are finished and kept, even when stopping
                self._collect(in_flight.popleft().result())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            # why: a worker's set_num_threads(1) also set the count that threads starting torch
            # later begin with (a training thread would sum its floats differently)
            torch.set_num_threads(threads)
        return not stopped

    def _collect(self, results: list[Result]) -> None:
        for photo, outcome in results:
            self._finish(photo, outcome)
        self.journal.flush()  # after the PNGs: a journaled photo's outputs always exist

    # -- in worker threads -------------------------------------------------------------------

    def _detector(self) -> FaceDetector:
        if getattr(self._local, "detector", None) is None:
            if self.resolved_device == "cpu":
                import torch

                # MTCNN's kernels are small: a worker per core, each on one thread, beat OpenMP
                # teams per worker. This sets this thread's OpenMP and MKL counts only (and the
                # default for new threads, which _run_batches restores).
                torch.set_num_threads(1)
            self._local.detector = FaceDetector(self.resolved_device or self.device)
        return self._local.detector

    def _work(self, batch: list[Photo]) -> list[Result]:
        """Detect the whole batch (finished members too: they shape it), save the others."""
        results: list[Result] = []
        groups: dict[tuple[int, int, int], list[tuple[Photo, Loaded]]] = {}
        for photo in batch:
            try:
                loaded = load_for_detection(photo, self.settings.min_face_size)
            except Skip as skip:
                results.append((photo, skip))
                continue
            groups.setdefault(loaded.key, []).append((photo, loaded))
        for items in groups.values():  # EXIF rotation can split a batch
            found = self._detector().detect([loaded.image for _, loaded in items],
                                            items[0][1].min_face)
            for (photo, loaded), detection in zip(items, found, strict=True):
                if photo.rel not in self.finished:
                    results.append((photo, self._save_faces(photo, loaded, detection)))
        order = {photo.rel: i for i, photo in enumerate(batch)}
        return sorted(results, key=lambda r: order[r[0].rel])

    def _save_faces(self, photo: Photo, loaded: Loaded, detection: Detection | Skip,
                    ) -> list[str] | Skip:
        try:
            if isinstance(detection, Skip):
                raise detection
            boxes = choose_faces(detection, self.settings)
            full = load_photo(photo.path) if loaded.downscaled else loaded.image
            if full.size != loaded.size:
                raise Skip("corrupt", "the photo changed while it was being read")
        except Skip as skip:
            return skip
        sx, sy = (a / b for a, b in zip(loaded.size, loaded.image.size, strict=True))
        names = output_names(photo.name, len(boxes), self.settings.faces)
        for name, box in zip(names, boxes * [sx, sy, sx, sy], strict=True):  # full-size pixels
            face = crop_face(full, box, self.settings.margin, self.settings.output_size)
            save_png(face, self.dst / photo.person / name)
        return names

    # -- back in the calling thread ----------------------------------------------------------

    def _finish(self, photo: Photo, outcome: list[str] | Skip) -> None:
        if photo.rel in self.finished:
            return
        names = [] if isinstance(outcome, Skip) else outcome
        skip = outcome if isinstance(outcome, Skip) else None
        key = self.keys.get(photo.rel)
        record = Outcome(photo.rel, photo.size, photo.mtime_ns, names,
                         skip.reason if skip else None, skip.message if skip else "",
                         list(key) if key else None)
        previous = self.journal.add(record)
        if previous:  # a changed photo: drop outputs it no longer produces
            unlink_outputs(self.dst, photo.rel, [f for f in previous.faces if f not in names])
            self.faces -= len(previous.faces)
        self.done += 1
        self.processed += 1
        self.faces += len(names)
        self.on_event(PrepareProgress(done=self.done, total=self.total, person=photo.person,
                                      file=photo.name, faces_saved=self.faces,
                                      skipped_reason=record.reason))


def prepare_faces(src: str | Path, dst: str | Path, *, faces: str = "largest",
                  margin: float = 0.2, min_confidence: float = 0.9,
                  min_face_size: int | None = None, batch_size: int = 8, device: str = "auto",
                  workers: int | None = None, on_event: EventSink = ignore,
                  should_stop: Callable[[], bool] | None = None) -> PrepareReport:
    """Detect, crop and save the faces of ``src`` into ``dst``; resumable and idempotent.

    ``should_stop`` is polled between batches; on True the run ends cleanly with
    ``report.cancelled`` set and the rest left for the next call. Raises PrepareError for
    unusable input and StoreError when DST cannot be written. ``workers`` detection threads
    (default: one per core, up to MAX_WORKERS) each run torch with one thread.
    """
    started = time.monotonic()
    settings = Settings(faces, float(margin), float(min_confidence),
                        int(min_face_size or default_min_face_size()))
    settings.validate()
    if batch_size < 1 or (workers is not None and workers < 1):
        raise PrepareError(f"--batch-size ({batch_size}) and workers ({workers}) must be at "
                           "least 1.")
    src_path, dst_path = check_paths(src, dst)
    scan = scan_source(src_path)
    with locked(dst_path):
        journal = Journal(src_path, dst_path, settings, batch_size)
        tidy(dst_path, journal, scan)
        finished = {p.rel for p in scan.photos
                    if is_done(p, journal.records.get(p.rel), dst_path)}
        on_event(PrepareStarted(src=str(src_path), dst=str(dst_path), total=len(scan.photos),
                                people=len(scan.people)))
        if finished:
            on_event(Log(f"{len(finished)} of {len(scan.photos)} photos were already prepared; "
                         f"{len(scan.photos) - len(finished)} to go."))
        if journal.batch_size != batch_size:
            on_event(Log(f"Continuing with batch size {journal.batch_size}, the size {dst_path} "
                         "was started with, so the result equals one uninterrupted run.",
                         level="warning"))
        run = _Run(dst_path, settings, journal, journal.batch_size, device,
                   workers, on_event, should_stop)
        complete = run.execute(scan.photos, finished)
        report = build_report(src_path, dst_path, settings, scan, journal.records)
        remove_empty_person_dirs(dst_path, report.people_without_faces)
        report.processed, report.reused = run.processed, len(finished)
        report.cancelled = not complete
        report.device = run.resolved_device
        report.seconds = time.monotonic() - started
        text = report.to_json()
        replace_file(report.report_path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    on_event(PrepareFinished(dst=str(dst_path), report_path=str(report.report_path),
                             photos=report.photos, faces_saved=report.faces_saved,
                             skipped=len(report.skipped), cancelled=report.cancelled))
    return report
