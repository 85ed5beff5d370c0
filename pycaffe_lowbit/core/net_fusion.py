"""The Net's fused passes: layer groups run as one where that gives Caffe's
results with fewer passes over the activations (CPU, NumPy with Numba).

* BatchNorm -> Scale (-> ReLU), all in place on one blob
  (``layers/bn_scale_pair.py``): ``forward_from_to`` / ``backward_from_to``
  run the group as one pass each way when the range holds it (a range that
  ends inside it runs what it holds: the pair without its ReLU, or the layers
  one by one).
* SUM Eltwise gives dy itself, not a copy, to the bottoms whose producers only
  read or replace their top diff (``layers/eltwise.share_sum_diffs``), decided
  when the Net is made.

``LOWBIT_FUSE=0`` turns both off (the first at each pass, the second for Nets
made afterwards); ``debug_info`` runs every layer on its own, so its lines
name each layer's own results.
"""
from ..layers.bn_scale_pair import find_pairs, fusion_enabled
from ..layers.eltwise import share_sum_diffs


class FusedPasses:
    """Mixed into Net: the groups, found once, and their runs."""

    def _plan_fusion(self):
        self._pairs = find_pairs(self.layers, self._bottom_id_vecs, self._top_id_vecs)
        if fusion_enabled():
            share_sum_diffs(self.layers, self._bottom_id_vecs, self._top_id_vecs)

    def _forward_group(self, i, end):
        """Run the group that starts at layer i, as far as the range ends at
        ``end``, if one does and it applies now; how many layers it ran (0:
        none, the caller runs layer i)."""
        pair = self._pairs.get(i) if i < end and not self.debug_info else None
        if pair is None:
            return 0
        take = 3 if pair.relu is not None and i + 2 <= end else 2
        blob = self._blobs[self._bottom_id_vecs[i][0]]
        for k in range(i, i + take):
            self._run(k, "forward", self.layers[k].reshape, [blob], [blob])
        if not pair.runs(blob):
            return 0
        self._run(i, "forward", pair.forward, blob, take == 3)
        return take

    def _backward_group(self, i, end, every_layer):
        """The fused backward of the group whose last layer is i, if one is, it
        lies in the range, and it gives what the layers' own would (each runs;
        each bottom needs a diff exactly when the BatchNorm's does). How many
        layers it ran: 0 for none."""
        if not self._pairs or self.debug_info:
            return 0
        three = self._pairs.get(i - 2)
        head = i - 2 if three is not None and three.relu is not None else i - 1
        pair = self._pairs.get(head)
        if pair is None or head < end:
            return 0
        down = ((every_layer or self._layer_need_backward[head])
                and self._bottom_need_backward[head][0])
        for k in range(head + 1, i + 1):
            if not (every_layer or self._layer_need_backward[k]) \
                    or self._bottom_need_backward[k][0] != down:
                return 0
        blob = self._blobs[self._bottom_id_vecs[head][0]]
        if not pair.runs(blob):
            return 0
        done = self._run(i, "backward", pair.backward, blob, down, i - head == 2)
        return i - head + 1 if done else 0
