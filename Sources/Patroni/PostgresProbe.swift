import NIOPosix

/// The watcher's SQL probe of one member: connect, run `SQLObservation.probeQuery`, disconnect —
/// on `pool`'s threads, so the blocking libpq calls never hold an event loop or Swift
/// concurrency's pool. A fresh connection per probe proves the member still accepts connections.
/// The whole probe has `timeout`: libpq gives up at that deadline on its thread (a server that
/// accepted and went silent cannot hold the thread), and the caller is answered at it even
/// before then if it is cancelled.
public enum PostgresProbe {
    public static func observe(
        _ parameters: [(keyword: String, value: String)], on pool: NIOThreadPool, timeout: Duration = .seconds(5)
    ) async throws -> SQLObservation {
        let parameters = parameters.map { Parameter(keyword: $0.keyword, value: $0.value) }
        let deadline = ContinuousClock.now + timeout
        // A little longer outside, so libpq's own (more telling) error usually answers first.
        return try await Deadline.run(within: timeout + .milliseconds(250), "PostgreSQL probe") {
            try await pool.runIfActive {
                let connection = try PostgresConnection(parameters.map { ($0.keyword, $0.value) }, deadline: deadline)
                let rows = try connection.query(SQLObservation.probeQuery, deadline: deadline)
                guard rows.count == 1 else { throw SQLProbeError("expected one row, got \(rows.count)") }
                return try SQLObservation(row: rows[0])
            }
        }
    }

    private struct Parameter: Sendable {
        var keyword: String
        var value: String
    }
}
