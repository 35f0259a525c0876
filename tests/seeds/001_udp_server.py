# seeds/001 "基于udp 的套接字" 服务端.
# Address: '192.168.1.5' became '127.0.0.1'.
# Repair: the text lost its indentation; indented again.
# Switchboard plays it with: kind = "udp-echo".
from socket import *
ip_port = ('127.0.0.1',8080)
buffer_size = 1024
udp_server = socket(AF_INET,SOCK_DGRAM) #SOCK_DGRAM 数据报
udp_server.bind(ip_port)
while True:
    data,addr = udp_server.recvfrom(buffer_size)
    print(data.decode('utf-8'))
    udp_server.sendto(data.upper(),addr)
udp_server.close()
