# seeds/001 "解决粘包 方式二" 客户端: reads a 4-byte struct length, then the output.
# Address: '192.168.1.2' became '127.0.0.1'.
# Repairs:
#  - the text lost its indentation; indented again.
#  - the text reads the output with ''.join(iter(partial(tcp_client.recv,
#    buffer_size), b'')): that waits for the server to close (which neither
#    the text's server nor ours does between commands) and then joins bytes
#    into a str (a TypeError). Replaced with the reading loop of 方式一, which
#    reads the `length` bytes the header announced: the lesson's own intent.
# Runs against: kind = "exec", framing = "struct".
from socket import *
import struct
from functools import partial
ip_port = ('127.0.0.1',8080)
back_log = 5
buffer_size = 1024
tcp_client = socket(AF_INET,SOCK_STREAM)
tcp_client.connect(ip_port)
while True:
    cmd = input('>>:').strip()
    if not cmd:continue
    if cmd == 'quit':break
    tcp_client.send(cmd.encode('utf-8'))
    length_data= tcp_client.recv(4)
    length = struct.unpack('i',length_data)[0]
    recv_msg = b''
    while len(recv_msg) < length:
        recv_msg += tcp_client.recv(buffer_size)
    print('命令的执行结果是',recv_msg.decode('utf-8'))
tcp_client.close()
