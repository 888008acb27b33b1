#!/usr/bin/env python3
"""hack/dev-cluster's cluster DNS: the part of kube-dns/CoreDNS that Pods here need.

  dns.py --listen IP:PORT --api URL --token-file FILE --ca FILE [--domain cluster.local]

Answers, over UDP and TCP, with data read from the API server (all Services and EndpointSlices,
listed again at most once a second, and at once on a miss):
  SVC.NS.svc.DOMAIN        A: the Service's ClusterIP; a headless Service: its ready endpoints
  A-B-C-D.NS.pod.DOMAIN    A: A.B.C.D
  anything else            NXDOMAIN (there is no upstream: the dev cluster has no outside network)
AAAA and other types of a known name get an empty answer (NOERROR). The kubelet's clusterDNS
points Pods at the kube-system/kube-dns Service, which kube-proxy sends here.
"""
import json
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.request

TTL = 5


class Records:
    def __init__(self, api, token_file, ca, domain):
        self.api, self.token_file, self.domain = api.rstrip("/"), token_file, domain
        self.ctx = ssl.create_default_context(cafile=ca)
        self.lock = threading.Lock()
        self.names, self.listed = {}, 0.0

    def get(self, path):
        with open(self.token_file) as f:
            token = f.read().strip()
        req = urllib.request.Request(self.api + path, headers={"Authorization": "Bearer " + token})
        with urllib.request.urlopen(req, context=self.ctx, timeout=5) as r:
            return json.load(r)

    def relist(self):
        names = {}
        ready = {}
        for s in self.get("/apis/discovery.k8s.io/v1/endpointslices")["items"]:
            key = (s["metadata"]["namespace"], s["metadata"].get("labels", {}).get("kubernetes.io/service-name"))
            for e in s.get("endpoints") or []:
                if (e.get("conditions") or {}).get("ready", True):
                    ready.setdefault(key, []).extend(e.get("addresses") or [])
        for svc in self.get("/api/v1/services")["items"]:
            ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
            ip = svc["spec"].get("clusterIP")
            ips = ready.get((ns, name), []) if ip in (None, "", "None") else [ip]
            names[f"{name}.{ns}.svc.{self.domain}"] = [a for a in ips if ":" not in a]
        with self.lock:
            self.names, self.listed = names, time.monotonic()

    def lookup(self, qname):
        """(rcode, [IPv4 addresses]) for a lower-case name without the trailing dot."""
        pod_suffix = ".pod." + self.domain
        if qname.endswith(pod_suffix):
            first = qname[: -len(pod_suffix)].split(".")[0].split("-")
            if len(first) == 4 and all(p.isdigit() and int(p) < 256 for p in first):
                return 0, [".".join(first)]
            return 3, []
        if not qname.endswith(".svc." + self.domain):
            return 3, []
        for attempt in range(2):
            with self.lock:
                hit, age = self.names.get(qname), time.monotonic() - self.listed
            if hit is not None or attempt or age < 0.2:
                break
            try:
                self.relist()
            except Exception as e:  # the API server restarting: answer from what we had
                print(f"dns: listing Services: {e}", file=sys.stderr, flush=True)
        return (0, hit) if hit is not None else (3, [])

    def refresh_loop(self):
        while True:
            try:
                self.relist()
            except Exception as e:
                print(f"dns: listing Services: {e}", file=sys.stderr, flush=True)
            time.sleep(1)


def answer(records, query):
    """The response to one DNS message, or None when it is not a query we can parse."""
    if len(query) < 12:
        return None
    qid, flags, qd = struct.unpack(">HHH", query[:6])
    if flags & 0x8000 or qd != 1:
        return None
    labels, i = [], 12
    while i < len(query) and query[i]:
        n = query[i]
        if n & 0xC0 or i + 1 + n > len(query):
            return None
        labels.append(query[i + 1 : i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    if i + 5 > len(query):
        return None
    qtype, qclass = struct.unpack(">HH", query[i + 1 : i + 5])
    question = query[12 : i + 5]
    rcode, ips = records.lookup(".".join(labels).lower())
    answers = b""
    if rcode == 0 and qtype in (1, 255) and qclass == 1:
        for ip in ips:
            answers += struct.pack(">HHHIH", 0xC00C, 1, 1, TTL, 4) + socket.inet_aton(ip)
    n_ans = len(ips) if answers else 0
    out_flags = 0x8000 | 0x0400 | (flags & 0x0100) | rcode  # QR, AA, RD copied
    return struct.pack(">HHHHHH", qid, out_flags, 1, n_ans, 0, 0) + question + answers


def serve_udp(records, sock):
    while True:
        data, peer = sock.recvfrom(4096)
        reply = answer(records, data)
        if reply:
            sock.sendto(reply, peer)


def serve_tcp_conn(records, conn):
    with conn:
        conn.settimeout(10)
        try:
            while True:
                head = conn.recv(2, socket.MSG_WAITALL)
                if len(head) < 2:
                    return
                data = conn.recv(struct.unpack(">H", head)[0], socket.MSG_WAITALL)
                reply = answer(records, data)
                if not reply:
                    return
                conn.sendall(struct.pack(">H", len(reply)) + reply)
        except OSError:
            return


def serve_tcp(records, sock):
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=serve_tcp_conn, args=(records, conn), daemon=True).start()


def main():
    opts = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    need = ("--listen", "--api", "--token-file", "--ca")
    if any(k not in opts for k in need):
        print(__doc__, file=sys.stderr)
        return 2
    host, port = opts["--listen"].rsplit(":", 1)
    records = Records(opts["--api"], opts["--token-file"], opts["--ca"], opts.get("--domain", "cluster.local"))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((host, int(port)))
    tcp = socket.socket()
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((host, int(port)))
    tcp.listen(16)
    threading.Thread(target=records.refresh_loop, daemon=True).start()
    threading.Thread(target=serve_tcp, args=(records, tcp), daemon=True).start()
    print(f"dns: serving {host}:{port}", file=sys.stderr, flush=True)
    serve_udp(records, udp)


if __name__ == "__main__":
    sys.exit(main())
