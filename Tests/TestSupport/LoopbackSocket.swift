#if canImport(Glibc)
    import Glibc
#endif

/// A blocking TCP connection to 127.0.0.1, for tests that must put exact bytes on the wire
/// (HAProxy-style health checks, hostile frames) where an HTTP or NIO client would not.
public enum LoopbackSocket {
    /// A connected socket descriptor (the caller closes it), reads giving up after
    /// `receiveTimeoutSeconds`; nil if the connection was refused.
    public static func connect(port: Int, receiveTimeoutSeconds: Int = 5) -> Int32? {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        var timeout = timeval(tv_sec: receiveTimeoutSeconds, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            close(descriptor)
            return nil
        }
        return descriptor
    }

    /// Sends all of `bytes`; false if the connection failed first.
    public static func send(_ bytes: [UInt8], on descriptor: Int32) -> Bool {
        bytes.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, 0) } == bytes.count
    }

    /// Exactly `count` bytes, or nil if the connection closed (or went quiet past its receive
    /// timeout) first.
    public static func read(_ count: Int, from descriptor: Int32) -> [UInt8]? {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: count)
        while bytes.count < count {
            let got = chunk.withUnsafeMutableBytes { Glibc.recv(descriptor, $0.baseAddress, count - bytes.count, 0) }
            guard got > 0 else { return nil }
            bytes += chunk[..<got]
        }
        return bytes
    }
}
