#include "tools/infer/serve_peer.hpp"

#include <dirent.h>
#include <netdb.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>

#include <httplib.h>

namespace kinfer::cli::serve {
namespace {

// The address as httplib writes it into Request (numeric host, port), or false for a non-IP socket.
bool numeric_address(const sockaddr_storage& addr, socklen_t len, std::string& host, int& port) {
    char buf[NI_MAXHOST];
    if (getnameinfo(reinterpret_cast<const sockaddr*>(&addr), len, buf, sizeof buf, nullptr, 0,
                    NI_NUMERICHOST) != 0)
        return false;
    host = buf;
    if (addr.ss_family == AF_INET)
        port = ntohs(reinterpret_cast<const sockaddr_in&>(addr).sin_port);
    else if (addr.ss_family == AF_INET6)
        port = ntohs(reinterpret_cast<const sockaddr_in6&>(addr).sin6_port);
    else
        return false;
    return true;
}

bool has_address(int fd, bool peer, const std::string& host, int port) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    const int rc = peer ? getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len)
                        : getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    std::string h;
    int p = -1;
    return rc == 0 && numeric_address(addr, len, h, p) && p == port && h == host;
}

}  // namespace

int find_connection_socket(const std::string& local_addr, int local_port, const std::string& remote_addr,
                           int remote_port) {
    if (local_port <= 0 || remote_port <= 0) return -1;
    DIR* dir = opendir("/proc/self/fd");
    if (!dir) return -1;
    int found = -1;
    const int own = dirfd(dir);
    while (const dirent* e = readdir(dir)) {
        char* end = nullptr;
        const long fd = std::strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end != '\0' || fd == own) continue;
        // The peer first: it fails at once for listening sockets and everything that is not a socket.
        if (has_address(int(fd), true, remote_addr, remote_port) &&
            has_address(int(fd), false, local_addr, local_port)) {
            found = int(fd);
            break;
        }
    }
    closedir(dir);
    return found;
}

PeerWatch::PeerWatch(const httplib::Request& req)
    : fd_(find_connection_socket(req.local_addr, req.local_port, req.remote_addr, req.remote_port)) {}

bool PeerWatch::gone() const {
    if (fd_ < 0) return false;
    char c;
    const ssize_t n = recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) return false;  // pipelined bytes of a next request: still there
    if (n == 0) return true;  // orderly close
    return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;  // reset, or no longer a socket
}

}  // namespace kinfer::cli::serve
