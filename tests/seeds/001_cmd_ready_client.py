# seeds/001 "解决粘包 方式一" 客户端: reads the length, answers `ready`, then
# reads that many bytes.
# Address: '192.168.1.5' became '127.0.0.1'.
# Repair: the text lost its indentation; indented again.
# Runs against: kind = "exec", framing = "length-ready".
from socket import *
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
    length= tcp_client.recv(buffer_size)
    tcp_client.send(b'ready')
    length = int(length.decode('utf-8'))
    recv_msg = b''
    recv_size = 0
    while recv_size < length:
        recv_msg +=tcp_client.recv(buffer_size)
        recv_size = len(recv_msg)
    print('命令的执行结果是',recv_msg.decode('utf-8'))
tcp_client.close()
