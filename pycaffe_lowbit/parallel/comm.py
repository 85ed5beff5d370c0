"""The communicator interface of data-parallel training, and its one-process case.

A communicator joins ``size`` processes, this one being ``rank``:

* ``broadcast(arrays)``: every array gets rank 0's values, in place;
* ``allreduce_sum(arrays)``: every array becomes the element-wise sum of that
  array over all ranks, in place. Implementations fuse the list into one flat
  buffer (``flatten``/``unflatten``) and make one collective call;
* ``broadcast_object(obj)``: rank 0's (picklable) object, returned on every rank;
* ``barrier()``; ``abort(code)``: end every process of the world (a failing rank
  calls it so the others do not wait forever in a collective).

``LocalComm`` is the world of one process: every operation leaves the arrays as
they are, so single-process training is unchanged.
"""


class Communicator:
    rank = 0
    size = 1

    def broadcast(self, arrays):
        raise NotImplementedError

    def allreduce_sum(self, arrays):
        raise NotImplementedError

    def broadcast_object(self, obj):
        raise NotImplementedError

    def barrier(self):
        raise NotImplementedError

    def abort(self, code=1):
        raise NotImplementedError


class LocalComm(Communicator):
    """One process: the collectives are identities."""

    def broadcast(self, arrays):
        return arrays

    def allreduce_sum(self, arrays):
        return arrays

    def broadcast_object(self, obj):
        return obj

    def barrier(self):
        pass

    def abort(self, code=1):
        raise SystemExit(code)


def flatten(arrays, xp):
    """One contiguous 1-D buffer holding ``arrays`` (all of one dtype) end to end."""
    if not arrays:
        return xp.zeros(0, dtype="float32")
    dtypes = {a.dtype for a in arrays}
    if len(dtypes) != 1:
        raise TypeError("a fused collective needs arrays of one dtype, got %s"
                        % sorted(str(d) for d in dtypes))
    return xp.concatenate([a.reshape(-1) for a in arrays])


def unflatten(flat, arrays):
    """Copy ``flat`` (as made by ``flatten``) back into ``arrays``, in place."""
    offset = 0
    for a in arrays:
        a[...] = flat[offset:offset + a.size].reshape(a.shape)
        offset += a.size
