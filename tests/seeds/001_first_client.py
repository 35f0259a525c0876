# seeds/001 first example "客户端": sends hello, prints the answer.
# Address: '192.168.1.4' became '127.0.0.1'. Otherwise verbatim.
# Runs against: kind = "echo".
import socket
phone = socket.socket(socket.AF_INET,socket.SOCK_STREAM)
phone.connect(('127.0.0.1',8000))
phone.send('hello'.encode('utf-8'))#发消息
data =phone.recv(1024) #收消息
print('收到服务端发来的消息',data)
