# seeds/001 "认证客户端合法性" 服务端: a 32-byte challenge, HMAC of it as the
# answer, then an upper-case echo.
# Address: '192.168.1.2' became '127.0.0.1'.
# Repair: the text lost its indentation; indented again. hmac.new without
# digestmod needs sitecustomize.py on Python >= 3.8 (MD5, the old default).
# Switchboard plays it with: kind = "echo", auth = "hmac-md5", auth_key = "ni hao ma".
from socket import *
import os
import hmac
secret_key = b'ni hao ma'
def conn_auth(conn):
    '''
    认证客户端连接
    :param conn:
    :return:
    '''
    print('开始验证连接的合法性')
    msg = os.urandom(32)
    conn.sendall(msg)
    h=hmac.new(secret_key,msg)#加严
    digest=h.digest()
    respone=conn.recv(len(digest))
    return hmac.compare_digest(respone,digest)#对比respone 与digest 是否一致
def data_handler(conn, bufize=1024):
    if not conn_auth(conn):
        print('该连接不合法,关闭')
        conn.close()
        return
    print('连接合法,开始通信')
    while True:
        data = conn.recv(bufize)
        if not data: break
        conn.send(data.upper())
def server_handle(ip_port,bufize,backlog=5):
    '''
    只处理连接
    :param ip_port:
    :param bufize:
    :param backlog:
    :return:
    '''
    tcp_socket_server = socket(AF_INET, SOCK_STREAM)
    tcp_socket_server.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
    # 在bind 之前进行socket 设置,使其不卡在time_wait占用地址
    tcp_socket_server.bind(ip_port)
    tcp_socket_server.listen(backlog)
    while True:
        conn, addr = tcp_socket_server.accept()
        print('conn是%s,addr是%s' % (conn, addr))
        data_handler(conn, bufize)
    tcp_socket_server.close()
if __name__ == '__main__':
    ip_port =('127.0.0.1',8080)
    bufize = 1024
    server_handle(ip_port,bufize)
