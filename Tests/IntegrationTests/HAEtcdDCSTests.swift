import Foundation
import TestSupport
import Testing

/// Real Patroni 3.0.2 on the raftgate gateways as its DCS (`etcd3: hosts:` the three gateways):
/// it bootstraps a three-member PostgreSQL cluster; SIGKILL of the raftgate leader while Patroni
/// holds its leader key leaves Patroni's lock in place (its lease survives the Raft leader change)
/// and never shows two primaries; SIGKILL of the PostgreSQL primary makes Patroni fail over.
@Suite("HA: Patroni with raftgate as its etcd3 DCS", .serialized)
struct HAEtcdDCSTests {
    @Test func patroniFailsOverAndKeepsItsLockAcrossRaftLeaderChanges() async throws {
        guard PatroniMembers.available else {
            Issue.record("Patroni or PostgreSQL 15 is missing: make test-ha installs them")
            return
        }
        let cluster = ProcessCluster()
        cluster.extraArguments += PatroniMembers.gatewayArguments
        let members = PatroniMembers(
            root: cluster.root, dcsHosts: (1...3).map { "127.0.0.1:\(cluster.http($0))" }, scope: "dcs",
            restPort: { cluster.base + 70 + $0 }, postgresPort: { cluster.base + 80 + $0 })
        defer {
            members.stopAll()
            cluster.stopAll()
        }
        for id in 1...3 { try cluster.start(id) }
        _ = try #require(await cluster.settledLeader())
        for id in 1...3 { try members.start(id) }

        // Bootstrap: one primary, two streaming replicas.
        let bootstrapped = await poll(within: 150) { () -> Int? in
            let primaries = await members.primaries(among: [1, 2, 3])
            guard primaries.count == 1 else { return nil }
            for id in 1...3 where id != primaries[0] {
                guard await members.status(id, "/replica") == 200 else { return nil }
            }
            return primaries[0]
        }
        let primary = try #require(bootstrapped, "no primary with two replicas; \(members.log(1).suffix(2000))")
        let held = try #require(await leaderKey(cluster))
        #expect(held.value == "pg\(primary)")

        // Whoever reaches the API port without Patroni's credentials can neither take the lock
        // through the etcd API nor see or write Patroni's keys through /kv.
        let gateway = "http://127.0.0.1:\(cluster.http(1))"
        let takeover = #"{"key":"\#(Data("/service/dcs/leader".utf8).base64EncodedString())","value":"ZXZpbA=="}"#
        let anonymous = await Curl.run(["-X", "POST", gateway + "/v3/kv/put", "--data-binary", takeover])
        #expect(anonymous.status == 400 && anonymous.body.contains("user name is empty"), "\(anonymous)")
        let forged = await Curl.run([
            "-H", "Authorization: raftgate.forged", "-X", "POST", gateway + "/v3/kv/put", "--data-binary", takeover,
        ])
        #expect(forged.status == 401, "\(forged)")
        let listed = await Curl.run([gateway + "/kv?prefix=/service/"])
        #expect(listed.status == 200 && !listed.body.contains("leader"), "\(listed)")
        let overwrite = await Curl.run([
            "-X", "POST", "-H", "Content-Type: application/json", gateway + "/kv", "--data-binary",
            #"{"key":"/_sys/etcd/service/dcs/leader","value":"evil"}"#,
        ])
        #expect(overwrite.status == 403, "\(overwrite)")
        #expect(await leaderKey(cluster)?.value == "pg\(primary)")

        // SIGKILL the raftgate leader while Patroni holds its leader key: over two TTLs, the same
        // primary holds the same key (same create revision, so never lost and retaken), and no
        // other member ever says it is primary.
        let raftLeader = try #require(await cluster.leader())
        cluster.kill(raftLeader)
        let survivors = (1...3).filter { $0 != raftLeader }
        let watchUntil = ContinuousClock.now + .seconds(22)
        var sawOnlyOnePrimary = true
        while ContinuousClock.now < watchUntil {
            let primaries = await members.primaries(among: [1, 2, 3])
            if primaries.contains(where: { $0 != primary }) { sawOnlyOnePrimary = false }
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(sawOnlyOnePrimary, "a second primary appeared after the raftgate leader was killed")
        #expect(await members.primaries(among: [1, 2, 3]) == [primary])
        let keyAfter = try #require(await leaderKey(cluster, through: survivors))
        #expect(keyAfter.value == "pg\(primary)")
        #expect(keyAfter.createRevision == held.createRevision, "the leader key was lost and taken again")
        #expect(keyAfter.lease == held.lease, "Patroni's lease did not survive the Raft leader change")
        try cluster.start(raftLeader)

        // SIGKILL the PostgreSQL primary (Patroni and postmaster): another member takes over.
        members.crash(primary)
        let others = (1...3).filter { $0 != primary }
        let promoted = await poll(within: 60) { () -> Int? in
            let primaries = await members.primaries(among: others)
            return primaries.count == 1 ? primaries[0] : nil
        }
        let newPrimary = try #require(promoted, "no failover within 60 s")
        let failedOver = await poll(within: 20) { () -> LeaderKey? in
            guard let key = await leaderKey(cluster), key.value == "pg\(newPrimary)" else { return nil }
            return key
        }
        #expect(failedOver != nil, "the leader key does not name the new primary")
    }

    struct LeaderKey {
        var value: String
        var createRevision: String
        var lease: String
    }

    /// The leader key Patroni keeps in the DCS, read through the etcd API of any gateway, with
    /// the token it hands out for Patroni's credentials.
    func leaderKey(_ cluster: ProcessCluster, through ids: [Int] = [1, 2, 3]) async -> LeaderKey? {
        let key = Data("/service/dcs/leader".utf8).base64EncodedString()
        return await poll(within: 20) { () -> LeaderKey? in
            for id in ids {
                let base = "http://127.0.0.1:\(cluster.http(id))"
                guard
                    let token = await EtcdReference.token(
                        at: base, name: PatroniMembers.etcdUser, password: PatroniMembers.etcdPassword)
                else { continue }
                let answer = await Curl.run([
                    "-H", "Authorization: \(token)", "-X", "POST", base + "/v3/kv/range", "--data-binary",
                    #"{"key":"\#(key)"}"#,
                ])
                guard let object = try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any],
                    let kv = (object["kvs"] as? [[String: Any]])?.first, let value = kv["value"] as? String,
                    let decoded = Data(base64Encoded: value)
                else { continue }
                return LeaderKey(
                    value: String(decoding: decoded, as: UTF8.self),
                    createRevision: kv["create_revision"] as? String ?? "",
                    lease: kv["lease"] as? String ?? "")
            }
            return nil
        }
    }
}
