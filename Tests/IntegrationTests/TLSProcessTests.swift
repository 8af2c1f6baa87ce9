import Foundation
import TestSupport
import Testing

/// Real `raftgate serve` processes with TLS on, certificates from `scripts/make-certs.sh`, and
/// the real curl as the client.
@Suite("TLS on real nodes", .serialized, .enabled(if: Curl.available, "needs /usr/bin/curl"))
struct TLSProcessTests {
    static func tlsArguments(_ certificates: ThrowawayCertificates, _ name: String, api: Bool) -> [String] {
        var arguments = [
            "--peer-tls-cert", certificates.certificate(name), "--peer-tls-key", certificates.key(name),
            "--peer-tls-ca", certificates.ca,
        ]
        if api { arguments += ["--tls-cert", certificates.certificate(name), "--tls-key", certificates.key(name)] }
        return arguments
    }

    /// The node whose health port answers /primary 200 over HTTPS.
    static func httpsLeader(_ cluster: ProcessCluster, ca: String) async -> Int? {
        await poll {
            for id in cluster.processes.keys.sorted()
            where await Curl.run(["--cacert", ca, "https://127.0.0.1:\(cluster.health(id))/primary"]).status == 200 {
                return id
            }
            return nil
        }
    }

    @Test func aClusterServesHTTPSAndItsPeersUseMutualTLS() async throws {
        let certificates = try await ThrowawayCertificates.make(["n1", "n2", "n3", "other"])
        let cluster = ProcessCluster()
        defer {
            cluster.stopAll()
            certificates.remove()
        }
        let base = cluster.extraArguments
        for id in 1...3 {
            cluster.extraArguments = base + Self.tlsArguments(certificates, "n\(id)", api: true)
            try cluster.start(id)
        }
        let leader = try #require(await Self.httpsLeader(cluster, ca: certificates.ca), "a leader, over mTLS peers")
        let url = "https://127.0.0.1:\(cluster.http(leader))/kv/tls-key"
        let written = await poll {
            let answer = await Curl.run(["--cacert", certificates.ca, "-X", "PUT", "--data", "over-tls", url])
            return answer.status == 200 ? answer : nil
        }
        #expect(written != nil, "a client trusting the CA writes")
        let follower = (1...3).first { $0 != leader }!
        let read = await Curl.run([
            "--cacert", certificates.ca, "https://127.0.0.1:\(cluster.http(follower))/kv/tls-key",
        ])
        #expect(read.status == 200 && read.body.contains("over-tls"), "a linearizable read on a follower: \(read)")

        // Without the CA, curl refuses the server's certificate: no request is sent.
        let untrusting = await Curl.run([url])
        #expect(untrusting.exitCode == 60 && untrusting.status == nil, "\(untrusting)")
        // Plain HTTP to a TLS port is cut off, and the node carries on.
        let plain = await Curl.run(["http://127.0.0.1:\(cluster.http(leader))/health/live"])
        #expect(plain.status == nil && plain.exitCode != 0, "\(plain)")
        let plainHealth = await Curl.run(["http://127.0.0.1:\(cluster.health(leader))/primary"])
        #expect(plainHealth.status == nil && plainHealth.exitCode != 0, "\(plainHealth)")
        #expect(cluster.processes.values.allSatisfy { $0.isRunning })
        let again = await Curl.run([
            "--cacert", certificates.ca, "https://127.0.0.1:\(cluster.http(leader))/kv/tls-key",
        ])
        #expect(again.status == 200, "\(again)")
    }

    @Test func aNodeWithACertificateOfAnotherCAIsNotLetIn() async throws {
        let cluster1 = try await ThrowawayCertificates.make(["n1", "n2"])
        let foreign = try await ThrowawayCertificates.make(["n3"])
        let cluster = ProcessCluster()
        defer {
            cluster.stopAll()
            cluster1.remove()
            foreign.remove()
        }
        let base = cluster.extraArguments
        for id in 1...2 {
            cluster.extraArguments = base + Self.tlsArguments(cluster1, "n\(id)", api: false)
            try cluster.start(id)
        }
        // The right cluster key, a certificate (and CA) of its own.
        cluster.extraArguments = base + Self.tlsArguments(foreign, "n3", api: false)
        try cluster.start(3)
        let leader = try #require(await cluster.leader(), "the two members elect a leader")
        #expect(leader != 3)
        #expect(await cluster.write(port: cluster.http(leader), key: "k", value: "v"))
        #expect(await eventually { cluster.log(3).contains("peer handshake failed") }, "it says why")
        let refused = await eventually {
            for id in 1...2 {
                let metrics = await HTTP.request("GET", "http://127.0.0.1:\(cluster.http(id))/metrics").body
                if metrics.split(separator: "\n").contains(where: {
                    $0.hasPrefix("raftgate_peer_rejected_total{reason=\"tls\"}") && !$0.hasSuffix(" 0")
                }) {
                    return true
                }
            }
            return false
        }
        #expect(refused, "the members count the refused TLS handshakes")
        let outsider = await HTTP.request("GET", "http://127.0.0.1:\(cluster.http(3))/cluster")
        let view = try #require(try JSONSerialization.jsonObject(with: Data(outsider.body.utf8)) as? [String: Any])
        #expect(view["leader"] as? Int == nil, "\(outsider.body)")
    }

    @Test func aClientCAMakesClientCertificatesRequired() async throws {
        let certificates = try await ThrowawayCertificates.make(["n1", "client"])
        let stranger = try await ThrowawayCertificates.make(["client"])
        let cluster = ProcessCluster()
        defer {
            cluster.stopAll()
            certificates.remove()
            stranger.remove()
        }
        cluster.extraArguments += [
            "--tls-cert", certificates.certificate("n1"), "--tls-key", certificates.key("n1"), "--tls-client-ca",
            certificates.ca,
        ]
        try cluster.start(1)
        let url = "https://127.0.0.1:\(cluster.health(1))/health/live"
        let trusted = ["--cacert", certificates.ca]
        let withCertificate = await poll {
            let answer = await Curl.run(
                trusted + ["--cert", certificates.certificate("client"), "--key", certificates.key("client"), url])
            return answer.status == 200 ? answer : nil
        }
        #expect(withCertificate != nil, "a client certificate of the CA is let in")
        let without = await Curl.run(trusted + [url])
        #expect(without.status == nil && without.exitCode != 0, "\(without)")
        let foreign = await Curl.run(
            trusted + ["--cert", stranger.certificate("client"), "--key", stranger.key("client"), url])
        #expect(foreign.status == nil && foreign.exitCode != 0, "\(foreign)")
        #expect(cluster.processes[1]?.isRunning == true)
    }

    @Test func badTLSSettingsStopServeWithAClearMessage() async throws {
        let certificates = try await ThrowawayCertificates.make(["n1"])
        let cluster = ProcessCluster()
        defer {
            cluster.stopAll()
            certificates.remove()
        }
        cluster.extraArguments += ["--peer-tls-cert", certificates.certificate("n1")]
        try cluster.start(1)
        let process = try #require(cluster.processes[1])
        #expect(await eventually { !process.isRunning }, "serve exits")
        #expect(process.terminationStatus != 0)
        #expect(cluster.log(1).contains("peerTlsCert, peerTlsKey and peerTlsCa go together"), "\(cluster.log(1))")
    }
}
