// `raft-bench-watch`: how fast a change reaches the nodes that did not make it, for `make bench`.
//
//   raft-bench-watch watch  --writer H:P --watcher H:P [--count N] [--name NAME]
//       write on the leader (PUT /kv) → the event on a follower's watch (GET /watch, SSE)
//   raft-bench-watch etcd   --writer H:P --watcher H:P [--count N] [--name NAME]
//       the same through etcd's v3 JSON gateway (/v3/kv/put → /v3/watch)
//   raft-bench-watch config --writer H:P --nodes H:P,H:P,… --token T [--count N] [--name NAME]
//       PUT /config/bench on the leader → every node's GET /config/bench (its cache) shows it
//
// Changes go one at a time, each after a random pause of up to --jitter-ms (default 50, one Raft
// tick): one after the other, they would fall at the same point of the followers' tick every time
// and measure that point only. Each latency runs from just before the request is sent to the
// moment the change is seen. Prints `NAME_p50_ms=… NAME_p99_ms=… NAME_count=…` for the shell.
// Plain blocking sockets and threads: nothing here may cost the nodes measurable CPU.
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("raft-bench-watch: \(message)\n".utf8))
    exit(1)
}

func nowNanoseconds() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

/// One blocking TCP connection speaking HTTP/1.1.
final class Connection {
    let descriptor: Int32
    private var buffer: [UInt8] = []

    init(_ address: String, receiveTimeoutSeconds: Int = 10) {
        let parts = address.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1]) else { fail("bad address \(address)") }
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var timeout = timeval(tv_sec: receiveTimeoutSeconds, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var noDelay: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &noDelay, socklen_t(MemoryLayout<Int32>.size))
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = port.bigEndian
        socketAddress.sin_addr.s_addr = inet_addr(String(parts[0]))
        let connected = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { fail("cannot connect to \(address)") }
    }

    deinit { close(descriptor) }

    func send(_ text: String) {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { fail("send failed") }
            sent += count
        }
    }

    func request(_ method: String, _ path: String, body: String = "", headers: [String: String] = [:]) {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: bench\r\nContent-Length: \(body.utf8.count)\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        send(text + "\r\n" + body)
    }

    /// More bytes into the buffer; false at the end of the stream.
    func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return false }
        buffer += chunk[..<count]
        return true
    }

    /// Reads one whole response (Content-Length or chunked): status and body.
    func response() -> (status: Int, body: String) {
        let separator = Array("\r\n\r\n".utf8)
        while buffer.firstRange(of: separator) == nil { guard fill() else { fail("connection closed") } }
        let end = buffer.firstRange(of: separator)!
        let head = String(decoding: buffer[..<end.lowerBound], as: UTF8.self).lowercased()
        buffer.removeFirst(end.upperBound)
        let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
        if let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
            let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
        {
            while buffer.count < length { guard fill() else { fail("connection closed") } }
            defer { buffer.removeFirst(length) }
            return (status, String(decoding: buffer[..<length], as: UTF8.self))
        }
        var body: [UInt8] = []
        while true {
            guard let chunk = nextChunk() else { fail("connection closed") }
            if chunk.isEmpty { return (status, String(decoding: body, as: UTF8.self)) }
            body += chunk
        }
    }

    /// Reads response headers only, for a stream.
    func streamHead() -> Int {
        let separator = Array("\r\n\r\n".utf8)
        while buffer.firstRange(of: separator) == nil { guard fill() else { fail("connection closed") } }
        let end = buffer.firstRange(of: separator)!
        let head = String(decoding: buffer[..<end.lowerBound], as: UTF8.self)
        buffer.removeFirst(end.upperBound)
        return Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    /// The next chunk of a chunked body (empty: the last one); nil if the stream ended.
    func nextChunk() -> [UInt8]? {
        let lineEnd = Array("\r\n".utf8)
        while buffer.firstRange(of: lineEnd) == nil { guard fill() else { return nil } }
        let line = buffer.firstRange(of: lineEnd)!
        let size = Int(String(decoding: buffer[..<line.lowerBound], as: UTF8.self), radix: 16) ?? 0
        while buffer.count < line.upperBound + size + 2 { guard fill() else { return nil } }
        let chunk = Array(buffer[line.upperBound..<(line.upperBound + size)])
        buffer.removeFirst(line.upperBound + size + 2)
        return chunk
    }
}

/// Markers a reader saw, with the time it saw each.
final class Sightings: Sendable {
    private let seen = Mutex<[String: UInt64]>([:])

    func record(_ markers: [String], at time: UInt64) {
        seen.withLock { seen in for marker in markers where seen[marker] == nil { seen[marker] = time } }
    }

    func time(of marker: String) -> UInt64? { seen.withLock { $0[marker] } }

    /// Waits (politely) until `marker` was seen; its time.
    func wait(for marker: String, seconds: Double = 10) -> UInt64? {
        let deadline = nowNanoseconds() + UInt64(seconds * 1e9)
        while nowNanoseconds() < deadline {
            if let time = time(of: marker) { return time }
            usleep(50)
        }
        return nil
    }
}

func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    let rank = Int((fraction * Double(sorted.count)).rounded(.up)) - 1
    return sorted[max(0, min(sorted.count - 1, rank))]
}

func report(_ name: String, _ latencies: [Double]) {
    let sorted = latencies.sorted()
    print(
        String(
            format: "%@_p50_ms=%.2f %@_p99_ms=%.2f %@_count=%d", name, percentile(sorted, 0.5), name,
            percentile(sorted, 0.99), name, sorted.count))
}

// MARK: Arguments

var options: [String: String] = [:]
let arguments = CommandLine.arguments.dropFirst()
guard let mode = arguments.first else { fail("usage: raft-bench-watch watch|etcd|config --writer H:P …") }
var rest = Array(arguments.dropFirst())
while rest.count >= 2, rest[0].hasPrefix("--") {
    options[String(rest[0].dropFirst(2))] = rest[1]
    rest.removeFirst(2)
}
let count = Int(options["count"] ?? "200") ?? 200
let name = options["name"] ?? mode
let jitterMicroseconds = UInt32((Double(options["jitter-ms"] ?? "50") ?? 50) * 1000)

func jitter() {
    if jitterMicroseconds > 0 { usleep(UInt32.random(in: 0..<jitterMicroseconds)) }
}
guard let writer = options["writer"] else { fail("--writer is required") }
let run = String(UInt32.random(in: 0...UInt32.max), radix: 16)

// MARK: Modes

switch mode {
case "watch", "etcd":
    guard let watcher = options["watcher"] else { fail("--watcher is required") }
    let sightings = Sightings()
    let etcd = mode == "etcd"
    let key = "bench-watch/\(run)"
    let ready = Sightings()
    // The watch lives on its own thread, which alone touches its connection.
    Thread {
        let stream = Connection(watcher, receiveTimeoutSeconds: 60)
        if etcd {
            stream.request(
                "POST", "/v3/watch", body: #"{"create_request":{"key":"\#(Data(key.utf8).base64EncodedString())"}}"#)
        } else {
            stream.request("GET", "/watch?prefix=\(key)")
        }
        guard stream.streamHead() == 200 else { fail("the watch was refused") }
        var text = ""
        while let chunk = stream.nextChunk(), !chunk.isEmpty {
            let time = nowNanoseconds()
            // raftgate opens with a bookmark, etcd with a "created" message: either means watching.
            ready.record(["open"], at: time)
            text += String(decoding: chunk, as: UTF8.self)
            var markers: [String] = []
            if etcd {
                // etcd sends values base64-encoded: decode every quoted piece that could be one.
                for piece in text.split(separator: "\"") where piece.count >= 8 {
                    if let data = Data(base64Encoded: String(piece)), let value = String(data: data, encoding: .utf8),
                        value.hasPrefix("m-")
                    {
                        markers.append(value)
                    }
                }
            } else {
                var rest = Substring(text)
                while let range = rest.range(of: "\"value\":\"m-") {
                    let start = rest.index(range.upperBound, offsetBy: -2)
                    markers.append(String(rest[start...].prefix { $0 != "\"" }))
                    rest = rest[range.upperBound...]
                }
            }
            sightings.record(markers, at: time)
            if let last = text.lastIndex(of: "\n") { text = String(text[text.index(after: last)...]) }
        }
    }.start()
    guard ready.wait(for: "open") != nil else { fail("the watch did not open") }
    let connection = Connection(writer)
    var latencies: [Double] = []
    for index in 0..<(count + 10) {
        let marker = "m-\(run)-\(index)"
        jitter()
        let started = nowNanoseconds()
        if etcd {
            let body =
                #"{"key":"\#(Data(key.utf8).base64EncodedString())","value":"\#(Data(marker.utf8).base64EncodedString())"}"#
            connection.request("POST", "/v3/kv/put", body: body)
        } else {
            connection.request("PUT", "/kv/\(key)", body: marker)
        }
        guard connection.response().status == 200 else { fail("write \(index) failed") }
        guard let seen = sightings.wait(for: marker) else { fail("the watch never showed write \(index)") }
        // The first ten warm the connections up.
        if index >= 10 { latencies.append(Double(seen - started) / 1e6) }
    }
    report(name, latencies)
case "config":
    guard let nodes = options["nodes"]?.split(separator: ",").map(String.init), let token = options["token"] else {
        fail("--nodes and --token are required")
    }
    let connection = Connection(writer)
    let auth = ["Authorization": "Bearer \(token)"]
    let project = "bench-\(run)"
    var latencies: [Double] = []
    for index in 0..<(count + 5) {
        let perSecond = index + 1
        jitter()
        let started = nowNanoseconds()
        connection.request(
            "PUT", "/config/\(project)", body: #"{"rateLimit":{"perSecond":\#(perSecond),"burst":1000000}}"#,
            headers: auth)
        // Every node is polled on its own connection from the moment the write is sent.
        let seen = Sightings()
        let needle = #""perSecond":\#(perSecond)}"#
        let pollers = nodes.map { node in
            Thread {
                let poll = Connection(node)
                let deadline = nowNanoseconds() + 10_000_000_000
                while nowNanoseconds() < deadline {
                    poll.request("GET", "/config/\(project)", headers: auth)
                    let answer = poll.response()
                    if answer.status == 200 && answer.body.contains(needle) {
                        seen.record([node], at: nowNanoseconds())
                        return
                    }
                    usleep(200)
                }
            }
        }
        for poller in pollers { poller.start() }
        guard connection.response().status == 200 else { fail("config write \(index) failed") }
        var latest: UInt64 = 0
        for node in nodes {
            guard let time = seen.wait(for: node) else { fail("\(node) never showed config change \(index)") }
            latest = max(latest, time)
        }
        if index >= 5 { latencies.append(Double(latest - started) / 1e6) }
    }
    report(name, latencies)
default:
    fail("unknown mode \(mode)")
}
