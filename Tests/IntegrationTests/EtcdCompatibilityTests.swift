import Foundation
import TestSupport
import Testing

/// The etcd API against Debian's etcd 3.4: the same requests to both, the answers compared field
/// by field (each server's ids, terms and lease ids blanked, revisions relative to where each
/// started), HTTP statuses too. Writes go through a follower, so forwarding is in every answer.
/// Both run with authentication on (user root), every request carrying each server's own token,
/// and the answers without a token, with a made-up one and with a wrong password are compared too.
@Suite("etcd API against etcd 3.4", .serialized)
struct EtcdCompatibilityTests {
    static let password = "compat-test-etcd-password"

    struct Exchange {
        var path: String
        var body: String
        /// Compare only the status and the gRPC code (error texts may differ).
        var errorOnly = false
    }

    static let sequence: [Exchange] = [
        .init(path: "/v3/kv/put", body: #"{"key":"Zm9v","value":"YmFy"}"#),
        .init(path: "/v3/kv/put", body: #"{"key":"Zm9v","value":"YmF6","prev_kv":true}"#),
        .init(path: "/v3/kv/range", body: #"{"key":"Zm9v"}"#),
        .init(path: "/v3/kv/range", body: #"{"key":"bm9uZQ=="}"#),
        .init(path: "/v3/kv/put", body: #"{"key":"Zm9vMg==","value":"eA==","unknown_field":{"a":1}}"#),
        .init(path: "/v3/kv/range", body: #"{"key":"AA==","range_end":"AA==","keys_only":true}"#),
        .init(path: "/v3/kv/range", body: #"{"key":"AA==","range_end":"AA==","limit":"1","serializable":true}"#),
        .init(path: "/v3/kv/range", body: #"{"key":"AA==","range_end":"AA==","count_only":true}"#),
        .init(path: "/v3/kv/range", body: #"{"key":"Zm9v","range_end":"Zm9w"}"#),
        .init(path: "/v3/kv/range", body: #"{"key":"Zm9v","range_end":"Zm9w","limit":1}"#),
        // Compares over a range hold only if they hold for every key; numbers as strings or not.
        .init(
            path: "/v3/kv/txn",
            body:
                #"{"compare":[{"target":"VERSION","result":"GREATER","key":"Zm9v","range_end":"Zm9w","version":"0"}],"success":[{"request_range":{"key":"Zm9v","range_end":"Zm9w","limit":5,"keys_only":true}}]}"#
        ),
        .init(
            path: "/v3/kv/txn",
            body:
                #"{"compare":[{"target":"VERSION","result":"EQUAL","key":"Zm9v","range_end":"Zm9w","version":2}],"failure":[{"request_range":{"key":"Zm9v","count_only":true}}]}"#
        ),
        .init(
            path: "/v3/kv/txn",
            body:
                #"{"compare":[{"target":"LEASE","key":"Zm9v","lease":"0"},{"target":"MOD","result":"LESS","key":"Zm9v","mod_revision":"999999"}],"success":[{"request_put":{"key":"Zm9v","value":"cXV4","prev_kv":true}}]}"#
        ),
        .init(
            path: "/v3/kv/txn",
            body:
                #"{"compare":[{"target":"VALUE","result":"NOT_EQUAL","key":"Zm9v","value":"cXV4"}],"success":[{"request_put":{"key":"Zm9v","value":"bm8="}}]}"#
        ),
        // Patroni's leader race: create_revision == 0 wins once, then the failure branch reads.
        .init(
            path: "/v3/kv/txn",
            body:
                #"{"compare":[{"target":"CREATE","key":"bGVhZGVy","create_revision":0}],"success":[{"request_put":{"key":"bGVhZGVy","value":"cGcx"}}],"failure":[{"request_range":{"key":"bGVhZGVy"}}]}"#
        ),
        .init(
            path: "/v3/kv/txn",
            body:
                #"{"compare":[{"target":"CREATE","key":"bGVhZGVy","create_revision":0}],"success":[{"request_put":{"key":"bGVhZGVy","value":"cGcy"}}],"failure":[{"request_range":{"key":"bGVhZGVy"}}]}"#
        ),
        // A value compare on a missing key always fails, even against the empty value.
        .init(
            path: "/v3/kv/txn",
            body:
                #"{"compare":[{"target":"VALUE","key":"bm9wZQ==","value":""}],"success":[{"request_put":{"key":"bm9wZQ==","value":"eA=="}}]}"#
        ),
        .init(
            path: "/v3/kv/txn",
            body:
                #"{"compare":[{"target":"MOD","key":"bm9wZQ==","mod_revision":0}],"success":[{"request_delete_range":{"key":"Zm9vMg==","prev_kv":true}},{"request_put":{"key":"bmV3","value":"MQ=="}}]}"#
        ),
        .init(path: "/v3/kv/txn", body: "{}"),
        .init(path: "/v3/kv/deleterange", body: #"{"key":"bm9wZQ=="}"#),
        .init(path: "/v3/kv/deleterange", body: #"{"key":"bmV3","prev_kv":true}"#),
        .init(path: "/v3/kv/put", body: #"{"key":"!!!","value":"eA=="}"#, errorOnly: true),
        .init(path: "/v3/kv/put", body: #"{"value":"eA=="}"#),
        .init(path: "/v3/kv/put", body: #"{"key":"eA==","value":"eA==","lease":"12345"}"#),
        .init(path: "/v3/kv/put", body: "notjson", errorOnly: true),
        .init(
            path: "/v3/kv/txn",
            body:
                #"{"success":[{"request_put":{"key":"eA==","value":"eA=="}},{"request_put":{"key":"eA==","value":"eA=="}}]}"#
        ),
        .init(path: "/v3/lease/grant", body: #"{"TTL":30,"ID":"777"}"#),
        .init(path: "/v3/lease/grant", body: #"{"TTL":30,"ID":"777"}"#),
        .init(path: "/v3/lease/keepalive", body: #"{"ID":"777"}"#),
        .init(path: "/v3/lease/keepalive", body: #"{"ID":"778"}"#),
        .init(path: "/v3/kv/put", body: #"{"key":"bA==","value":"eA==","lease":"777"}"#),
        .init(path: "/v3/lease/timetolive", body: #"{"ID":"778"}"#),
        .init(path: "/v3/lease/revoke", body: #"{"ID":"777"}"#),
        .init(path: "/v3/lease/revoke", body: #"{"ID":"777"}"#),
        .init(path: "/v3/kv/range", body: #"{"key":"bA=="}"#),
    ]

    @Test func answersMatchEtcd() async throws {
        guard EtcdReference.available else {
            Issue.record("/usr/bin/etcd is missing: make deps installs etcd-server")
            return
        }
        let cluster = ProcessCluster()
        cluster.extraArguments += ["--etcd-user", "root", "--etcd-password", Self.password]
        let etcd = EtcdReference(clientPort: cluster.base + 60, peerPort: cluster.base + 61, root: cluster.root)
        defer {
            etcd.stop()
            cluster.stopAll()
        }
        for id in 1...3 { try cluster.start(id) }
        try etcd.start()
        #expect(await etcd.waitUntilHealthy(), "etcd did not start")
        #expect(await etcd.enableAuthentication(password: Self.password), "etcd's authentication did not turn on")
        let leader = try #require(await cluster.settledLeader())
        let follower = leader == 1 ? 2 : 1
        let raftgate = "http://127.0.0.1:\(cluster.http(follower))"
        let etcdToken = try #require(await EtcdReference.token(at: etcd.url, name: "root", password: Self.password))
        let ourToken = try #require(await EtcdReference.token(at: raftgate, name: "root", password: Self.password))
        // Any gateway accepts the token another one issued.
        let leaderToken = await EtcdReference.token(
            at: "http://127.0.0.1:\(cluster.http(leader))", name: "root", password: Self.password)
        #expect(leaderToken == ourToken)
        let etcdBase = try #require(await poll { await EtcdShape.revision(of: etcd.url, token: etcdToken) })
        let raftgateBase = try #require(await poll { await EtcdShape.revision(of: raftgate, token: ourToken) })

        // Authentication's refusals: no token, a made-up token, a wrong password.
        let put = #"{"key":"Zm9v","value":"YmFy"}"#
        let refusals: [(String, String, String?)] = [
            ("/v3/kv/put", put, nil), ("/v3/kv/range", #"{"key":"Zm9v"}"#, nil),
            ("/v3/kv/txn", #"{"success":[{"request_put":{"key":"Zm9v"}}]}"#, nil),
            ("/v3/kv/put", put, "not-a-token"), ("/v3/kv/range", #"{"key":"Zm9v"}"#, "not-a-token"),
            ("/v3/auth/authenticate", #"{"name":"root","password":"wrong-password"}"#, nil),
            ("/v3/auth/authenticate", #"{"name":"nobody","password":"\#(Self.password)"}"#, nil),
        ]
        for (path, body, token) in refusals {
            let theirs = await Self.post(etcd.url + path, body: body, token: token)
            let ours = await Self.post(raftgate + path, body: body, token: token)
            #expect(ours.status == theirs.status && ours.body == theirs.body, "\(path) \(body): \(ours) vs \(theirs)")
        }
        #expect(await EtcdShape.revision(of: raftgate, token: ourToken) == raftgateBase, "a refused write wrote")

        for exchange in Self.sequence {
            let theirs = await Self.post(etcd.url + exchange.path, body: exchange.body, token: etcdToken)
            let ours = await Self.post(raftgate + exchange.path, body: exchange.body, token: ourToken)
            #expect(ours.status == theirs.status, "\(exchange.path) \(exchange.body): \(ours.body) vs \(theirs.body)")
            if exchange.errorOnly {
                #expect(Self.code(ours.body) == Self.code(theirs.body), "\(exchange.body): \(ours.body)")
                #expect(Self.code(ours.body) != nil)
                continue
            }
            let expected = EtcdShape.normalize(theirs.body, baseline: etcdBase)
            let actual = EtcdShape.normalize(ours.body, baseline: raftgateBase)
            #expect(actual == expected, "\(exchange.path) \(exchange.body)")
        }

        // /version: the same fields; member list: the same shape, and the clients' URLs are the gateways'.
        let version = await Self.get(raftgate + "/version")
        let versionObject = try #require(
            try JSONSerialization.jsonObject(with: Data(version.body.utf8)) as? [String: String])
        #expect(versionObject["etcdcluster"] == "3.4.0" && versionObject["etcdserver"] != nil)
        // Without a token, as etcd 3.4 answers it (Patroni lists members before it authenticates).
        let members = await Self.post(raftgate + "/v3/cluster/member/list", body: "{}")
        let theirMembers = await Self.post(etcd.url + "/v3/cluster/member/list", body: "{}")
        #expect(members.status == 200 && theirMembers.status == 200)
        #expect(Self.keys(members.body) == Self.keys(theirMembers.body))
        for id in 1...3 { #expect(members.body.contains("http://127.0.0.1:\(cluster.http(id))")) }

        // A watch from a past revision: created, then each revision's events, as etcd streams them.
        let watch = #"{"create_request":{"key":"Zm9v","range_end":"Zm9w","start_revision":"START"}}"#
        let theirWatch = await Curl.run([
            "-N", "--max-time", "2", "-H", "Authorization: \(etcdToken)", "-X", "POST", etcd.url + "/v3/watch", "-d",
            watch.replacingOccurrences(of: "START", with: "\(etcdBase + 1)"),
        ])
        let ourWatch = await Curl.run([
            "-N", "--max-time", "2", "-H", "Authorization: \(ourToken)", "-X", "POST", raftgate + "/v3/watch", "-d",
            watch.replacingOccurrences(of: "START", with: "\(raftgateBase + 1)"),
        ])
        #expect(
            EtcdShape.normalize(ourWatch.body, baseline: raftgateBase)
                == EtcdShape.normalize(theirWatch.body, baseline: etcdBase))
        #expect(ourWatch.body.contains("\"events\""))

        // Cancelled mid-stream: created, then canceled (etcd keeps the HTTP stream open after that,
        // raftgate ends it: the first two answers are the same).
        let cancel = #"{"create_request":{"key":"Zm9v"}}"# + "\n" + #"{"cancel_request":{"watch_id":"0"}}"#
        let theirCancel = await Curl.run([
            "-N", "--max-time", "2", "-H", "Authorization: \(etcdToken)", "-X", "POST", etcd.url + "/v3/watch", "-d",
            cancel,
        ])
        let ourCancel = await Curl.run([
            "-N", "--max-time", "5", "-H", "Authorization: \(ourToken)", "-X", "POST", raftgate + "/v3/watch", "-d",
            cancel,
        ])
        #expect(ourCancel.exitCode == 0, "raftgate ends a cancelled watch stream")
        #expect(
            Self.shapes(ourCancel.body, baseline: raftgateBase).map {
                $0.replacingOccurrences(of: "\"revision\":\"[0-9-]+\"", with: "", options: .regularExpression)
            }
                == Self.shapes(theirCancel.body, baseline: etcdBase).map {
                    $0.replacingOccurrences(of: "\"revision\":\"[0-9-]+\"", with: "", options: .regularExpression)
                })
        #expect(ourCancel.body.contains("\"canceled\":true"))

        // Outside the subset: etcd's Unimplemented, never a wrong answer.
        let outside = await Self.post(raftgate + "/v3/kv/compaction", body: #"{"revision":"1"}"#, token: ourToken)
        #expect(outside.status == 501 && Self.code(outside.body) == 12)
    }

    /// Requests go through the real curl, one process each: etcd closes a keep-alive connection
    /// after some errors, and FoundationNetworking's client crashes on a reused closed connection.
    static func post(_ url: String, body: String, token: String? = nil) async -> (status: Int, body: String) {
        let auth = token.map { ["-H", "Authorization: \($0)"] } ?? []
        let answer = await Curl.run(auth + ["-X", "POST", url, "--data-binary", body])
        return (answer.status ?? 0, answer.body)
    }

    static func get(_ url: String) async -> (status: Int, body: String) {
        let answer = await Curl.run([url])
        return (answer.status ?? 0, answer.body)
    }

    static func code(_ body: String) -> Int? {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["code"] as? Int
    }

    static func shapes(_ body: String, baseline: Int64) -> [String] {
        EtcdShape.normalize(body, baseline: baseline).split(separator: "\n").map(String.init)
    }

    /// The field names at every level, for answers whose values are each server's own.
    static func keys(_ body: String) -> [String] {
        func walk(_ value: Any, _ path: String) -> [String] {
            if let object = value as? [String: Any] {
                return object.flatMap { name, inner in [path + "." + name] + walk(inner, path + "." + name) }
            }
            if let array = value as? [Any], let first = array.first { return walk(first, path + "[]") }
            return []
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) else { return [] }
        return Set(walk(object, "")).sorted()
    }
}
