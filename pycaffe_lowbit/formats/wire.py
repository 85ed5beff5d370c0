"""Protocol-buffer wire format, the two pieces our fast readers and writers
need: base-128 varints (a key is ``field_number << 3 | wire_type``; a
length-delimited field is a key, a varint length and the bytes).

Used where going through the protobuf objects would copy large arrays
(``blobproto``'s packed floats, ``data.datum``'s pixels).
"""

MAX_VARINT_BYTES = 10      # 64 bits, 7 per byte


def read_varint(buf, pos):
    """(value, position after it) of the varint at ``buf[pos]``; IndexError
    past the end, ValueError for one longer than 64 bits."""
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 7 * MAX_VARINT_BYTES:
            raise ValueError("varint longer than %d bytes" % MAX_VARINT_BYTES)


def encode_varint(value):
    """The varint bytes of a non-negative int."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
