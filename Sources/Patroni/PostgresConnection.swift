import CLibPQ
import Foundation

/// One blocking libpq connection. Every call blocks its thread until PostgreSQL answers (bounded
/// by `connect_timeout` and the server's `statement_timeout`), so it is used only inside work
/// handed to a thread pool of its own (`PostgresProbe` uses an `NIOThreadPool`) — never on an
/// event loop or a thread of Swift concurrency's pool. Not Sendable: a libpq connection must not
/// be used from two threads at once, so it stays on the thread that opened it.
public final class PostgresConnection {
    /// The libpq handle; statements (`PostgresConnection+Statement.swift`) use it directly.
    let connection: OpaquePointer

    /// Connects with libpq's keyword/value form: each value is passed as it is, never spliced
    /// into a connection string, so a value from configuration cannot add parameters
    /// (`password=x host=elsewhere` stays one odd password).
    public init(_ parameters: [(keyword: String, value: String)]) throws(PostgresError) {
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
                        PQconnectdbParams(keywordPointer, valuePointer, 0)
                    }
                }
            }
        }
        guard let connection else {
            throw PostgresError(sqlState: nil, message: "libpq could not allocate a connection")
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = Self.text(PQerrorMessage(connection))
            PQfinish(connection)
            throw PostgresError(sqlState: nil, message: message)
        }
        self.connection = connection
    }

    deinit { PQfinish(connection) }

    /// Runs one statement without parameters and returns its rows in text form (nil is NULL).
    public func query(_ sql: String) throws(PostgresError) -> [[String?]] {
        guard let result = PQexec(connection, sql) else {
            throw PostgresError(sqlState: nil, message: Self.text(PQerrorMessage(connection)))
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK:
            return (0..<PQntuples(result)).map { row in
                (0..<PQnfields(result)).map { column in
                    PQgetisnull(result, row, column) == 1 ? nil : Self.text(PQgetvalue(result, row, column))
                }
            }
        default:
            let sqlState = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            throw PostgresError(sqlState: sqlState, message: Self.text(PQresultErrorMessage(result)))
        }
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
