"""The tutorial's concurrent UDP upper-case echo server (seeds/001,
"socketserver-udp"): a thread per datagram, as socketserver does it.

The address comes from the command line; the per-datagram print is gone.

    python3 udp_server.py 127.0.0.1 9101
"""
import socketserver
import sys


class MyServer(socketserver.BaseRequestHandler):
    def handle(self):
        # self.request is (data, the server's socket)
        self.request[1].sendto(self.request[0].upper(), self.client_address)


class Server(socketserver.ThreadingUDPServer):
    allow_reuse_address = True
    daemon_threads = True


if __name__ == '__main__':
    s = Server((sys.argv[1], int(sys.argv[2])), MyServer)
    s.serve_forever()
