# seeds/002 "接收数据": a UDP receiver that prints what arrives, answering nothing.
# Address: '' (any) became '127.0.0.1'.
# Repairs: the text lost every newline; newlines and indentation restored.
# Switchboard plays it with: kind = "udp-echo" (which also answers; the
# receiver's part is what the dashboard's capture of it shows).
import socket
def main():
    # 1.创建一个udp套接字
    udp_socket=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)
    # 2.使用套接字接收数据
    # 本电脑上的指定程序接收发送来的数据
    # 2.1 绑定本地的相关信息,如果一个网络程序不稳定,则系统就会随机分配
    local_addr=('127.0.0.1',7788) # (ip地址,端口号),ip一般不用写,表示本机的任何一个ip
    udp_socket.bind(local_addr)
    while True:
        # 2.2 等待接收对方发送的数据
        # recv_data变量中存储的是一个元组 (接收到的数据,(发送方的ip,port))
        recv_data=udp_socket.recvfrom(1024) # 1024表示本次接收的最大字节数
        recv_msg=recv_data[0] # 存储接收到的数据
        recv_addr=recv_data[1] # 存储发送方的地址信息
        # 2.3 打印
        print("%s: %s" % (str(recv_addr),recv_msg.decode("utf-8")))
    # 3.关闭套接字
    udp_socket.close
    print("-----run-----")
if __name__ == "__main__":
    main()
