# seeds/002 "TCP服务端": serves clients one after another, answering every
# request with a fixed "hahahahah----ok---".
# Address: '' (any) became '127.0.0.1'.
# Repairs: the text lost every newline; newlines and indentation restored.
# Switchboard plays it with: kind = "echo" (which answers with the request
# upper-cased instead of the fixed text; the 002 client reads neither).
import socket
def main():
    # 1.买手机---创建套接字 socket
    tcp_server_socket=socket.socket(socket.AF_INET,socket.SOCK_STREAM)
    # 2.插入手机卡---绑定本地信息 bind
    tcp_server_socket.bind(('127.0.0.1',7890))
    # 3.将手机设置为响铃模式---让默认的套接字由主动(链接别人)变为被动(被链接) listen
    tcp_server_socket.listen(128)
    while True: # 循环为多个客户端服务
        print("等待一个新的客户端的到来...")
        # 4.等待别人的电话到来---等待客户端的链接 accept
        # new_client_socket用来为这个客户端服务(tcp_server_socket就可以省下来专门等待其他新客户端的链接)
        # client_addr保存客户端的ip和port
        new_client_socket,client_addr=tcp_server_socket.accept()
        print("一个新的客户端%s已经到来" % str(client_addr))
        while True: # 循环为同一个客户端服务多次
            # 接收客户端发送过来的请求
            recv_data=new_client_socket.recv(1024)
            print("客户端送过来的请求是:%s" % recv_data.decode("utf-8"))
            # 如果recv解堵塞,有两种可能:
            # 1.客户端发送过来数据
            # 2.客户端调用close而导致recv解堵塞
            if recv_data:
                # 回送一部分数据给客户端
                new_client_socket.send("hahahahah----ok---".encode("utf-8"))
            else:
                break
        # 关闭套接字(不会再为这个客户端服务)
        new_client_socket.close()
        print("已经为这个客户端服务完毕")
    # 如果将监听套接字关闭,那么会导致不能再次等待新客户的到来
    tcp_server_socket.close()
if __name__ == "__main__":
    main()
