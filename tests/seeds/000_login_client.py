# seeds/000 "socket client端实例代码": the login client. Verbatim.
# Runs against: kind = "login", prompts = "tutorial".
import socket

receive = socket.socket()
receive.connect(('127.0.0.1', 9999))    #连接IP地址为127.0.0.1,端口为9999的主机

while True:
    print(receive.recv(1024).decode('utf-8'))
    user = input('>>>')
    receive.send(user.encode('utf-8'))
    print(receive.recv(1024).decode('utf-8'))
    psw = input('>>>')
    receive.send(psw.encode('utf-8'))
    ret = receive.recv(1024).decode('utf-8')
    if ret == '登录成功':
        print(ret)
        break
    else:
        print(ret)

receive.close()
