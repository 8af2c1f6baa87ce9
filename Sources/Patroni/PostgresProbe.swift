import NIOPosix

/// The watcher's SQL probe of one member: connect, run `SQLObservation.probeQuery`, disconnect —
/// on `pool`'s threads, so the blocking libpq calls never hold an event loop or Swift
/// concurrency's pool. A fresh connection per probe proves the member still accepts connections.
public enum PostgresProbe {
    public static func observe(
        _ parameters: [(keyword: String, value: String)], on pool: NIOThreadPool
    ) async throws -> SQLObservation {
        let parameters = parameters.map { Parameter(keyword: $0.keyword, value: $0.value) }
        return try await pool.runIfActive {
            let connection = try PostgresConnection(parameters.map { ($0.keyword, $0.value) })
            let rows = try connection.query(SQLObservation.probeQuery)
            guard rows.count == 1 else { throw SQLProbeError("expected one row, got \(rows.count)") }
            return try SQLObservation(row: rows[0])
        }
    }

    private struct Parameter: Sendable {
        var keyword: String
        var value: String
    }
}
