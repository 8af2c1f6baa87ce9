import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A minimal blocking HTTP/1.0 GET, enough for `raftgate status` to read `/cluster` without
/// pulling an HTTP client library (and its build time) into the executable.
enum PlainHTTPClient {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Fetches `path` from `address`; gives up after `timeoutSeconds` on connect or on any read.
    static func get(_ path: String, from address: Address, timeoutSeconds: Int = 2) throws -> (
        status: Int, body: [UInt8]
    ) {
        let answer = try request("GET", path, at: address, timeoutSeconds: timeoutSeconds)
        return (answer.status, answer.body)
    }

    struct Answer {
        var status: Int
        /// Header lines, names lowercased.
        var headers: [String: String]
        var body: [UInt8]
    }

    /// One HTTP/1.0 request with an optional body and extra header lines.
    static func request(
        _ method: String, _ path: String, at address: Address, body: [UInt8] = [], headers: [String: String] = [:],
        timeoutSeconds: Int = 2
    ) throws -> Answer {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var results: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(address.host, String(address.port), &hints, &results) == 0, let first = results else {
            throw Failure(description: "cannot resolve \(address.host)")
        }
        defer { freeaddrinfo(results) }
        let socketDescriptor = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard socketDescriptor >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        defer { close(socketDescriptor) }
        // On Linux a blocking connect honours the send timeout, and reads the receive timeout.
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(socketDescriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(socketDescriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard connect(socketDescriptor, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            throw Failure(description: String(cString: strerror(errno)))
        }
        var head = "\(method) \(path) HTTP/1.0\r\nHost: \(address)\r\nConnection: close\r\n"
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { head += "\(name): \(value)\r\n" }
        if !body.isEmpty || method != "GET" { head += "Content-Length: \(body.count)\r\n" }
        let request = Array((head + "\r\n").utf8) + body
        var sent = 0
        while sent < request.count {
            let written = request[sent...].withUnsafeBytes { send(socketDescriptor, $0.baseAddress, $0.count, 0) }
            guard written > 0 else { throw Failure(description: "send: \(String(cString: strerror(errno)))") }
            sent += written
        }
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(socketDescriptor, $0.baseAddress, $0.count, 0) }
            if count == 0 { break }
            guard count > 0 else { throw Failure(description: "no answer within \(timeoutSeconds) s") }
            response += chunk[..<count]
            guard response.count <= 64 << 20 else { throw Failure(description: "response too large") }
        }
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        guard let headerEnd = response.firstRange(of: separator) else {
            throw Failure(description: "malformed HTTP response")
        }
        let lines = String(decoding: response[..<headerEnd.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let statusLine = lines.first ?? ""
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else {
            throw Failure(description: "malformed status line: \(statusLine)")
        }
        var fields: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Answer(status: status, headers: fields, body: Array(response[headerEnd.upperBound...]))
    }
}
