# seeds/000 "UDP的传输 client端": the UDP chat client. Verbatim (it asks for
# the address on its standard input, so not even that is changed).
# Runs against: kind = "udp-chat".
import socket

receive = socket.socket(type=socket.SOCK_DGRAM)
while True:
    addr = input('输入要连接的ip地址:')
    addr_port = int(input('输入端口号:'))
    receive.connect((addr, addr_port))
    while True:
        n = input('>>>').encode('utf-8')
        receive.sendto(bytes(n), (addr, addr_port))
        msg = receive.recv(1024)
        ret = msg.decode('utf-8')
        if ret.upper() == 'Q':
            receive.sendto(bytes('您已断开连接!'.encode('utf-8')), (addr, addr_port))
            print('对方已与您断开连接!')
            break
        elif ret == '您已断开连接!':
            print(ret)
            break
        else:
            print(ret)
receive.close()
