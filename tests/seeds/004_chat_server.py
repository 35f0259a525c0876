# seeds/004 "客户端可以退出" / "多用户" server: WRITTEN FROM THE TEXT'S
# DESCRIPTION, its code blocks being folded away ("View Code") in the text.
# What the text says: server and client send in turn; when the client types
# `exit` both the client and the server's conversation end; then the server
# serves many clients (one after another here, at once with a thread each in
# the text's last step). The server's person types each reply.
# Switchboard plays it with: kind = "chat" (the dashboard types the replies).
import socket

server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(('127.0.0.1', 8000))
server.listen(5)
while True:
    conn, addr = server.accept()
    print('新的客户端连接', addr)
    while True:
        data = conn.recv(1024)
        if not data:
            break
        msg = data.decode('utf-8')
        print('客户端:', msg)
        if msg == 'exit':
            break
        reply = input('>>:').strip()
        conn.send(reply.encode('utf-8'))
        if reply == 'exit':
            break
    conn.close()
