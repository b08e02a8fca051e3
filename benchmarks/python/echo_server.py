"""The tutorial's gevent echo server, for benchmarks/echo: one greenlet per connection
(gevent.server.StreamServer), recv(65536) / sendall, TCP_NODELAY. Listens on 127.0.0.1
on a port the system picks, prints the port, and serves until killed."""
import socket
import sys

from gevent.server import StreamServer


def handle(sock, _address):
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        data = sock.recv(65536)
        if not data:
            break
        sock.sendall(data)


def main():
    server = StreamServer(("127.0.0.1", 0), handle, backlog=4096)
    server.start()
    sys.stdout.write("%d\n" % server.address[1])
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
