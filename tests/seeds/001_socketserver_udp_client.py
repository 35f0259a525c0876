# seeds/001 "socketserver-udp套接字 并发" 客户端.
# Address: '192.168.1.2' became '127.0.0.1'.
# Repair: the text lost its indentation; indented again.
# Runs against: kind = "udp-echo".
from socket import *
ip_port=('127.0.0.1',8082)
buffer_size=1024
udp_client=socket(AF_INET,SOCK_DGRAM) #数据报
while True:
    msg=input('>>: ').strip()
    udp_client.sendto(msg.encode('utf-8'),ip_port)
    data,addr=udp_client.recvfrom(buffer_size)
    # print(data.decode('utf-8'))
    print(data)
