import Foundation
import TestSupport
import Testing

/// Leases, watch and project config on real `raftgate` processes behind real HAProxy, started
/// from the example's node configs (admin token included).
@Suite("leases, watch and config behind HAProxy", .serialized)
struct StorePrimitiveProcessTests {
    /// The example's token, as its node configs carry it.
    static var adminToken: String {
        get throws {
            let path = ProcessCluster.packageRoot.appendingPathComponent("examples/three-nodes/node1.json")
            let object = try JSONSerialization.jsonObject(with: Data(contentsOf: path)) as? [String: Any]
            return try #require(object?["adminToken"] as? String, "the example's node configs carry an admin token")
        }
    }

    static func cluster(_ extraArguments: [String] = []) async throws -> ProcessCluster {
        try #require(FileManager.default.isExecutableFile(atPath: ProcessCluster.executable), "build raftgate first")
        try #require(ProcessCluster.haproxyPath != nil, "haproxy is installed by `make deps`")
        let cluster = ProcessCluster()
        cluster.configFile = { id in
            ProcessCluster.packageRoot.appendingPathComponent("examples/three-nodes/node\(id).json").path
        }
        cluster.extraArguments = extraArguments
        for id in 1...3 { try cluster.start(id) }
        try cluster.startHAProxy()
        guard await cluster.write(port: cluster.frontend, key: "first", value: "1"),
            await cluster.settledLeader() != nil
        else {
            cluster.stopAll()
            throw HAProxyClusterTests.ClusterNotServing()
        }
        return cluster
    }

    static func json(_ body: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]) ?? [:]
    }

    static func number(_ body: String, _ field: String) -> UInt64? {
        (json(body)[field] as? NSNumber)?.uint64Value
    }

    @Test func aConfigChangeReachesEveryNodeAndBadWritesChangeNothing() async throws {
        let cluster = try await Self.cluster()
        defer { cluster.stopAll() }
        let proxy = "http://127.0.0.1:\(cluster.frontend)"
        let token = try Self.adminToken
        let document = #"{"rateLimit":{"perSecond":100,"burst":200},"routes":{"api":"api"}}"#
        let refused: [([String: String], String, Int)] = [
            ([:], document, 401),
            (["Authorization": "Bearer wrong-token-for-this-cluster"], document, 403),
            (["Authorization": "Bearer \(token)"], #"{"rateLimit":{"perSecond":100,"burst":200,"window":1}}"#, 400),
            (["Authorization": "Bearer \(token)"], "{", 400),
        ]
        for (headers, body, status) in refused {
            let answer = await HTTP.request("PUT", proxy + "/config/acme", body: Data(body.utf8), headers: headers)
            #expect(answer.status == status, "\(headers.keys) \(body): \(answer)")
            #expect(answer.body.contains("\"error\""))
        }
        #expect(
            await HTTP.request(
                "PUT", proxy + "/config/acme", body: Data(#"{"rateLimit":{"perSec":1,"burst":1}}"#.utf8),
                headers: ["Authorization": "Bearer \(token)"]
            ).body.contains("rateLimit.perSec"), "the unknown field is named")

        let written = await HTTP.request(
            "PUT", proxy + "/config/acme", body: Data(document.utf8), headers: ["Authorization": "Bearer \(token)"])
        #expect(written.status == 200, "\(written)")
        let revision = try #require(Self.number(written.body, "revision"))
        for id in 1...3 {
            #expect(
                await eventually {
                    let read = await HTTP.request(
                        "GET", "http://127.0.0.1:\(cluster.http(id))/config/acme",
                        headers: ["Authorization": "Bearer \(token)"])
                    return read.status == 200 && Self.number(read.body, "revision") == revision
                }, "n\(id) enforces the new config")
            let listed = await HTTP.request(
                "GET", "http://127.0.0.1:\(cluster.http(id))/config", headers: ["Authorization": "Bearer \(token)"])
            #expect(
                await HTTP.request("GET", "http://127.0.0.1:\(cluster.http(id))/config").status == 401,
                "config reads need the admin token")
            let projects = Self.json(listed.body)["projects"] as? [[String: Any]]
            #expect(projects?.map { $0["project"] as? String } == ["acme"], "only the valid write landed on n\(id)")
            let view = await HTTP.request("GET", "http://127.0.0.1:\(cluster.http(id))/cluster")
            #expect(Self.number(view.body, "configRevision") == revision)
        }
    }

    @Test func followersWatchWritesThroughTheLeaderAndResumeAfterARestart() async throws {
        let cluster = try await Self.cluster(["--watch-history", "40"])
        defer { cluster.stopAll() }
        let leader = try #require(await cluster.leader())
        let followers = (1...3).filter { $0 != leader }
        var watches: [Int: EventStreamClient] = [:]
        for id in followers {
            let watch = try #require(await EventStreamClient.open(port: cluster.http(id), path: "/watch?prefix=w/"))
            #expect(watch.status == 200)
            #expect(await watch.next()?.name == "progress", "n\(id) is watching")
            watches[id] = watch
        }
        let keys = (0..<5).map { "w/\($0)" }
        for key in keys { #expect(await cluster.write(port: cluster.frontend, key: key, value: key)) }
        var lastSeen: [Int: UInt64] = [:]
        for (id, watch) in watches {
            let events = await watch.events(within: 15) { $0.key == keys.last }
            #expect(events.filter { $0.name == "put" }.map(\.key) == keys, "n\(id) saw every write once, in order")
            let revisions = events.compactMap(\.revision)
            #expect(revisions == revisions.sorted() && Set(revisions).count == revisions.count)
            lastSeen[id] = revisions.last
        }

        // One follower dies mid-watch and misses writes; its watcher resumes from the last id.
        let victim = followers[0]
        let last = try #require(lastSeen[victim])
        cluster.kill(victim)
        #expect(await watches[victim]?.events(within: 10) { _ in false }.contains { $0.name == "put" } == false)
        watches[victim]?.close()
        let later = (5..<10).map { "w/\($0)" }
        for key in later { #expect(await cluster.write(port: cluster.frontend, key: key, value: key)) }
        try cluster.start(victim)
        let resumed = try #require(
            await poll(within: 20) {
                await EventStreamClient.open(port: cluster.http(victim), path: "/watch?prefix=w/&since=\(last)")
            })
        #expect(resumed.status == 200)
        let events = await resumed.events(within: 20) { $0.key == later.last }
        #expect(events.filter { $0.name == "put" }.map(\.key) == later, "nothing lost, nothing repeated")
        let bookmark = await resumed.events(within: 10) { $0.name == "progress" }.last
        #expect((bookmark?.revision ?? 0) >= (events.compactMap(\.revision).last ?? .max))
        resumed.close()
        for (_, watch) in watches { watch.close() }

        // Past the 40 changes each node keeps, an old revision is gone: 410 and where to start.
        for index in 0..<45 { #expect(await cluster.write(port: cluster.frontend, key: "fill/\(index)", value: "x")) }
        for id in 1...3 {
            let gone = await HTTP.request("GET", "http://127.0.0.1:\(cluster.http(id))/watch?since=\(last)")
            #expect(gone.status == 410, "n\(id): \(gone)")
            #expect((Self.number(gone.body, "compact_revision") ?? 0) > last)
            #expect(gone.body.contains("\"compacted\""))
        }
        let notANumber = await HTTP.request("GET", "http://127.0.0.1:\(cluster.frontend)/watch?since=yesterday")
        #expect(notANumber.status == 400)
    }

    @Test func aLeasedKeySurvivesALeaderKillWhileKeptAliveAndGoesAfterTheTTL() async throws {
        let cluster = try await Self.cluster()
        defer { cluster.stopAll() }
        let proxy = "http://127.0.0.1:\(cluster.frontend)"
        let ttl = 3000
        let granted = await poll { () -> String? in
            let answer = await HTTP.request("POST", proxy + "/lease", body: #"{"ttl_ms":\#(ttl)}"#)
            return answer.status == 200 ? answer.body : nil
        }
        let id = try #require(granted.flatMap { Self.number($0, "id") })
        #expect(
            await eventually { await HTTP.request("PUT", proxy + "/kv/held?lease=\(id)", body: "here").status == 200 })

        // Keepalives every 300 ms, through the proxy (to the leader) and straight to followers
        // (forwarded), for the whole test; the time of the last acknowledged one is kept.
        let lastAcknowledged = LatestInstant()
        let nodes = (1...3).map { "http://127.0.0.1:\(cluster.http($0))" }
        let keepingAlive = Task {
            var round = 0
            while !Task.isCancelled {
                let base = round % 2 == 0 ? proxy : nodes[round % 3]
                let sent = ContinuousClock.now
                if await HTTP.request("POST", base + "/lease/\(id)/keepalive", body: "").status == 200 {
                    await lastAcknowledged.advance(to: sent)
                }
                round += 1
                try? await Task.sleep(for: .milliseconds(300))
            }
        }
        let leader = try #require(await cluster.leader())
        cluster.kill(leader)
        let successor = try #require(await cluster.leader(excluding: leader), "a new leader")
        // Two TTLs after the new leader took over, the key is still there on every live node.
        let heldUntil = ContinuousClock.now + .milliseconds(2 * ttl)
        while ContinuousClock.now < heldUntil {
            for id in (1...3) where id != leader {
                let read = await HTTP.request("GET", "http://127.0.0.1:\(cluster.http(id))/kv/held?consistency=stale")
                #expect(read.status == 200, "n\(id) lost the key while it was kept alive: \(read)")
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        keepingAlive.cancel()
        await keepingAlive.value
        let deadline = await lastAcknowledged.value + .milliseconds(ttl)
        // Never early: a read that completed before the last keepalive's TTL ran out must see it.
        var sawItGone = false
        while !sawItGone, ContinuousClock.now < deadline + .seconds(15) {
            let read = await HTTP.request("GET", "http://127.0.0.1:\(cluster.http(successor))/kv/held")
            let completed = ContinuousClock.now
            if read.status == 404 {
                sawItGone = true
                #expect(completed >= deadline, "the key went \(deadline - completed) before its TTL ran out")
            } else {
                #expect(read.status == 200)
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(sawItGone, "the key goes once keepalives stop")
        let status = await HTTP.request("GET", proxy + "/lease/\(id)")
        #expect(status.status == 404 && status.body.contains("lease_not_found"))
        let unknown = await HTTP.request("POST", proxy + "/lease/\(id)/keepalive", body: "")
        #expect(unknown.status == 404)
        let badTTL = await HTTP.request("POST", proxy + "/lease", body: #"{"ttl_ms":10}"#)
        #expect(badTTL.status == 400)
    }
}

/// The latest of the instants it was given.
actor LatestInstant {
    private(set) var value = ContinuousClock.now

    func advance(to instant: ContinuousClock.Instant) { value = max(value, instant) }
}
