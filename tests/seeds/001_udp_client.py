# seeds/001 "基于udp 的套接字" 客户端.
# Address: '192.168.1.5' became '127.0.0.1'.
# Repair: the text lost its indentation; indented again.
# Runs against: kind = "udp-echo".
from socket import *
ip_port = ('127.0.0.1',8080)
buffer_size = 1024
udp_client = socket(AF_INET,SOCK_DGRAM) #SOCK_DGRAM 数据报
while True:
    msg = input('>>:').strip()
    udp_client.sendto(msg.encode('utf-8'),ip_port)
    data,addr = udp_client.recvfrom(buffer_size)
    print(data.decode('utf-8'))
udp_client.close()
