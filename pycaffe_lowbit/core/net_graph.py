"""Net graph transforms applied before layers are built, as Caffe's Net::Init does.

``filter_net``  keeps the layers whose include/exclude rules admit the NetState
                (phase, level, stages).
``insert_splits`` adds a Split layer after every top that more than one bottom
                reads, so each consumer gets its own blob and the diffs are summed.
"""
from ..proto import caffe_pb2


class NetDefinitionError(ValueError):
    """The net definition is inconsistent; the message names the layer and blob."""


def state_meets_rule(state, rule):
    """Caffe's StateMeetsRule: every condition the rule states must hold."""
    if rule.HasField("phase") and rule.phase != state.phase:
        return False
    if rule.HasField("min_level") and state.level < rule.min_level:
        return False
    if rule.HasField("max_level") and state.level > rule.max_level:
        return False
    stages = set(state.stage)
    if any(s not in stages for s in rule.stage):
        return False
    if any(s in stages for s in rule.not_stage):
        return False
    return True


def layer_included(layer, state):
    if len(layer.include) and len(layer.exclude):
        raise NetDefinitionError(
            "layer '%s' specifies both include and exclude rules; "
            "specify either include or exclude" % layer.name)
    if len(layer.include):
        return any(state_meets_rule(state, r) for r in layer.include)
    return not any(state_meets_rule(state, r) for r in layer.exclude)


def filter_net(net_param):
    """A copy of ``net_param`` holding only the layers its ``state`` admits."""
    filtered = caffe_pb2.NetParameter()
    filtered.CopyFrom(net_param)
    del filtered.layer[:]
    for layer in net_param.layer:
        if layer_included(layer, net_param.state):
            filtered.layer.add().CopyFrom(layer)
    return filtered


def split_layer_name(layer_name, blob_name, top_index):
    return "%s_%s_%d_split" % (blob_name, layer_name, top_index)


def split_blob_name(layer_name, blob_name, top_index, split_index):
    return "%s_%s_%d_split_%d" % (blob_name, layer_name, top_index, split_index)


def insert_splits(net_param):
    """Caffe's InsertSplits: a copy of ``net_param`` where every top read by
    several bottoms (or read once and carrying an explicit loss weight) feeds a
    Split layer, and each reader gets its own split top."""
    last_top = {}           # blob name -> (layer index, top index) of its producer
    readers = {}            # (layer index, top index) -> number of bottoms reading it
    reader_of = {}          # (layer index, bottom index) -> (layer index, top index)
    loss_weight = {}        # (layer index, top index) -> explicit loss weight
    for i, layer in enumerate(net_param.layer):
        for j, name in enumerate(layer.bottom):
            if name not in last_top:
                raise NetDefinitionError(
                    "unknown bottom blob '%s' (layer '%s', bottom index %d)"
                    % (name, layer.name, j))
            producer = last_top[name]
            reader_of[(i, j)] = producer
            readers[producer] = readers.get(producer, 0) + 1
        for j, name in enumerate(layer.top):
            last_top[name] = (i, j)
            if j < len(layer.loss_weight) and layer.loss_weight[j]:
                loss_weight[(i, j)] = layer.loss_weight[j]

    out = caffe_pb2.NetParameter()
    out.CopyFrom(net_param)
    del out.layer[:]
    next_split = {}  # producer -> next split top index to hand out
    for i, layer in enumerate(net_param.layer):
        new_layer = out.layer.add()
        new_layer.CopyFrom(layer)
        for j, name in enumerate(layer.bottom):
            producer = reader_of[(i, j)]
            count = readers[producer] + (1 if producer in loss_weight else 0)
            if count > 1:
                k = next_split.get(producer, 0)
                next_split[producer] = k + 1
                pl, pt = producer
                new_layer.bottom[j] = split_blob_name(
                    net_param.layer[pl].name, name, pt, k)
        for j, name in enumerate(layer.top):
            n_readers = readers.get((i, j), 0)
            weight = loss_weight.get((i, j), 0.0)
            count = n_readers + (1 if weight else 0)
            if n_readers == 0 or count <= 1:
                continue
            split = out.layer.add()
            split.name = split_layer_name(layer.name, name, j)
            split.type = "Split"
            split.bottom.append(name)
            for k in range(count):
                split.top.append(split_blob_name(layer.name, name, j, k))
                if weight:
                    split.loss_weight.append(weight if k == count - 1 else 0.0)
            if weight:
                new_layer.loss_weight[j] = 0.0
    return out
