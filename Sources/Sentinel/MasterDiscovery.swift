/// The discovery decision of the Sentinel client guidelines, pure: given every configured
/// Sentinel's answer, which master to use.
///
/// 1. The address a strict majority of the *configured* Sentinels report wins (a Sentinel that
///    lies, or lags behind a failover, is outvoted; one that is down counts against every address,
///    so two of three must agree).
/// 2. Without a majority for one address (Sentinels split mid-failover), the address reported at
///    the highest config epoch wins, if every Sentinel at that epoch reports the same one — but
///    only when a majority of the configured Sentinels *answered*: a config epoch only grows
///    through a failover a majority authorised, yet a lone answer may come from the minority side
///    of a partition (still naming the old master) or from a liar, and must not decide alone.
/// 3. Otherwise nothing is decided and the caller asks again later.
///
/// The master found is still only a candidate until `ROLE` on it says `master` (`RoleCheck`).
public enum MasterDiscovery {
    public struct Resolution: Sendable, Hashable {
        public var master: RedisEndpoint
        /// The highest config epoch among the Sentinels that reported `master`.
        public var epoch: UInt64
        /// The Sentinels that reported `master`, sorted.
        public var agreeing: [RedisEndpoint]
        /// The replicas those Sentinels list (their union, without the master).
        public var replicas: [RedisEndpoint]
        public var basis: Basis
    }

    public enum Basis: String, Sendable, Hashable, Codable {
        case majority
        case highestEpoch
    }

    public enum Decision: Sendable, Hashable {
        case resolved(Resolution)
        case undecided(String)
    }

    public static func decide(_ answers: [SentinelAnswer], configured: Int) -> Decision {
        var reports: [RedisEndpoint: [(sentinel: RedisEndpoint, epoch: UInt64, replicas: [RedisEndpoint])]] = [:]
        var unanswered: [String] = []
        for answer in answers {
            switch answer.outcome {
            case .master(let master, let epoch, let replicas):
                reports[master, default: []].append((answer.sentinel, epoch, replicas))
            case .unknownMaster(let why), .unreachable(let why):
                unanswered.append("\(answer.sentinel): \(why)")
            }
        }
        let needed = max(configured, answers.count) / 2 + 1
        if let winner = reports.first(where: { $0.value.count >= needed }) {
            return .resolved(resolution(winner.key, winner.value, .majority))
        }
        let answered = reports.values.map(\.count).reduce(0, +)
        let topEpoch = reports.values.flatMap { $0.map(\.epoch) }.max()
        if let topEpoch, answered >= needed {
            let atTop = reports.filter { $0.value.contains { $0.epoch == topEpoch } }
            if atTop.count == 1, let winner = atTop.first {
                return .resolved(resolution(winner.key, winner.value, .highestEpoch))
            }
        }
        let counted = reports.map { "\($0.key) by \($0.value.count)" }.sorted().joined(separator: ", ")
        return .undecided(
            "no master reported by \(needed) of \(configured) Sentinels, nor a single one at the highest epoch "
                + "among \(answered) answering (\(needed) must answer)"
                + (counted.isEmpty ? "" : " (\(counted))")
                + (unanswered.isEmpty ? "" : "; " + unanswered.sorted().joined(separator: "; ")))
    }

    private static func resolution(
        _ master: RedisEndpoint, _ group: [(sentinel: RedisEndpoint, epoch: UInt64, replicas: [RedisEndpoint])],
        _ basis: Basis
    ) -> Resolution {
        let replicas = Set(group.flatMap(\.replicas)).subtracting([master])
        return Resolution(
            master: master, epoch: group.map(\.epoch).max() ?? 0, agreeing: group.map(\.sentinel).sorted(),
            replicas: replicas.sorted(), basis: basis)
    }
}
