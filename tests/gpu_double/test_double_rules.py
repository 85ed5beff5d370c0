"""The CuPy double's rules, one test each (tests/support/cupy_double). Each
states a behaviour of CuPy's arrays that NumPy lacks; where CuPy can be
inspected without a device (its names, signatures, dunder methods), the test
also checks the double against CuPy itself (``cupy_module`` fixture; skipped
without CuPy unless LOWBIT_REQUIRE_CUPY is set)."""
import copy
import pickle

import numpy as np
import pytest

import support.cupy_double as cp

F32 = np.float32


def device(values, dtype=F32):
    return cp.asarray(np.asarray(values, dtype))


# -- implicit conversion is refused -----------------------------------------------
@pytest.mark.parametrize("convert", [np.asarray, np.array, lambda a: np.float32(a),
                                     lambda a: np.ascontiguousarray(a),
                                     lambda a: np.concatenate([np.zeros(2, F32), a])],
                         ids=["asarray", "array", "float32", "ascontiguousarray",
                              "concatenate-with-host"])
def test_numpy_never_converts_a_device_array_implicitly(convert):
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"
                       "|Unsupported type"):
        convert(device([1, 2]))


def test_get_and_asnumpy_copy_to_the_host():
    a = device([1, 2, 3])
    for host in (a.get(), cp.asnumpy(a)):
        assert type(host) is np.ndarray
        host[0] = 99
    assert a[0] == 1


def test_asarray_copies_host_data_and_keeps_device_arrays():
    host = np.arange(3, dtype=F32)
    a = cp.asarray(host)
    host[0] = 7
    assert float(a[0]) == 0.0
    assert cp.asarray(a) is a
    assert cp.array(a) is not a and not np.shares_memory(cp.array(a)._a, a._a)


def test_get_into_out_checks_dtype_and_shape():
    a = device([1, 2])
    out = np.empty(2, F32)
    assert a.get(out=out) is out and out.tolist() == [1, 2]
    with pytest.raises(TypeError, match="float64 array cannot be obtained from float32"):
        a.get(out=np.empty(2))
    with pytest.raises(ValueError, match="Shape mismatch"):
        a.get(out=np.empty(3, F32))


def test_set_copies_a_host_array_of_the_same_dtype_and_shape():
    a = device([0, 0])
    a.set(np.array([3, 4], F32))
    assert a.tolist() == [3, 4]
    with pytest.raises(TypeError, match="Only numpy.ndarray can be set"):
        a.set([1, 2])
    with pytest.raises(TypeError, match="cannot be set to float32"):
        a.set(np.zeros(2))


# -- reductions and scalars -------------------------------------------------------------
@pytest.mark.parametrize("reduce", [lambda a: a.sum(), lambda a: a.max(), lambda a: a.mean(),
                                    lambda a: cp.sum(a), lambda a: np.sum(a),
                                    lambda a: a[1], lambda a: a.argmax(), lambda a: np.max(a)],
                         ids=["sum", "max", "mean", "cp.sum", "np.sum", "index", "argmax",
                              "np.max"])
def test_reductions_and_single_elements_are_0d_device_arrays(reduce):
    out = reduce(device([1, 5, 3]))
    assert type(out) is cp.ndarray and out.shape == ()


def test_a_0d_array_converts_explicitly_to_python_numbers():
    s = device([1.5, 2.0]).sum()
    assert float(s) == 3.5 and int(s) == 3 and bool(s) and s.item() == 3.5
    assert "%.2f" % s == "3.50" and "{:.1f}".format(s) == "3.5" and str(s) == "3.5"
    assert s > 3 and (s > 3).shape == ()


def test_a_0d_array_is_no_index():
    n = device([2]).sum().astype(np.int64)
    with pytest.raises(TypeError):
        [1, 2, 3][n]
    with pytest.raises(TypeError):
        range(n)


def test_bool_of_a_multi_element_array_is_ambiguous():
    with pytest.raises(ValueError):
        bool(device([1, 2]))


# -- mixing with host arrays ----------------------------------------------------------------
@pytest.mark.parametrize("mix", [lambda d, h: d + h, lambda d, h: h + d, lambda d, h: d * h,
                                 lambda d, h: d @ h.reshape(2, 1), lambda d, h: d > h,
                                 lambda d, h: np.add(d, h), lambda d, h: cp.maximum(d, h),
                                 lambda d, h: cp.where(d > 0, d, h),
                                 lambda d, h: cp.concatenate([d, h])],
                         ids=["add", "radd", "mul", "matmul", "gt", "np.add", "cp.maximum",
                              "cp.where", "cp.concatenate"])
def test_a_host_array_operand_is_refused(mix):
    with pytest.raises(TypeError, match="Unsupported type <class 'numpy.ndarray'>"):
        mix(device([1, 2]), np.ones(2, F32))


def test_an_in_place_op_with_a_host_array_is_refused():
    a = device([1, 2])
    with pytest.raises(TypeError, match="Unsupported type"):
        a += np.ones(2, F32)


def test_scalars_python_and_numpy_mix_freely():
    a = device([1, 2])
    assert (a * 2 + np.float32(1) - 0.5).tolist() == [2.5, 4.5]
    assert (np.float32(2) * a).tolist() == [2, 4]


def test_assigning_a_host_array_into_a_slice_is_cupys_value_error():
    a = device([0, 0])
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray cannot be used for fill"):
        a[...] = np.ones(2, F32)
    a[...] = np.float32(3)
    a[0] = np.array(5.0)           # a 0-d host array is a scalar
    assert a.tolist() == [5, 3]


def test_empty_slice_assignment_copies_a_host_array_of_the_same_shape_and_dtype():
    """CuPy's __setitem__ special case (cupy/_core/core.pyx): ``a[:] = host``
    copies when dtype and shape agree; otherwise its ValueError. ``a[...]`` has
    no such case (the fill error above)."""
    a = device([0, 0])
    a[:] = np.array([4, 6], F32)
    assert a.tolist() == [4, 6]
    for bad in (np.ones(2, np.float64), np.ones(3, F32)):
        with pytest.raises(ValueError, match="by empty slice assignment must ensure"):
            a[:] = bad


def test_advanced_index_assignment_copies_host_values_as_cupys_scatter():
    a = device([0, 0, 0])
    a[np.array([0, 2])] = np.array([7, 9], F32)
    a[cp.asarray(np.array([True, False, False]))] = [5]
    assert a.tolist() == [5, 0, 9]
    with pytest.raises(TypeError, match="Unsupported type <class 'list'>"):
        a[...] = [1, 2, 3]                      # basic indexing: CuPy's fill refuses a list


def test_host_index_arrays_are_accepted():
    a = device([10, 20, 30])
    assert a[np.array([2, 0])].tolist() == [30, 10]
    assert a[device([1]).astype(np.int64)].tolist() == [20]


# -- NumPy's dispatch protocols ---------------------------------------------------------------
def test_numpy_functions_cupy_has_dispatch_to_the_double():
    a = device([[1, 2], [3, 4]])
    for result in (np.sum(a, axis=0), np.transpose(a), np.linalg.norm(a), np.exp(a),
                   np.where(a > 1, a, 0)):
        assert type(result) is cp.ndarray


@pytest.mark.parametrize("call", [lambda a: np.save("/dev/null", a),
                                  lambda a: np.add.at(a, [0], 1),
                                  lambda a: np.add.reduce(a), lambda a: np.nditer(a)],
                         ids=["save", "ufunc.at", "ufunc.reduce", "nditer"])
def test_numpy_functions_cupy_lacks_fail(call):
    with pytest.raises(TypeError):
        call(device([1, 2]))


def test_ufunc_out_must_be_a_device_array():
    a = device([1, 2])
    out = cp.empty(2, F32)
    assert np.multiply(a, 2, out=out) is out and out.tolist() == [2, 4]
    with pytest.raises(TypeError, match="Unsupported type"):
        cp.multiply(a, 2, out=np.empty(2, F32))


# -- arrays as objects ------------------------------------------------------------------------------
def test_device_arrays_are_unhashable_and_iterate_as_device_arrays():
    a = device([1, 2])
    with pytest.raises(TypeError):
        hash(a)
    assert all(type(x) is cp.ndarray and x.shape == () for x in a)
    with pytest.raises(TypeError, match="iteration over a 0-d array"):
        iter(a.sum())


def test_views_share_device_memory_and_data_ptr_is_the_address():
    a = cp.zeros((2, 3), F32)
    v = a.reshape(6)
    v[0] = 1
    assert float(a[0, 0]) == 1
    assert a.data.ptr == v.data.ptr and a[0, 1:].data.ptr == a.data.ptr + 4
    assert a.T.flags.f_contiguous and not a.T.flags.c_contiguous


def test_copy_pickle_and_deepcopy_stay_on_the_device():
    a = device([1, 2])
    for b in (a.copy(), copy.copy(a), copy.deepcopy(a), pickle.loads(pickle.dumps(a))):
        assert type(b) is cp.ndarray and b.tolist() == [1, 2] and b.data.ptr != a.data.ptr


def test_get_array_module():
    assert cp.get_array_module(device([1]), 2) is cp
    assert cp.get_array_module(np.zeros(1)) is np
