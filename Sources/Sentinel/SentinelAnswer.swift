/// What one Sentinel said about the monitored master when asked (`SENTINEL get-master-addr-by-name`,
/// `SENTINEL master`, `SENTINEL replicas`), or that it could not be asked.
public struct SentinelAnswer: Sendable, Hashable {
    public enum Outcome: Sendable, Hashable {
        case master(RedisEndpoint, configEpoch: UInt64, replicas: [RedisEndpoint])
        /// It answered, but does not monitor the name (a nil address) or answered nonsense.
        case unknownMaster(String)
        case unreachable(String)
    }

    public var sentinel: RedisEndpoint
    public var outcome: Outcome

    public init(sentinel: RedisEndpoint, outcome: Outcome) {
        self.sentinel = sentinel
        self.outcome = outcome
    }

    /// Reads the three replies of one Sentinel. `replicas` leaves out those the Sentinel flags as
    /// down or disconnected (`s_down`, `o_down`, `disconnected`), which it still lists.
    public static func parse(
        sentinel: RedisEndpoint, address: RedisReply, master: RedisReply, replicas: RedisReply
    ) -> SentinelAnswer {
        func unknown(_ why: String) -> SentinelAnswer {
            SentinelAnswer(sentinel: sentinel, outcome: .unknownMaster(why))
        }
        if case .error(let message) = address { return unknown(message) }
        guard let pair = address.elements else { return unknown("no master address (the name is not monitored)") }
        guard pair.count == 2, let host = pair[0].text, let port = pair[1].integer.map(Int.init),
            (1...65_535).contains(port), !host.isEmpty
        else { return unknown("a malformed master address \(address)") }
        guard let fields = master.fields, let epoch = fields["config-epoch"].flatMap({ UInt64($0) }) else {
            return unknown("SENTINEL master did not give a config-epoch")
        }
        var healthy: [RedisEndpoint] = []
        for replica in replicas.elements ?? [] {
            guard let fields = replica.fields, let ip = fields["ip"], let port = fields["port"].flatMap({ Int($0) })
            else { continue }
            let flags = Set((fields["flags"] ?? "").split(separator: ",").map(String.init))
            if flags.isDisjoint(with: ["s_down", "o_down", "disconnected"]) {
                healthy.append(RedisEndpoint(host: ip, port: port))
            }
        }
        return SentinelAnswer(
            sentinel: sentinel,
            outcome: .master(RedisEndpoint(host: host, port: port), configEpoch: epoch, replicas: healthy.sorted()))
    }
}
