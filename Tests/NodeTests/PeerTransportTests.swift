import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Raft
import Testing

@testable import Node

@Suite("Peer transport over TCP on 127.0.0.1")
struct PeerTransportTests {
    static let heartbeat = Message.Payload.heartbeat(Heartbeat(commit: 1, sequence: 2, sentAt: 3))

    /// Two transports with the same cluster key: the handshake passes both ways, frames flow.
    @Test func messagesFlowBetweenTwoNodes() async throws {
        let first = try await PeerTransport.start(id: 1, host: "127.0.0.1", port: 0, clusterKey: .test)
        let second = try await PeerTransport.start(id: 2, host: "127.0.0.1", port: 0, clusterKey: .test)
        first.setPeer(2, host: "127.0.0.1", port: second.localAddress.port!)
        second.setPeer(1, host: "127.0.0.1", port: first.localAddress.port!)
        let inbox = Inbox(second)
        let replies = Inbox(first)
        let sent = (UInt64(1)...50).map { Message(from: 1, to: 2, term: $0, payload: Self.heartbeat) }
        for message in sent { first.send(message) }
        #expect(await inbox.wait(for: 50) == sent, "in order, none lost, none duplicated")
        second.send(Message(from: 2, to: 1, term: 9, payload: .timeoutNow))
        #expect(await replies.wait(for: 1) == [Message(from: 2, to: 1, term: 9, payload: .timeoutNow)])
        #expect(first.statistics.handshakesAccepted == 1 && second.statistics.handshakesAccepted == 1)
        #expect(first.statistics.handshakesFailed == 0 && second.statistics.handshakesFailed == 0)
        await first.shutdown()
        await second.shutdown()
    }

    @Test func garbageClosesThatConnectionOnly() async throws {
        let receiver = try await PeerTransport.start(id: 2, host: "127.0.0.1", port: 0, clusterKey: .test)
        let port = receiver.localAddress.port!
        // A stray client sends junk: the receiver hangs up on it.
        let stray = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port).get()
        try await stray.writeAndFlush(ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0x7F, 1, 2, 3])).get()
        try await stray.closeFuture.get()
        #expect(receiver.statistics.handshakesRejected == 1)
        // A real peer still gets through.
        let sender = try await PeerTransport.start(id: 1, host: "127.0.0.1", port: 0, clusterKey: .test)
        sender.setPeer(2, host: "127.0.0.1", port: port)
        let inbox = Inbox(receiver)
        sender.send(Message(from: 1, to: 2, term: 4, payload: Self.heartbeat))
        #expect(await inbox.wait(for: 1) == [Message(from: 1, to: 2, term: 4, payload: Self.heartbeat)])
        await sender.shutdown()
        await receiver.shutdown()
    }

    @Test func reconnectsAfterThePeerRestarts() async throws {
        let sender = try await PeerTransport.start(id: 1, host: "127.0.0.1", port: 0, clusterKey: .test)
        var receiver = try await PeerTransport.start(id: 2, host: "127.0.0.1", port: 0, clusterKey: .test)
        let port = receiver.localAddress.port!
        sender.setPeer(2, host: "127.0.0.1", port: port)
        let before = Inbox(receiver)
        sender.send(Message(from: 1, to: 2, term: 1, payload: Self.heartbeat))
        #expect(await before.wait(for: 1).first?.term == 1)
        await receiver.shutdown()
        receiver = try await PeerTransport.start(id: 2, host: "127.0.0.1", port: port, clusterKey: .test)
        let after = Inbox(receiver)
        // Keep sending (as Raft's heartbeats would) until one arrives over a new connection.
        let deadline = ContinuousClock.now + .seconds(10)
        var term: UInt64 = 2
        while after.messages.isEmpty && ContinuousClock.now < deadline {
            sender.send(Message(from: 1, to: 2, term: term, payload: Self.heartbeat))
            term += 1
            _ = await after.wait(for: 1, within: 0.1)
        }
        #expect(!after.messages.isEmpty)
        #expect(sender.statistics.connections >= 2)
        await sender.shutdown()
        await receiver.shutdown()
    }

    /// A transport whose peer 2 is at a port nobody listens on (bound once, noted, closed).
    static func transportWithDeadPeer() async throws -> PeerTransport {
        let transport = try await PeerTransport.start(id: 1, host: "127.0.0.1", port: 0, clusterKey: .test)
        let probe = try await PeerTransport.start(id: 9, host: "127.0.0.1", port: 0, clusterKey: .test)
        let deadPort = probe.localAddress.port!
        await probe.shutdown()
        transport.setPeer(2, host: "127.0.0.1", port: deadPort)
        return transport
    }

    @Test func deadPeersAreRedialledWithBackOffNotOnEverySend() async throws {
        let transport = try await Self.transportWithDeadPeer()
        let start = ContinuousClock.now
        let sends = 300
        for _ in 0..<sends {
            transport.send(Message(from: 1, to: 2, term: 1, payload: Self.heartbeat))
            try await Task.sleep(for: .milliseconds(1))
        }
        let elapsed = ContinuousClock.now - start
        let statistics = transport.statistics
        // Back-off doubles from 20 ms up to 2 s: eight attempts cover the first 2.54 s, then one
        // per 2 s — however slow this machine is, far fewer attempts than sends.
        let extraSeconds = max(0, Double(elapsed.components.seconds) - 2)
        #expect(statistics.connectAttempts >= 1)
        #expect(statistics.connectAttempts <= 9 + Int(extraSeconds / 2))
        #expect(statistics.messagesDropped >= sends - statistics.connectAttempts * 2)
        await transport.shutdown()
    }

    /// A peer SWIM declared dead waits the longest back-off (2 s) from its first failed dial,
    /// instead of climbing to it from 20 ms.
    @Test func peersDeclaredDeadAreRedialledOnlyAtTheLongestBackOff() async throws {
        let transport = try await Self.transportWithDeadPeer()
        transport.setPeerDeclaredDead(2, true)
        let start = ContinuousClock.now
        for _ in 0..<300 {
            transport.send(Message(from: 1, to: 2, term: 1, payload: Self.heartbeat))
            try await Task.sleep(for: .milliseconds(1))
        }
        let elapsed = ContinuousClock.now - start
        let attempts = transport.statistics.connectAttempts
        // Not declared dead, the same sends cost a dial at 20, 40, 80, 160 ms… (four or more).
        #expect(attempts >= 1)
        #expect(attempts <= 1 + Int(elapsed.components.seconds / 2) + 1, "\(attempts) dials in \(elapsed)")
        await transport.shutdown()
    }

    @Test func aPeerThatStopsReadingCostsBoundedMemory() async throws {
        // A listener that completes the handshake and then never reads, like a node SIGSTOPped
        // right after accepting.
        let stalled = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(HandshakeThenStall(localID: 2))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let transport = try await PeerTransport.start(id: 1, host: "127.0.0.1", port: 0, clusterKey: .test)
        transport.setPeer(2, host: "127.0.0.1", port: stalled.localAddress!.port!)
        // Connect first, so what is measured is the established connection, not the dial queue.
        transport.send(Message(from: 1, to: 2, term: 1, payload: Self.heartbeat))
        let connected = ContinuousClock.now + .seconds(10)
        while transport.statistics.connections == 0 && ContinuousClock.now < connected {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(transport.statistics.connections == 1)
        let chunk = [UInt8](repeating: 7, count: 1 << 20)
        let append = AppendEntries(
            prevLogIndex: 0, prevLogTerm: 0, entries: [LogEntry(index: 1, term: 1, data: chunk)], leaderCommit: 0)
        // 200 MiB towards a peer that reads nothing: beyond the 64 MiB bound, messages are dropped.
        for _ in 0..<200 {
            transport.send(Message(from: 1, to: 2, term: 1, payload: .appendEntries(append)))
            try await Task.sleep(for: .milliseconds(1))
        }
        let deadline = ContinuousClock.now + .seconds(20)
        while transport.statistics.messagesDropped == 0 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(transport.statistics.messagesDropped > 0)
        await transport.shutdown()
        try await stalled.close()
    }

    @Test func unknownDestinationsAreDroppedAndCounted() async throws {
        let transport = try await PeerTransport.start(id: 1, host: "127.0.0.1", port: 0, clusterKey: .test)
        transport.send(Message(from: 1, to: 7, term: 1, payload: .timeoutNow))
        #expect(transport.statistics.messagesDropped == 1)
        await transport.shutdown()
    }
}

/// Answers the peer handshake as `localID`, then stops reading for good.
final class HandshakeThenStall: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var handshake: PeerHandshakeListener

    init(localID: NodeID) {
        handshake = PeerHandshakeListener(localID: localID, key: PeerHandshakeKey(.test))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let output = try? handshake.feed(unwrapInboundIn(data).readableBytesView) else {
            context.close(promise: nil)
            return
        }
        if let reply = output.reply { context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: reply)), promise: nil) }
        if output.authenticated != nil { context.channel.setOption(.autoRead, value: false).whenComplete { _ in } }
    }
}

/// Collects everything a transport receives, so tests can poll for it with a deadline.
final class Inbox: Sendable {
    private let received = NIOLockedValueBox([Message]())
    private let task: Task<Void, Never>

    init(_ transport: PeerTransport) {
        let received = received
        task = Task {
            for await envelope in transport.messages {
                if case .raft(let message) = envelope { received.withLockedValue { $0.append(message) } }
            }
        }
    }

    var messages: [Message] { received.withLockedValue { $0 } }

    /// Polls until at least `count` messages arrived or `seconds` passed; returns what arrived.
    func wait(for count: Int, within seconds: Double = 10) async -> [Message] {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while messages.count < count && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        return messages
    }
}
