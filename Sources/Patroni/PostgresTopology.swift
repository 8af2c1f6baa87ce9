/// The decided topology: the value the leader commits to `/_sys/topology/postgres` so that every
/// gateway switches primary at the same revision. The epoch counts decided changes; it moves only
/// when the primary, its timeline or the set of admitted replicas does.
public struct PostgresTopology: Sendable, Equatable, Codable {
    public var epoch: UInt64
    public var primary: Primary?
    /// Replicas admitted for reads, by member name, sorted.
    public var replicas: [String]

    public struct Primary: Sendable, Hashable, Codable {
        public var name: String
        /// Part of the topology: the same member promoted again (a new timeline) has dropped every
        /// connection, so pools drain just as on a change of member.
        public var timeline: Int

        public init(name: String, timeline: Int) {
            self.name = name
            self.timeline = timeline
        }
    }

    public init(epoch: UInt64 = 0, primary: Primary? = nil, replicas: [String] = []) {
        self.epoch = epoch
        self.primary = primary
        self.replicas = replicas.sorted()
    }

    /// Same primary and replicas, whatever the epochs.
    public func routesLike(_ other: PostgresTopology) -> Bool {
        primary == other.primary && replicas == other.replicas
    }
}
