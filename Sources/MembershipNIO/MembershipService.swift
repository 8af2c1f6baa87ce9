import CoreMetrics
import Foundation
import Logging
import Membership
import NIOCore
import NIOPosix

/// The SwiftNIO shell around a pure `SWIMInstance`: one UDP socket for probes and gossip, a TCP
/// listener on the same port for push-pull state sync, a tick timer — and nothing else decides
/// anything: every rule lives in the instance, this actor only carries out its directives.
public actor MembershipService {
    public nonisolated let id: MemberID
    public nonisolated let address: String
    private var instance: SWIMInstance
    private let authenticator: MessageAuthenticator
    private let configuration: MembershipConfiguration
    private let logger: Logger
    private let metrics: MembershipMetrics
    private var udpOutbound: NIOAsyncChannelOutboundWriter<AddressedEnvelope<ByteBuffer>>?
    private var tasks: [Task<Void, Never>] = []
    private var pushPullServer: Channel?
    private var subscribers: [Int: AsyncStream<MemberChange>.Continuation] = [:]
    private var nextSubscriber = 0
    private var resolved: [String: SocketAddress] = [:]
    private var stopped = false
    /// Datagrams and frames dropped: failed authentication, or undecodable after it.
    public private(set) var droppedUnauthenticated = 0
    public private(set) var droppedMalformed = 0
    /// Authentic datagrams and push-pull requests dropped as copies of ones already seen.
    public private(set) var droppedReplayed = 0
    /// Authentic datagrams and push-pull requests dropped for a timestamp outside the replay
    /// window: an old recording, or a member whose clock is off.
    public private(set) var droppedOutOfWindow = 0
    private var replayWindow: ReplayWindow
    /// Stamps sent from this boot: a random start, then one up per packet (never repeated).
    private var nextNonce = UInt64.random(in: 0...UInt64.max)
    private var lastClockWarning: ContinuousClock.Instant?

    private init(configuration: MembershipConfiguration, instance: SWIMInstance) {
        self.configuration = configuration
        self.instance = instance
        id = instance.id
        address = instance.address
        authenticator = MessageAuthenticator(clusterKey: configuration.clusterKey)
        replayWindow = ReplayWindow(window: configuration.replayWindow)
        var logger = configuration.logger
        logger[metadataKey: "node"] = "\(configuration.id)"
        self.logger = logger
        metrics = MembershipMetrics(factory: configuration.metricsFactory)
    }

    /// Binds the UDP socket and the push-pull listener, then joins through the seeds.
    /// The incarnation starts at the wall clock in milliseconds, so a restarted member's records
    /// supersede what the others remember of its previous life.
    public static func start(
        _ configuration: MembershipConfiguration, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> MembershipService {
        guard configuration.clusterKey.count >= MembershipConfiguration.minimumClusterKeyBytes else {
            throw MembershipConfigurationError.clusterKeyTooShort(configuration.clusterKey.count)
        }
        guard configuration.replayWindow >= .seconds(1) else {
            throw MembershipConfigurationError.replayWindowTooShort(configuration.replayWindow)
        }
        let address = "\(configuration.host):\(configuration.port)"
        var settings = configuration.settings
        settings.randomSeed = UInt64.random(in: 1...UInt64.max)
        // The seal's header and tag must fit beside the payload in one datagram; gossip that did
        // not would be left out of the packet after the instance counted it as sent.
        settings.maxPayloadBytes = min(
            settings.maxPayloadBytes, SWIMWireCodec.datagramLimit - MessageAuthenticator.overheadBytes)
        let instance = try SWIMInstance(
            id: MemberID(configuration.id), address: address, metadata: configuration.metadata,
            incarnation: UInt64(Date().timeIntervalSince1970 * 1000), settings: settings)
        let service = MembershipService(configuration: configuration, instance: instance)
        let udp = try await DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: configuration.host, port: configuration.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>(
                        wrappingChannelSynchronously: channel)
                }
            }
        let pushPullServer = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(LengthPrefixedFrameDecoder()),
                        PushPullServerHandler { request, remote in
                            await service.pushPullReply(to: request, from: remote)
                        })
                }
            }
            .bind(host: configuration.host, port: configuration.port)
            .get()
        await service.run(udp: udp, pushPullServer: pushPullServer)
        await service.join()
        return service
    }

    private func run(
        udp: NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>,
        pushPullServer: Channel
    ) {
        self.pushPullServer = pushPullServer
        let ready = AsyncStream<Void>.makeStream()
        tasks.append(
            Task {
                try? await udp.executeThenClose { inbound, outbound in
                    self.setOutbound(outbound)
                    ready.continuation.finish()
                    for try await envelope in inbound {
                        self.handleDatagram(envelope)
                    }
                }
            })
        let interval = configuration.tickInterval
        tasks.append(
            Task {
                for await _ in ready.stream {}
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    self.tick()
                }
            })
    }

    private func setOutbound(_ outbound: NIOAsyncChannelOutboundWriter<AddressedEnvelope<ByteBuffer>>) {
        udpOutbound = outbound
    }

    private func join() {
        let seeds = configuration.seeds.filter { $0 != address }
        guard !seeds.isEmpty else { return }
        perform(instance.join(seeds: seeds))
    }

    // MARK: Observing

    /// Every member known, this one included.
    public var members: [Member] { instance.members }
    public func member(_ node: UInt64) -> Member? { instance.member(MemberID(node)) }
    public var incarnation: UInt64 { instance.incarnation }
    public var localHealthMultiplier: Int { instance.localHealthMultiplier }
    public var counters: SWIMCounters { instance.counters }

    /// Member changes from now on (old status, new status, metadata), until `stop()`.
    public func changes() -> AsyncStream<MemberChange> {
        let (stream, continuation) = AsyncStream<MemberChange>.makeStream(bufferingPolicy: .bufferingNewest(1024))
        let key = nextSubscriber
        nextSubscriber += 1
        subscribers[key] = continuation
        continuation.onTermination = { _ in Task { await self.unsubscribe(key) } }
        return stream
    }

    private func unsubscribe(_ key: Int) { subscribers[key] = nil }

    // MARK: Inputs

    public func updateMetadata(_ metadata: MemberMetadata) {
        guard !stopped else { return }
        perform(instance.updateMetadata(metadata))
    }

    /// Tells a few members this one is leaving (they gossip it), then stops.
    public func leave() async {
        guard !stopped else { return }
        perform(instance.leave())
        // Give the datagrams a moment to leave the socket before it closes.
        try? await Task.sleep(for: .milliseconds(100))
        await stop()
    }

    /// Stops at once: sockets closed, subscribers finished.
    public func stop() async {
        stopped = true
        for task in tasks { task.cancel() }
        tasks = []
        try? await pushPullServer?.close()
        pushPullServer = nil
        udpOutbound = nil
        for (_, continuation) in subscribers { continuation.finish() }
        subscribers = [:]
    }

    private func tick() {
        guard !stopped else { return }
        perform(instance.tick())
        metrics.record(instance)
    }

    private func handleDatagram(_ envelope: AddressedEnvelope<ByteBuffer>) {
        guard !stopped else { return }
        guard let (stamp, payload) = authenticator.open(Array(envelope.data.readableBytesView), kind: .datagram)
        else {
            droppedUnauthenticated += 1
            metrics.droppedUnauthenticated.increment()
            return
        }
        guard admit(stamp, from: envelope.remoteAddress) else { return }
        guard let message = try? SWIMWireCodec.decode(payload) else {
            droppedMalformed += 1
            metrics.droppedMalformed.increment()
            return
        }
        guard let sender = Self.text(envelope.remoteAddress) else { return }
        perform(instance.receive(message, from: sender))
    }

    /// One inbound push-pull (`PushPullServerHandler`): the instance's response to a request.
    /// A copy of a request already answered gets no answer: it would hand whoever recorded it the
    /// current member list, and merge the recorded (possibly long stale) records again.
    private func pushPullReply(to sealed: [UInt8], from remote: String) -> [UInt8]? {
        guard !stopped else { return nil }
        guard let (requestStamp, payload) = authenticator.open(sealed, kind: .pushPullRequest) else {
            droppedUnauthenticated += 1
            metrics.droppedUnauthenticated.increment()
            return nil
        }
        guard admit(requestStamp, from: nil) else { return nil }
        guard let message = try? SWIMWireCodec.decode(payload), case .pushPull(.request, _) = message else {
            droppedMalformed += 1
            metrics.droppedMalformed.increment()
            return nil
        }
        var reply: SWIMMessage?
        let directives = instance.receive(message, from: remote).filter { directive in
            if case .send(let answer, _) = directive, case .pushPull(.response, _) = answer {
                reply = answer
                return false
            }
            return true
        }
        perform(directives)
        return authenticator.seal(
            SWIMWireCodec.encode(reply ?? .pushPull(.response, members: instance.pushPullState())),
            kind: .pushPullResponse, stamp: stamp(), context: requestStamp.bytes)
    }

    // MARK: Freshness

    private func stamp() -> PacketStamp {
        defer { nextNonce &+= 1 }
        return PacketStamp(sentAtMillis: Self.wallClockMillis(), nonce: nextNonce)
    }

    static func wallClockMillis() -> UInt64 { UInt64(max(0, Date().timeIntervalSince1970 * 1000)) }

    /// Whether an authentic packet is fresh; counts (and now and then logs) the ones that are not.
    private func admit(_ stamp: PacketStamp, from remote: SocketAddress?) -> Bool {
        let now = Self.wallClockMillis()
        switch replayWindow.admit(stamp, now: now) {
        case .fresh:
            return true
        case .replayed:
            droppedReplayed += 1
            metrics.droppedReplayed.increment()
            return false
        case .outsideWindow:
            droppedOutOfWindow += 1
            metrics.droppedOutOfWindow.increment()
            // Either an old recording or a member whose clock is off; the second cuts that member
            // off from SWIM, so say it, but not for every packet.
            let clock = ContinuousClock.now
            if lastClockWarning.map({ clock - $0 > .seconds(30) }) ?? true {
                lastClockWarning = clock
                logger.warning(
                    "dropped an authentic SWIM packet stamped outside the replay window: a replay, or a member whose clock is off",
                    metadata: [
                        "remote": "\(remote.flatMap(Self.text) ?? "push-pull")",
                        "skewMs": "\(Int64(bitPattern: stamp.sentAtMillis &- now))",
                        "windowMs": "\(replayWindow.windowMillis)",
                    ])
            }
            return false
        }
    }

    /// The initiating side of a push-pull: connect, send our state, merge theirs.
    private func startPushPull(with target: String) {
        let requestStamp = stamp()
        let request = authenticator.seal(
            SWIMWireCodec.encode(instance.pushPullRequest()), kind: .pushPullRequest, stamp: requestStamp)
        guard let (host, port) = Self.split(target) else { return }
        let bindHost = configuration.host
        let source =
            bindHost == "0.0.0.0" || bindHost == "::" ? nil : try? SocketAddress(ipAddress: bindHost, port: 0)
        Task {
            do {
                var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                // From our own address, as the datagrams are, so firewalls (and the chaos tests'
                // partitions) treat both halves of the protocol alike.
                if let source { bootstrap = bootstrap.bind(to: source) }
                let channel =
                    try await bootstrap
                    .connectTimeout(.seconds(1))
                    .connect(host: host, port: port) { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(
                                ByteToMessageHandler(LengthPrefixedFrameDecoder()))
                            return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                        }
                    }
                let response: [UInt8]? = try await withThrowingTaskGroup(of: [UInt8]?.self) { group in
                    group.addTask {
                        try await channel.executeThenClose { inbound, outbound in
                            try await outbound.write(.frame(request))
                            var frames = inbound.makeAsyncIterator()
                            return try await frames.next().map { Array($0.readableBytesView) }
                        }
                    }
                    group.addTask {
                        try await Task.sleep(for: .seconds(3))
                        channel.channel.close(promise: nil)
                        return nil
                    }
                    let first = try await group.next() ?? nil
                    group.cancelAll()
                    return first
                }
                if let response { self.mergePushPullResponse(response, to: requestStamp, from: target) }
            } catch {
                // An unreachable member: the instance retries on its own schedule.
            }
        }
    }

    /// The answer is bound to our request's stamp, so no recorded answer passes for it.
    private func mergePushPullResponse(_ sealed: [UInt8], to requestStamp: PacketStamp, from target: String) {
        guard !stopped else { return }
        guard let (_, payload) = authenticator.open(sealed, kind: .pushPullResponse, context: requestStamp.bytes) else {
            droppedUnauthenticated += 1
            metrics.droppedUnauthenticated.increment()
            return
        }
        guard let message = try? SWIMWireCodec.decode(payload), case .pushPull(.response, _) = message else {
            droppedMalformed += 1
            metrics.droppedMalformed.increment()
            return
        }
        perform(instance.receive(message, from: target))
    }

    // MARK: Directives

    private func perform(_ directives: [SWIMDirective]) {
        var datagrams: [AddressedEnvelope<ByteBuffer>] = []
        for directive in directives {
            switch directive {
            case .send(let message, let target):
                let limit = SWIMWireCodec.datagramLimit - MessageAuthenticator.overheadBytes
                guard let payload = try? SWIMWireCodec.encodeDatagram(message, maxBytes: limit),
                    let remote = resolve(target)
                else { continue }
                datagrams.append(
                    AddressedEnvelope(
                        remoteAddress: remote,
                        data: ByteBuffer(bytes: authenticator.seal(payload, kind: .datagram, stamp: stamp()))))
            case .startPushPull(let target):
                startPushPull(with: target)
            case .memberChanged(let change):
                publish(change)
            }
        }
        guard !datagrams.isEmpty, let udpOutbound else { return }
        Task { try? await udpOutbound.write(contentsOf: datagrams) }
    }

    private func publish(_ change: MemberChange) {
        logger.info(
            "member changed",
            metadata: [
                "member": "\(change.member.id)", "address": "\(change.member.address)",
                "from": "\(change.previousStatus.map { "\($0.kind)" } ?? "unknown")",
                "to": "\(change.status.kind)", "incarnation": "\(change.status.incarnation)",
            ])
        for (_, continuation) in subscribers { continuation.yield(change) }
    }

    private func resolve(_ target: String) -> SocketAddress? {
        if let known = resolved[target] { return known }
        guard let (host, port) = Self.split(target),
            let address = try? SocketAddress.makeAddressResolvingHost(host, port: port)
        else { return nil }
        resolved[target] = address
        return address
    }

    static func split(_ address: String) -> (String, Int)? {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
            return nil
        }
        return (String(address[..<colon]), port)
    }

    static func text(_ address: SocketAddress) -> String? {
        guard let ip = address.ipAddress, let port = address.port else { return nil }
        return "\(ip):\(port)"
    }
}
