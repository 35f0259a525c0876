# seeds/002 "TCP客户端": asks for the server's address, sends one line, closes.
# No address in the text to change (it is typed in).
# Repairs: the text lost every newline; newlines and indentation restored.
# Runs against: kind = "echo" (it reads no answer).
import socket
def main():
    # 1.创建tcp的套接字
    tcp_client_socket=socket.socket(socket.AF_INET,socket.SOCK_STREAM)
    # 2.链接服务器
    # tcp_client_socket.connect('192.168.43.106',7890)
    server_ip=input("请输入要链接的服务器的ip: ")
    server_port=int(input("请输入要链接的服务器的port: "))
    server_addr=(server_ip,server_port)
    tcp_client_socket.connect(server_addr)
    # 3.发送数据/接收数据
    send_data=input("请输入要发送的数据: ")
    tcp_client_socket.send(send_data.encode("utf-8"))
    # 4.关闭套接字
    tcp_client_socket.close()
if __name__ =="__main__":
    main()
