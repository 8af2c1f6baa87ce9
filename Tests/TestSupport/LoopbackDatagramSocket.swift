#if canImport(Glibc)
    import Glibc
#endif

/// A UDP socket on 127.0.0.1, for tests that must put exact datagrams on the wire (recorded or
/// forged SWIM packets). Blocking reads give up after `receiveTimeoutMilliseconds`.
public final class LoopbackDatagramSocket: Sendable {
    public let port: Int
    private let descriptor: Int32

    /// Bound to 127.0.0.1:`port`; nil if that failed.
    public init?(port: Int, receiveTimeoutMilliseconds: Int = 5000) {
        let descriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        var timeout = timeval(
            tv_sec: receiveTimeoutMilliseconds / 1000, tv_usec: (receiveTimeoutMilliseconds % 1000) * 1000)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = Self.address(port: port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else {
            close(descriptor)
            return nil
        }
        self.descriptor = descriptor
        self.port = port
    }

    deinit { close(descriptor) }

    /// Sends one datagram to 127.0.0.1:`port`.
    @discardableResult
    public func send(_ bytes: [UInt8], to port: Int) -> Bool {
        var address = Self.address(port: port)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { target in
                bytes.withUnsafeBytes {
                    sendto(descriptor, $0.baseAddress, $0.count, 0, target, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        return sent == bytes.count
    }

    /// The next datagram; nil once the receive timeout passed (or, with `wait: false`, when none
    /// is queued right now).
    public func receive(wait: Bool = true) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let count = buffer.withUnsafeMutableBytes {
            recv(descriptor, $0.baseAddress, $0.count, wait ? 0 : Int32(MSG_DONTWAIT))
        }
        return count > 0 ? Array(buffer[..<count]) : nil
    }

    private static func address(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }
}
