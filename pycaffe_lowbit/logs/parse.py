"""Parse Caffe training logs (glog format) into train and test rows.

The counterpart of Caffe's ``tools/extra/parse_log.py``; it reads logs written
by official Caffe and by pycaffe_lowbit alike::

    I20261123 09:19:55.350546 29233 solver.cpp:239] Iteration 0 (... iter/s, ...), loss = 2.30833
    I20261123 09:19:55.350675 29233 solver.cpp:258]     Train net output #0: loss = 2.30833 (* 1 = ...)
    I20261123 09:19:55.350716 29233 sgd_solver.cpp:112] Iteration 0, lr = 0.01
    I20261123 09:19:55.242676 29233 solver.cpp:347] Iteration 0, Testing net (#0)
    I20261123 09:19:55.292518 29233 solver.cpp:414]     Test net output #0: accuracy = 0.101562

Both glog date stamps are read: ``I1123 ...`` (month and day) and
``I20261123 ...`` (newer glog, with the year). Without a year, a month that goes
backwards is taken as the turn of a year.

Rows are ``OrderedDict`` s whose first columns are those of ``parse_log.py``:

* train rows: ``NumIters``, ``Seconds``, ``LearningRate``, then ``SmoothedLoss``
  (the ``Iteration N (...), loss = X`` value: the total weighted loss averaged
  over ``average_loss`` iterations, which Caffe displays), then one column per
  ``Train net output #k: NAME = VALUE`` (the unweighted output value);
* test rows: ``NumIters``, ``Seconds``, ``LearningRate``, then one column per
  ``Test net output #k: NAME = VALUE``; when the log tests several nets, a
  ``TestNet`` column (the ``#k`` of ``Testing net (#k)``) follows ``LearningRate``.

``Seconds`` counts from the ``Solving ...`` line (the first time-stamped line
when there is none). Differences from ``parse_log.py``, on purpose: the learning
rate of a train row is the one Caffe printed for that iteration (parse_log.py
gives each row the rate printed one iteration earlier); a test row gets the
rate of its iteration (or of the last one before it); iterations are integers;
the final ``Iteration N, loss = X`` line yields a train row (with no output
columns); the extra ``SmoothedLoss`` column.
"""
import csv
import datetime
import math
import os
import re
from collections import OrderedDict

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)"
_PREFIX = re.compile(
    r"^[IWEF](\d{8}|\d{4}) (\d\d):(\d\d):(\d\d)(?:\.(\d+))?\s+\S+\s+[^\]]*\]\s?(.*)$")
_TRAIN_LOSS = re.compile(r"Iteration (\d+)(?: \([^)]*\))?, loss = (%s)" % _NUM)
_LR = re.compile(r"Iteration (\d+), lr = (%s)" % _NUM)
_TESTING = re.compile(r"Iteration (\d+), Testing net \(#(\d+)\)")
_ITERATION = re.compile(r"Iteration (\d+)")
_TRAIN_OUT = re.compile(r"Train net output #(\d+): (\S+) = (%s)" % _NUM)
_TEST_OUT = re.compile(r"Test net output #(\d+): (\S+) = (%s)" % _NUM)
_BASE_YEAR = 2000  # a leap year, so that 0229 parses in logs without a year

TRAIN_KEYS = ("NumIters", "Seconds", "LearningRate", "SmoothedLoss")
TEST_KEYS = ("NumIters", "Seconds", "LearningRate")


class LogParseError(ValueError):
    """A log that cannot be read or holds no training iterations."""


def _line_time(match, year):
    stamp = match.group(1)
    if len(stamp) == 8:
        year, stamp = int(stamp[:4]), stamp[4:]
    frac = match.group(5) or "0"
    micro = int((frac + "000000")[:6])
    return datetime.datetime(year, int(stamp[:2]), int(stamp[2:]), int(match.group(2)),
                             int(match.group(3)), int(match.group(4)), micro)


def _timed_lines(lines):
    """Yield (datetime, message) for every glog line; others are skipped."""
    year = _BASE_YEAR
    last = None
    for line in lines:
        m = _PREFIX.match(line.rstrip("\r\n"))
        if not m:
            continue
        try:
            t = _line_time(m, year)
        except ValueError:
            continue
        if len(m.group(1)) == 4 and last is not None and t.month < last.month:
            year += 1
            t = t.replace(year=year)
        last = t
        yield t, m.group(6)


def _read_lines(source):
    if isinstance(source, (str, bytes, os.PathLike)):
        try:
            with open(source, "r", errors="replace") as f:
                return f.read().splitlines()
        except OSError as exc:
            raise LogParseError("cannot read log %s: %s" % (os.fspath(source),
                                                            exc.strerror or exc)) from exc
    return list(source)


def parse_log(source):
    """Parse a Caffe log (a path, or an iterable of lines).

    Returns ``(train_rows, test_rows)``: lists of ``OrderedDict`` rows as the
    module docstring describes, in the order they appear in the log.
    """
    timed = list(_timed_lines(_read_lines(source)))
    start = None
    for t, msg in timed:
        if msg.startswith("Solving"):
            start = t
            break
    if start is None and timed:
        start = timed[0][0]

    train, test = [], []
    cur_train = cur_test = None
    iteration = None
    test_nets = set()

    def train_row(it, t):
        nonlocal cur_train
        if cur_train is None or cur_train["NumIters"] != it:
            cur_train = OrderedDict([("NumIters", it), ("Seconds", (t - start).total_seconds()),
                                     ("LearningRate", math.nan), ("SmoothedLoss", math.nan)])
            train.append(cur_train)
        return cur_train

    for t, msg in timed:
        m = _TESTING.search(msg)
        if m:
            iteration = int(m.group(1))
            net = int(m.group(2))
            test_nets.add(net)
            cur_test = OrderedDict([("NumIters", iteration),
                                    ("Seconds", (t - start).total_seconds()),
                                    ("LearningRate", math.nan), ("TestNet", net)])
            test.append(cur_test)
            continue
        m = _TEST_OUT.search(msg)
        if m:
            if cur_test is None:  # outputs without a "Testing net" line
                cur_test = OrderedDict([("NumIters", iteration if iteration is not None else 0),
                                        ("Seconds", (t - start).total_seconds()),
                                        ("LearningRate", math.nan), ("TestNet", 0)])
                test.append(cur_test)
            cur_test[m.group(2)] = float(m.group(3))
            continue
        m = _TRAIN_LOSS.search(msg)
        if m:
            iteration = int(m.group(1))
            train_row(iteration, t)["SmoothedLoss"] = float(m.group(2))
            continue
        m = _LR.search(msg)
        if m:
            iteration = int(m.group(1))
            train_row(iteration, t)["LearningRate"] = float(m.group(2))
            continue
        m = _TRAIN_OUT.search(msg)
        if m:
            if iteration is None:
                continue
            train_row(iteration, t)[m.group(2)] = float(m.group(3))
            continue
        m = _ITERATION.search(msg)
        if m:
            iteration = int(m.group(1))

    # Test rows: the rate in effect at their iteration.
    rates = [(r["NumIters"], r["LearningRate"]) for r in train
             if not math.isnan(r["LearningRate"])]
    for row in test:
        earlier = [lr for it, lr in rates if it <= row["NumIters"]]
        if earlier:
            row["LearningRate"] = earlier[-1]
        elif rates:
            row["LearningRate"] = rates[0][1]
    if len(test_nets) <= 1:
        for row in test:
            del row["TestNet"]
    return train, test


def columns(rows):
    """Column names of ``rows`` in order of first appearance."""
    names = OrderedDict()
    for row in rows:
        for key in row:
            names[key] = None
    return list(names)


def _cell(value):
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return repr(value)
    return value


def write_csv(path, rows, delimiter=","):
    """Write ``rows`` as CSV with a header line (missing values left empty)."""
    names = columns(rows)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, delimiter=delimiter, lineterminator="\n")
        writer.writerow(names)
        for row in rows:
            writer.writerow([_cell(row.get(k, math.nan)) for k in names])


def save_csv_files(log_path, output_dir, train, test, delimiter=","):
    """Write ``OUTDIR/<log name>.train`` and ``.test`` as parse_log.py does
    (a file with no rows is not written). Returns the paths written."""
    base = os.path.join(output_dir, os.path.basename(os.fspath(log_path)))
    written = []
    for suffix, rows in ((".train", train), (".test", test)):
        if rows:
            write_csv(base + suffix, rows, delimiter)
            written.append(base + suffix)
    return written
