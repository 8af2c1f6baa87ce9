import Foundation
import Synchronization
import TestSupport

/// Peers that misbehave the way a frozen or cut-off host does, on loopback ports from
/// `TestPorts`: one thread per connection, each ending and closing its socket after `stop()`.
final class LoopbackListener: Sendable {
    let port: Int
    private let listener: Int32
    private let state = Mutex((stopped: false, accepted: 0))

    /// Connections accepted so far (a hung peer's only visible sign that someone tried).
    var accepted: Int { state.withLock { $0.accepted } }
    var stopped: Bool { state.withLock { $0.stopped } }

    /// Listens and hands each accepted connection to `serve` on a thread of its own.
    init(_ serve: @escaping @Sendable (Int32, LoopbackListener) -> Void) throws {
        port = TestPorts.block()
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(listener, 64) == 0 else {
            close(listener)
            throw ListenerError(description: "cannot listen on \(port): errno \(errno)")
        }
        Thread { [weak self] in
            while true {
                let client = accept(listener, nil, nil)
                guard client >= 0 else { return }
                guard let self, self.keep(client) else {
                    close(client)
                    return
                }
                Thread { serve(client, self) }.start()
            }
        }.start()
    }

    private func keep(_ client: Int32) -> Bool {
        state.withLock { state in
            guard !state.stopped else { return false }
            state.accepted += 1
            return true
        }
    }

    func stop() {
        // Each connection's thread sees `stopped` and closes its own socket (closing it here
        // could hit a descriptor number already reused elsewhere in the process).
        let first = state.withLock { state in
            defer { state.stopped = true }
            return !state.stopped
        }
        guard first else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    /// Holds a connection open, silent, until the listener stops.
    static func holdSilently(_ client: Int32, _ listener: LoopbackListener) {
        while !listener.stopped { usleep(20_000) }
        close(client)
    }

    /// Reads an HTTP request head; nil if the connection ended first.
    static func requestHead(_ client: Int32) -> String? {
        var head: [UInt8] = []
        var byte: UInt8 = 0
        while !(head.count >= 4 && Array(head.suffix(4)) == Array("\r\n\r\n".utf8)) {
            guard recv(client, &byte, 1, 0) == 1 else { return nil }
            head.append(byte)
        }
        return String(decoding: head, as: UTF8.self)
    }

    struct ListenerError: Error, CustomStringConvertible { var description: String }
}

/// A Patroni REST API stand-in: answers `/patroni` and `/cluster` with the given bodies, or
/// accepts and never answers (`.hang`), or sends its headers and then trickles the body a byte
/// at a time, forever (`.trickle`: each byte resets any read timeout).
enum FakePatroniAPI {
    enum Mode: Sendable {
        case answer(patroni: Data, cluster: Data)
        case hang
        case trickle
    }

    static func start(_ mode: Mode) throws -> LoopbackListener {
        try LoopbackListener { client, listener in
            switch mode {
            case .hang:
                LoopbackListener.holdSilently(client, listener)
            case .trickle:
                defer { close(client) }
                guard LoopbackListener.requestHead(client) != nil else { return }
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
                guard quietSend(Array(head.utf8), on: client) else { return }
                while !listener.stopped, quietSend(Array(" ".utf8), on: client) { usleep(50_000) }
            case .answer(let patroni, let cluster):
                defer { close(client) }
                guard let head = LoopbackListener.requestHead(client) else { return }
                let body = head.hasPrefix("GET /cluster") ? cluster : patroni
                let answer =
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
                _ = quietSend(Array(answer.utf8) + Array(body), on: client)
            }
        }
    }
}

/// A TCP relay in front of a real server that can be frozen: from then on it forwards nothing
/// either way but keeps both connections open — a host that froze after the client connected.
final class FreezableRelay: Sendable {
    private final class Flag: Sendable {
        let value = Mutex(false)
    }
    private let flag = Flag()
    let listener: LoopbackListener

    var port: Int { listener.port }
    func freeze() { flag.value.withLock { $0 = true } }

    init(upstream: Int) throws {
        let flag = flag
        listener = try LoopbackListener { client, listener in
            guard let server = LoopbackSocket.connect(port: upstream, receiveTimeoutSeconds: 1) else {
                close(client)
                return
            }
            var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(server, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            @Sendable func pump(from: Int32, to: Int32) {
                var chunk = [UInt8](repeating: 0, count: 8192)
                while !listener.stopped {
                    if flag.value.withLock({ $0 }) {
                        usleep(20_000)
                        continue
                    }
                    let count = chunk.withUnsafeMutableBytes { recv(from, $0.baseAddress, $0.count, 0) }
                    if count == 0 { return }
                    if count < 0 { continue }  // the receive timeout: look at the flags again
                    if flag.value.withLock({ $0 }) { continue }  // frozen while receiving: lost
                    guard quietSend(Array(chunk[..<count]), on: to) else { return }
                }
            }
            let other = DispatchSemaphore(value: 0)
            Thread {
                pump(from: server, to: client)
                other.signal()
            }.start()
            pump(from: client, to: server)
            shutdown(client, Int32(SHUT_RDWR))
            shutdown(server, Int32(SHUT_RDWR))
            other.wait()
            close(client)
            close(server)
        }
    }

    func stop() { listener.stop() }
}

/// A TCP relay that can cut the link: while cut, it resets every relayed connection and every
/// new one at once (a partition the nodes notice and redial through); healed, it relays again.
final class PartitionableRelay: Sendable {
    private final class Flag: Sendable {
        let value = Mutex(false)
    }
    private let cutFlag = Flag()
    let listener: LoopbackListener

    var port: Int { listener.port }
    func cut() { cutFlag.value.withLock { $0 = true } }
    func heal() { cutFlag.value.withLock { $0 = false } }

    init(upstream: Int) throws {
        let flag = cutFlag
        listener = try LoopbackListener { client, listener in
            guard !flag.value.withLock({ $0 }),
                let server = LoopbackSocket.connect(port: upstream, receiveTimeoutSeconds: 1)
            else {
                close(client)
                return
            }
            var timeout = timeval(tv_sec: 0, tv_usec: 20_000)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(server, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            @Sendable func pump(from: Int32, to: Int32) {
                var chunk = [UInt8](repeating: 0, count: 16384)
                while !listener.stopped, !flag.value.withLock({ $0 }) {
                    let count = chunk.withUnsafeMutableBytes { recv(from, $0.baseAddress, $0.count, 0) }
                    if count == 0 { return }
                    if count < 0 {
                        if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { continue }
                        return
                    }
                    guard quietSend(Array(chunk[..<count]), on: to) else { return }
                }
            }
            let other = DispatchSemaphore(value: 0)
            Thread {
                pump(from: server, to: client)
                shutdown(client, Int32(SHUT_RDWR))
                shutdown(server, Int32(SHUT_RDWR))
                other.signal()
            }.start()
            pump(from: client, to: server)
            shutdown(client, Int32(SHUT_RDWR))
            shutdown(server, Int32(SHUT_RDWR))
            other.wait()
            close(client)
            close(server)
        }
    }

    func stop() { listener.stop() }
}

/// Sends all of `bytes`; false if the connection failed first. MSG_NOSIGNAL: a peer that hung up
/// is an error here, not a SIGPIPE for the whole test process.
func quietSend(_ bytes: [UInt8], on descriptor: Int32) -> Bool {
    bytes.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
}
