#!/usr/bin/env python3
"""Holds as many keep-alive connections to the admission port as it can: each of N
connections sends one review, then idles; one the server closes is replaced at once.
Prints each second how many it holds and how many it has lost. Run it beside a real
client (h2load) to see that the client is still served (SECURITY.md, "Connections held
open"):

  pullgate serve --config examples/config.yaml --listen 127.0.0.1:18443 \\
      --probe-listen 127.0.0.1:19090 --max-in-flight 8 --ca-out /tmp/ca.crt &
  benches/hold_connections.py 127.0.0.1 18443 40 14 examples/reviews/pod-denied.json /tmp/ca.crt &
  sleep 3; h2load --h1 -c25 --rps 40 -D 8 -d examples/reviews/pod-denied.json \\
      -H 'content-type: application/json' 'https://127.0.0.1:18443/validate?timeout=10s'
"""
import socket
import ssl
import sys
import threading
import time

host, port, n, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
body = open(sys.argv[5], "rb").read()
ctx = ssl.create_default_context(cafile=sys.argv[6])
request = (
    b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n" % len(body)
) + body
held = lost = 0
lock = threading.Lock()


def hold():
    global held, lost
    end = time.time() + seconds
    while time.time() < end:
        try:
            tcp = socket.create_connection((host, port), timeout=30)
            s = ctx.wrap_socket(tcp, server_hostname="localhost")
            s.sendall(request)
            s.recv(65536)
        except OSError:
            time.sleep(0.05)
            continue
        with lock:
            held += 1
        s.settimeout(max(0.1, end - time.time()))
        try:
            while s.recv(65536):
                pass
        except OSError:
            pass
        with lock:
            held -= 1
            lost += 1
        s.close()


threads = [threading.Thread(target=hold, daemon=True) for _ in range(n)]
for t in threads:
    t.start()
for i in range(int(seconds)):
    time.sleep(1)
    print(f"t={i + 1}s held {held}, lost {lost}", flush=True)
