"""The tutorial's remote-command server (seeds/001, "方式二"): the command
line arrives in one recv, runs through the shell, and the reply is a 4-byte
length (struct 'i', native order) and the output (stderr if there was any).

The handler body is the tutorial's. Changes for measuring: the address comes
from the command line, the prints are gone, and connections are served on
threads (the same seed's socketserver lesson) instead of one at a time.
With shell=True it runs anything: loopback only, for benchmarks.

    python3 exec_server.py 127.0.0.1 9103
"""
import socketserver
import struct
import subprocess
import sys

buffer_size = 1024


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        conn = self.request
        while True:
            try:
                cmd = conn.recv(buffer_size)
                if not cmd:
                    break
                res = subprocess.Popen(cmd.decode('utf-8'), shell=True,
                                       stderr=subprocess.PIPE,
                                       stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE)
                err = res.stderr.read()
                if err:
                    cmd_res = err
                else:
                    cmd_res = res.stdout.read()
                if not cmd_res:
                    cmd_res = '操作成功'.encode('utf-8')
                length = len(cmd_res)
                conn.send(struct.pack('i', length))
                conn.send(cmd_res)
            except Exception as e:
                print(e)
                break


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 64


if __name__ == '__main__':
    if sys.argv[1] not in ('127.0.0.1', '::1', 'localhost'):
        sys.exit('exec_server.py runs shell commands for anyone: loopback only')
    Server((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
