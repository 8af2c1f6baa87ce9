/// What the gateway's own probe of a member's PostgreSQL found: the server's word on whether it
/// accepts writes, which timeline it is on and where its WAL stands.
public struct SQLObservation: Sendable, Equatable {
    public var inRecovery: Bool
    public var timeline: Int
    /// The write position (`pg_current_wal_lsn()`); only a server out of recovery has one.
    public var currentLSN: LSN?
    /// WAL received and replayed by a replica (`pg_last_wal_receive_lsn()`, `…_replay_lsn()`).
    public var receiveLSN: LSN?
    public var replayLSN: LSN?

    public init(inRecovery: Bool, timeline: Int, currentLSN: LSN? = nil, receiveLSN: LSN? = nil, replayLSN: LSN? = nil)
    {
        self.inRecovery = inRecovery
        self.timeline = timeline
        self.currentLSN = currentLSN
        self.receiveLSN = receiveLSN
        self.replayLSN = replayLSN
    }

    /// The probe, one row of five text columns parsed by `init(row:)`. The timeline comes from
    /// where the server is writing or receiving *now*: a primary's current WAL file name (its
    /// first 8 hex digits are the timeline; pg_control's checkpoint timeline trails a promotion
    /// until the next checkpoint), a replica's WAL receiver, and the last restartpoint only when
    /// the replica has no receiver. Reading pg_stat_wal_receiver needs `pg_monitor` (or superuser).
    public static let probeQuery = """
        SELECT pg_is_in_recovery(),
               CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn() END,
               pg_last_wal_receive_lsn(),
               pg_last_wal_replay_lsn(),
               CASE WHEN pg_is_in_recovery()
                    THEN coalesce((SELECT received_tli FROM pg_stat_wal_receiver),
                                  (SELECT timeline_id FROM pg_control_checkpoint()))
                    ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int
               END
        """

    /// Parses the probe's row (text format; nil is SQL NULL). Anything unexpected throws, so a
    /// probe that did not understand its answer counts as a probe that failed.
    public init(row: [String?]) throws(SQLProbeError) {
        guard row.count == 5 else { throw SQLProbeError("expected 5 columns, got \(row.count)") }
        switch row[0] {
        case "t": inRecovery = true
        case "f": inRecovery = false
        default: throw SQLProbeError("pg_is_in_recovery() is \(row[0] ?? "NULL"), not t or f")
        }
        guard let text = row[4], let timeline = Int(text), timeline > 0 else {
            throw SQLProbeError("timeline is \(row[4] ?? "NULL"), not a positive integer")
        }
        self.timeline = timeline
        currentLSN = try Self.lsn(row[1], "pg_current_wal_lsn()")
        receiveLSN = try Self.lsn(row[2], "pg_last_wal_receive_lsn()")
        replayLSN = try Self.lsn(row[3], "pg_last_wal_replay_lsn()")
        if !inRecovery && currentLSN == nil {
            throw SQLProbeError("a server out of recovery reported no pg_current_wal_lsn()")
        }
    }

    private static func lsn(_ text: String?, _ column: String) throws(SQLProbeError) -> LSN? {
        guard let text else { return nil }
        guard let lsn = LSN(text) else { throw SQLProbeError("\(column) is \(text), not an LSN") }
        return lsn
    }
}

public struct SQLProbeError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "PostgreSQL probe: \(message)" }
}
