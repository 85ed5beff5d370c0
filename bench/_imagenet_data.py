"""bench_data.py's ImageNet-shaped measurement (see its docstring): raw and
JPEG-encoded LMDBs of 3x256x256 records, a Data + Silence net, ``time`` of
official Caffe and of ours at 1, 2 and the default number of workers."""
import datetime
import os
import subprocess
import sys
import tempfile

import numpy as np

from _caffe import CaffeRunner, find_binary, parse_time
from _machine import cpu_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH, SIZE, CROP = 128, 256, 227
NET = """name: "imagenet_data"
layer {
  name: "data" type: "Data" top: "data" top: "label" include { phase: TRAIN }
  transform_param { mirror: true crop_size: %d mean_value: 104 mean_value: 117 mean_value: 123 }
  data_param { source: "%s" batch_size: %d backend: LMDB }
}
layer { name: "silence" type: "Silence" bottom: "data" bottom: "label" }
"""


def write_lmdbs(folder, n):
    """(raw LMDB, encoded LMDB) of ``n`` smooth 3x256x256 images (JPEG
    quality 90 for the encoded one, as cv2.imencode's default is 95)."""
    import cv2
    from pycaffe_lowbit.data import array_to_datum, open_db
    from pycaffe_lowbit.data.datum import encoded_datum
    rng = np.random.default_rng(0)
    raw, enc = os.path.join(folder, "raw_lmdb"), os.path.join(folder, "enc_lmdb")
    with open_db(raw, "lmdb", "w") as r, open_db(enc, "lmdb", "w") as e:
        for i in range(n):
            image = cv2.GaussianBlur(rng.integers(0, 256, (SIZE, SIZE, 3), np.uint8), (7, 7), 3)
            key, label = "%08d" % i, i % 1000
            r.put(key, array_to_datum(image.transpose(2, 0, 1), label).SerializeToString())
            jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
            e.put(key, encoded_datum(jpeg.tobytes(), label).SerializeToString())
    return raw, enc


def ours(net_path, iterations, workers):
    """parse_time's dict of our ``time`` (a fresh process) with ``workers``."""
    cmd = [sys.executable, "-m", "pycaffe_lowbit.cli", "time", "-model", net_path,
           "-phase", "TRAIN", "-iterations", str(iterations), "-data_workers", str(workers)]
    proc = subprocess.run(cmd, cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=1800)
    out = parse_time(proc.stdout)
    if proc.returncode != 0 or out["average"] is None:
        raise RuntimeError("lowbit-caffe time failed (exit %d):\n%s" % (
            proc.returncode, "\n".join(proc.stdout.strip().splitlines()[-5:])))
    return out


def figures(out):
    """(average, median) seconds per iteration of a parse_time dict."""
    return out["average"], float(np.median(out["iters"]))


def imagenet(args):
    from pycaffe_lowbit.data.workers import default_workers
    default = default_workers()
    counts = sorted({1, 2, default})
    binary = find_binary(args.caffe)
    with tempfile.TemporaryDirectory() as folder:
        raw, enc = write_lmdbs(folder, args.records)
        nets = {}
        for kind, source in (("raw", raw), ("encoded", enc)):
            nets[kind] = os.path.join(folder, kind + ".prototxt")
            with open(nets[kind], "w") as f:
                f.write(NET % (CROP, source, BATCH))
        caffe = CaffeRunner(binary, NET % (CROP, raw, BATCH), 1) if binary else None
        best = {}

        def keep(key, out):
            average, median = figures(out)
            old = best.get(key, (average, median))
            best[key] = (min(old[0], average), min(old[1], median))

        for _ in range(args.repeat):        # alternating, best of each kept
            if caffe is not None:
                keep(("raw", "caffe"), caffe.run(args.iters))
            for kind in ("raw", "encoded"):
                for count in counts:
                    keep((kind, count), ours(nets[kind], args.iters, count))
        if caffe is not None:
            caffe.close()
    report(best, counts, default, args)


def report(best, counts, default, args):
    rate = lambda s: BATCH / s      # noqa: E731 -- images per second
    print("ImageNet-shaped Data layer (batch %d, 3x%dx%d records, crop %d, mirror, mean "
          "values; TRAIN), `time -iterations %d`, best of %d alternating runs"
          % (BATCH, SIZE, SIZE, CROP, args.iters, args.repeat))
    print("%s | %s UTC | %d CPUs visible (default workers %d) | %d records"
          % (cpu_model(), datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"),
             os.cpu_count() or 1, default, args.records))
    print()
    print("| records | run | ms per batch (average) | images/s | ratio | median ms "
          "per iteration | ratio of medians |")
    print("|---|---|---|---|---|---|---|")
    caffe, caffe_median = best.get(("raw", "caffe"), (None, None))
    if caffe is not None:
        print("| raw | official Caffe 9b89154 | %.1f | %.0f | 1 | %.0f | 1 |"
              % (1e3 * caffe, rate(caffe), 1e3 * caffe_median))
    name = lambda count: "ours, %d worker%s%s" % (      # noqa: E731
        count, "s" if count > 1 else "", " (default)" if count == default else "")
    for count in counts:
        s, median = best[("raw", count)]
        print("| raw | %s | %.1f | %.0f | %s | %.0f | %s |"
              % (name(count), 1e3 * s, rate(s),
                 "%.2f of Caffe's time" % (s / caffe) if caffe else "-", 1e3 * median,
                 "%.2f" % (median / caffe_median) if caffe else "-"))
    one, one_median = best[("encoded", 1)]
    for count in counts:
        s, median = best[("encoded", count)]
        print("| JPEG-encoded | %s | %.1f | %.0f | %.2fx the 1-worker rate | %.0f | %.2fx |"
              % (name(count), 1e3 * s, rate(s), one / s, 1e3 * median, one_median / median))
    print()
    if caffe is None:
        print("official Caffe not found (build it with ../shared/refcaffe/build.sh): "
              "no ours/Caffe ratio")
        return
    checks = [("raw, 1 worker: ours/Caffe <= 0.8", best[("raw", 1)][0] / caffe <= 0.8),
              ("raw, default workers: ours/Caffe <= 0.4",
               best[("raw", default)][0] / caffe <= 0.4),
              ("encoded, 2 workers >= 1.7x the 1-worker rate",
               one / best[("encoded", 2)][0] >= 1.7)]
    for text, ok in checks:
        print("target %-48s %s (averages)" % (text + ":", "met" if ok else "NOT met"))
    print("(this machine's CPUs may be shared with other work: see the load average, %s)"
          % load_average())


def load_average():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"
