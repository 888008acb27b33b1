#!/usr/bin/env python3
"""hack/dev-cluster's port forwarder: host loopback -> the cluster's network namespace.

Every component of the dev cluster listens inside its own network namespace; this one process on
the host gives kubectl, helm, the tests and `hack/images push` a way in, on loopback only:

  forward.py --netns /run/netns/NAME --ready FILE LISTEN_PORT=TARGET_PORT ...

binds 127.0.0.1:LISTEN_PORT in the host namespace (0 picks a free port), then enters the cluster's
namespace (setns) and connects each accepted connection to 127.0.0.1:TARGET_PORT there. Sockets
keep the namespace they were made in, so the listeners stay on the host while every outgoing
connection is made in the cluster. FILE gets one line LISTEN_PORT=TARGET_PORT per pair once all
listen. Bytes are copied as they are (TLS passes through). SIGTERM stops it.
"""
import ctypes
import os
import select
import signal
import socket
import sys
import threading

CLONE_NEWNET = 0x40000000


def enter_netns(path):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def pump(a, b):
    """Copies both ways until both sides are done; half-closes are passed on."""
    open_ends = {a: b, b: a}
    try:
        while open_ends:
            ready, _, _ = select.select(list(open_ends), [], [])
            for s in ready:
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                peer = open_ends.get(s)
                if data:
                    peer.sendall(data)
                    continue
                del open_ends[s]
                try:
                    peer.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                if peer not in open_ends:
                    open_ends.clear()
    except OSError:
        pass
    finally:
        a.close()
        b.close()


def serve(listener, target):
    while True:
        conn, _ = listener.accept()
        try:
            up = socket.create_connection(("127.0.0.1", target), timeout=10)
            up.settimeout(None)
        except OSError as e:
            print(f"forward: 127.0.0.1:{target} in the cluster: {e}", file=sys.stderr, flush=True)
            conn.close()
            continue
        threading.Thread(target=pump, args=(conn, up), daemon=True).start()


def main():
    args = sys.argv[1:]
    if len(args) < 5 or args[0] != "--netns" or args[2] != "--ready":
        print(__doc__, file=sys.stderr)
        return 2
    netns, ready, pairs = args[1], args[3], args[4:]
    listeners = []
    for pair in pairs:
        listen, target = (int(x) for x in pair.split("="))
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", listen))
        s.listen(64)
        listeners.append((s, target))
    enter_netns(netns)  # threads made from here on are in the cluster's namespace too
    for s, target in listeners:
        threading.Thread(target=serve, args=(s, target), daemon=True).start()
    tmp = ready + ".tmp"
    with open(tmp, "w") as f:
        for s, target in listeners:
            f.write(f"{s.getsockname()[1]}={target}\n")
    os.replace(tmp, ready)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())
