"""Writing a new Datum database as Caffe's tools do: one transaction per 1000
records, "Processed N files." after each, and a progress bar on a terminal.

On any error the partly written database is removed, so a failed conversion
never leaves something a Data layer would read.
"""
import logging
import os
import shutil
import sys

from ..db import backend_name, open_db

log = logging.getLogger("pycaffe_lowbit")

COMMIT_EVERY = 1000


def progress(iterable, total, desc):
    """``iterable`` wrapped in a tqdm bar when stderr is a terminal (or in a
    notebook, as its widget: ``logs.progress.bar_class``); plain otherwise
    (logs and CI stay clean)."""
    from ...logs.progress import bar_class, notebook_bar
    if not (sys.stderr.isatty() or notebook_bar()):
        return iterable
    return bar_class()(iterable, total=total, desc=desc, unit="img", leave=False)


class DatumWriter:
    """``with DatumWriter(path, backend) as w: w.put(key, datum)``.

    Creates ``path`` (it must not exist), logs "Opened lmdb PATH" as Caffe's
    db code does (unless ``quiet``), commits every ``commit_every`` puts and
    once at the end, logging "Processed N files." after each commit when
    ``log_commits``. ``count`` is the number of records written.
    """

    def __init__(self, path, backend="lmdb", commit_every=COMMIT_EVERY, log_commits=True,
                 quiet=False):
        self.path = path
        self.backend = backend_name(backend)
        self.commit_every = commit_every
        self.log_commits = log_commits and not quiet
        self.quiet = quiet
        self.count = 0
        self.db = None

    def __enter__(self):
        self.db = open_db(self.path, self.backend, "w")
        if not self.quiet:
            log.info("Opened %s %s", self.backend, self.path)
        return self

    def put(self, key, datum):
        self.db.put(key, datum.SerializeToString())
        self.count += 1
        if self.count % self.commit_every == 0:
            self.db.commit()
            if self.log_commits:
                log.info("Processed %d files.", self.count)

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.db.close()
            shutil.rmtree(self.path, ignore_errors=True)
            return False
        self.db.close()
        if self.log_commits and self.count % self.commit_every != 0:
            log.info("Processed %d files.", self.count)
        return False


def remove_partial(*paths):
    """Remove outputs a failed multi-database conversion had finished."""
    for path in paths:
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.exists(path):
            os.remove(path)
