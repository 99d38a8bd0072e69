#!/usr/bin/python3
"""Sends a TS file over UDP to 127.0.0.1 ports, looping and mutating it at random, at about the
file's own bitrate, until killed.

    udp_fuzz.py TS_FILE SECONDS_OF_MEDIA PORT [PORT ...]

Each port gets its own copy of the stream, mutated independently, datagram by datagram: bytes
flipped, datagrams dropped, duplicated, cut short (not a multiple of 188 bytes), replaced by
garbage or by packets with sync bytes but random headers, and now and then a burst of garbage.
"""
import random
import socket
import sys
import time

PACKET = 188
PER_DATAGRAM = 7


def mutate(datagram):
    """The datagrams to send for one datagram of the file (none, one or several)."""
    roll = random.random()
    if roll < 0.02:
        return []
    if roll < 0.04:
        return [datagram, datagram]
    if roll < 0.06:
        return [datagram[: random.randrange(1, len(datagram))]]
    if roll < 0.08:
        return [random.randbytes(len(datagram))]
    if roll < 0.10:
        return [b"".join(b"\x47" + random.randbytes(PACKET - 1) for _ in range(PER_DATAGRAM))]
    if roll < 0.105:
        return [random.randbytes(random.randrange(1, 1500)) for _ in range(200)]
    if roll < 0.15:
        data = bytearray(datagram)
        for _ in range(random.randrange(1, 30)):
            data[random.randrange(len(data))] = random.randrange(256)
        return [bytes(data)]
    return [datagram]


def main():
    path, seconds, ports = sys.argv[1], float(sys.argv[2]), [int(p) for p in sys.argv[3:]]
    with open(path, "rb") as f:
        data = f.read()
    size = PACKET * PER_DATAGRAM
    datagrams = [data[i:i + size] for i in range(0, len(data) - len(data) % size, size)]
    interval = seconds / max(1, len(datagrams))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    start = time.monotonic()
    sent = 0
    while True:
        for datagram in datagrams:
            for port in ports:
                for out in mutate(datagram):
                    try:
                        sock.sendto(out, ("127.0.0.1", port))
                    except OSError:
                        pass
            sent += 1
            ahead = start + sent * interval - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)


main()
