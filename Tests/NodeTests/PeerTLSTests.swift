import Raft
import TestSupport
import Testing

@testable import Node

/// Peer mutual TLS over real sockets, with certificates openssl made (`scripts/make-certs.sh`):
/// members of the cluster CA talk; a dialer holding the cluster key but a certificate of another
/// CA, and a plain-TCP dialer, are refused and counted before the cluster-key handshake.
@Suite("Peer mutual TLS")
struct PeerTLSTests {
    static func tls(_ certificates: ThrowawayCertificates, _ name: String) async throws -> PeerTLS {
        try await PeerTLS.load(
            PeerTLSFiles(
                certificateChain: certificates.certificate(name), privateKey: certificates.key(name),
                clusterCA: certificates.ca))
    }

    @Test func membersOfTheClusterCATalk() async throws {
        let cluster = try await ThrowawayCertificates.make(["n1", "n2"])
        defer { cluster.remove() }
        let first = try await PeerTransport.start(
            id: 1, host: "127.0.0.1", port: 0, clusterKey: .test, tls: try await Self.tls(cluster, "n1"))
        let second = try await PeerTransport.start(
            id: 2, host: "127.0.0.1", port: 0, clusterKey: .test, tls: try await Self.tls(cluster, "n2"))
        let inbox = Inbox(second)
        first.setPeer(2, host: "127.0.0.1", port: second.localAddress.port!)
        let message = Message(from: 1, to: 2, term: 3, payload: .timeoutNow)
        // The first send dials; keep sending until one arrives (a send before the link is up is dropped).
        let deadline = ContinuousClock.now + .seconds(10)
        while inbox.messages.isEmpty && ContinuousClock.now < deadline {
            first.send(message)
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(inbox.messages.first == message)
        #expect(second.statistics.handshakesAccepted >= 1)
        #expect(second.statistics.tlsRejected == 0)
        await first.shutdown()
        await second.shutdown()
    }

    /// The intruder holds the cluster key and a certificate of another CA. Whether it trusts that
    /// other CA (and so refuses the node's certificate itself) or the cluster's (and so reaches the
    /// point of presenting its own), the node never admits it.
    @Test(arguments: [false, true])
    func aPeerWithACertificateOfAnotherCACannotJoin(trustsTheClusterCA: Bool) async throws {
        let cluster = try await ThrowawayCertificates.make(["n1"])
        let foreign = try await ThrowawayCertificates.make(["n2"])
        defer {
            cluster.remove()
            foreign.remove()
        }
        let receiver = try await PeerTransport.start(
            id: 1, host: "127.0.0.1", port: 0, clusterKey: .test, tls: try await Self.tls(cluster, "n1"))
        let intruderTLS = try await PeerTLS.load(
            PeerTLSFiles(
                certificateChain: foreign.certificate("n2"), privateKey: foreign.key("n2"),
                clusterCA: trustsTheClusterCA ? cluster.ca : foreign.ca))
        let intruder = try await PeerTransport.start(
            id: 2, host: "127.0.0.1", port: 0, clusterKey: .test, tls: intruderTLS)
        let inbox = Inbox(receiver)
        intruder.setPeer(1, host: "127.0.0.1", port: receiver.localAddress.port!)
        let deadline = ContinuousClock.now + .seconds(10)
        while (receiver.statistics.tlsRejected < 2 || intruder.statistics.handshakesFailed < 2)
            && ContinuousClock.now < deadline
        {
            intruder.send(Message(from: 2, to: 1, term: 9, payload: .timeoutNow))
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(receiver.statistics.tlsRejected >= 2, "each attempt refused and counted")
        #expect(intruder.statistics.handshakesFailed >= 2)
        #expect(intruder.statistics.connections == 0)
        #expect(receiver.statistics.handshakesAccepted == 0)
        #expect(inbox.messages.isEmpty)
        await intruder.shutdown()
        await receiver.shutdown()
    }

    @Test func aPlainTCPPeerIsRefusedEvenWithTheClusterKey() async throws {
        let cluster = try await ThrowawayCertificates.make(["n1"])
        defer { cluster.remove() }
        let node = try await PeerTransport.start(
            id: 1, host: "127.0.0.1", port: 0, clusterKey: .test, tls: try await Self.tls(cluster, "n1"))
        let inbox = Inbox(node)
        let port = node.localAddress.port!
        let closed = await offThePool {
            guard let plain = RawPeer(port: port) else { return false }
            // Its hello is not a TLS record: the node hangs up without a challenge.
            _ = plain.handshake(as: 2, to: 1, key: .test)
            return plain.closedByTheNode()
        }
        #expect(closed)
        #expect(await PeerAuthenticationTests.eventually { node.statistics.tlsRejected == 1 })
        #expect(node.statistics.handshakesAccepted == 0)
        #expect(inbox.messages.isEmpty)
        await node.shutdown()
    }

    @Test func mismatchedFilesFailAtLoad() async throws {
        let first = try await ThrowawayCertificates.make(["n1"])
        let second = try await ThrowawayCertificates.make(["n2"])
        defer {
            first.remove()
            second.remove()
        }
        await #expect(throws: (any Error).self) {
            _ = try await PeerTLS.load(
                PeerTLSFiles(
                    certificateChain: first.certificate("n1"), privateKey: second.key("n2"), clusterCA: first.ca))
        }
        await #expect(throws: (any Error).self) {
            _ = try await PeerTLS.load(
                PeerTLSFiles(
                    certificateChain: first.certificate("n1"), privateKey: first.key("n1"),
                    clusterCA: first.directory + "/missing.pem"))
        }
    }
}
