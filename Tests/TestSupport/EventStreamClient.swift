import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// One Server-Sent Event: its `event:` name, `data:` and `id:` (if the event set one).
public struct ServerSentEvent: Sendable, Hashable {
    public var name: String
    public var data: String
    public var id: String?

    /// `data` as a JSON object.
    public var fields: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any]) ?? [:]
    }

    public var revision: UInt64? { (fields["revision"] as? NSNumber)?.uint64Value }
    public var key: String? { fields["key"] as? String }
}

/// A `GET` of a Server-Sent Events stream over one loopback connection, read as events arrive
/// (HTTP/1.1, chunked or not) — what `curl -N` does, without a process per watch. Blocking reads
/// run off the concurrency pool (`offThePool`), so a server in the same process is never starved.
public final class EventStreamClient: Sendable {
    public let status: Int
    private let descriptor: Int32
    private struct Buffers {
        /// Bytes received and not yet de-chunked.
        var raw: [UInt8] = []
        /// De-chunked body text not yet parsed into events.
        var text: [UInt8] = []
        var chunked = false
        var ended = false
        var closed = false
    }

    private let buffers: Mutex<Buffers>

    private init(status: Int, descriptor: Int32, buffers: Buffers) {
        self.status = status
        self.descriptor = descriptor
        self.buffers = Mutex(buffers)
    }

    deinit { close() }

    /// Connects and sends the request; nil when nothing answers with a status within `seconds`.
    public static func open(
        port: Int, path: String, headers: [String: String] = [:], within seconds: Double = 10
    ) async -> EventStreamClient? {
        await offThePool {
            guard let descriptor = LoopbackSocket.connect(port: port, receiveTimeoutSeconds: 1) else { return nil }
            var request =
                "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nConnection: close\r\n"
            for (name, value) in headers { request += "\(name): \(value)\r\n" }
            request += "\r\n"
            guard LoopbackSocket.send(Array(request.utf8), on: descriptor) else {
                Glibc.close(descriptor)
                return nil
            }
            var raw: [UInt8] = []
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if let end = raw.firstRange(of: Array("\r\n\r\n".utf8)) {
                    let head = String(decoding: raw[..<end.lowerBound], as: UTF8.self)
                    let lines = head.split(separator: "\r\n")
                    let parts = lines.first?.split(separator: " ") ?? []
                    guard parts.count >= 2, let status = Int(parts[1]) else { break }
                    var buffers = Buffers()
                    buffers.chunked = lines.contains { $0.lowercased().hasPrefix("transfer-encoding: chunked") }
                    buffers.raw = Array(raw[end.upperBound...])
                    let client = EventStreamClient(status: status, descriptor: descriptor, buffers: buffers)
                    client.decodeChunks()
                    return client
                }
                guard let chunk = receive(descriptor) else { break }
                if !chunk.isEmpty { raw += chunk }
            }
            Glibc.close(descriptor)
            return nil
        }
    }

    /// Up to 64 KiB; empty on a read timeout, nil at the end of the stream or on an error.
    private static func receive(_ descriptor: Int32) -> [UInt8]? {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        if count > 0 { return Array(chunk[..<count]) }
        if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return [] }
        return nil
    }

    /// The next event, waiting up to `seconds`; nil when none came in time or the stream ended.
    public func next(within seconds: Double = 10) async -> ServerSentEvent? {
        await offThePool {
            let deadline = Date().addingTimeInterval(seconds)
            while true {
                if let event = self.parseEvent() { return event }
                let done = self.buffers.withLock { $0.ended || $0.closed }
                guard !done, Date() < deadline else { return nil }
                guard let chunk = Self.receive(self.descriptor) else {
                    self.buffers.withLock { $0.ended = true }
                    continue
                }
                if !chunk.isEmpty {
                    self.buffers.withLock { $0.raw += chunk }
                    self.decodeChunks()
                }
            }
        }
    }

    /// Events until one satisfies `last` (included) or `seconds` pass.
    public func events(within seconds: Double = 10, until last: (ServerSentEvent) -> Bool) async -> [ServerSentEvent] {
        let deadline = Date().addingTimeInterval(seconds)
        var events: [ServerSentEvent] = []
        while Date() < deadline, let event = await next(within: deadline.timeIntervalSinceNow) {
            events.append(event)
            if last(event) { break }
        }
        return events
    }

    /// The body received so far, as text (for answers that are not a stream: 400, 410…).
    public func body(within seconds: Double = 5) async -> String {
        _ = await next(within: seconds)
        return buffers.withLock { String(decoding: $0.text, as: UTF8.self) }
    }

    public func close() {
        let wasOpen = buffers.withLock { buffers -> Bool in
            defer { buffers.closed = true }
            return !buffers.closed
        }
        if wasOpen { Glibc.close(descriptor) }
    }

    private func decodeChunks() {
        buffers.withLock { buffers in
            guard buffers.chunked else {
                buffers.text += buffers.raw
                buffers.raw = []
                return
            }
            while let lineEnd = buffers.raw.firstRange(of: Array("\r\n".utf8)) {
                let sizeText = String(decoding: buffers.raw[..<lineEnd.lowerBound], as: UTF8.self)
                guard let size = Int(sizeText.split(separator: ";").first ?? "", radix: 16) else {
                    buffers.ended = true
                    return
                }
                if size == 0 {
                    buffers.ended = true
                    buffers.raw = []
                    return
                }
                let start = lineEnd.upperBound
                guard buffers.raw.count >= start + size + 2 else { return }
                buffers.text += buffers.raw[start..<(start + size)]
                buffers.raw.removeFirst(start + size + 2)
            }
        }
    }

    /// Takes one whole event (ended by a blank line) from the text, if there is one.
    private func parseEvent() -> ServerSentEvent? {
        buffers.withLock { buffers -> ServerSentEvent? in
            while let end = buffers.text.firstRange(of: Array("\n\n".utf8)) {
                let block = String(decoding: buffers.text[..<end.lowerBound], as: UTF8.self)
                buffers.text.removeFirst(end.upperBound)
                var event = ServerSentEvent(name: "message", data: "", id: nil)
                var hasData = false
                for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
                    if line.hasPrefix(":") { continue }
                    let parts = line.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
                    let field = String(parts[0])
                    var value = parts.count > 1 ? String(parts[1]) : ""
                    if value.hasPrefix(" ") { value.removeFirst() }
                    switch field {
                    case "event": event.name = value
                    case "data":
                        event.data += hasData ? "\n" + value : value
                        hasData = true
                    case "id": event.id = value
                    default: break
                    }
                }
                if hasData { return event }
            }
            return nil
        }
    }
}
