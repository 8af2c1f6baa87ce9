import Membership

/// A seeded run of real `SWIMInstance`s over a simulated network, in ticks: lossy, delaying
/// datagrams through the real wire codec, push-pull over a reliable TCP model, crashes, pauses and
/// partitions. Tests drive it step by step; `run()` plays a random fault schedule and checks the
/// protocol's promises (see `SWIMSimulation+Checks.swift`).
public final class SWIMSimulation {
    public let options: SWIMSimulationOptions
    public internal(set) var now = 0
    public internal(set) var report: SWIMSimulationReport
    /// Share of datagrams lost; tests may change it mid-run.
    public var loss: Double

    var random: SWIMRandom
    var network: SimulatedNetwork
    var nodes: [SimulatedMember]
    var events: [(tick: Int, event: Event)] = []
    let addresses: [String: Int]

    // Bookkeeping for the checks.
    /// Until this tick, deaths are blamed on a partition (it is active or recently healed).
    var partitionGraceUntil = -1
    /// `revivedAt[observer][subject]`: last time the observer saw the subject come back to life.
    var revivedAt: [[Int]]
    /// `detected[observer][subject]`: the observer declared the crashed subject dead.
    var detected: [[Bool]]
    var lateReported: [[Bool]]

    enum Event {
        case start(Int, seeds: [Int])
        case kill(Int)
        case pause(Int, ticks: Int)
        case partition(Set<Int>)
        case heal
    }

    enum State: Equatable {
        case notStarted
        case up
        case paused(until: Int)
        case killed
    }

    struct SimulatedMember {
        var instance: SWIMInstance
        var state: State = .notStarted
        var inbox: [Envelope] = []
        var pausedTicks = 0
        var killedAt: Int?
        var hasLeft = false
        var largestLocalHealth = 1
    }

    public init(options: SWIMSimulationOptions) {
        precondition((1...100).contains(options.members), "1 … 100 members")
        self.options = options
        loss = options.loss
        random = SWIMRandom(seed: options.seed)
        network = SimulatedNetwork(memberCount: options.members, maxDelay: options.maxDelay)
        report = SWIMSimulationReport(options: options)
        var addresses: [String: Int] = [:]
        nodes = []
        for index in 0..<options.members {
            var settings = options.settings
            settings.randomSeed = options.seed &* 0x2545_F491_4F6C_DD1D ^ UInt64(index + 1) << 40
            let address = Self.address(of: index)
            addresses[address] = index
            let metadata = MemberMetadata(
                nodeID: UInt64(index + 1), role: index % 4 == 3 ? .worker : .gateway,
                httpAddress: "node\(index + 1):8080", raftAddress: "node\(index + 1):9090", swimAddress: address,
                tags: ["zone": "z\(index % 3)"])
            let instance = try! SWIMInstance(
                id: MemberID(UInt64(index + 1)), address: address, metadata: metadata, settings: settings)
            nodes.append(SimulatedMember(instance: instance))
        }
        self.addresses = addresses
        let matrix = Array(repeating: Array(repeating: 0, count: options.members), count: options.members)
        revivedAt = matrix
        detected = Array(repeating: Array(repeating: false, count: options.members), count: options.members)
        lateReported = detected
    }

    public static func address(of index: Int) -> String { "node\(index + 1):7070" }

    // MARK: Observing

    public var memberCount: Int { nodes.count }
    public func instance(_ index: Int) -> SWIMInstance { nodes[index].instance }
    /// What `observer` holds about `subject`.
    public func view(of observer: Int, about subject: Int) -> Member? {
        nodes[observer].instance.member(MemberID(UInt64(subject + 1)))
    }
    public func isRunning(_ index: Int) -> Bool {
        switch nodes[index].state {
        case .up, .paused: true
        case .notStarted, .killed: false
        }
    }
    public func isKilled(_ index: Int) -> Bool { nodes[index].state == .killed }

    // MARK: Controls (effective at once)

    /// Starts member `index`; it joins through `seeds` (none: it starts a new group).
    public func start(_ index: Int, seeds: [Int] = []) {
        guard nodes[index].state == .notStarted else { return }
        nodes[index].state = .up
        trace("start m\(index + 1) seeds \(seeds.map { "m\($0 + 1)" })")
        if !seeds.isEmpty { handle(index, nodes[index].instance.join(seeds: seeds.map(Self.address(of:)))) }
    }

    /// Member 0 starts the group; the others join through it at random moments of the first 20 ticks.
    public func bootstrap() {
        start(0)
        for index in 1..<nodes.count {
            schedule(.start(index, seeds: [0]), at: now + 1 + random.next(below: 20))
        }
    }

    /// Crashes `index`: it stops for good and everything addressed to it is lost.
    public func kill(_ index: Int) {
        guard isRunning(index) else { return }
        nodes[index].state = .killed
        nodes[index].killedAt = now
        nodes[index].inbox = []
        report.stats.kills += 1
        trace("kill m\(index + 1)")
    }

    /// Stops `index` for `ticks` ticks: no ticks, inbound datagrams wait in its socket buffer.
    public func pause(_ index: Int, ticks: Int) {
        guard nodes[index].state == .up, ticks > 0 else { return }
        nodes[index].state = .paused(until: now + ticks)
        nodes[index].pausedTicks += ticks
        report.stats.pauses += 1
        trace("pause m\(index + 1) for \(ticks) ticks")
    }

    /// Cuts `side` off from everyone else.
    public func partition(_ side: Set<Int>) {
        network.partition(side)
        partitionGraceUntil = Int.max
        report.stats.partitions += 1
        trace("partition \(side.sorted().map { "m\($0 + 1)" }) from the rest")
    }

    /// Restores every link. Deaths declared up to `grace` ticks later are still blamed on the partition.
    public func heal(grace: Int? = nil) {
        network.heal()
        let members = options.members
        partitionGraceUntil = now + (grace ?? options.settings.suspicionMaxTicks(members: members) * 2)
        trace("heal")
    }

    public func leave(_ index: Int) {
        guard nodes[index].state == .up else { return }
        nodes[index].hasLeft = true
        trace("leave m\(index + 1)")
        handle(index, nodes[index].instance.leave())
    }

    public func updateMetadata(_ index: Int, _ metadata: MemberMetadata) {
        guard nodes[index].state == .up else { return }
        handle(index, nodes[index].instance.updateMetadata(metadata))
    }

    func schedule(_ event: Event, at tick: Int) {
        events.append((tick, event))
    }

    // MARK: Running

    /// Advances one tick: scheduled events, resumptions, deliveries, then every running member ticks.
    public func step() {
        now += 1
        applyEvents()
        for index in nodes.indices {
            if case .paused(let until) = nodes[index].state, now >= until {
                nodes[index].state = .up
                trace("resume m\(index + 1)")
                let buffered = nodes[index].inbox
                nodes[index].inbox = []
                for envelope in buffered { deliver(envelope) }
            }
        }
        for envelope in network.deliveries(at: now) { deliver(envelope) }
        for index in nodes.indices where nodes[index].state == .up {
            handle(index, nodes[index].instance.tick())
            nodes[index].largestLocalHealth = max(
                nodes[index].largestLocalHealth, nodes[index].instance.localHealthMultiplier)
        }
        checkDetections()
    }

    public func run(ticks: Int) {
        for _ in 0..<ticks { step() }
    }

    /// Steps until `condition` holds or `limit` ticks pass; returns the ticks taken, nil on timeout.
    public func run(atMost limit: Int, until condition: (SWIMSimulation) -> Bool) -> Int? {
        let started = now
        while now - started < limit {
            if condition(self) { return now - started }
            step()
        }
        return condition(self) ? now - started : nil
    }

    func applyEvents() {
        guard events.contains(where: { $0.tick <= now }) else { return }
        let due = events.filter { $0.tick <= now }
        events.removeAll { $0.tick <= now }
        for (_, event) in due {
            switch event {
            case .start(let index, let seeds): start(index, seeds: seeds)
            case .kill(let index): kill(index)
            case .pause(let index, let ticks): pause(index, ticks: ticks)
            case .partition(let side): partition(side)
            case .heal: heal()
            }
        }
    }

    func deliver(_ envelope: Envelope) {
        switch nodes[envelope.to].state {
        case .notStarted, .killed: return
        case .paused:
            // A socket buffer of 64 datagrams; TCP connections to a paused process time out.
            if !envelope.isStream && nodes[envelope.to].inbox.count < 64 { nodes[envelope.to].inbox.append(envelope) }
            return
        case .up: break
        }
        let message: SWIMMessage
        do {
            message = try SWIMWireCodec.decode(envelope.bytes)
        } catch {
            violation("m\(envelope.to + 1) cannot decode a message from m\(envelope.from + 1): \(error)")
            return
        }
        handle(envelope.to, nodes[envelope.to].instance.receive(message, from: Self.address(of: envelope.from)))
    }

    /// Carries out what member `index` asked for.
    func handle(_ index: Int, _ directives: [SWIMDirective]) {
        for directive in directives {
            switch directive {
            case .send(let message, let address):
                guard let to = addresses[address] else { continue }
                if case .pushPull = message {
                    sendStream(message, from: index, to: to)
                } else {
                    sendDatagram(message, from: index, to: to)
                }
            case .startPushPull(let address):
                guard let to = addresses[address] else { continue }
                report.stats.pushPulls += 1
                // The connection fails outright if the peer is down or unreachable.
                guard isRunning(to), nodes[to].state == .up, network.connected(index, to) else { continue }
                sendStream(nodes[index].instance.pushPullRequest(), from: index, to: to)
            case .memberChanged(let change):
                record(change, observer: index)
            }
        }
    }

    func delay() -> Int { 1 + random.next(below: max(1, options.maxDelay)) }

    func sendStream(_ message: SWIMMessage, from: Int, to: Int) {
        network.schedule(
            Envelope(from: from, to: to, bytes: SWIMWireCodec.encode(message), isStream: true), arrival: now + delay())
    }

    func sendDatagram(_ message: SWIMMessage, from: Int, to: Int) {
        report.stats.datagramsSent += 1
        let bytes: [UInt8]
        do {
            bytes = try SWIMWireCodec.encodeDatagram(message, maxBytes: options.settings.maxPayloadBytes)
        } catch {
            violation("m\(from + 1) built a datagram that cannot be encoded: \(error)")
            return
        }
        report.stats.largestDatagram = max(report.stats.largestDatagram, bytes.count)
        if bytes.count > SWIMWireCodec.datagramLimit {
            violation("m\(from + 1) sent a \(bytes.count)-byte datagram")
        }
        // The core sizes its gossip to the payload limit: the encoder must not have dropped any.
        if (try? SWIMWireCodec.decode(bytes)) != message {
            violation("m\(from + 1): datagram does not round-trip through the codec")
        }
        if loss > 0 && random.chance(loss) {
            report.stats.datagramsLost += 1
            return
        }
        network.schedule(Envelope(from: from, to: to, bytes: bytes, isStream: false), arrival: now + delay())
    }

    func trace(_ line: @autoclosure () -> String) {
        if options.verbose { report.trace.append("t=\(now) \(line())") }
    }

    func violation(_ line: String) {
        report.violations.append("t=\(now): \(line)")
        trace("VIOLATION \(line)")
    }
}
