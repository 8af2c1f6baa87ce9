/// One member of a SWIM group with the Lifeguard extensions, as a pure, deterministic value.
///
/// It performs no I/O, reads no clock and has no global randomness (the style of
/// apple/swift-cluster-membership's `SWIM.Instance` and of our `RaftCore`): time arrives as
/// `tick()`, datagrams as `receive(_:from:)`, and the host's wishes as `join(seeds:)`, `leave()`,
/// `updateMetadata(_:)` and `mergePushPull(_:)`. Every input returns the `SWIMDirective`s the host
/// carries out: datagrams to send, push-pull exchanges to start, member changes to publish.
/// Randomness comes from `SWIMSettings.randomSeed`, so the same inputs give the same outputs.
///
/// Rules cited in doc comments refer to "SWIM: Scalable Weakly-consistent Infection-style Process
/// Group Membership Protocol" (Das, Gupta, Motivala, DSN 2002) as "SWIM §n" and to "Lifeguard: Local
/// Health Awareness for More Accurate Failure Detection" (Dadgar, Phillips, Currey, 2017) as
/// "Lifeguard §n".
public struct SWIMInstance: Sendable {
    public let settings: SWIMSettings
    public let id: MemberID
    /// Ticks since this instance was created.
    public internal(set) var now: UInt64 = 0
    public internal(set) var counters = SWIMCounters()

    /// Every member known, this one included.
    var table: [MemberID: Member] = [:]
    /// Members by `MemberStatus.Kind.rawValue`, kept in step with `table`.
    var statusCounts = [0, 0, 0, 0]
    /// When each suspected member's suspicion started here (Lifeguard §IV-B timers).
    var suspectedSince: [MemberID: UInt64] = [:]
    /// When each dead or left member became so (tombstones, reaped after `tombstoneTicks`).
    var tombstonedSince: [MemberID: UInt64] = [:]
    /// The incarnation at which each member's metadata was last adopted.
    var metadataIncarnation: [MemberID: UInt64] = [:]

    var random: SWIMRandom
    var health: LocalHealth
    var probeOrder = ProbeOrder()
    var probe: ProbeRound?
    var nextProbeAt: UInt64
    /// Pings sent for others' ping-requests, by the sequence number of our ping.
    var relays: [UInt64: Relay] = [:]
    var nextSequence: UInt64 = 0
    var gossip = GossipQueue()
    var nextPushPullAt: UInt64
    var seeds: [String] = []
    public internal(set) var isJoining = false
    var nextJoinAttemptAt: UInt64 = 0

    /// Directives produced by the input being handled.
    var output: [SWIMDirective] = []

    /// A new member `id` reachable at `address` (its SWIM UDP address).
    ///
    /// A restarted process should pass an `incarnation` above any it used before (for example one
    /// derived from its start time), so that its fresh state wins over what others remember.
    public init(
        id: MemberID, address: String, metadata: MemberMetadata? = nil, incarnation: UInt64 = 0,
        settings: SWIMSettings = SWIMSettings()
    ) throws(SWIMError) {
        try settings.validate()
        self.settings = settings
        self.id = id
        var random = SWIMRandom(seed: settings.randomSeed ^ (id.node &* 0x9E37_79B9_7F4A_7C15))
        // Members started together do not probe or push-pull in lockstep.
        nextProbeAt = 1 + UInt64(random.next(below: settings.probeInterval))
        nextPushPullAt = UInt64(settings.pushPullInterval + random.next(below: settings.pushPullInterval))
        self.random = random
        health = LocalHealth(maximumMultiplier: settings.maxLocalHealthMultiplier)
        let me = Member(
            id: id, address: address, status: .alive(incarnation: incarnation), metadata: metadata,
            metadataVersion: metadata == nil ? 0 : 1)
        table[id] = me
        statusCounts[MemberStatus.Kind.alive.rawValue] = 1
        metadataIncarnation[id] = incarnation
    }

    // MARK: Observing

    /// This member's own record.
    public var localMember: Member { table[id]! }
    public var address: String { localMember.address }
    public var incarnation: UInt64 { localMember.status.incarnation }
    /// True once `leave()` was called.
    public var hasLeft: Bool { localMember.status.kind == .left }

    /// Every member known (this one included, tombstones too), ordered by id.
    public var members: [Member] { table.values.sorted { $0.id < $1.id } }

    public func member(_ id: MemberID) -> Member? { table[id] }

    /// Lifeguard's local health multiplier, 1 … `maxLocalHealthMultiplier`.
    public var localHealthMultiplier: Int { health.multiplier }

    /// How many members this node holds in each status (itself included).
    public var membersByStatus: [MemberStatus.Kind: Int] {
        var counts: [MemberStatus.Kind: Int] = [:]
        for kind in MemberStatus.Kind.allCases { counts[kind] = statusCounts[kind.rawValue] }
        return counts
    }

    /// Alive and suspect members, this one included: the n of the protocol's formulas.
    public var liveMemberCount: Int {
        statusCounts[MemberStatus.Kind.alive.rawValue] + statusCounts[MemberStatus.Kind.suspect.rawValue]
    }

    /// The current suspicion timeout of a suspected member, in ticks from the start of the suspicion
    /// (Lifeguard §IV-B, times the local health multiplier).
    public func suspicionTimeout(of member: MemberID) -> Int? {
        guard case .suspect(_, let confirmations)? = table[member]?.status else { return nil }
        return settings.suspicionTimeout(members: liveMemberCount, confirmations: max(0, confirmations.count - 1))
            * health.multiplier
    }

    // MARK: Inputs

    /// Advances protocol time by one tick: probe periods and their timeouts (SWIM §3.1, scaled by
    /// Lifeguard §IV-A), nacks owed as an intermediary, suspicion timeouts (SWIM §4.2, Lifeguard
    /// §IV-B), push-pull and join retries, and reaping of tombstones.
    public mutating func tick() -> [SWIMDirective] {
        now += 1
        if !hasLeft {
            tickProbe()
            tickRelays()
            tickSuspicions()
            tickPushPull()
            tickJoin()
        }
        reapTombstones()
        return takeOutput()
    }

    /// Handles a message from the member at `address` (the datagram's source, or the TCP peer of a
    /// push-pull).
    public mutating func receive(_ message: SWIMMessage, from address: String) -> [SWIMDirective] {
        switch message {
        case .ping(let sequence, let target, let gossip):
            merge(gossip)
            // Not for us: a different member now lives at this address. Stay silent; the prober
            // will find out through its own timeouts.
            if target == id {
                send(to: address, buddy: nil) { .ack(sequence: sequence, target: target, gossip: $0) }
            }
        case .pingRequest(let sequence, let target, let targetAddress, let gossip):
            merge(gossip)
            relay(sequence: sequence, target: target, targetAddress: targetAddress, requester: address)
        case .ack(let sequence, let target, let gossip):
            merge(gossip)
            handleAck(sequence: sequence, target: target)
        case .nack(let sequence, let gossip):
            merge(gossip)
            handleNack(sequence: sequence, from: address)
        case .pushPull(let kind, let members):
            mergePushPullState(members)
            if kind == .request {
                output.append(.send(.pushPull(.response, members: pushPullState()), to: address))
            }
        case .leave(let member, let incarnation):
            if member != id, let known = table[member] {
                merge(Member(id: member, address: known.address, status: .left(incarnation: incarnation)))
            }
        }
        return takeOutput()
    }

    mutating func takeOutput() -> [SWIMDirective] {
        var taken: [SWIMDirective] = []
        swap(&taken, &output)
        return taken
    }
}
