#!/usr/bin/env python
"""Packed (bits + popcount) against float inference, in one run.

A performance script, not a test. It builds an HWGQ-style net (float first
conv, then BatchNorm -> Quant (2-bit "3ne" or sign) -> BinaryConvolution
blocks, a BinaryInnerProduct, a float classifier) with random weights, makes
its deploy forms with ``pipeline.build_deploy`` (the plain float "bw" net and
the packed model) and times, for batch 1 and 64:

- each binary layer alone: the float Convolution / InnerProduct of the bw net
  against the packed layer of ``PackedNet`` on the same input blob;
- the whole forward: the bw float net against the packed net.

It prints times and ratios (float / packed: above 1 means packed is faster).
On CPU the packed GEMM is NumPy's bitwise_count over uint64 words; on a GPU
(``--gpu``, needs CuPy) the lowbit_popcount_gemm kernel (__popcll).

    python bench/bench_packed.py                    # 3ne and sign, batch 1 and 64
    python bench/bench_packed.py --acts sign --batches 64 --iters 5
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

QUANT = {"3ne": 'forward_func: "hwgq" centers: 0.538 centers: 1.076 centers: 1.614 '
                'clip_thr: 1.614',
         "sign": 'forward_func: "sign" backward_func: "hard_tanh" clip_thr: 1'}


def net_text(batch, act):
    """A VGG-small-like HWGQ net on 32x32 inputs."""
    q = QUANT[act]
    layers = ['layer { name: "data" type: "Input" top: "data" '
              'input_param { shape { dim: %d dim: 3 dim: 32 dim: 32 } } }' % batch,
              'layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" '
              'convolution_param { num_output: 128 kernel_size: 3 pad: 1 bias_term: false '
              'weight_filler { type: "msra" } } }']
    bottom, c = "conv1", 128
    for i, (out, pool) in enumerate([(128, True), (256, False), (256, True), (512, False),
                                     (512, True)], 2):
        layers += [
            'layer { name: "bn%d" type: "BatchNorm" bottom: "%s" top: "%s" }' % (i, bottom, bottom),
            'layer { name: "qt%d" type: "Quant" bottom: "%s" top: "qt%d" quant_param { %s } }'
            % (i, bottom, i, q),
            'layer { name: "conv%d" type: "BinaryConvolution" bottom: "qt%d" top: "conv%d" '
            'convolution_param { num_output: %d kernel_size: 3 pad: 1 bias_term: false '
            'weight_filler { type: "msra" } } binary_convolution_param { use_alpha: true } }'
            % (i, i, i, out)]
        bottom, c = "conv%d" % i, out
        if pool:
            layers.append('layer { name: "pool%d" type: "Pooling" bottom: "%s" top: "pool%d" '
                          'pooling_param { pool: MAX kernel_size: 2 stride: 2 } }' % (i, bottom, i))
            bottom = "pool%d" % i
    layers += [
        'layer { name: "bn7" type: "BatchNorm" bottom: "%s" top: "%s" }' % (bottom, bottom),
        'layer { name: "qt7" type: "Quant" bottom: "%s" top: "qt7" quant_param { %s } }'
        % (bottom, q),
        'layer { name: "fc7" type: "BinaryInnerProduct" bottom: "qt7" top: "fc7" '
        'inner_product_param { num_output: 1024 bias_term: false weight_filler { type: "msra" } }'
        ' binary_inner_product_param { use_alpha: true } }',
        'layer { name: "bn8" type: "BatchNorm" bottom: "fc7" top: "fc7" }',
        'layer { name: "qt8" type: "Quant" bottom: "fc7" top: "qt8" quant_param { %s } }' % q,
        'layer { name: "fc8" type: "InnerProduct" bottom: "qt8" top: "fc8" '
        'inner_product_param { num_output: 10 weight_filler { type: "msra" } } }']
    return 'name: "vgg_small_hwgq"\n' + "\n".join(layers) + "\n"


def _best(fn, iters):
    fn()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _layer_timer(net, name):
    i = net._layer_names.index(name)
    bottom = [net._blobs[k] for k in net._bottom_id_vecs[i]]
    top = [net._blobs[k] for k in net._top_id_vecs[i]]
    layer = net.layers[i]

    def run():
        layer.reshape(bottom, top)
        layer.forward(bottom, top)
    return run


def calibrate(net, rng):
    """Random BatchNorm statistics roughly matching the pre-activations."""
    net.blob_by_name("data").data[...] = rng.standard_normal(net.blob_by_name("data").shape)
    for i, (name, layer) in enumerate(zip(net._layer_names, net.layers)):
        if layer.type == "BatchNorm":
            x = net._blobs[net._bottom_id_vecs[i][0]].data
            axes = (0,) + tuple(range(2, x.ndim))
            layer.blobs[0].data[...] = x.mean(axis=axes)
            layer.blobs[1].data[...] = x.var(axis=axes) + 1e-3
            layer.blobs[2].data[...] = 1
        net.forward_from_to(i, i)


def run(batch, act, iters, log):
    from pycaffe_lowbit.core import backend
    from pycaffe_lowbit.deploy import pack, pipeline
    from pycaffe_lowbit.deploy.runtime import PackedNet
    from pycaffe_lowbit.core.net import Net, TEST
    rng = np.random.default_rng(0)
    backend.set_random_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "net.prototxt")
        with open(model, "w") as f:
            f.write(net_text(batch, act))
        train = Net(model, TEST)
        calibrate(train, rng)
        weights = os.path.join(tmp, "net.caffemodel")
        train.save(weights)
        _, bw_param, _, packed, quantized = pipeline.build_deploy(model, weights, do_fold=False)
        path = os.path.join(tmp, "net.lbpack")
        pack.save_packed(packed, path)
        packed_net = PackedNet(path)
    float_net = Net(bw_param, TEST)
    x = rng.standard_normal(float_net.blob_by_name("data").shape).astype(np.float32)
    for net in (float_net, packed_net):
        net.blob_by_name("data").data[...] = x
        net.forward_prefilled()
    log("\n== %s activations, batch %d ==" % (act, batch))
    log("%-8s %-10s %12s %12s %8s" % ("layer", "path", "float ms", "packed ms", "ratio"))
    tot_f = tot_p = 0.0
    for name in quantized:
        tf = _best(_layer_timer(float_net, name), iters)
        tp = _best(_layer_timer(packed_net, name), iters)
        kind = packed_net.packed_layers[name]
        if kind != "float":
            tot_f, tot_p = tot_f + tf, tot_p + tp
        log("%-8s %-10s %12.2f %12.2f %7.2fx" % (name, kind, tf * 1e3, tp * 1e3, tf / tp))
    log("%-8s %-10s %12.2f %12.2f %7.2fx" % ("binary", "(sum)", tot_f * 1e3, tot_p * 1e3,
                                             tot_f / tot_p))
    tf = _best(float_net.forward_prefilled, iters)
    tp = _best(packed_net.forward_prefilled, iters)
    log("%-8s %-10s %12.2f %12.2f %7.2fx" % ("forward", "end to end", tf * 1e3, tp * 1e3, tf / tp))
    log("size: %s" % pack.format_size_report(packed).splitlines()[-1].split(None, 1)[1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--acts", default="3ne,sign", help="activation quantizers: 3ne, sign")
    p.add_argument("--batches", default="1,64", help="batch sizes")
    p.add_argument("--iters", type=int, default=3, help="timed iterations (best kept)")
    p.add_argument("--gpu", action="store_true", help="run on the GPU (CuPy)")
    args = p.parse_args(argv)
    import pycaffe_lowbit as caffe
    if args.gpu:
        caffe.set_mode_gpu()
    print("numpy %s, bitwise_count: %s" % (np.__version__, hasattr(np, "bitwise_count")))
    for act in args.acts.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            run(batch, act, args.iters, print)
    return 0


if __name__ == "__main__":
    sys.exit(main())
