# seeds/001 "认证客户端合法性" 客户端.
# Address: '192.168.1.2' became '127.0.0.1'.
# Repair: the text lost its indentation; indented again. hmac.new without
# digestmod needs sitecustomize.py on Python >= 3.8 (MD5, the old default).
# Runs against: kind = "echo", auth = "hmac-md5", auth_key = "ni hao ma".
from socket import *
import os,hmac
secret_key = b'ni hao ma'
def conn_auth(conn):
    '''
    验证客户端到服务器的连接合法性
    :param conn:
    :return:
    '''
    msg = conn.recv(32)
    h = hmac.new(secret_key, msg)
    digest = h.digest()
    conn.sendall(digest)
def client_handler(ip_port,bufsize=1024):
    tcp_socket_client = socket(AF_INET, SOCK_STREAM)
    tcp_socket_client.connect(ip_port)
    conn_auth(tcp_socket_client)
    while True:
        #发消息
        cmd = input('>>:').strip()
        if not cmd: continue
        if cmd == 'quit': break
        tcp_socket_client.send(cmd.encode('utf-8'))
        #收消息
        data=tcp_socket_client.recv(bufsize)
        print(data.decode('utf-8'))
    tcp_socket_client.close()
if __name__ == '__main__':
    ip_port = ('127.0.0.1', 8080)
    bufize = 1024
    client_handler(ip_port,bufize)
