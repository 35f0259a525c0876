# seeds/000 "socket server端实例代码": the login server. Verbatim.
# Switchboard plays it with: kind = "login", prompts = "tutorial".
import socket        #导入socket接口

receive = socket.socket()
receive.bind(('127.0.0.1', 9999))    #此处的127.0.0.1为IP地址,9999为端口号
receive.listen()    #开始TCP监听
conn, addr = receive.accept()    #被动接收TCP客户端的连接,(阻塞)等待连接。
while True:
    conn.send('请输入用户名:'.encode('utf-8'))
    ret_user = conn.recv(1024).decode('utf-8')
    conn.send('请输入密码:'.encode('utf-8'))
    ret_psw = conn.recv(1024).decode('utf-8')
    if ret_user == 'zhao' and ret_psw == '123':
        conn.send('登录成功'.encode('utf-8'))
        break
    else:
        conn.send('用户名或密码输入错误'.encode('utf-8'))

conn.close()    #关闭套接字
receive.close()
