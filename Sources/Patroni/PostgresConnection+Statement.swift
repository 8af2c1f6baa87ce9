import CLibPQ
import Foundation

/// One statement's answer, in PostgreSQL's text format: column names and types, rows (nil is
/// NULL), and the command tag (`SELECT 3`, `INSERT 0 1`).
public struct StatementResult: Sendable, Equatable {
    public struct Column: Sendable, Equatable {
        public var name: String
        public var typeOID: UInt32
        /// `int4`, `text`, `timestamptz`, `_int4` (arrays) and so on; `format_type`'s answer for
        /// types that are not built in.
        public var typeName: String
    }

    public var columns: [Column]
    public var rows: [[String?]]
    public var command: String
    /// Rows the command touched (`INSERT`, `UPDATE`, `DELETE`, `SELECT`, …); nil when it says none.
    public var rowsAffected: Int?
}

/// Why a statement failed. `connectionLost` is the case that matters for routing: the connection
/// broke while the statement was in flight, so whether it ran is unknown.
public struct StatementError: Error, Sendable, Equatable, CustomStringConvertible {
    public var sqlState: String?
    public var message: String
    public var detail: String?
    public var hint: String?
    /// 1-based character position of the error in the statement, when PostgreSQL gives one.
    public var position: Int?
    public var connectionLost: Bool

    public init(
        sqlState: String?, message: String, detail: String? = nil, hint: String? = nil, position: Int? = nil,
        connectionLost: Bool
    ) {
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
        self.hint = hint
        self.position = position
        self.connectionLost = connectionLost
    }

    public var description: String { sqlState.map { "PostgreSQL \($0): \(message)" } ?? "PostgreSQL: \(message)" }
}

extension PostgresConnection {
    /// Runs one statement with text parameters (`$1`, `$2`, …; nil is NULL) through libpq's
    /// extended protocol, which also refuses a second statement in the text. Blocks.
    /// `typeNames` caches the names of types that are not built in (per database).
    func execute(_ sql: String, parameters: [String?], typeNames: inout [UInt32: String]) throws(StatementError)
        -> StatementResult
    {
        let result = Self.withCStrings(parameters) { values in
            PQexecParams(connection, sql, Int32(parameters.count), nil, values, nil, nil, 0)
        }
        guard let result else {
            throw StatementError(
                sqlState: nil, message: Self.text(PQerrorMessage(connection)), connectionLost: !isOpen)
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            break
        case PGRES_FATAL_ERROR, PGRES_NONFATAL_ERROR, PGRES_BAD_RESPONSE:
            func field(_ code: Character) -> String? {
                PQresultErrorField(result, Int32(code.asciiValue!)).map { String(cString: $0) }
            }
            throw StatementError(
                sqlState: field("C"), message: field("M") ?? Self.text(PQresultErrorMessage(result)),
                detail: field("D"), hint: field("H"), position: field("P").flatMap { Int($0) },
                connectionLost: !isOpen)
        default:
            // COPY and the like: the classifier refuses them, so this is a protocol surprise; the
            // connection is left in a state nobody should reuse.
            throw StatementError(
                sqlState: nil, message: "unexpected result \(String(cString: PQresStatus(PQresultStatus(result))))",
                connectionLost: true)
        }
        let columnCount = Int(PQnfields(result))
        let oids = (0..<columnCount).map { UInt32(PQftype(result, Int32($0))) }
        let unknown = Set(oids.filter { BuiltinTypes.names[$0] == nil && typeNames[$0] == nil })
        if !unknown.isEmpty { lookUpTypeNames(unknown, into: &typeNames) }
        let columns = (0..<columnCount).map { column in
            StatementResult.Column(
                name: String(cString: PQfname(result, Int32(column))), typeOID: oids[column],
                typeName: BuiltinTypes.names[oids[column]] ?? typeNames[oids[column]] ?? "oid:\(oids[column])")
        }
        let rows = (0..<PQntuples(result)).map { row in
            (0..<Int32(columnCount)).map { column in
                PQgetisnull(result, row, column) == 1
                    ? nil : String(cString: PQgetvalue(result, row, column))
            }
        }
        let affected = String(cString: PQcmdTuples(result))
        return StatementResult(
            columns: columns, rows: rows, command: String(cString: PQcmdStatus(result)),
            rowsAffected: Int(affected))
    }

    /// The connection is usable and not inside a transaction (a statement can leave one open only
    /// if it started it, which the classifier refuses; this is the belt to those braces).
    var isIdle: Bool { isOpen && PQtransactionStatus(connection) == PQTRANS_IDLE }

    var isOpen: Bool { PQstatus(connection) == CONNECTION_OK }

    /// Whether an idle pooled connection still looks alive, without a round trip: the server
    /// sends nothing to an idle session, so anything readable is its goodbye (an error before it
    /// closed: a restart, `pg_terminate_backend`, a crash) or the close itself.
    var looksAlive: Bool {
        guard isIdle else { return false }
        var descriptor = pollfd(fd: PQsocket(connection), events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) == 0
    }

    private func lookUpTypeNames(_ oids: Set<UInt32>, into names: inout [UInt32: String]) {
        let list = "{" + oids.sorted().map(String.init).joined(separator: ",") + "}"
        let result = Self.withCStrings([list]) { values in
            PQexecParams(
                connection, "SELECT oid::int8, format_type(oid, NULL) FROM pg_type WHERE oid = ANY($1::oid[])", 1, nil,
                values, nil, nil, 0)
        }
        guard let result else { return }
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_TUPLES_OK else { return }
        for row in 0..<PQntuples(result) {
            if let oid = UInt32(String(cString: PQgetvalue(result, row, 0))) {
                names[oid] = String(cString: PQgetvalue(result, row, 1))
            }
        }
    }

    private static func withCStrings<Result>(
        _ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> Result
    ) -> Result {
        guard !strings.isEmpty else { return body(nil) }
        var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { $0.map { strdup($0) } ?? nil }
        defer { pointers.forEach { free($0) } }
        return pointers.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: max(buffer.count, 1)) {
                body($0)
            }
        }
    }
}

/// The names of PostgreSQL's built-in types by OID (`pg_type.dat`; stable across versions), so
/// the common case needs no catalog query.
enum BuiltinTypes {
    static let names: [UInt32: String] = [
        16: "bool", 17: "bytea", 18: "char", 19: "name", 20: "int8", 21: "int2", 23: "int4", 24: "regproc", 25: "text",
        26: "oid", 28: "xid", 114: "json", 142: "xml", 600: "point", 650: "cidr", 700: "float4", 701: "float8",
        790: "money", 829: "macaddr", 869: "inet", 1000: "_bool", 1001: "_bytea", 1005: "_int2", 1007: "_int4",
        1009: "_text", 1014: "_bpchar", 1015: "_varchar", 1016: "_int8", 1021: "_float4", 1022: "_float8",
        1042: "bpchar", 1043: "varchar", 1082: "date", 1083: "time", 1114: "timestamp", 1115: "_timestamp",
        1182: "_date", 1184: "timestamptz", 1185: "_timestamptz", 1186: "interval", 1231: "_numeric", 1266: "timetz",
        1560: "bit", 1562: "varbit", 1700: "numeric", 2205: "regclass", 2206: "regtype", 2249: "record",
        2278: "void", 2950: "uuid", 2951: "_uuid", 3220: "pg_lsn", 3802: "jsonb", 3807: "_jsonb", 199: "_json",
        705: "unknown",
    ]
}
