# Counts what crosses a pod's network interface to and from one peer address, for a bounded time:
# TCP segments with payload, those that start like plaintext HTTP, and those that start like TLS
# records. Runs inside the pod's network namespace (nsenter) with an AF_PACKET socket, so no
# capture tool is needed. Usage: capture.py <interface> <peer IPv4> <seconds> [needle]; prints
# "ready" on stderr once the socket is bound, and the JSON counts on stdout when the seconds are
# up or SIGTERM arrives, whichever is first. With a needle, 'needle' counts the segments whose
# payload contains it in plaintext.
import json
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
HTTP_STARTS = (b'GET ', b'POST ', b'PUT ', b'HEAD ', b'DELETE ', b'HTTP/1.')


def main():
    interface, peer, seconds = sys.argv[1], socket.inet_aton(sys.argv[2]), float(sys.argv[3])
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    # A burst of large frames must not overflow the socket while this loop is descheduled.
    # (SO_RCVBUFFORCE is 33 on Linux; Python names it only on some builds.)
    sock.setsockopt(socket.SOL_SOCKET, getattr(socket, 'SO_RCVBUFFORCE', 33), 16 * 1024 * 1024)
    sock.bind((interface, 0))
    sock.settimeout(0.2)
    stopped = []
    signal.signal(signal.SIGTERM, lambda *_: stopped.append(True))
    needle = sys.argv[4].encode() if len(sys.argv) > 4 else None
    counts = {'segments': 0, 'plaintextHttp': 0, 'tlsRecords': 0, 'bytes': 0}
    if needle is not None:
        counts['needle'] = 0
    print('ready', file=sys.stderr, flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stopped:
        try:
            # Offloaded segments arrive merged, larger than one MTU.
            frame = sock.recv(262144)
        except socket.timeout:
            continue
        if len(frame) < 34 or struct.unpack('!H', frame[12:14])[0] != 0x0800:
            continue
        ip = frame[14:]
        if ip[9] != 6 or peer not in (ip[12:16], ip[16:20]):
            continue
        tcp = ip[(ip[0] & 0x0F) * 4:]
        payload = tcp[(tcp[12] >> 4) * 4:]
        if len(payload) == 0:
            continue
        counts['segments'] += 1
        counts['bytes'] += len(payload)
        if payload.startswith(HTTP_STARTS) or b'"pod":' in payload:
            counts['plaintextHttp'] += 1
        if payload[0] in (0x14, 0x15, 0x16, 0x17) and payload[1] == 0x03:
            counts['tlsRecords'] += 1
        if needle is not None and needle in payload:
            counts['needle'] += 1
    print(json.dumps(counts))


main()
