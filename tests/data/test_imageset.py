"""convert_imageset: Caffe's golden databases reproduced byte for byte, the
flags, and one-line errors naming the list line."""
import logging
import os
import shutil

import numpy as np
import pytest

from pycaffe_lowbit import cli
from pycaffe_lowbit.data import DataError, datum_to_array
from pycaffe_lowbit.data.tools import writer
from pycaffe_lowbit.data.tools.imageset import convert_imageset, read_list_file
from support.tool_cases import IMAGE_LIST, IMAGES, IO, assert_one_line_error, datums, records, run_cli

GOLDEN = {
    "images_lmdb": {},
    "images_lmdb_encoded": {"encoded": True},
    "images_lmdb_gray_resized": {"gray": True, "resize_height": 12, "resize_width": 10},
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_reproduces_caffe_databases_byte_for_byte(tmp_path, name):
    count = convert_imageset(IMAGES, IMAGE_LIST, str(tmp_path / name), **GOLDEN[name])
    assert count == 5
    assert records(tmp_path / name) == records(os.path.join(IO, name))


def test_cli_command_and_log_match_caffe(tmp_path):
    golden = np.load(os.path.join(IO, "images_lmdb_gray_resized.npz"))
    assert str(golden["command"]).startswith("convert_imageset --backend=lmdb --gray")
    shutil.copytree(os.path.join(IO, "images"), tmp_path / "images")
    shutil.copy(IMAGE_LIST, tmp_path / "images_list.txt")
    out = run_cli(tmp_path, "convert_imageset", "-backend", "lmdb", "-gray=true",
                  "--resize_height=12", "-resize_width", "10", "images/", "images_list.txt",
                  "out_lmdb")
    assert out.returncode == 0, out.stderr
    assert records(tmp_path / "out_lmdb") == records(os.path.join(IO, "images_lmdb_gray_resized"))
    for line in str(golden["log"]).splitlines():
        message = line.split("] ", 1)[1].replace("images_lmdb_gray_resized", "out_lmdb")
        assert message in out.stderr


@pytest.mark.parametrize("argv, expected", [
    (["-gray"], True), (["--gray"], True), (["--gray=true"], True), (["-gray=1"], True),
    (["--nogray"], False), (["--gray=false"], False), (["-gray", "--nogray"], False), ([], False)])
def test_boolean_flags_take_gflags_spellings(argv, expected):
    args = cli.build_parser().parse_args(["convert_imageset", *argv, "r/", "list", "db"])
    assert args.gray is expected and args.root_folder == "r/" and args.db_name == "db"


def test_leveldb_backend(tmp_path):
    pytest.importorskip("plyvel")
    convert_imageset(IMAGES, IMAGE_LIST, str(tmp_path / "db"), backend="leveldb")
    assert records(tmp_path / "db", "leveldb") == records(os.path.join(IO, "images_lmdb"))


def test_shuffle_is_seeded_and_renumbers_keys(tmp_path):
    convert_imageset(IMAGES, IMAGE_LIST, str(tmp_path / "a"), shuffle=True, seed=3)
    convert_imageset(IMAGES, IMAGE_LIST, str(tmp_path / "b"), shuffle=True, seed=3)
    shuffled = datums(tmp_path / "a")
    assert records(tmp_path / "a") == records(tmp_path / "b")
    names = [key[9:] for key, _ in shuffled]
    assert [key[:9] for key, _ in shuffled] == ["%08d_" % i for i in range(5)]
    assert sorted(names) == sorted(line.split()[0] for line in open(IMAGE_LIST))
    assert names != [line.split()[0] for line in open(IMAGE_LIST)]
    golden = {k[9:]: d for k, d in datums(os.path.join(IO, "images_lmdb"))}
    for key, datum in shuffled:
        assert datum.SerializeToString() == golden[key[9:]].SerializeToString()


def test_encode_type_reencodes_resized_images_losslessly(tmp_path):
    convert_imageset(IMAGES, IMAGE_LIST, str(tmp_path / "png"), gray=True, resize_height=12,
                     resize_width=10, encode_type="png")
    raw = datums(os.path.join(IO, "images_lmdb_gray_resized"))
    for (key, datum), (raw_key, raw_datum) in zip(datums(tmp_path / "png"), raw):
        assert key == raw_key and datum.encoded and datum.label == raw_datum.label
        assert not datum.channels and bytes(datum.data[:4]) == b"\x89PNG"
        pixels = datum_to_array(datum, force_gray=True)
        assert np.array_equal(pixels, datum_to_array(raw_datum))


def test_encoded_jpeg_of_png_files(tmp_path):
    convert_imageset(IMAGES, IMAGE_LIST, str(tmp_path / "jpg"), encode_type="jpg")
    for (key, datum), (_, raw) in zip(datums(tmp_path / "jpg"),
                                      datums(os.path.join(IO, "images_lmdb"))):
        assert bytes(datum.data[:2]) == b"\xff\xd8"  # JPEG, not the PNG file
        pixels = datum_to_array(datum).astype(int)
        assert pixels.shape == datum_to_array(raw).shape
        assert np.abs(pixels - datum_to_array(raw)).mean() < 12


def test_check_size(tmp_path):
    with pytest.raises(DataError, match=r"images_list.txt:3: china_20x20.png is 3x20x20 but "
                                        r"the first image is 3x24x32 \(--check_size\)"):
        convert_imageset(IMAGES, IMAGE_LIST, str(tmp_path / "a"), check_size=True)
    assert not os.path.exists(tmp_path / "a")
    assert convert_imageset(IMAGES, IMAGE_LIST, str(tmp_path / "b"), check_size=True,
                            resize_height=8, resize_width=8) == 5


def test_list_file_allows_spaces_in_names_and_skips_blank_lines(tmp_path):
    (tmp_path / "my image.png").write_bytes(open(IMAGES + "china_20x20.png", "rb").read())
    (tmp_path / "list.txt").write_text("my image.png 7\n\n  \nmy image.png 8\r\n")
    assert read_list_file(str(tmp_path / "list.txt")) == [("my image.png", 7, 1),
                                                          ("my image.png", 8, 4)]
    convert_imageset(str(tmp_path) + "/", str(tmp_path / "list.txt"), str(tmp_path / "db"))
    assert [(k, d.label) for k, d in datums(tmp_path / "db")] == [
        ("00000000_my image.png", 7), ("00000001_my image.png", 8)]


def test_commits_every_n_records_and_logs_like_caffe(tmp_path, caplog):
    from pycaffe_lowbit.data import array_to_datum
    caplog.set_level(logging.INFO, logger="pycaffe_lowbit")
    with writer.DatumWriter(str(tmp_path / "db"), commit_every=2) as w:
        for i in range(5):
            w.put("%08d" % i, array_to_datum(np.full((1, 2, 2), i, np.uint8), i))
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["Opened lmdb %s" % (tmp_path / "db"), "Processed 2 files.",
                        "Processed 4 files.", "Processed 5 files."]
    assert [d.label for _, d in datums(tmp_path / "db")] == list(range(5))


def test_progress_bar_only_on_a_terminal(monkeypatch):
    items = [1, 2]
    assert writer.progress(items, 2, "x") is items
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    bar = writer.progress(items, 2, "x")
    assert bar is not items and list(bar) == items


@pytest.fixture
def bad_inputs(tmp_path):
    (tmp_path / "img").mkdir()
    shutil.copy(IMAGES + "china_20x20.png", tmp_path / "img" / "good.png")
    (tmp_path / "img" / "broken.png").write_text("not an image")
    return tmp_path


@pytest.mark.parametrize("lines, fragments", [
    ("good.png 0\nmissing.png 1\n", ["list.txt:2: image file not found:", "missing.png"]),
    ("good.png 0\ngood.png 1\nbroken.png 2\n", ["list.txt:3: cannot read", "broken.png"]),
    ("good.png zero\n", ["list.txt:1: the label 'zero' of good.png is not an integer"]),
    ("good.png\n", ["list.txt:1: expected '<file> <label>'"]),
])
def test_bad_input_is_one_error_line_and_no_database(bad_inputs, lines, fragments):
    (bad_inputs / "list.txt").write_text(lines)
    out = run_cli(bad_inputs, "convert_imageset", "img/", "list.txt", "db")
    assert_one_line_error(out, *fragments)
    assert not (bad_inputs / "db").exists()


def test_missing_list_file_and_existing_output(bad_inputs):
    out = run_cli(bad_inputs, "convert_imageset", "img/", "nolist.txt", "db")
    assert_one_line_error(out, "list file not found: nolist.txt")
    (bad_inputs / "list.txt").write_text("good.png 0\n")
    (bad_inputs / "db").mkdir()
    out = run_cli(bad_inputs, "convert_imageset", "img/", "list.txt", "db")
    assert_one_line_error(out, "db already exists")
    assert (bad_inputs / "db").is_dir()


def test_unknown_encode_type_and_unguessable_encoding(bad_inputs, tmp_path):
    (bad_inputs / "list.txt").write_text("good.png 0\n")
    with pytest.raises(DataError, match="list.txt:1: OpenCV cannot encode .* as 'nope'"):
        convert_imageset(str(bad_inputs / "img") + "/", str(bad_inputs / "list.txt"),
                         str(tmp_path / "a"), encode_type="nope")
    shutil.copy(IMAGES + "china_20x20.png", bad_inputs / "img" / "noext")
    (bad_inputs / "list.txt").write_text("noext 0\n")
    with pytest.raises(DataError, match="cannot guess the encoding of 'noext'"):
        convert_imageset(str(bad_inputs / "img") + "/", str(bad_inputs / "list.txt"),
                         str(tmp_path / "b"), encoded=True)


def test_round_trip_through_the_data_layer(tmp_path):
    """image folder -> convert_imageset -> Data layer -> the pixels OpenCV reads."""
    import cv2
    import pycaffe_lowbit as caffe
    convert_imageset(IMAGES, IMAGE_LIST, str(tmp_path / "db"), gray=True, resize_height=12,
                     resize_width=10)
    net_file = tmp_path / "net.prototxt"
    net_file.write_text('layer { name: "d" type: "Data" top: "data" top: "label" '
                        'data_param { source: "%s" batch_size: 5 backend: LMDB } }'
                        % (tmp_path / "db"))
    net = caffe.Net(str(net_file), caffe.TEST)
    net.forward()
    for i, line in enumerate(open(IMAGE_LIST)):
        name, label = line.split()
        image = cv2.resize(cv2.imread(IMAGES + name, cv2.IMREAD_GRAYSCALE), (10, 12))
        assert np.array_equal(net.blobs["data"].data[i, 0], image)
        assert net.blobs["label"].data[i] == int(label)
