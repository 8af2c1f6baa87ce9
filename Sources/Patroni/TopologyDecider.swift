/// The topology watcher's decision, as a value: fed one round of observations at a time, it
/// decides the primary (`PrimaryRule`), advances each replica's admission (`ReplicaAdmission`)
/// and moves the epoch only when what it routes to changes. No I/O, no clock: the watcher polls,
/// feeds it, and commits `decision.topology` through Raft when `decision.changed`.
public struct TopologyDecider: Sendable {
    public let members: [String]
    public let policy: TopologyPolicy
    public private(set) var topology: PostgresTopology
    private var admissions: [String: ReplicaAdmission]

    /// `committed` is the topology last committed by any leader. A new leader's watcher starts
    /// from it: its epoch continues, its primary is the one an API outage keeps, and its admitted
    /// replicas stay admitted until a sample says otherwise, so a leader change alone moves
    /// nothing. Members it names that are no longer configured are not carried over, and the
    /// first round then differs from it, so that change gets an epoch of its own too.
    public init(members: [String], policy: TopologyPolicy = .default, committed: PostgresTopology? = nil)
        throws(PatroniConfigurationError)
    {
        guard !members.isEmpty else { throw PatroniConfigurationError("no Patroni members configured") }
        guard Set(members).count == members.count else {
            throw PatroniConfigurationError("member names repeat: \(members.joined(separator: ", "))")
        }
        self.members = members
        self.policy = policy
        // Compared against as committed (unconfigured names included): a round routes only
        // configured members, so dropping one is a change and moves the epoch.
        topology = committed ?? PostgresTopology()
        admissions = [:]
        for name in topology.replicas where members.contains(name) && name != topology.primary?.name {
            admissions[name] = ReplicaAdmission(admitted: true, healthySamples: policy.admitAfterSamples)
        }
    }

    /// One polling round. Observations of names not configured are ignored; a configured member
    /// missing from the round counts as not answering on any source.
    public mutating func observe(_ round: [MemberObservation]) -> TopologyDecision {
        var byName: [String: MemberObservation] = [:]
        for observation in round where byName[observation.name] == nil { byName[observation.name] = observation }
        let observations = members.map { byName[$0] ?? MemberObservation(name: $0) }

        let verdict = PrimaryRule.decide(observations, previous: topology.primary?.name)
        let primary = verdict.primary.flatMap { chosen in observations.first { $0.name == chosen.name } }
        var assessments: [MemberAssessment] = []
        for member in observations {
            if member.name == verdict.primary?.name {
                admissions[member.name] = ReplicaAdmission()
                assessments.append(
                    MemberAssessment(member, isPrimary: true, lagBytes: nil, admission: .init(), note: nil))
                continue
            }
            let (sample, note) = Self.sample(
                member, primary: verdict.primary, primaryObservation: primary, all: observations)
            admissions[member.name, default: ReplicaAdmission()].record(sample, policy: policy)
            let lag: UInt64? = if case .lag(let bytes) = sample { bytes } else { nil }
            assessments.append(
                MemberAssessment(
                    member, isPrimary: false, lagBytes: lag, admission: admissions[member.name]!, note: note))
        }

        var next = PostgresTopology(
            epoch: topology.epoch, primary: verdict.primary,
            replicas: members.filter { admissions[$0]?.admitted == true && $0 != verdict.primary?.name })
        let changed = !next.routesLike(topology)
        if changed { next.epoch = topology.epoch + 1 }
        topology = next
        return TopologyDecision(topology: next, changed: changed, primaryReason: verdict.reason, members: assessments)
    }

    /// How this round counts for a non-primary member's admission, and why when it cannot serve.
    private static func sample(
        _ member: MemberObservation, primary: PostgresTopology.Primary?, primaryObservation: MemberObservation?,
        all: [MemberObservation]
    ) -> (ReplicaAdmission.Sample, String?) {
        guard let sql = member.sql else { return (.unusable, "PostgreSQL probe failed") }
        guard sql.inRecovery else { return (.unusable, "accepts writes but is not the primary") }
        if let patroni = member.patroni, patroni.state != "running" {
            return (.unusable, "Patroni reports it \(patroni.state)")
        }
        guard let primary else { return (.lagUnknown, "no primary to measure lag against") }
        guard sql.timeline == primary.timeline else {
            return (.unusable, "on timeline \(sql.timeline), the primary on \(primary.timeline)")
        }
        if let written = primaryObservation?.sql?.currentLSN, let replayed = sql.replayLSN {
            return (.lag(written.bytes(after: replayed)), nil)
        }
        // Without both positions from the probes, Patroni's figure: the primary's own view first,
        // otherwise the largest any view reports.
        if let lag = primaryObservation?.cluster?.lagBytes[member.name]
            ?? all.compactMap({ $0.cluster?.lagBytes[member.name] }).max()
        {
            return (.lag(lag), nil)
        }
        return (.lagUnknown, "no WAL positions to measure lag")
    }
}

/// The outcome of one round: what to route to, whether it changed (commit it if so), and per
/// member the evidence behind it — what `GET /pg` shows.
public struct TopologyDecision: Sendable, Equatable {
    public var topology: PostgresTopology
    public var changed: Bool
    public var primaryReason: String
    public var members: [MemberAssessment]
}

public struct MemberAssessment: Sendable, Equatable {
    public var name: String
    public var isPrimary: Bool
    /// Patroni's role and state (nil when its API did not answer).
    public var patroniRole: PatroniRole?
    public var patroniState: String?
    public var timeline: Int?
    public var lagBytes: UInt64?
    public var admitted: Bool
    public var healthySamples: Int
    /// What held this member back this round (cannot serve reads, or no lag to measure); nil when
    /// nothing did.
    public var note: String?

    init(_ member: MemberObservation, isPrimary: Bool, lagBytes: UInt64?, admission: ReplicaAdmission, note: String?) {
        name = member.name
        self.isPrimary = isPrimary
        patroniRole = member.patroni?.role
        patroniState = member.patroni?.state
        timeline = member.sql?.timeline ?? member.patroni?.timeline
        self.lagBytes = lagBytes
        admitted = admission.admitted
        healthySamples = admission.healthySamples
        self.note = note
    }
}
