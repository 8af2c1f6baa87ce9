/// Bounds on what the leader takes in before it proposes (DESIGN.md "Security and lifecycle").
public struct WriteLimits: Sendable, Hashable {
    /// The store quota, like etcd's backend quota: once the replicated store holds this many bytes
    /// of keys and values, puts and lease grants are refused (`quota_exceeded`); reads, deletes and
    /// lease revokes keep working so an operator can make room.
    public var quotaBytes: UInt64 = 2 << 30
    /// Bytes of commands proposed by this leader and not yet applied (etcd's
    /// MaxUncommittedEntriesSize, on the host side): beyond it a proposal is refused with 503.
    public var maxUncommittedBytes: UInt64 = 64 << 20
    /// Writes proposed here and waiting for their outcome; beyond it a proposal is refused with 503.
    public var maxPendingWrites = 10_000

    public init() {}
}

/// Why a write was refused before it was proposed: nothing was written.
public enum WriteRefusal: Sendable, Hashable {
    /// The store holds `usedBytes`; this put would take it beyond `quotaBytes`.
    case quotaExceeded(usedBytes: UInt64, quotaBytes: UInt64)
    /// The leader already carries `pendingBytes` of uncommitted commands (limit `limitBytes`).
    case uncommittedBytes(pendingBytes: UInt64, limitBytes: UInt64)
    /// The leader already waits on `pending` writes (limit `limit`).
    case pendingWrites(pending: Int, limit: Int)

    /// Overload (the last two) passes when the pressure stops; the quota needs deletes.
    public var isOverload: Bool {
        if case .quotaExceeded = self { return false }
        return true
    }
}

/// The pure admission decision the leader makes for each write, before proposing it.
///
/// The quota is decided here, at proposal time on the leader, not when entries are applied: a
/// refused write never enters the log, so replicas stay identical whatever quota each node is
/// configured with (deciding at apply time would make a node with another quota apply a different
/// history). The leader judges by its applied store, so writes already in flight can overshoot the
/// quota by at most `maxUncommittedBytes`.
public struct WriteAdmission: Sendable, Hashable {
    public var limits: WriteLimits

    public init(limits: WriteLimits) { self.limits = limits }

    /// What the leader knows when a write arrives.
    public struct Load: Sendable, Hashable {
        /// What the quota charges the applied store (`KeyValueStore.quotaBytesUsed`).
        public var storeBytes: UInt64
        public var uncommittedBytes: UInt64
        public var pendingWrites: Int

        public init(storeBytes: UInt64, uncommittedBytes: UInt64, pendingWrites: Int) {
            self.storeBytes = storeBytes
            self.uncommittedBytes = uncommittedBytes
            self.pendingWrites = pendingWrites
        }
    }

    /// nil admits the command (`encodedBytes` long); otherwise why it is refused. Commands that
    /// free space (deletes, revokes) pass the quota but not the overload bounds. `remembered`: the
    /// store already holds the command's idempotency key, so applying it changes nothing (it
    /// replays the first result, or is refused as a reuse) — the quota does not apply, or a retry
    /// of a write that was applied would be told 507 "nothing was written". `byLeaderService`: the
    /// leader proposes it itself (`RaftNode.propose(_:inTerm:)`), not for a client.
    public func check(
        _ command: StoreCommand, encodedBytes: Int, load: Load, remembered: Bool = false, byLeaderService: Bool = false
    ) -> WriteRefusal? {
        // The leader's own lease-expiry revokes are exempt from every bound: refusing them under
        // sustained overload would let keys outlive their TTL for as long as the overload lasts.
        // They are few (the lessor revokes a bounded number per check) and only free space. A
        // client's revoke, even a system one from a worker route, stays bounded.
        if byLeaderService, command.isSystem, case .revokeLease = command.operation { return nil }
        if load.pendingWrites >= limits.maxPendingWrites {
            return .pendingWrites(pending: load.pendingWrites, limit: limits.maxPendingWrites)
        }
        // One command is always admitted when nothing is in flight, so a command larger than the
        // bound cannot be refused forever.
        if load.uncommittedBytes > 0, load.uncommittedBytes + UInt64(encodedBytes) > limits.maxUncommittedBytes {
            return .uncommittedBytes(pendingBytes: load.uncommittedBytes, limitBytes: limits.maxUncommittedBytes)
        }
        if remembered { return nil }
        let growth: UInt64
        switch command.operation {
        case .put(let key, let value): growth = UInt64(key.utf8.count + value.count) + KeyValueStore.quotaOverheadBytes
        case .grantLease: growth = KeyValueStore.quotaOverheadBytes
        case .delete, .revokeLease: return nil
        case .transaction(let transaction):
            // A transaction without puts only reads or frees space.
            growth = transaction.growthBytes
            if growth == 0 { return nil }
        }
        if load.storeBytes + growth > limits.quotaBytes || load.storeBytes >= limits.quotaBytes {
            return .quotaExceeded(usedBytes: load.storeBytes, quotaBytes: limits.quotaBytes)
        }
        return nil
    }
}
