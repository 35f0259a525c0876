# seeds/002 "发数据": a UDP sender that reads lines until `exit`.
# Address: '192.168.43.106' became '127.0.0.1'.
# Repairs: the text lost every newline (the program is one line with its
# comments run in); newlines and indentation restored, comments kept. The
# text's `udp_socket.close` (not called) is kept as written.
# Runs against: kind = "udp-echo" (any UDP service: it reads no answer).
import socket
def main():
    # 1.创建一个udp套接字
    udp_socket=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)
    # 绑定本地信息
    # udp_socket.bind(('',7890)) # 发送数据不是一定要绑定端口,如不绑定,每次运行系统随机分配一个端口
    # 2.使用套接字收发数据
    while True:
        # 2.1 从键盘获取数据
        send_data = input("请输入要发送的数据:")
        # 如果输入的数据是exit,那么就退出程序
        if send_data=="exit":
            break
        # 2.2 发送数据到指定的电脑上的指定程序中
        # upd_socket.sendto("hahahah",('对方的ip',port))
        # udp_socket.sendto(b"hahahahah",('192.168.43.106',8080))
        udp_socket.sendto(send_data.encode("utf-8"),('127.0.0.1',8080))
    # 3.关闭套接字
    udp_socket.close
    print("-----run-----")
if __name__ == "__main__":
    main()
