/// Which member takes writes, decided from one round of observations. Pure: the same
/// observations and previous primary always give the same answer.
///
/// The rule, in order:
/// 1. **Writable.** A member is writable if its SQL probe answered and says it is not in
///    recovery. Only when the probe did not answer does Patroni's word stand in for it: role
///    primary (`master` in 3.0.2) and state `running` — Patroni says `running` only after its own
///    query of PostgreSQL succeeded. A probe that answered "in recovery" outranks Patroni (a
///    lock holder mid-promotion is still read-only).
/// 2. **Newest timeline.** Every promotion starts a new timeline, so the highest timeline any
///    source reports — a replica's too — marks the current history. A writable member on an
///    older timeline is a deposed primary that has not noticed yet, and never chosen.
/// 3. **Leader lock.** Among the writable members on that timeline, the primary is the one a
///    strict majority of the answering `/cluster` views name as holding Patroni's leader lock.
///    Views that disagree (the DCS read mid-change) or name nobody (the lock expired, the
///    cluster is between primaries) give no primary: writes pause for a round rather than risk
///    the wrong member.
/// 4. **API down.** When no `/cluster` view answered at all — Patroni's REST API dead or cut off
///    everywhere — there is no lock evidence either way; the previous primary is kept if it is
///    the only writable member on the newest timeline *and* the SQL probes of a strict majority
///    of the members answered. A promotion elsewhere starts a new timeline, which a majority of
///    probes cannot all miss (the new primary or a replica streaming from it reports it); a
///    watcher that sees only the old primary cannot tell, so it keeps nothing. A dead API
///    therefore does not cut writes to a healthy primary, while any fresh evidence against it (a
///    newer timeline, a second writable member, a probe that fails or says in recovery) still
///    removes it. A member that was not already primary is never made primary without lock
///    evidence.
public enum PrimaryRule {
    public struct Verdict: Sendable, Equatable {
        public var primary: PostgresTopology.Primary?
        /// Why there is no primary, or how this one was chosen — for the `/pg` view and logs.
        public var reason: String
    }

    public static func decide(_ observations: [MemberObservation], previous: String?) -> Verdict {
        let newest = observations.flatMap { [$0.sql?.timeline, $0.patroni?.timeline] }.compactMap { $0 }.max()
        let writable = observations.compactMap { member -> (name: String, timeline: Int?)? in
            if let sql = member.sql { return sql.inRecovery ? nil : (member.name, sql.timeline) }
            if let patroni = member.patroni, patroni.role == .primary, patroni.state == "running" {
                return (member.name, patroni.timeline)
            }
            return nil
        }
        guard !writable.isEmpty, let newest else { return Verdict(primary: nil, reason: "no member accepts writes") }
        let current = writable.filter { $0.timeline == newest }
        guard !current.isEmpty else {
            let names = writable.map(\.name).joined(separator: ", ")
            return Verdict(primary: nil, reason: "writable \(names) behind the newest timeline \(newest)")
        }

        let views = observations.compactMap(\.cluster)
        if views.isEmpty {
            guard current.count == 1, let only = current.first, only.name == previous else {
                return Verdict(primary: nil, reason: "no /cluster answered and no previous primary to keep")
            }
            let probed = observations.filter { $0.sql != nil }.count
            guard probed * 2 > observations.count else {
                return Verdict(
                    primary: nil,
                    reason:
                        "no /cluster answered and only \(probed) of \(observations.count) probes did: a promotion elsewhere could go unseen"
                )
            }
            return Verdict(
                primary: .init(name: only.name, timeline: newest),
                reason: "kept: no /cluster answered, still the only writable member on timeline \(newest)")
        }
        for candidate in current {
            let named = views.filter { $0.leader == candidate.name }.count
            if named * 2 > views.count {
                return Verdict(
                    primary: .init(name: candidate.name, timeline: newest),
                    reason: "holds the leader lock in \(named) of \(views.count) views, timeline \(newest)")
            }
        }
        let holders = Set(views.map { $0.leader ?? "nobody" }).sorted().joined(separator: ", ")
        return Verdict(
            primary: nil,
            reason:
                "no writable member on timeline \(newest) holds the lock in a majority of views (they name \(holders))")
    }
}
