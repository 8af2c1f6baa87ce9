import Foundation
import TestSupport
import Testing

/// Three raftgate gateways watching a real three-member Patroni cluster (etcd DCS, synchronous
/// mode, the example's settings): they agree on the primary and the admitted replicas, follow a
/// `patronictl switchover` and a SIGKILL'd primary, stop routing writes when cut off from their
/// quorum, and keep writes while one member's Patroni API is down or answers garbage. One Patroni
/// cluster serves the whole run (bootstrapping one takes tens of seconds), so it is one test.
@Suite("HA: gateways watching a real Patroni cluster", .serialized, .enabled(if: PatroniCluster.available))
struct HAPatroniTopologyTests {
    struct PGView: Decodable, Equatable {
        var epoch: UInt64
        var primary: String?
        var timeline: Int?
        var replicas: [String]
        var writable: Bool
        var writableReason: String
        var observedHere: Bool
        var members: [Member]

        struct Member: Decodable, Equatable {
            var name: String
            var role: String
            var failures: [String]?
        }

        /// What routing depends on, without the per-node fields.
        var routing: String { "epoch \(epoch) primary \(primary ?? "-")@\(timeline ?? 0) replicas \(replicas)" }
    }

    static func view(_ cluster: ProcessCluster, _ id: Int) async -> PGView? {
        let answer = await HTTP.request("GET", "http://127.0.0.1:\(cluster.http(id))/pg")
        guard answer.status == 200 else { return nil }
        return try? JSONDecoder().decode(PGView.self, from: Data(answer.body.utf8))
    }

    /// Every gateway's view, once they all show the same committed topology.
    static func agreed(_ cluster: ProcessCluster, _ ids: [Int] = [1, 2, 3]) async -> [PGView]? {
        var views: [PGView] = []
        for id in ids {
            guard let view = await view(cluster, id) else { return nil }
            views.append(view)
        }
        return Set(views.map(\.routing)).count == 1 ? views : nil
    }

    /// The watch rounds the leader has finished, from its /metrics.
    static func rounds(_ cluster: ProcessCluster, leader: Int) async -> Int? {
        let metrics = await HTTP.request("GET", "http://127.0.0.1:\(cluster.http(leader))/metrics").body
        for line in metrics.split(separator: "\n") where line.hasPrefix("raftgate_pg_watch_rounds_total ") {
            return Int(Double(line.split(separator: " ")[1]) ?? -1)
        }
        return nil
    }

    @Test func gatewaysFollowPatroni() async throws {
        let pg = try PatroniCluster()
        let gateways = ProcessCluster()
        var gates: [Int: PatroniAPIGate] = [:]
        defer {
            gateways.stopAll()
            for gate in gates.values { gate.stop() }
            pg.stopAll()
        }
        try pg.startEtcd()
        #expect(
            await eventually(within: 30) {
                await HTTP.request("GET", "http://127.0.0.1:\(pg.etcdClient)/health").body.contains("true")
            }, "etcd is healthy")
        // pg1 bootstraps alone, so it is the first primary; the others clone it.
        try pg.startMember(1)
        try #require(await eventually(within: 120) { await pg.primary() == 1 }, "pg1 bootstraps: \(pg.log("patroni1"))")
        try pg.startMember(2)
        try pg.startMember(3)
        try #require(
            await eventually(within: 180) {
                let second = await pg.isRunningReplica(2)
                let third = await pg.isRunningReplica(3)
                return second && third
            },
            "pg2 and pg3 stream from pg1: \(pg.log("patroni2"))")

        for id in PatroniCluster.members {
            gates[id] = try PatroniAPIGate(port: pg.base + 30 + id, upstream: pg.apiPort(id))
        }
        let members = PatroniCluster.members.map { id in
            "pg\(id)=127.0.0.1:\(pg.pgPort(id))@http://127.0.0.1:\(pg.base + 30 + id)"
        }
        // The password through the environment, not a flag: flags show in every user's `ps`.
        gateways.environment["RAFTGATE_PG_PASSWORD"] = PatroniCluster.password
        gateways.extraArguments += [
            "--pg-members", members.joined(separator: ","),
            "--pg-poll-ms", "200", "--pg-request-timeout-ms", "500",
        ]
        for id in 1...3 { try gateways.start(id) }
        let settled = await gateways.settledLeader(within: 60)
        try #require(
            settled != nil, "the gateways elect a leader; gateway 1 says: \(gateways.log(1).suffix(2000))")

        // 1. They agree: pg1 primary, both replicas admitted, writes routed everywhere.
        let agreedOnPG1 = await poll(within: 60) { () async -> [PGView]? in
            guard let views = await Self.agreed(gateways),
                views[0].primary == "pg1", views[0].replicas == ["pg2", "pg3"], views.allSatisfy(\.writable)
            else { return nil }
            return views
        }
        let seen = await Self.view(gateways, 1)?.routing ?? "-"
        let first = try #require(
            agreedOnPG1, "every gateway routes to pg1 with pg2 and pg3 admitted; gateway 1: \(seen)")
        #expect(first.filter(\.observedHere).count == 1, "exactly one gateway, the leader, observes")
        #expect(first[0].members.map(\.role) == ["primary", "replica", "replica"])
        let endpoints = (1...3).map { "127.0.0.1:\(gateways.http($0))" }.joined(separator: ",")
        let status = await offThePool { try? ProcessClusterTests.run(["status", "--endpoints", endpoints]) }
        let line = "POSTGRES primary pg1 (timeline \(first[0].timeline ?? 0))  replicas pg2,pg3"
        #expect(status?.output.contains(line) == true, "raftgate status shows the primary: \(status?.output ?? "")")

        // 2. Bad input: a malformed Patroni answer from a replica's API, a replica's API that
        // sends its headers and then trickles the body forever (rounds must still end: a hung
        // member stalls nothing), then the primary's API down. None changes the topology (same
        // epoch) or cuts writes, for five rounds each.
        let leader = try #require(first.firstIndex(where: \.observedHere).map { $0 + 1 })
        let faults: [(member: Int, mode: PatroniAPIGate.Mode)] = [(2, .garbage), (3, .trickle), (1, .down)]
        for (member, mode) in faults {
            gates[member]!.mode = mode
            let start = try #require(await Self.rounds(gateways, leader: leader))
            #expect(
                await eventually(within: 30) {
                    guard let view = await Self.view(gateways, leader) else { return false }
                    return view.members[member - 1].failures?.contains { $0.hasPrefix("/patroni") } == true
                }, "the leader sees pg\(member)'s API fail (\(mode))")
            #expect(await eventually(within: 30) { (await Self.rounds(gateways, leader: leader) ?? 0) >= start + 5 })
            let views = await Self.agreed(gateways)
            #expect(views?.first?.routing == first[0].routing, "pg\(member)'s API \(mode): nothing moved")
            #expect(views?.allSatisfy(\.writable) == true, "writes still routed with pg\(member)'s API \(mode)")
            gates[member]!.mode = .forward
        }

        // 3. patronictl switchover to the synchronous standby (in synchronous mode only it may
        // take over): the gateways follow.
        let standby = await poll(within: 60) { () async -> Int? in
            for id in [2, 3] where await pg.isSyncStandby(id) { return id }
            return nil
        }
        let candidate = try #require(standby, "pg2 or pg3 is the synchronous standby")
        let switched = await pg.patronictl([
            "switchover", "--leader", "pg1", "--candidate", "pg\(candidate)", "--force",
        ])
        #expect(switched.status == 0, "patronictl switchover: \(switched.output)")
        let switchedViews = await poll(within: 90) { () async -> [PGView]? in
            guard let views = await Self.agreed(gateways), views[0].primary == "pg\(candidate)",
                views.allSatisfy(\.writable)
            else { return nil }
            return views
        }
        let afterSwitchSeen = await Self.view(gateways, 1)?.routing ?? "-"
        let afterSwitch = try #require(
            switchedViews,
            "every gateway routes to pg\(candidate) after the switchover; gateway 1: \(afterSwitchSeen); patronictl: \(switched.output)"
        )
        #expect(afterSwitch[0].epoch > first[0].epoch && afterSwitch[0].timeline! > first[0].timeline!)

        // 4. SIGKILL the primary's PostgreSQL and Patroni once a synchronous standby exists (only
        // it may be promoted): a new primary is committed and every gateway routes to it.
        let others = PatroniCluster.members.filter { $0 != candidate }
        #expect(
            await eventually(within: 90) {
                for id in others where await pg.isSyncStandby(id) { return true }
                return false
            }, "a synchronous standby to fail over to")
        pg.killMember(candidate)
        let killedViews = await poll(within: 120) { () async -> [PGView]? in
            guard let views = await Self.agreed(gateways), let primary = views[0].primary, primary != "pg\(candidate)",
                views.allSatisfy(\.writable), await pg.primary().map({ "pg\($0)" }) == primary
            else { return nil }
            return views
        }
        let afterKillSeen = await Self.view(gateways, 1)?.routing ?? "-"
        let afterKill = try #require(
            killedViews, "every gateway routes to Patroni's new primary after the SIGKILL; gateway 1: \(afterKillSeen)")
        #expect(afterKill[0].timeline! > afterSwitch[0].timeline!)
        #expect(!afterKill[0].replicas.contains("pg\(candidate)"), "the dead member is no replica")

        // 5. A gateway cut off from its quorum (the other two stopped) stops routing writes within
        // a few seconds — its vouch lasts 1 s from its last confirmed read, well under Patroni's
        // 10 s ttl — and routes again once they are back. Once for the gateway leader (its lease
        // lapses), once for a follower (its reads go unconfirmed), each chosen explicitly.
        for role in ["leader", "follower"] {
            // Who leads now (the previous round may have moved leadership).
            let leader = try #require(await gateways.settledLeader(within: 30), "a gateway leads")
            let isolated = role == "leader" ? leader : [1, 2, 3].first { $0 != leader }!
            let others = [1, 2, 3].filter { $0 != isolated }
            for other in others { gateways.signal(other, SIGSTOP) }
            let cutOff = await poll(within: 5) {
                guard let view = await Self.view(gateways, isolated), !view.writable else { return nil as PGView? }
                return view
            }
            for other in others { gateways.signal(other, SIGCONT) }
            #expect(cutOff != nil, "gateway \(isolated), the \(role), refuses writes within 5 s of losing its quorum")
            #expect(
                cutOff?.primary == afterKill[0].primary, "it still knows the primary, it just cannot vouch for it")
            #expect(
                await eventually(within: 30) { await Self.agreed(gateways)?.allSatisfy(\.writable) == true },
                "writes routed again once the quorum is back (\(role) cut off)")
        }
    }
}
