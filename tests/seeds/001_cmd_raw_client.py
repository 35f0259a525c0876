# seeds/001 "基于tcp实现远程命令" 客户端: one recv(1024) per command, so a
# longer output spills into the next command's answer (the sticky packet).
# Address: '192.168.1.5' became '127.0.0.1'.
# Repair: the text lost its indentation; indented again.
# Runs against: kind = "exec", framing = "raw".
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
    cmd_res = tcp_client.recv(buffer_size)
    print('命令的执行结果是',cmd_res.decode('utf-8'))
tcp_client.close()
