import CHiredis
import Glibc

/// One blocking hiredis connection. Every call blocks its thread until the server answers, for at
/// most the connect or command timeout, so it is used only inside work handed to a thread pool of
/// its own (`RedisPool`, `SentinelQuerier`, `SwitchMasterListener` each run one) — never on an event
/// loop or a thread of Swift concurrency's pool. Not Sendable: a hiredis context must not be used
/// by two threads at once; whoever holds it uses it alone.
public final class RedisConnection {
    private let context: UnsafeMutablePointer<redisContext>
    private var isClosed = false
    public let endpoint: RedisEndpoint
    /// Set once an I/O or protocol error left the context unusable (hiredis says so in `err`).
    public private(set) var isBroken = false

    public init(_ endpoint: RedisEndpoint, connectTimeout: Duration, commandTimeout: Duration) throws(RedisError) {
        guard let context = redisConnectWithTimeout(endpoint.host, Int32(endpoint.port), Self.timeval(connectTimeout))
        else {
            throw .connection("hiredis could not allocate a context for \(endpoint)")
        }
        if context.pointee.err != 0 {
            let message = Self.errorText(context)
            redisFree(context)
            throw .connection("\(endpoint): \(message)")
        }
        guard redisSetTimeout(context, Self.timeval(commandTimeout)) == REDIS_OK else {
            let message = Self.errorText(context)
            redisFree(context)
            throw .connection("\(endpoint): setting the command timeout: \(message)")
        }
        _ = redisEnableKeepAlive(context)
        self.context = context
        self.endpoint = endpoint
    }

    deinit { close() }

    /// Closes the socket now (on the calling thread) rather than whenever the last reference goes.
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        isBroken = true
        redisFree(context)
    }

    /// Sends one command and waits for its reply. An error *reply* comes back as `.error`; a
    /// connection that broke (or timed out, which leaves hiredis's context unusable) throws and is
    /// `isBroken` from then on.
    public func command(_ arguments: [[UInt8]]) throws(RedisError) -> RedisReply {
        guard !isBroken else { throw .connection("\(endpoint): the connection broke earlier") }
        let raw = Self.withArgv(arguments) { argc, argv, lengths in
            redisCommandArgv(context, argc, argv, lengths)
        }
        guard let raw else { throw broke() }
        let reply = raw.assumingMemoryBound(to: redisReply.self)
        defer { freeReplyObject(raw) }
        return Self.copy(reply)
    }

    public func command(_ arguments: String...) throws(RedisError) -> RedisReply {
        try command(arguments.map { Array($0.utf8) })
    }

    /// Writes a command without waiting for its reply (for SUBSCRIBE, whose replies are read with
    /// `nextReply`).
    public func send(_ arguments: [[UInt8]]) throws(RedisError) {
        guard !isBroken else { throw .connection("\(endpoint): the connection broke earlier") }
        let status = Self.withArgv(arguments) { argc, argv, lengths in
            redisAppendCommandArgv(context, argc, argv, lengths)
        }
        guard status == REDIS_OK else { throw broke() }
        // Flush now: a reply that is never asked for would otherwise leave the command unsent.
        var done: Int32 = 0
        repeat {
            guard redisBufferWrite(context, &done) == REDIS_OK else { throw broke() }
        } while done == 0
    }

    /// The next reply, waiting at most `timeout` for data to arrive (polling the socket, so a
    /// quiet subscription is not an error and the context stays usable); nil when none came.
    public func nextReply(waiting timeout: Duration) throws(RedisError) -> RedisReply? {
        guard !isBroken else { throw .connection("\(endpoint): the connection broke earlier") }
        if let buffered = try bufferedReply() { return buffered }
        var descriptor = pollfd(fd: context.pointee.fd, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(
            clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        let ready = poll(&descriptor, 1, milliseconds)
        if ready == 0 || (ready < 0 && errno == EINTR) { return nil }
        guard ready > 0, redisBufferRead(context) == REDIS_OK else { throw broke() }
        return try bufferedReply()
    }

    private func bufferedReply() throws(RedisError) -> RedisReply? {
        var raw: UnsafeMutableRawPointer?
        guard redisGetReplyFromReader(context, &raw) == REDIS_OK else { throw broke() }
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        return Self.copy(raw.assumingMemoryBound(to: redisReply.self))
    }

    private func broke() -> RedisError {
        guard !isClosed else { return .connection("\(endpoint): closed") }
        isBroken = true
        let message = context.pointee.err != 0 ? Self.errorText(context) : "no reply"
        return .connection("\(endpoint): \(message)")
    }

    // MARK: C plumbing

    private static func withArgv<Result>(
        _ arguments: [[UInt8]],
        _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> Result
    ) -> Result {
        // Each argument is copied into one buffer with its length passed alongside, so binary
        // values (and empty ones) go through unchanged.
        let total = arguments.reduce(0) { $0 + $1.count }
        let storage = UnsafeMutablePointer<CChar>.allocate(capacity: max(total, 1))
        defer { storage.deallocate() }
        var pointers: [UnsafePointer<CChar>?] = []
        var lengths: [Int] = []
        var offset = 0
        for argument in arguments {
            argument.withUnsafeBufferPointer { bytes in
                if let base = bytes.baseAddress {
                    UnsafeMutableRawPointer(storage + offset).copyMemory(from: base, byteCount: bytes.count)
                }
            }
            pointers.append(UnsafePointer(storage + offset))
            lengths.append(argument.count)
            offset += argument.count
        }
        return pointers.withUnsafeMutableBufferPointer { argv in
            lengths.withUnsafeBufferPointer { argvlen in
                body(Int32(arguments.count), argv.baseAddress!, argvlen.baseAddress!)
            }
        }
    }

    private static func copy(_ reply: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let value = reply.pointee
        func bytes() -> [UInt8] {
            guard let str = value.str, value.len > 0 else { return [] }
            return Array(UnsafeRawBufferPointer(start: str, count: value.len))
        }
        switch value.type {
        case REDIS_REPLY_STRING: return .string(bytes())
        case REDIS_REPLY_STATUS: return .status(String(decoding: bytes(), as: UTF8.self))
        case REDIS_REPLY_ERROR: return .error(String(decoding: bytes(), as: UTF8.self))
        case REDIS_REPLY_INTEGER: return .integer(value.integer)
        case REDIS_REPLY_ARRAY:
            guard let elements = value.element else { return .array([]) }
            return .array((0..<value.elements).map { index in elements[index].map(copy) ?? .null })
        default: return .null
        }
    }

    private static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    private static func timeval(_ duration: Duration) -> Glibc.timeval {
        let (seconds, attoseconds) = duration.components
        return Glibc.timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }
}
