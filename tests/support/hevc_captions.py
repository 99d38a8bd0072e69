#!/usr/bin/python3
"""Adds CEA-608 captions to an HEVC Annex B stream, as ATSC A/53 user data in a prefix SEI
(ITU-T T.35, `GA94`, cc_data) before each picture: no encoder here writes them for HEVC.

    hevc_captions.py IN.hevc OUT.hevc FPS SPANS

The stream must have one slice per picture and no B-frames (pictures in display order), so
picture n is at n / FPS seconds. SPANS is `from-to,from-to` in seconds: pictures there carry
one field 1 byte pair of text with odd parity; the others carry no caption SEI.
"""
import sys

PREFIX_SEI = 39
USER_DATA_REGISTERED = 4


def nal_units(data):
    """(start, end) of each NAL unit's payload after its start code."""
    starts = []
    i = 0
    while True:
        i = data.find(b"\x00\x00\x01", i)
        if i < 0:
            break
        starts.append(i + 3)
        i += 3
    for n, s in enumerate(starts):
        end = starts[n + 1] - 3 if n + 1 < len(starts) else len(data)
        while end > s and data[end - 1] == 0:
            end -= 1
        yield s, end


def with_emulation_prevention(rbsp):
    out, zeros = bytearray(), 0
    for b in rbsp:
        if zeros >= 2 and b <= 3:
            out.append(3)
            zeros = 0
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def odd_parity(c):
    return c | 0x80 if bin(c).count("1") % 2 == 0 else c


def caption_sei(pair):
    cc = bytes([0xFC, odd_parity(pair[0]), odd_parity(pair[1])])
    user_data = b"\xb5\x00\x31GA94\x03" + bytes([0xC0 | 1, 0xFF]) + cc + b"\xff"
    payload = bytes([USER_DATA_REGISTERED, len(user_data)]) + user_data + b"\x80"
    header = bytes([PREFIX_SEI << 1, 1])
    return b"\x00\x00\x00\x01" + header + with_emulation_prevention(payload)


def main():
    src, dst, fps, spans = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    spans = [tuple(float(x) for x in s.split("-")) for s in spans.split(",") if s]
    data = open(src, "rb").read()
    out, picture = bytearray(), 0
    text = b"CAPTIONS"
    for s, e in nal_units(data):
        nal_type = (data[s] >> 1) & 0x3F
        if nal_type < 32:
            t = picture / fps
            if any(a <= t < b for a, b in spans):
                i = picture % (len(text) // 2)
                out += caption_sei(text[2 * i : 2 * i + 2])
            picture += 1
        out += b"\x00\x00\x00\x01" + data[s:e]
    open(dst, "wb").write(out)


main()
