# seeds/001 "windows 系统下" 客户端 (the loop client, ending with close()).
# Address: '192.168.1.3' became '127.0.0.1'.
# Repair: the text lost its indentation; indented again.
# Runs against: kind = "echo".
from socket import *
ip_port=('127.0.0.1',8001)
back_log=5
buffer_size=1024
tcp_client = socket(AF_INET,SOCK_STREAM)
tcp_client.connect(ip_port)
while True:
    client_msg = input('>>:').strip()
    if not client_msg: continue
    tcp_client.send(client_msg.encode('utf-8'))
    print('客户端已发送消息')
    data = tcp_client.recv(buffer_size)
    print('收到服务端发来的消息',data.decode('utf-8'))
tcp_client.close()
