"""LLVM IR of the popcount kernel's 4 x 32 block, as Numba intrinsics (used by
``cpu.popcount``; the layout and the math are described there).

``_popc(x)``: popcount of a 64-bit integer (llvm.ctpop.i64) as int64.
``_make_cols_block(op)``: counts of 4 rows of A against a panel of 32 weight
    columns, planes combined by Horner, stored as int64 (4, 32).
``_make_cols_scaled(xnor, with_bias)``: the counts finished in vectors, for
    binary weights with a uniform code or sign activations (xnor): the float32
    outputs, the reference's operations in its order.

Explicit <8 x i64> IR because Numba's vectorizer keeps to 256-bit vectors on
this CPU and to horizontal sums along the words.
"""
try:
    import numba
    from numba import types
    from numba.extending import intrinsic
except ImportError:      # pragma: no cover
    numba = None

RB = 4        # rows of A per block
CB = 32       # columns (weights) per block: 4 vectors of 8 words
_V = 8        # words per vector

if numba is not None:
    @intrinsic
    def _popc(typingctx, x):
        """popcount of a 64-bit integer (LLVM ctpop), as int64."""
        if not isinstance(x, types.Integer) or x.bitwidth != 64:
            return None

        def codegen(context, builder, signature, args):
            return builder.ctpop(args[0])
        return types.int64(x), codegen

    from llvmlite import ir
    from numba.core import cgutils

    def _emit_counts(context, builder, tys, args, opname):
        """IR of the 4 x 32 block: args[0..8] = a, p0, p1, r0..r3, bt, j.
        Returns the 16 accumulators (<8 x i64>: row u, columns 8g..8g+7 at
        4u + g) with the builder after the loops."""
        i64 = ir.IntType(64)
        vec = ir.VectorType(i64, _V)
        vptr = vec.as_pointer()
        ctpop = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vec, [vec]), "llvm.ctpop.v8i64")

        def as64(k):
            return context.cast(builder, args[k], tys[k], types.int64)
        aa = context.make_array(tys[0])(context, builder, args[0])
        bb = context.make_array(tys[7])(context, builder, args[7])
        _, am, nw = cgutils.unpack_tuple(builder, aa.shape, 3)
        _, ncol = cgutils.unpack_tuple(builder, bb.shape, 2)
        p0, p1 = as64(1), as64(2)
        rws = [as64(k) for k in (3, 4, 5, 6)]
        col0 = builder.gep(bb.data, [builder.mul(as64(8), nw)])   # panel j // 32
        zero = ir.Constant(vec, [0] * _V)
        undef = ir.Constant(vec, ir.Undefined)
        splat = ir.Constant(ir.VectorType(ir.IntType(32), _V), [0] * _V)
        one = ir.Constant(i64, 1)
        pre = builder.basic_block
        ohead = builder.append_basic_block("cols.planes")
        obody = builder.append_basic_block("cols.plane")
        ihead = builder.append_basic_block("cols.words")
        ibody = builder.append_basic_block("cols.word")
        olatch = builder.append_basic_block("cols.next_plane")
        done = builder.append_basic_block("cols.done")
        top = builder.sub(p1, one)
        builder.branch(ohead)
        # planes p1 - 1 down to p0
        builder.position_at_end(ohead)
        pl = builder.phi(i64)
        pl.add_incoming(top, pre)
        oacc = []
        for _ in range(RB * 4):
            ph = builder.phi(vec)
            ph.add_incoming(zero, pre)
            oacc.append(ph)
        builder.cbranch(builder.icmp_signed(">=", pl, p0), obody, done)
        builder.position_at_end(obody)
        doubled = [builder.add(acc, acc) for acc in oacc]
        plane = builder.mul(pl, am)
        rows = [builder.gep(aa.data, [builder.mul(builder.add(plane, r), nw)])
                for r in rws]
        builder.branch(ihead)
        builder.position_at_end(ihead)
        w = builder.phi(i64)
        w.add_incoming(ir.Constant(i64, 0), obody)
        accs = []
        for k in range(RB * 4):
            ph = builder.phi(vec)
            ph.add_incoming(doubled[k], obody)
            accs.append(ph)
        builder.cbranch(builder.icmp_signed("<", w, nw), ibody, olatch)
        builder.position_at_end(ibody)
        brow = builder.gep(col0, [builder.mul(w, ncol)])
        ys = [builder.load(builder.bitcast(builder.gep(brow, [ir.Constant(i64, _V * g)]),
                                           vptr), align=8) for g in range(4)]
        op = builder.and_ if opname == "and" else builder.xor
        for u in range(RB):
            x = builder.load(builder.gep(rows[u], [w]), align=8)
            xv = builder.shuffle_vector(
                builder.insert_element(undef, x, ir.Constant(ir.IntType(32), 0)),
                undef, splat)
            for g in range(4):
                cnt = builder.call(ctpop, [op(xv, ys[g])])
                accs[4 * u + g].add_incoming(builder.add(accs[4 * u + g], cnt), ibody)
        w.add_incoming(builder.add(w, one), ibody)
        builder.branch(ihead)
        builder.position_at_end(olatch)
        pl.add_incoming(builder.sub(pl, one), olatch)
        for k in range(RB * 4):
            oacc[k].add_incoming(accs[k], olatch)
        builder.branch(ohead)
        builder.position_at_end(done)
        return oacc

    def _arrays_ok(*specs):
        return all(isinstance(arr, types.Array) and arr.ndim == nd and arr.layout == "C"
                   and arr.dtype == dt for arr, nd, dt in specs)

    def _make_cols_block(opname):
        """Intrinsic (a, p0, p1, r0..r3, bt, j, cnt): cnt (4, 32) int64 =
        sum over planes p in [p0, p1) of 2^(p - p0) times the counts of rows
        r0..r3 of plane p of a (P, M, W) against columns j..j+31 of bt (panels, ``transpose_words``)
        (Horner: the accumulators double before each lower plane)."""
        @intrinsic
        def cols_block(typingctx, a, p0, p1, r0, r1, r2, r3, bt, j, cnt):
            if not _arrays_ok((a, 3, types.uint64), (bt, 2, types.uint64),
                              (cnt, 2, types.int64)):
                return None
            sig = types.none(a, p0, p1, r0, r1, r2, r3, bt, j, cnt)

            def codegen(context, builder, signature, args):
                oacc = _emit_counts(context, builder, signature.args, args, opname)
                cc = context.make_array(signature.args[9])(context, builder, args[9])
                vptr = oacc[0].type.as_pointer()
                for k, acc in enumerate(oacc):
                    dst = builder.gep(cc.data, [ir.Constant(ir.IntType(64), CB * (k // 4)
                                                            + _V * (k % 4))])
                    builder.store(acc, builder.bitcast(dst, vptr), align=8)
                return context.get_dummy_value()
            return sig, codegen
        return cols_block

    def _make_cols_scaled(xnor, with_bias):
        """Intrinsic (a, p0, p1, r0..r3, bt, j, ones, o_off, step, k, rsums, vmat,
        per_pixel, length, base, alpha, bias, y): the block's counts finished in
        vectors, y (4, 32) float32 for rows u and columns v = j..j+31:

            binary weights, uniform code ("and", planes p0..p1 by Horner):
                t = float64(2 I - ones[0, o_off + u]) * step
            xnor (sign x binary, one plane): D = (k - 2 X + rsums[v]) >> 1,
                t = step * float64(D)            (step: the plane's coefficient)
            base != 0: t = t + base * float64(V),  V = vmat[pix_u, v] (per_pixel,
                pix_u = row % length) or vmat[0, v]
            y = float32(t * alpha[v]) (+ bias[v])

        the reference's operations in its order; rsums, vmat rows, alpha and
        bias padded to N32."""
        opname = "xor" if xnor else "and"

        @intrinsic
        def cols_scaled(typingctx, a, p0, p1, r0, r1, r2, r3, bt, j, ones, o_off, step, k,
                        rsums, vmat, per_pixel, length, base, alpha, bias, y):
            if not _arrays_ok((a, 3, types.uint64), (bt, 2, types.uint64),
                              (ones, 2, types.int64), (rsums, 1, types.int64),
                              (vmat, 2, types.int64), (alpha, 1, types.float64),
                              (bias, 1, types.float32), (y, 2, types.float32)):
                return None
            sig = types.none(a, p0, p1, r0, r1, r2, r3, bt, j, ones, o_off, step, k, rsums,
                             vmat, per_pixel, length, base, alpha, bias, y)

            def codegen(context, builder, signature, args):
                tys = signature.args
                oacc = _emit_counts(context, builder, tys, args, opname)
                i64, f64, f32 = ir.IntType(64), ir.DoubleType(), ir.FloatType()
                vi, vd, vf = (ir.VectorType(t, _V) for t in (i64, f64, f32))

                def arg(n, ty):
                    return context.cast(builder, args[n], tys[n], ty)
                jj, off, kk = arg(8, types.int64), arg(10, types.int64), arg(12, types.int64)
                step, base = arg(11, types.float64), arg(17, types.float64)
                per_pixel = builder.icmp_signed("!=", arg(15, types.int64), ir.Constant(i64, 0))
                length = arg(16, types.int64)
                ones, rsums, vmat, alpha, bias, yy = (
                    context.make_array(tys[n])(context, builder, args[n]) for n in
                    (9, 13, 14, 18, 19, 20))
                _, ldv = cgutils.unpack_tuple(builder, vmat.shape, 2)
                has_base = builder.fcmp_ordered("!=", base, ir.Constant(f64, 0.0))

                def splat(val, vty):
                    und = ir.Constant(vty, ir.Undefined)
                    return builder.shuffle_vector(
                        builder.insert_element(und, val, ir.Constant(ir.IntType(32), 0)), und,
                        ir.Constant(ir.VectorType(ir.IntType(32), _V), [0] * _V))

                def vload(ary, idx, vty, align):
                    return builder.load(builder.bitcast(builder.gep(ary.data, [idx]),
                                                        vty.as_pointer()), align=align)
                vstep, vbase = splat(step, vd), splat(base, vd)
                for u in range(4):
                    pix = builder.srem(arg(3 + u, types.int64), length)
                    vrow = builder.mul(builder.select(per_pixel, pix, ir.Constant(i64, 0)), ldv)
                    for g in range(4):
                        acc = oacc[4 * u + g]
                        col = builder.add(jj, ir.Constant(i64, _V * g))
                        if xnor:
                            d = builder.add(builder.sub(splat(kk, vi), builder.add(acc, acc)),
                                            vload(rsums, col, vi, 8))
                            t = builder.fmul(vstep, builder.sitofp(
                                builder.ashr(d, splat(ir.Constant(i64, 1), vi)), vd))
                        else:
                            one_u = builder.load(builder.gep(
                                ones.data, [builder.add(off, ir.Constant(i64, u))]))
                            d = builder.sub(builder.add(acc, acc), splat(one_u, vi))
                            t = builder.fmul(builder.sitofp(d, vd), vstep)
                        vv = builder.sitofp(vload(vmat, builder.add(vrow, col), vi, 8), vd)
                        t = builder.select(has_base, builder.fadd(t, builder.fmul(vbase, vv)), t)
                        yv = builder.fptrunc(builder.fmul(t, vload(alpha, col, vd, 8)), vf)
                        if with_bias:
                            yv = builder.fadd(yv, vload(bias, col, vf, 4))
                        dst = builder.gep(yy.data, [ir.Constant(i64, CB * u + _V * g)])
                        builder.store(yv, builder.bitcast(dst, vf.as_pointer()), align=4)
                return context.get_dummy_value()
            return sig, codegen
        return cols_scaled
