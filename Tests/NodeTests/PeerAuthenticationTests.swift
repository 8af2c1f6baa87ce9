import Raft
import TestSupport
import Testing

@testable import Node

/// The Raft port admits cluster members only: transports over real sockets, and strangers on raw
/// TCP who send well-formed frames without the key, with a guessed key, or under another name.
@Suite("Peer authentication over TCP")
struct PeerAuthenticationTests {
    static let append = Message(
        from: 2, to: 1, term: 99,
        payload: .appendEntries(
            AppendEntries(
                prevLogIndex: 0, prevLogTerm: 0, entries: [LogEntry(index: 1, term: 99, data: [1, 2, 3])],
                leaderCommit: 1)))

    static func frame(_ message: Message) -> [UInt8] { PeerFrame.encode(message) }

    /// Polls `condition` until it holds or `seconds` pass.
    static func eventually(within seconds: Double = 10, _ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return condition()
    }

    @Test func framesWithoutAHandshakeAreRefused() async throws {
        let node = try await PeerTransport.start(id: 1, host: "127.0.0.1", port: 0, clusterKey: .test)
        let inbox = Inbox(node)
        let port = node.localAddress.port!
        let closed = await offThePool {
            guard let stranger = RawPeer(port: port) else { return false }
            stranger.send(Self.frame(Self.append))
            return stranger.closedByTheNode()
        }
        #expect(closed, "the node hangs up")
        #expect(node.statistics.handshakesRejected == 1)
        #expect(node.statistics.handshakesAccepted == 0)
        #expect(inbox.messages.isEmpty, "nothing reached Raft")
        await node.shutdown()
    }

    @Test func aHandshakeUnderAnotherKeyIsRefused() async throws {
        let node = try await PeerTransport.start(id: 1, host: "127.0.0.1", port: 0, clusterKey: .test)
        let inbox = Inbox(node)
        let port = node.localAddress.port!
        let closed = await offThePool {
            guard let stranger = RawPeer(port: port), stranger.handshake(as: 2, to: 1, key: .other) else {
                return false
            }
            stranger.send(Self.frame(Self.append))
            return stranger.closedByTheNode()
        }
        #expect(closed)
        #expect(node.statistics.handshakesRejected == 1)
        #expect(inbox.messages.isEmpty)
        await node.shutdown()
    }

    @Test func anAuthenticatedPeerCannotSpeakForAnotherNorToAnother() async throws {
        let node = try await PeerTransport.start(id: 1, host: "127.0.0.1", port: 0, clusterKey: .test)
        let inbox = Inbox(node)
        let port = node.localAddress.port!
        let own = Message(from: 2, to: 1, term: 1, payload: .timeoutNow)
        var asThree = Self.append
        asThree.from = 3
        var forFive = Self.append
        forFive.to = 5
        for forged in [asThree, forFive] {
            let closed = await offThePool {
                guard let member = RawPeer(port: port), member.handshake(as: 2, to: 1, key: .test) else {
                    return false
                }
                member.send(Self.frame(own) + Self.frame(forged) + Self.frame(own))
                return member.closedByTheNode()
            }
            #expect(closed, "\(forged.from) → \(forged.to): the node hangs up")
        }
        #expect(node.statistics.handshakesAccepted == 2)
        #expect(node.statistics.framesMisaddressed == 2)
        // Its own frames before the forged one were delivered; nothing from the forged one on.
        #expect(await inbox.wait(for: 2) == [own, own])
        await node.shutdown()
    }

    @Test func aConnectionThatNeverCompletesTheHandshakeIsClosedAtTheDeadline() async throws {
        let node = try await PeerTransport.start(
            id: 1, host: "127.0.0.1", port: 0, clusterKey: .test, handshakeTimeout: .milliseconds(200))
        let port = node.localAddress.port!
        let closed = await offThePool {
            guard let idle = RawPeer(port: port) else { return false }
            return idle.closedByTheNode()
        }
        #expect(closed)
        #expect(node.statistics.handshakeTimeouts == 1)
        await node.shutdown()
    }

    @Test func transportsWithAnotherKeyCannotTalk() async throws {
        let sender = try await PeerTransport.start(id: 1, host: "127.0.0.1", port: 0, clusterKey: .other)
        let receiver = try await PeerTransport.start(id: 2, host: "127.0.0.1", port: 0, clusterKey: .test)
        let inbox = Inbox(receiver)
        sender.setPeer(2, host: "127.0.0.1", port: receiver.localAddress.port!)
        // Keep sending, as Raft would, until the sender has been refused a few times over.
        let deadline = ContinuousClock.now + .seconds(10)
        while sender.statistics.handshakesFailed < 2 && ContinuousClock.now < deadline {
            sender.send(Message(from: 1, to: 2, term: 7, payload: .timeoutNow))
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(sender.statistics.handshakesFailed >= 2)
        #expect(sender.statistics.connections == 0, "no connection ever counted as established")
        #expect(receiver.statistics.handshakesAccepted == 0)
        #expect(inbox.messages.isEmpty)
        await sender.shutdown()
        await receiver.shutdown()
    }
}
