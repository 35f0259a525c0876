"""The tutorial's file receiver (seeds/003): a 136-byte '128sq' header (name,
NUL-padded, and a signed 64-bit size), then the bytes, stored as new_<name>.

deal_data is the tutorial's, line for line (1024-byte recv calls, and its
habit of taking the last short read as the end). Changes for measuring: it
stores into the folder given on the command line, and serves connections
forever on threads (socketserver) instead of one connection then exit.

    python3 file_server.py 127.0.0.1 9102 /tmp/received
"""
import os
import socketserver
import struct
import sys

FOLDER = '.'


def deal_data(sock, addr):
    while True:
        fileinfo_size = struct.calcsize('128sq')
        buf = sock.recv(fileinfo_size)
        if buf:
            filename, filesize = struct.unpack('128sq', buf)
            fn = filename.decode().strip('\x00')
            new_filename = os.path.join(FOLDER, 'new_' + fn)

            recvd_size = 0
            fp = open(new_filename, 'wb')

            while not recvd_size == filesize:
                if filesize - recvd_size > 1024:
                    data = sock.recv(1024)
                    recvd_size += len(data)
                else:
                    data = sock.recv(1024)
                    recvd_size = filesize
                fp.write(data)
            fp.close()
        sock.close()
        break


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        deal_data(self.request, self.client_address)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 64


if __name__ == '__main__':
    FOLDER = sys.argv[3]
    Server((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
