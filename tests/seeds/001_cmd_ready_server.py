# seeds/001 "解决粘包 方式一" 服务端: the length as decimal text, then the
# output once the client says `ready`.
# Address: '192.168.1.5' became '127.0.0.1'.
# Repair: the text lost its indentation; indented again.
# Switchboard plays it with: kind = "exec", framing = "length-ready", auth = "none".
from socket import *
import subprocess

ip_port = ('127.0.0.1',8080)
back_log = 5
buffer_size = 1024
tcp_sever = socket(AF_INET,SOCK_STREAM)
tcp_sever.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
tcp_sever.bind(ip_port)
tcp_sever.listen(back_log)
while True:
    conn,addr = tcp_sever.accept()
    print('新的客户端连接',addr)
    while True:
        try:
            #收消息
            cmd = conn.recv(buffer_size)
            if not cmd:break
            print('收到客户端的命令',cmd)
            #执行命令,得到命令的结果cmd_res
            res = subprocess.Popen(cmd.decode('utf-8'),shell=True,
                                   stderr=subprocess.PIPE,
                                   stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE)
            err = res.stderr.read()
            if err:
                cmd_res = err
            else:
                cmd_res = res.stdout.read()
            #发消息
            if not cmd_res:
                cmd_res = '操作成功'.encode('utf-8')
            length =len(cmd_res)
            conn.send(str(length).encode('utf-8'))
            client_ready = conn.recv(buffer_size)
            if client_ready == b'ready':
                conn.send(cmd_res)
        except Exception as e:
            print(e)
            break
tcp_sever.close()
