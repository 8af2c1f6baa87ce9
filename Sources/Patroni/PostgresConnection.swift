import CLibPQ
import Foundation

/// One libpq connection, driven through libpq's non-blocking API (`PQconnectStartParams` /
/// `PQconnectPoll`, `PQsendQuery` / `PQconsumeInput`) with `poll(2)` on its socket, so that an
/// optional client-side deadline bounds every call: a server that accepts the connection and then
/// goes silent — a frozen host, packets dropped mid-query — cannot hold the caller past it
/// (`statement_timeout` cannot help there: it needs a running server; keepalives neither: they
/// wait for an idle socket). Calls still block their thread until the answer or the deadline, so
/// the connection is used only inside work handed to a thread pool of its own (`PostgresProbe`
/// uses an `NIOThreadPool`) — never on an event loop or a thread of Swift concurrency's pool.
/// Host names are resolved inside `PQconnectStartParams` (getaddrinfo, not bounded by the
/// deadline); members are usually configured by address. Not Sendable: a libpq connection must
/// not be used from two threads at once, so it stays on the thread that opened it.
public final class PostgresConnection {
    /// The libpq handle; statements (`PostgresConnection+Statement.swift`) use it directly.
    let connection: OpaquePointer

    /// Connects with libpq's keyword/value form: each value is passed as it is, never spliced
    /// into a connection string, so a value from configuration cannot add parameters
    /// (`password=x host=elsewhere` stays one odd password). Past `deadline` it gives up.
    public init(_ parameters: [(keyword: String, value: String)], deadline: ContinuousClock.Instant? = nil)
        throws(PostgresError)
    {
        var keywords = parameters.map { strdup($0.keyword) } + [nil]
        var values = parameters.map { strdup($0.value) } + [nil]
        defer {
            keywords.forEach { free($0) }
            values.forEach { free($0) }
        }
        let connection: OpaquePointer? = keywords.withUnsafeMutableBufferPointer { keywordBuffer in
            values.withUnsafeMutableBufferPointer { valueBuffer in
                keywordBuffer.baseAddress!.withMemoryRebound(
                    to: UnsafePointer<CChar>?.self, capacity: keywordBuffer.count
                ) {
                    keywordPointer in
                    valueBuffer.baseAddress!.withMemoryRebound(
                        to: UnsafePointer<CChar>?.self, capacity: valueBuffer.count
                    ) {
                        valuePointer in
                        PQconnectStartParams(keywordPointer, valuePointer, 0)
                    }
                }
            }
        }
        guard let connection else {
            throw PostgresError(sqlState: nil, message: "libpq could not allocate a connection")
        }
        do throws(PostgresError) {
            guard PQstatus(connection) != CONNECTION_BAD else { throw Self.failure(connection) }
            // libpq's documented loop: as if the last poll had asked to write, then wait for
            // whatever each PQconnectPoll asks for. (connect_timeout does not apply here; the
            // deadline does.)
            var polling = PGRES_POLLING_WRITING
            while polling != PGRES_POLLING_OK {
                switch polling {
                case PGRES_POLLING_FAILED: throw Self.failure(connection)
                case PGRES_POLLING_READING: try Self.wait(connection, read: true, write: false, until: deadline)
                default: try Self.wait(connection, read: false, write: true, until: deadline)
                }
                polling = PQconnectPoll(connection)
            }
            // Nothing written later may block either (not even PQfinish's goodbye).
            guard PQsetnonblocking(connection, 1) == 0 else { throw Self.failure(connection) }
        } catch {
            PQfinish(connection)
            throw error
        }
        self.connection = connection
    }

    /// Closes the socket: a connection abandoned mid-query is gone, not left waiting.
    deinit { PQfinish(connection) }

    /// Runs one statement without parameters and returns its rows in text form (nil is NULL);
    /// past `deadline` it gives up (the connection is then unusable: drop it).
    public func query(_ sql: String, deadline: ContinuousClock.Instant? = nil) throws(PostgresError) -> [[String?]] {
        guard PQsendQuery(connection, sql) == 1 else { throw Self.failure(connection) }
        while true {
            let flushed = PQflush(connection)
            if flushed == 0 { break }
            guard flushed == 1 else { throw Self.failure(connection) }
            try Self.wait(connection, read: true, write: true, until: deadline)
            guard PQconsumeInput(connection) == 1 else { throw Self.failure(connection) }
        }
        var outcome: Result<[[String?]], PostgresError>?
        while true {
            while PQisBusy(connection) == 1 {
                try Self.wait(connection, read: true, write: false, until: deadline)
                guard PQconsumeInput(connection) == 1 else { throw Self.failure(connection) }
            }
            guard let result = PQgetResult(connection) else { break }
            defer { PQclear(result) }
            // The first error wins; otherwise the last result's rows (one statement: one result).
            if case .failure = outcome { continue }
            outcome = Self.rows(of: result, on: connection)
        }
        guard let outcome else { throw Self.failure(connection) }
        return try outcome.get()
    }

    private static func rows(of result: OpaquePointer, on connection: OpaquePointer) -> Result<
        [[String?]], PostgresError
    > {
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK:
            return .success(
                (0..<PQntuples(result)).map { row in
                    (0..<PQnfields(result)).map { column in
                        PQgetisnull(result, row, column) == 1 ? nil : Self.text(PQgetvalue(result, row, column))
                    }
                })
        default:
            let sqlState = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            return .failure(PostgresError(sqlState: sqlState, message: Self.text(PQresultErrorMessage(result))))
        }
    }

    /// Waits until the connection's socket is ready as asked (an error or hang-up counts as
    /// ready: libpq's next call reports it), or throws once `deadline` has passed.
    private static func wait(
        _ connection: OpaquePointer, read: Bool, write: Bool, until deadline: ContinuousClock.Instant?
    ) throws(PostgresError) {
        let socket = PQsocket(connection)
        guard socket >= 0 else { throw failure(connection) }
        var descriptor = pollfd(
            fd: socket, events: Int16((read ? POLLIN : 0) | (write ? POLLOUT : 0)), revents: 0)
        while true {
            var milliseconds: Int32 = -1
            if let deadline {
                let left = deadline - .now
                guard left > .zero else {
                    throw PostgresError(sqlState: nil, message: "no answer from the server before the deadline")
                }
                let (seconds, attoseconds) = left.components
                milliseconds = Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1)
            }
            let ready = poll(&descriptor, 1, milliseconds)
            if ready > 0 { return }
            if ready < 0 && errno != EINTR {
                throw PostgresError(sqlState: nil, message: "poll failed: errno \(errno)")
            }
        }
    }

    private static func failure(_ connection: OpaquePointer) -> PostgresError {
        PostgresError(sqlState: nil, message: text(PQerrorMessage(connection)))
    }

    static func text(_ pointer: UnsafePointer<CChar>?) -> String {
        guard let pointer else { return "" }
        return String(cString: pointer).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// A libpq failure: a connection that could not be made (no SQLSTATE) or a statement PostgreSQL
/// refused (with its SQLSTATE, e.g. `28P01` for a wrong password, `42601` for a syntax error).
public struct PostgresError: Error, Sendable, Equatable, CustomStringConvertible {
    public var sqlState: String?
    public var message: String

    public init(sqlState: String?, message: String) {
        self.sqlState = sqlState
        self.message = message
    }

    public var description: String { sqlState.map { "PostgreSQL \($0): \(message)" } ?? "PostgreSQL: \(message)" }
}
