"""Data and ImageData layers: official Caffe's Data layer output and
convert_imageset LMDBs reproduced exactly, round trips, cycling, several
readers, rand_skip, prefetch determinism, and the errors."""
import os

import cv2
import numpy as np
import pytest

import pycaffe_lowbit as caffe
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.data import array_to_datum, open_db
from pycaffe_lowbit.formats.text import parse_net_text
from pycaffe_lowbit.layers.base import LayerSetupError
from support.helpers import captured_log
from support import paths

IO = os.path.join(paths.GOLDEN, "io")
SOLVERS = os.path.join(paths.GOLDEN, "solvers")
DIGITS = os.path.join(SOLVERS, "digits_train_lmdb")


def net_of(text, phase=caffe.TEST):
    return caffe.Net(parse_net_text(text), phase)


def data_net(source, batch=4, transform="", extra="", phase=caffe.TEST, name="data",
             tops=("data", "label")):
    return net_of('layer { name: "%s" type: "Data" %s transform_param { %s } '
                  'data_param { source: "%s" batch_size: %d backend: LMDB %s } }'
                  % (name, " ".join('top: "%s"' % t for t in tops), transform, source,
                     batch, extra), phase)


def batches(net, n, blob="data"):
    out = []
    for _ in range(n):
        net.forward()
        out.append(backend.to_numpy(net.blobs[blob].data).copy())
    return out


def golden_records(name):
    g = np.load(os.path.join(IO, name + ".npz"))
    return [g["data__%d" % i] for i in range(len(g["keys"]))], list(g["labels"])


# -- official Caffe's Data layer -------------------------------------------------------

def golden_net(name, monkeypatch, xp=np, prefetch=""):
    golden = np.load(os.path.join(IO, name + ".npz"))
    monkeypatch.chdir(IO)                     # the golden run's working directory
    text = str(golden["prototxt"]).replace("backend: LMDB", "backend: LMDB " + prefetch)
    phase = caffe.TRAIN if str(golden["phase"]) == "TRAIN" else caffe.TEST
    return golden, net_of(text, phase)


def test_data_layer_test_phase_matches_caffe(monkeypatch, xp):
    golden, net = golden_net("data_layer_test", monkeypatch)
    assert net.blobs["data"].shape == (16, 1, 24, 24) and net.blobs["data"].xp is xp
    for k in range(3):
        net.forward()
        assert np.array_equal(backend.to_numpy(net.blobs["data"].data), golden["out__data"][k])
        assert np.array_equal(backend.to_numpy(net.blobs["label"].data), golden["out__label"][k])


def test_data_layer_train_phase_matches_caffe_given_its_crops(monkeypatch):
    golden, net = golden_net("data_layer_train", monkeypatch, prefetch="prefetch: 0")
    draws = iter(golden["train_crop_h_w_mirror"])          # (h_off, w_off, mirrored)
    net.layers[0].transformer.draw = lambda heights, widths: tuple(next(draws).T)
    for k in range(3):
        net.forward()
        assert np.array_equal(net.blobs["data"].data, golden["out__data"][k])
        assert np.array_equal(net.blobs["label"].data, golden["out__label"][k])


# -- convert_imageset's LMDBs ------------------------------------------------------------

@pytest.mark.parametrize("name", ["images_lmdb", "images_lmdb_gray_resized"])
def test_raw_lmdbs_give_the_golden_pixels(name):
    records, labels = golden_records(name)
    net = data_net(os.path.join(IO, name), batch=1)
    for pixels, label in zip(records, labels):
        net.forward()
        assert np.array_equal(net.blobs["data"].data[0], pixels)
        assert net.blobs["label"].data[0] == label


def test_encoded_lmdb_decodes_natively_or_forced():
    raw, labels = golden_records("images_lmdb")
    golden = np.load(os.path.join(IO, "images_lmdb_encoded.npz"))
    source = os.path.join(IO, "images_lmdb_encoded")
    native = data_net(source, batch=1)
    color = data_net(source, batch=1, transform="force_color: true")
    gray = data_net(source, batch=1, transform="force_gray: true")
    for i, pixels in enumerate(raw):
        decoded = golden["decoded__%d" % i]
        assert np.array_equal(batches(native, 1)[0][0], decoded.reshape(
            decoded.shape[:2] + (-1,)).transpose(2, 0, 1))
        assert np.array_equal(batches(color, 1)[0][0], pixels)    # = convert_imageset colour
        path = os.path.join(IO, "images", golden["keys"][i].split("_", 1)[1])
        expected = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        assert np.array_equal(batches(gray, 1)[0][0, 0], expected)
        assert color.blobs["label"].data[0] == labels[i]


@pytest.mark.parametrize("kind", ["lmdb", "leveldb"])
def test_round_trip_image_folder_to_database_to_data_layer(tmp_path, kind):
    if kind == "leveldb":
        pytest.importorskip("plyvel")
    lines = open(os.path.join(IO, "images_list.txt")).read().split("\n")
    entries = [line.split() for line in lines if line]
    path = str(tmp_path / "db")
    with open_db(path, kind, "w") as db:          # as convert_imageset: key = index_file
        for i, (name, label) in enumerate(entries):
            image = cv2.imread(os.path.join(IO, "images", name), cv2.IMREAD_COLOR)
            datum = array_to_datum(image.transpose(2, 0, 1), int(label))
            db.put("%08d_%s" % (i, name), datum.SerializeToString())
    backend_name = {"lmdb": "LMDB", "leveldb": "LEVELDB"}[kind]
    net = net_of('layer { name: "d" type: "Data" top: "data" top: "label" '
                 'data_param { source: "%s" batch_size: 1 backend: %s } }'
                 % (path, backend_name))
    for name, label in entries:
        net.forward()
        image = cv2.imread(os.path.join(IO, "images", name), cv2.IMREAD_COLOR)
        assert np.array_equal(net.blobs["data"].data[0], image.transpose(2, 0, 1))
        assert net.blobs["label"].data[0] == int(label)


def test_legacy_v1_data_param_transform_fields_are_upgraded(monkeypatch):
    monkeypatch.chdir(IO)
    net = net_of('layers { name: "d" type: DATA top: "data" top: "label" '
                 'data_param { source: "../solvers/digits_train_lmdb" batch_size: 16 '
                 'backend: LMDB scale: 0.00390625 crop_size: 24 '
                 'mean_file: "digits_mean.binaryproto" } }')
    net.forward()
    golden = np.load(os.path.join(IO, "data_layer_test.npz"))
    assert np.array_equal(net.blobs["data"].data, golden["out__data"][0])


# -- reading order, cycling, several readers, rand_skip ------------------------------------

def digits():
    from pycaffe_lowbit.data import datum_to_array, parse_datum
    datums = [parse_datum(v) for _, v in open_db(DIGITS).items()]
    return (np.stack([datum_to_array(d) for d in datums]).astype(np.float32),
            np.array([d.label for d in datums], np.float32))


def test_cycles_through_the_database_in_key_order():
    images, labels = digits()
    assert len(images) == 256
    with captured_log() as log:
        net = data_net(DIGITS, batch=100, extra="prefetch: 0")
        got = batches(net, 3) + batches(net, 3, "label")
    assert np.array_equal(np.concatenate(got[:3]), images[np.arange(300) % 256])
    assert np.array_equal(np.concatenate(got[3:]), labels[np.arange(300, 600) % 256])
    assert log.text.count("Restarting data prefetching from start.") == 2
    assert "output data size: 100,1,28,28" in log.lines


def test_labels_and_optional_label_top():
    images, labels = digits()
    net = data_net(DIGITS, batch=8, tops=("data",))
    assert list(net.blobs) == ["data"]
    assert np.array_equal(batches(net, 1)[0], images[:8])
    net = data_net(DIGITS, batch=8)
    assert np.array_equal(batches(net, 2, "label")[1], labels[8:16])


def test_several_nets_read_one_database_with_their_own_cursors():
    images, _ = digits()
    a = data_net(DIGITS, batch=10)
    a_first = batches(a, 2)
    b = data_net(DIGITS, batch=7)
    assert np.array_equal(batches(b, 1)[0], images[:7])
    assert np.array_equal(np.concatenate(a_first + batches(a, 1)), images[:30])


def test_rand_skip_starts_at_a_random_record_in_range():
    images, _ = digits()
    starts = []
    for seed in range(6):
        backend.set_random_seed(seed)
        with captured_log() as log:
            first = batches(data_net(DIGITS, batch=1, extra="rand_skip: 50"), 1)[0][0]
        skip = int([x for x in log.lines if x.startswith("Skipping first")][0].split()[2])
        assert 0 <= skip < 50 and np.array_equal(first, images[skip])
        starts.append(skip)
    assert len(set(starts)) > 1
    backend.set_random_seed(3)
    again = batches(data_net(DIGITS, batch=1, extra="rand_skip: 50"), 1)[0][0]
    assert np.array_equal(again, images[starts[3]])


# -- prefetching --------------------------------------------------------------------------

def random_batches(prefetch, seed=5):
    backend.set_random_seed(seed)
    net = data_net(DIGITS, batch=48, phase=caffe.TRAIN,
                   transform="crop_size: 20 mirror: true scale: 0.5",
                   extra="prefetch: %d" % prefetch)
    return batches(net, 7)


def test_prefetch_gives_the_batches_of_a_synchronous_run():
    sync = random_batches(0)
    for depth in (1, 4):
        assert all(np.array_equal(a, b) for a, b in zip(sync, random_batches(depth)))
    assert not np.array_equal(sync[0], random_batches(4, seed=6)[0])


def test_an_error_in_the_prefetch_thread_is_raised_in_forward(tmp_path):
    path = str(tmp_path / "db")
    with open_db(path, "lmdb", "w") as db:
        for i in range(5):
            db.put("%03d" % i, array_to_datum(np.full((1, 4, 4), i, np.uint8), i)
                   .SerializeToString())
        db.put("005", array_to_datum(np.zeros((1, 5, 4), np.uint8)).SerializeToString())
        db.put("006", b"\xff\xff\xff not a datum")
    net = data_net(path, batch=3)
    net.forward()                                  # records 0..2
    message = (r"record 5 \(key '005'\): image is 1x5x4 \(C x H x W\) but .* record 3 "
               r"\(key '003'\), the first of its batch, is 1x4x4 \(C x H x W\); every image "
               r"of a batch must have the same size \(set transform_param.crop_size")
    for _ in range(2):                             # and again on the next call
        with pytest.raises(LayerSetupError, match=message):
            net.forward()
    net = data_net(path, batch=1, extra="prefetch: 0")
    net.layers[0].reader.skip(6)
    with pytest.raises(LayerSetupError, match=r"record 6 \(key '006'\) is not a Datum"):
        net.forward()


def test_crop_allows_records_of_different_sizes(tmp_path):
    path = str(tmp_path / "db")
    sizes = [(6, 6), (8, 7), (6, 9)]
    with open_db(path, "lmdb", "w") as db:
        for i, (h, w) in enumerate(sizes):
            db.put("%d" % i, array_to_datum(np.arange(h * w, dtype=np.uint8).reshape(1, h, w))
                   .SerializeToString())
    data = batches(data_net(path, batch=3, transform="crop_size: 5"), 1)[0]
    for k, (h, w) in enumerate(sizes):
        full = np.arange(h * w).reshape(h, w)
        top, left = (h - 5) // 2, (w - 5) // 2
        assert np.array_equal(data[k, 0], full[top:top + 5, left:left + 5])


# -- setup errors ------------------------------------------------------------------------

def test_missing_database_says_how_to_point_elsewhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LayerSetupError) as err:
        data_net("examples/mnist/mnist_train_lmdb", name="mnist")
    message = str(err.value)
    for part in ("layer 'mnist' (type Data)", "data_param.source",
                 "LMDB database 'examples/mnist/mnist_train_lmdb'",
                 os.path.join(str(tmp_path), "examples/mnist/mnist_train_lmdb"),
                 "--set 'layer[mnist].data_param.source=/path/to/lmdb'"):
        assert part in message, (part, message)


def test_empty_database_and_bad_parameters(tmp_path):
    path = str(tmp_path / "empty")
    open_db(path, "lmdb", "w").close()
    with pytest.raises(LayerSetupError, match="layer 'data' .*empty.*the database is empty"):
        data_net(path)
    with pytest.raises(LayerSetupError, match="batch_size must be positive"):
        data_net(DIGITS, batch=0)
    with pytest.raises(LayerSetupError, match="crop_size 40"):
        data_net(DIGITS, transform="crop_size: 40")
    with pytest.raises(LayerSetupError, match="LevelDB"):
        net_of('layer { name: "d" type: "Data" top: "data" data_param { source: "%s" '
               'batch_size: 1 } }' % str(tmp_path / "nowhere"))    # the default backend


# -- ImageData ---------------------------------------------------------------------------

def image_net(source, batch=1, extra="", transform="", phase=caffe.TEST):
    return net_of('layer { name: "images" type: "ImageData" top: "data" top: "label" '
                  'transform_param { %s } image_data_param { source: "%s" batch_size: %d '
                  'root_folder: "%s/" %s } }' % (transform, source, batch,
                                                 os.path.join(IO, "images"), extra), phase)


LIST = os.path.join(IO, "images_list.txt")


@pytest.mark.parametrize("name,extra", [
    ("images_lmdb", ""),
    ("images_lmdb_gray_resized", "is_color: false new_height: 12 new_width: 10")])
def test_image_data_gives_convert_imagesets_pixels(name, extra):
    records, labels = golden_records(name)
    net = image_net(LIST, extra=extra)
    for pixels, label in zip(records, labels):
        net.forward()
        assert np.array_equal(net.blobs["data"].data[0], pixels)
        assert net.blobs["label"].data[0] == label


def test_image_data_shuffles_every_epoch(tmp_path):
    names = sorted(os.listdir(os.path.join(IO, "images")))
    listing = tmp_path / "list.txt"
    listing.write_text("".join("%s %d\n" % (n, i) for i, n in enumerate(names)))
    extra = "shuffle: true new_height: 8 new_width: 8"
    runs = []
    for _ in range(2):
        backend.set_random_seed(7)
        net = image_net(str(listing), batch=5, extra=extra)
        runs.append(np.concatenate(batches(net, 4, "label")).reshape(4, 5))
    epochs = runs[0]
    assert all(sorted(e) == list(range(5)) for e in epochs)     # each epoch: every image
    assert len({tuple(e) for e in epochs}) > 1                  # reshuffled
    assert np.array_equal(runs[1], epochs)                      # repeatable with the seed


def test_image_data_errors(tmp_path):
    bad = tmp_path / "list.txt"
    bad.write_text("china_20x20.png 1\n\nflower_32x24.png two\n")
    with pytest.raises(LayerSetupError, match=r"list.txt line 3: expected '<image path> "
                                              r"<integer label>', got 'flower_32x24.png two'"):
        image_net(str(bad))
    with pytest.raises(LayerSetupError, match=r"image_data_param.source: image list file "
                                              r"'nowhere.txt' \(resolved .*\) not found.*"
                                              r"--set 'layer\[images\].image_data_param.source="):
        image_net("nowhere.txt")
    bad.write_text("china_20x20.png 1\nmissing.png 0\n")
    net = image_net(str(bad))
    net.forward()
    with pytest.raises(LayerSetupError, match="list.txt line 2: could not load image"):
        net.forward()
    with pytest.raises(LayerSetupError, match="new_height and new_width must be set together"):
        image_net(LIST, extra="new_height: 5")
