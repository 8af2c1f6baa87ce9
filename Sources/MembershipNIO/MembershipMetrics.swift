import CoreMetrics
import Membership
import NIOConcurrencyHelpers

/// SWIM metrics: members by state, and the instance's monotonic counters exported as
/// Prometheus counters (advanced by the difference since the last tick).
struct MembershipMetrics: Sendable {
    let membersByState: [MemberStatus.Kind: Gauge]
    let localHealth: Gauge
    let probes: Counter
    let indirectProbes: Counter
    let suspicions: Counter
    let refutations: Counter
    let falseSuspicionRefutations: Counter
    let deaths: Counter
    let droppedUnauthenticated: Counter
    let droppedMalformed: Counter
    let droppedReplayed: Counter
    let droppedOutOfWindow: Counter
    private let last = LastCounters()

    init(factory: any MetricsFactory) {
        var gauges: [MemberStatus.Kind: Gauge] = [:]
        for kind in MemberStatus.Kind.allCases {
            gauges[kind] = Gauge(label: "raftgate_swim_members", dimensions: [("state", "\(kind)")], factory: factory)
        }
        membersByState = gauges
        localHealth = Gauge(label: "raftgate_swim_local_health_multiplier", factory: factory)
        probes = Counter(label: "raftgate_swim_probes_total", factory: factory)
        indirectProbes = Counter(label: "raftgate_swim_indirect_probes_total", factory: factory)
        suspicions = Counter(label: "raftgate_swim_suspicions_total", factory: factory)
        refutations = Counter(label: "raftgate_swim_refutations_total", factory: factory)
        falseSuspicionRefutations = Counter(label: "raftgate_swim_false_suspicion_refutations_total", factory: factory)
        deaths = Counter(label: "raftgate_swim_deaths_declared_total", factory: factory)
        droppedUnauthenticated = Counter(label: "raftgate_swim_dropped_unauthenticated_total", factory: factory)
        droppedMalformed = Counter(label: "raftgate_swim_dropped_malformed_total", factory: factory)
        droppedReplayed = Counter(label: "raftgate_swim_dropped_replayed_total", factory: factory)
        droppedOutOfWindow = Counter(label: "raftgate_swim_dropped_out_of_window_total", factory: factory)
    }

    func record(_ instance: SWIMInstance) {
        let counts = instance.membersByStatus
        for (kind, gauge) in membersByState { gauge.record(counts[kind] ?? 0) }
        localHealth.record(instance.localHealthMultiplier)
        let now = instance.counters
        let before = last.swap(now)
        probes.increment(by: now.probesSent - before.probesSent)
        indirectProbes.increment(by: now.indirectProbesSent - before.indirectProbesSent)
        suspicions.increment(by: now.suspicionsRaised - before.suspicionsRaised)
        refutations.increment(by: now.refutations - before.refutations)
        falseSuspicionRefutations.increment(by: now.falseSuspicionRefutations - before.falseSuspicionRefutations)
        deaths.increment(by: now.deathsDeclared - before.deathsDeclared)
    }
}

/// The counters as last exported.
final class LastCounters: Sendable {
    private let value = NIOLockedValueBox(SWIMCounters())
    func swap(_ new: SWIMCounters) -> SWIMCounters {
        value.withLockedValue { old in
            defer { old = new }
            return old
        }
    }
}
