# seeds/001 first example "服务端": one message, upper-cased, then exit.
# Address: '192.168.1.4' became '127.0.0.1'. Otherwise verbatim.
# Switchboard plays it with: kind = "echo".
import socket
phone = socket.socket(socket.AF_INET,socket.SOCK_STREAM)
#socket.SOCK_STREAM 是基于流的通讯方式,也就是TCP
#socket.AF_INET 代表是网络嵌套家族类型
phone.bind(('127.0.0.1',8000))
#括号内写IP地址+端口 自己电脑IP是 192.168.1.4 ,监听端口是8000
phone.listen(5) #代表同时可以接5个电话
conn,addr =phone.accept()
msg=conn.recv(1024)# 收消息 ,1024代表可以接收多少字节的信息
print('客户端发来的消息是',msg)
conn.send(msg.upper())#发消息
conn.close()
phone.close()
