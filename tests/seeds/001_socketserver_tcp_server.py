# seeds/001 "socketserver-tcp套接字 并发" 服务端: a thread per client.
# Address: '192.168.1.2' became '127.0.0.1'.
# Repair: the text lost its indentation; indented again.
# Switchboard plays it with: kind = "echo".
import socketserver
class MyServer(socketserver.BaseRequestHandler):
    def handle(self):
        # print('conn is:', self.request) # self.request相当于conn
        # print('addr is:', self.client_address) # self.client_address相当于addr
        while True:
            try:
                # 收消息
                data = self.request.recv(1024)
                if not data: break
                print('收到客户端的消息是:', data,self.client_address)
                # 发消息
                self.request.send(data.upper())
            except Exception as e:
                print(e)
                break
if __name__ == '__main__':
    s = socketserver.ThreadingTCPServer(('127.0.0.1',8081),MyServer)
    s.serve_forever()
