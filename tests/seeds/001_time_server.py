# seeds/001 "时间服务端" (ntp).
# Address: '192.168.1.5' became '127.0.0.1'.
# Repair: the text lost its indentation; indented again.
# Switchboard plays it with: kind = "time".
from socket import *
import time
ip_port = ('127.0.0.1',8080)
buffer_size = 1024
time_server = socket(AF_INET,SOCK_DGRAM)
time_server.bind(ip_port)
while True:
    data,addr = time_server.recvfrom(buffer_size)
    if not data:
        fmt = '%Y-%m-%d-%X'
    else:
        fmt = data.decode('utf-8')
    back_time = time.strftime(fmt)
    time_server.sendto(back_time.encode('utf-8'),addr)
time_server.close()
