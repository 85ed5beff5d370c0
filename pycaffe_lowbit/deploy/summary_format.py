"""A NetSummary as a text table (``lowbit-caffe summary``, ``print(net.summary())``)
and as HTML (a notebook's view of ``net`` and ``net.summary()``).

Columns: layer, type, top shapes, params, weight bits, input bits, MACs per
item with their precision, memory as trained and as deployed (KiB = 1024
bytes). Then the totals: params by bits, MACs by precision (the share of
low-bit ones), and memory: trained, float32, deployed and the compression.
"""
import html

HEADER = ("layer", "type", "top shape", "params", "w bits", "in bits", "MACs",
          "MAC bits", "trained KiB", "deployed KiB")


def _count(n):
    return "{:,}".format(int(n))


def _kib(nbytes):
    return "%.1f" % (nbytes / 1024.0) if nbytes else "0"


def _bits(bits):
    return "-" if bits is None else str(bits)


def _shapes(shapes):
    return " ".join("(%s)" % ", ".join(str(d) for d in shape) for shape in shapes)


def _size(nbytes):
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale:
            return "%.2f %s" % (nbytes / float(scale), unit)
    return "%d B" % nbytes


def table_rows(summary):
    """The table as lists of strings: the header, one row per layer, the total."""
    rows = [list(HEADER)]
    for r in summary.layers:
        rows.append([r.name, r.type, _shapes(r.top_shapes), _count(r.params) if r.params else "",
                     _bits(r.weight_bits), _bits(r.input_bits),
                     _count(r.macs) if r.macs else "", _bits(r.mac_bits),
                     _kib(r.trained_bytes), _kib(r.deployed_bytes)])
    rows.append(["total", "", "", _count(summary.params), "", "", _count(summary.macs), "",
                 _kib(summary.trained_bytes), _kib(summary.deployed_bytes)])
    return rows


def totals_lines(summary):
    """The lines under the table."""
    by_bits = ", ".join("%d-bit %s" % (b, _count(n)) for b, n in summary.params_by_bits.items())
    macs = summary.macs
    share = 100.0 * summary.lowbit_macs / macs if macs else 0.0
    mac_bits = ", ".join("%d-bit %s" % (b, _count(n)) for b, n in summary.macs_by_bits.items())
    return [
        "Params: %s (%s)" % (_count(summary.params), by_bits or "none"),
        "MACs per item: %s (%s); float %s, low-bit %s (%.1f %%)"
        % (_count(macs), mac_bits or "none", _count(summary.float_macs),
           _count(summary.lowbit_macs), share),
        "Memory: trained %s, float32 %s, deployed %s: %.1fx smaller than float32"
        % (_size(summary.trained_bytes), _size(summary.float_bytes),
           _size(summary.deployed_bytes), summary.compression),
    ]


def to_text(summary):
    rows = table_rows(summary)
    widths = [max(len(row[c]) for row in rows) for c in range(len(HEADER))]
    numeric = range(3, len(HEADER))

    def line(row):
        return "  ".join(cell.rjust(w) if c in numeric else cell.ljust(w)
                         for c, (cell, w) in enumerate(zip(row, widths))).rstrip()

    rule = "-" * len(line(rows[0]))
    out = ["Net %s" % summary.name, line(rows[0]), rule]
    out += [line(row) for row in rows[1:-1]]
    out += [rule, line(rows[-1]), ""] + totals_lines(summary)
    return "\n".join(out)


def to_html(summary):
    rows = table_rows(summary)

    def cells(row, tag):
        return "".join("<%s>%s</%s>" % (tag, html.escape(c), tag) for c in row)

    body = "".join("<tr>%s</tr>" % cells(row, "td") for row in rows[1:-1])
    foot = "<tr>%s</tr>" % cells(rows[-1], "th")
    notes = "".join("<li>%s</li>" % html.escape(line) for line in totals_lines(summary))
    return ("<div class=\"lowbit-summary\"><p><b>Net %s</b></p><table><thead><tr>%s</tr>"
            "</thead><tbody>%s</tbody><tfoot>%s</tfoot></table><ul>%s</ul></div>"
            % (html.escape(summary.name), cells(rows[0], "th"), body, foot, notes))
