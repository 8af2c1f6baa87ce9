import CoreMetrics
import Logging

/// Expires leases: the leader-only service behind every lease's end. While this node leads a
/// term it restarts every lease's TTL in full, follows grants and revokes on the change feed, and
/// proposes a revoke (for this term only) for each lease whose deadline passed on this node's
/// monotonic clock. Followers never decide expiry; they only apply the revokes.
struct LeaseExpiry: LeaderService {
    let name = "lease expiry"
    let node: RaftNode
    let lessor: Lessor
    /// How often deadlines are checked: a lease ends at most this long after its deadline.
    let checkInterval: Duration
    /// Revokes proposed per check at most, so a mass expiry is spread out rather than one burst.
    var maxRevokesPerCheck = 128
    let expired: Counter
    let logger: Logger

    /// Only lease events matter here, but whole changes arrive: the bound is generous, and an
    /// overflow costs a resubscription, nothing more.
    private static let feedLimits = ChangeSubscription.Limits(maxItems: 16_384, maxBytes: 64 << 20)

    func lead(term: UInt64) async {
        let (leases, subscription) = await node.subscribe(limits: Self.feedLimits) { Self.ttls($0) }
        lessor.activate(term: term, leases: leases, now: .now)
        logger.info("lease clocks restarted", metadata: ["term": "\(term)", "leases": "\(leases.count)"])
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await follow(subscription) }
            group.addTask { await expire(term: term) }
            // Either ending (the node stopped, or leadership ended) ends both.
            await group.next()
            group.cancelAll()
        }
        subscription.cancel()
        lessor.deactivate(term: term)
    }

    private func follow(_ first: ChangeSubscription) async {
        var subscription = first
        while !Task.isCancelled {
            switch await subscription.next() {
            case .item(.change(let change)):
                if !change.leases.isEmpty { lessor.apply(change.leases, now: .now) }
            case .item(.replaced(let store)):
                lessor.reconcile(Self.ttls(store), now: .now)
            case .timedOut:
                continue
            case .ended(.overflowed):
                let (leases, fresh) = await node.subscribe(limits: Self.feedLimits) { Self.ttls($0) }
                lessor.reconcile(leases, now: .now)
                subscription = fresh
            case .ended(.stopped), .ended(.cancelled):
                return
            }
        }
        subscription.cancel()
    }

    private func expire(term: UInt64) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: checkInterval)
            guard !Task.isCancelled else { return }
            let due = lessor.takeExpired(now: .now, limit: maxRevokesPerCheck)
            guard !due.isEmpty else { continue }
            await withTaskGroup(of: Void.self) { group in
                for id in due {
                    group.addTask { await revoke(id, term: term) }
                }
            }
        }
    }

    private func revoke(_ id: UInt64, term: UInt64) async {
        let command = StoreCommand(operation: .revokeLease(id: id), isSystem: true)
        switch await node.propose(command, inTerm: term) {
        case .applied(.applied(let revision, _), _):
            expired.increment()
            lessor.revoked(id)
            logger.info("lease expired", metadata: ["lease": "\(id)", "revision": "\(revision)"])
        case .applied(.leaseNotFound, _):
            lessor.revoked(id)  // revoked by a client meanwhile
        case let other:
            // Retried after the lessor's retry delay while this term lasts.
            logger.debug("lease revoke not applied", metadata: ["lease": "\(id)", "outcome": "\(other)"])
        }
    }

    private static func ttls(_ store: KeyValueStore) -> [(id: UInt64, ttl: Duration)] {
        store.leaseTTLs.map { ($0.id, .milliseconds($0.ttlMilliseconds)) }
    }
}
