#pragma once
// Noticing, while a request is still being answered, that its client has gone (closed the connection or
// reset it), so its slot can be freed at once rather than when generation ends. cpp-httplib 0.11 gives a
// handler no socket, only the connection's addresses: the accepted socket with exactly those addresses
// is looked up once among the process's descriptors, then peeked at without blocking. The socket stays
// open (httplib's) until the response has been written, so the descriptor found cannot be reused by
// another connection while the handler or its content provider runs.
#include <string>

namespace httplib {
struct Request;
}

namespace kinfer::cli::serve {

class PeerWatch {
  public:
    // Finds the request's socket; when it cannot be found (not a TCP connection of this process, /proc
    // missing), gone() is always false and a departed client is only noticed by a failed write.
    explicit PeerWatch(const httplib::Request& req);
    // True once the client has closed its side or reset the connection. A client that pipelined its next
    // request counts as present (there is data to read).
    bool gone() const;
    bool found() const { return fd_ >= 0; }

  private:
    int fd_ = -1;
};

// The descriptor of the connected socket whose local and peer addresses are these (numeric host, port),
// or -1.
int find_connection_socket(const std::string& local_addr, int local_port, const std::string& remote_addr,
                           int remote_port);

}  // namespace kinfer::cli::serve
