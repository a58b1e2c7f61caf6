"""The benchmark's receiver: ``engine.receiver`` in a process of its own, on 127.0.0.1.

Prints ``PORT <n>`` once listening, keeps the number of requests received in ``--count-file``
(rewritten every 0.1 s) and stops by itself after ``--lifetime`` seconds (bounded), or on SIGTERM.
With ``--times-file``, each request answered 2xx whose body holds ``--times-marker`` adds a line
``<epoch seconds> TAB <data.name of its body>`` to that file, the time read (``time.time()``, the
machine's clock that the driver reads too) once the answer is written to the socket.
"""

import argparse
import json
import os
import signal
import socketserver
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from engine.receiver import Receiver

# engine.receiver writes the headers and the body of a response in two send() calls; without
# TCP_NODELAY, Nagle's algorithm holds the body until the client's delayed ACK (40 ms on Linux),
# which caps any keep-alive client at about 25 requests/s. The benchmark measures the sender.
socketserver.StreamRequestHandler.disable_nagle_algorithm = True


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--count-file", required=True)
    parser.add_argument("--lifetime", type=float, default=7200.0)
    parser.add_argument("--times-file")
    parser.add_argument("--times-marker", default="")
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    on_answer = times_writer(args.times_file, args.times_marker) if args.times_file else None
    with Receiver(0, delay=args.delay, keep=False, on_answer=on_answer) as receiver:
        print(f"PORT {receiver.port}", flush=True)
        deadline = time.monotonic() + args.lifetime
        last = None
        while not stop.is_set() and time.monotonic() < deadline:
            if receiver.count != last:
                last = receiver.count
                tmp = args.count_file + ".tmp"
                with open(tmp, "w") as handle:
                    handle.write(str(last))
                os.replace(tmp, args.count_file)
            stop.wait(0.1)


def times_writer(path, marker):
    """The ``on_answer`` of the receiver that notes when the marked bodies were answered 2xx."""
    marker = marker.encode()
    lock = threading.Lock()
    handle = open(path, "a", buffering=1)  # open as long as the process lives

    def on_answer(request):
        answered = time.time()
        if not 200 <= (request.status or 0) < 300 or marker not in request.body:
            return
        try:
            name = json.loads(request.body)["data"]["name"]
        except (ValueError, KeyError, TypeError):
            return
        with lock:
            handle.write(f"{answered:.6f}\t{name}\n")

    return on_answer


if __name__ == "__main__":
    main()
