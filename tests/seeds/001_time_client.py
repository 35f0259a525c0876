# seeds/001 "时间客户端".
# Address: '192.168.1.5' became '127.0.0.1'.
# Repair: the text lost its indentation; indented again.
# Runs against: kind = "time".
from socket import *
ip_port = ('127.0.0.1',8080)
buffer_size = 1024
time_client = socket(AF_INET,SOCK_DGRAM) #SOCK_DGRAM 数据报
while True:
    msg = input('>>:').strip()
    time_client.sendto(msg.encode('utf-8'),ip_port)
    data,addr = time_client.recvfrom(buffer_size)
    print('服务器的标准时间是:',data.decode('utf-8'))
time_client.close()
