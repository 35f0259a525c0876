# seeds/001 "客户端服务端循环发送接收消息" 服务端.
# Address: '192.168.1.3' became '127.0.0.1'.
# Repair: the text lost its indentation; the loop body is indented again.
# (On EOF it loops on empty reads forever, as the text's does.)
# Switchboard plays it with: kind = "echo".
from socket import *
ip_import =('127.0.0.1',8000)
back_log = 5
buffer_size = 1024
tcp_server = socket(AF_INET,SOCK_STREAM)
tcp_server.bind(ip_import)
tcp_server.listen(back_log)
conn,add = tcp_server.accept()
print('双向链接是',conn)
print('客户端的地址是',add)
while True:
    msg = conn.recv(buffer_size)
    print('客户发来的是',msg.decode('utf-8'))
    conn.send(msg.upper())
conn.close()
tcp_server.close()
