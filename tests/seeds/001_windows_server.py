# seeds/001 "windows 系统下" 服务端: serves one client after another.
# Address: '192.168.1.3' became '127.0.0.1'.
# Repairs: the text lost its indentation (indented again); "服务端:from socket
# import *" lost a newline after the label (the label dropped).
# Switchboard plays it with: kind = "echo".
from socket import *
ip_port =('127.0.0.1',8001)
back_log = 5
buffer_size = 1024
tcp_server = socket(AF_INET,SOCK_STREAM)
tcp_server.bind(ip_port)
tcp_server.listen(back_log)
while True:
    conn,add = tcp_server.accept()
    print('接收的链接是',conn)
    print('地址是',add)
    while True:
        print('服务端开始运行了')
        try:
            data = conn.recv(buffer_size)
            print('客户发来的是',data.decode('utf-8'))
            conn.send(data.upper())
            print('服务端已发送',data.upper())
        except Exception:
            break
    conn.close()
tcp_server.close()
