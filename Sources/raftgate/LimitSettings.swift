import ArgumentParser
import Node

/// The bounds of issue 15 (README "Limits"), as `serve` options: each a flag, a `RAFTGATE_*`
/// variable and a camel-case config file key, like every other setting.
struct LimitOptions: ParsableArguments {
    @Option(help: "Rows a range read answers without ?limit= (RAFTGATE_DEFAULT_RANGE_LIMIT); default 1000.")
    var defaultRangeLimit: Int?
    @Option(help: "Largest ?limit= a range read accepts, more is 400 (RAFTGATE_MAX_RANGE_LIMIT); default 10000.")
    var maxRangeLimit: Int?
    @Option(
        help: "Store quota: keys, values, 48 B a key or lease; beyond it puts get 507 (RAFTGATE_QUOTA_BYTES); 2 GiB.")
    var quotaBytes: Int?
    @Option(help: "Uncommitted bytes the leader carries before 503 (RAFTGATE_MAX_UNCOMMITTED_BYTES); 64 MiB.")
    var maxUncommittedBytes: Int?
    @Option(help: "Writes the leader waits on before 503 (RAFTGATE_MAX_PENDING_WRITES); default 10000.")
    var maxPendingWrites: Int?
    @Option(help: "Open HTTP API connections; more get 503 and are closed (RAFTGATE_MAX_CONNECTIONS); default 4096.")
    var maxConnections: Int?
    @Option(help: "ms from a request's first byte to its full header, else 408 (RAFTGATE_HEADER_TIMEOUT_MS); 10000.")
    var headerTimeoutMs: Int?
    @Option(help: "ms from a request's first byte to its full body, else 408 (RAFTGATE_REQUEST_TIMEOUT_MS); 60000.")
    var requestTimeoutMs: Int?
    @Option(help: "Snapshot and compact the log after this many applied bytes (RAFTGATE_COMPACTION_BYTES); 64 MiB.")
    var compactionBytes: Int?
    @Option(help: "Authenticated inbound Raft-port connections; more are closed (RAFTGATE_MAX_PEER_CONNECTIONS); 64.")
    var maxPeerConnections: Int?
    @Option(help: "ms a Raft-port connection may stay silent before it is closed (RAFTGATE_PEER_IDLE_MS); 300000.")
    var peerIdleMs: Int?
    @Option(help: "Largest snapshot taken from a leader, bytes, above the quota (RAFTGATE_MAX_SNAPSHOT_BYTES); 8 GiB.")
    var maxSnapshotBytes: Int?
}

/// The bounds, resolved and checked.
struct LimitSettings: Sendable, Hashable {
    var defaultRangeLimit = 1000
    var maxRangeLimit = 10_000
    var quotaBytes: UInt64 = 2 << 30
    var maxUncommittedBytes: UInt64 = 64 << 20
    var maxPendingWrites = 10_000
    var maxConnections = 4096
    var headerTimeoutMilliseconds = 10_000
    var requestTimeoutMilliseconds = 60_000
    var compactionBytes: UInt64 = 64 << 20
    var maxPeerConnections = 64
    var peerIdleMilliseconds = 300_000
    /// Far above any sane election timeout, so the idle timeout only ever closes abandoned links.
    static let minimumPeerIdleMilliseconds = 10_000
    var maxSnapshotBytes = 8 << 30

    /// The write limits as the node takes them.
    var writeLimits: WriteLimits {
        var limits = WriteLimits()
        limits.quotaBytes = quotaBytes
        limits.maxUncommittedBytes = maxUncommittedBytes
        limits.maxPendingWrites = maxPendingWrites
        return limits
    }

    /// `number(flag, key)` reads a flag, then the environment and the config file (as
    /// `ServeSettings.resolve` does for every setting).
    /// `watchHistory` (events a store's change history keeps) enters the snapshot bound.
    static func resolve(
        _ options: LimitOptions, watchHistory: Int = 10_000, number: (Int?, String) throws -> Int?
    ) throws -> LimitSettings {
        var settings = LimitSettings()
        func positive(_ flag: Int?, _ key: String, _ fallback: Int) throws -> Int {
            let value = try number(flag, key) ?? fallback
            guard value > 0 else { throw ValidationError("\(key) must be positive, got \(value)") }
            return value
        }
        settings.defaultRangeLimit = try positive(options.defaultRangeLimit, "defaultRangeLimit", 1000)
        settings.maxRangeLimit = try positive(options.maxRangeLimit, "maxRangeLimit", 10_000)
        guard settings.defaultRangeLimit <= settings.maxRangeLimit else {
            throw ValidationError("defaultRangeLimit must not exceed maxRangeLimit")
        }
        settings.quotaBytes = UInt64(try positive(options.quotaBytes, "quotaBytes", 2 << 30))
        settings.maxUncommittedBytes = UInt64(
            try positive(options.maxUncommittedBytes, "maxUncommittedBytes", 64 << 20))
        settings.maxPendingWrites = try positive(options.maxPendingWrites, "maxPendingWrites", 10_000)
        settings.maxConnections = try positive(options.maxConnections, "maxConnections", 4096)
        settings.headerTimeoutMilliseconds = try positive(options.headerTimeoutMs, "headerTimeoutMs", 10_000)
        settings.requestTimeoutMilliseconds = try positive(options.requestTimeoutMs, "requestTimeoutMs", 60_000)
        guard settings.headerTimeoutMilliseconds <= settings.requestTimeoutMilliseconds else {
            throw ValidationError("headerTimeoutMs must not exceed requestTimeoutMs")
        }
        settings.compactionBytes = UInt64(try positive(options.compactionBytes, "compactionBytes", 64 << 20))
        settings.maxPeerConnections = try positive(options.maxPeerConnections, "maxPeerConnections", 64)
        settings.peerIdleMilliseconds = try positive(options.peerIdleMs, "peerIdleMs", 300_000)
        // Follower↔follower links are quiet between elections; a bound near the election timeout
        // would close healthy links and lose the messages of the next campaign on a redial.
        guard settings.peerIdleMilliseconds >= minimumPeerIdleMilliseconds else {
            throw ValidationError(
                "peerIdleMs must be at least \(minimumPeerIdleMilliseconds) (10 s), got \(settings.peerIdleMilliseconds)"
            )
        }
        settings.maxSnapshotBytes = try positive(options.maxSnapshotBytes, "maxSnapshotBytes", 8 << 30)
        // A node that refuses a legitimate snapshot can never catch up: the bound must hold any
        // snapshot of a store kept within the quota (`SnapshotBound`).
        let needed = SnapshotBound.minimumBytes(
            writeLimits: settings.writeLimits, history: ChangeHistory.Limits(maxEvents: watchHistory))
        guard UInt64(settings.maxSnapshotBytes) >= needed else {
            throw ValidationError(
                """
                maxSnapshotBytes (\(settings.maxSnapshotBytes)) must be at least \(needed): a snapshot holds the \
                store up to quotaBytes (\(settings.quotaBytes)) plus writes in flight, the idempotency keys and \
                the watch history; lower quotaBytes or raise maxSnapshotBytes
                """)
        }
        return settings
    }
}
