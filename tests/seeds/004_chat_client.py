# seeds/004 "客户端可以退出" client: WRITTEN FROM THE TEXT'S DESCRIPTION, its
# code blocks being folded away ("View Code") in the text.
# What the text says: client and server send in turn; typing `exit` ends the
# client (and the server's side of the conversation); an `exit` from the
# server ends the client too.
# Runs against: kind = "chat".
import socket

client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
client.connect(('127.0.0.1', 8000))
while True:
    msg = input('>>:').strip()
    if not msg:
        continue
    client.send(msg.encode('utf-8'))
    if msg == 'exit':
        break
    data = client.recv(1024)
    if not data:
        break
    reply = data.decode('utf-8')
    print('服务端:', reply)
    if reply == 'exit':
        break
client.close()
