# Echoes N datagrams of 1 byte to 8 KiB through a SOCKS5 proxy with PySocks
# (Debian's python3-socks) and prints a SHA-256 over every echo.
# Usage: udp_echo.py PROXY_HOST PROXY_PORT ECHO_HOST ECHO_PORT N
import hashlib, socket, sys
import socks
host, port, ehost, eport, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
s = socks.socksocket(socket.AF_INET, socket.SOCK_DGRAM)
s.set_proxy(socks.SOCKS5, host, port)
s.settimeout(20)
h = hashlib.sha256()
for i in range(n):
    size = 1 + (i * 997) % 8192
    data = bytes((i * 7 + j * 13) & 255 for j in range(size))
    s.sendto(data, (ehost, eport))
    got, addr = s.recvfrom(65535)
    if got != data or addr[1] != eport:
        sys.exit("datagram %d: %d bytes back from %r" % (i, len(got), addr))
    h.update(got)
s.close()
print(h.hexdigest())
