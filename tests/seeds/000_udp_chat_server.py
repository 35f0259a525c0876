# seeds/000 "UDP的传输 server端": the UDP chat whose person types each reply.
# Address: '0.0.0.0' became '127.0.0.1'. Otherwise verbatim (its outer loop
# binds the same port again after a chat ends, which fails: the text's own).
# Switchboard plays it with: kind = "udp-chat" (the dashboard types the replies).
import socket

while True:
    receive = socket.socket(type=socket.SOCK_DGRAM)
    receive.bind(('127.0.0.1', 9999))
    while True:
        msg, addr = receive.recvfrom(1024)
        ret = msg.decode('utf-8')
        if ret.upper() == 'Q':
            receive.sendto(bytes('您已断开连接!'.encode('utf-8')), addr)
            print('对方已与您断开连接!')
            break
        elif ret == '您已断开连接!':
            print(ret)
            break
        else:
            print(ret, addr)
        s = input('>>>').encode('utf-8')
        receive.sendto(bytes(s), addr)
receive.close()
