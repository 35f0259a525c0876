"""The tutorial's concurrent upper-case echo server (seeds/001, "socketserver-tcp").

As the tutorial writes it, with three changes for measuring: the address
comes from the command line, the per-message print is gone (it would time
the terminal, not the server), and the listen backlog is 1024 instead of
socketserver's 5 (else thousands of connects spend seconds in SYN retries
before the server is measured at all).

    python3 echo_server.py 127.0.0.1 9100
"""
import socketserver
import sys


class MyServer(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            try:
                data = self.request.recv(1024)
                if not data:
                    break
                self.request.send(data.upper())
            except Exception as e:
                print(e)
                break


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 1024


if __name__ == '__main__':
    s = Server((sys.argv[1], int(sys.argv[2])), MyServer)
    s.serve_forever()
