# seeds/001 "socketserver-udp套接字 并发" 服务端.
# Address: '192.168.1.2' became '127.0.0.1'.
# Repair: the text lost its indentation; indented again.
# Switchboard plays it with: kind = "udp-echo".
import socketserver
class MyServer(socketserver.BaseRequestHandler):
    def handle(self):
        #self.request[0] 是data
        #self.request[1]是udp的socket套接字
        #self.client_address 是conn
        #收消息
        print('收到客户端的消息是',self.request[0],self.client_address)
        #发消息
        self.request[1].sendto(self.request[0].upper(),self.client_address)
if __name__ == '__main__':
    s=socketserver.ThreadingUDPServer(('127.0.0.1',8082),MyServer) #多线程
    s.serve_forever()
