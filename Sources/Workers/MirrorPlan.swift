/// A worker as SWIM knows it: a member with role `worker` and its service in the metadata.
public struct SWIMWorker: Sendable, Hashable {
    public enum Status: Sendable, Hashable {
        case alive, suspect, dead, left
    }

    public var memberID: UInt64
    public var service: String
    public var address: String
    public var tags: [String: String]
    public var status: Status

    public init(memberID: UInt64, service: String, address: String, tags: [String: String], status: Status) {
        self.memberID = memberID
        self.service = service
        self.address = address
        self.tags = tags
        self.status = status
    }

    /// Its registry entry: the id is the SWIM member id; a `draining` tag marks it leaving.
    public var record: WorkerRecord {
        var tags = tags
        let draining = tags.removeValue(forKey: "draining") == "true"
        return WorkerRecord(
            service: service, id: "\(memberID)", address: address, tags: tags, source: .swim, draining: draining)
    }
}

/// What the leader writes so that the registry shows SWIM's view: alive (and suspect) workers
/// registered, dead or departed ones removed. Pure; entries registered over HTTP are never touched.
public enum MirrorPlan {
    public enum Step: Sendable, Hashable {
        case put(WorkerRecord)
        case delete(key: String)
    }

    /// `removeUnknown`: also remove SWIM entries of members this node's SWIM does not know at all
    /// (a leader fresh from a restart learns the members within seconds; before that, an unknown
    /// member is not evidence of a dead one).
    public static func steps(swim: [SWIMWorker], registered: [WorkerRecord], removeUnknown: Bool) -> [Step] {
        var steps: [Step] = []
        var byKey: [String: WorkerRecord] = [:]
        for record in registered { byKey[record.key] = record }
        var known: [String: SWIMWorker] = [:]
        for worker in swim
        where WorkerNames.isValidName(worker.service) && WorkerNames.parseAddress(worker.address) != nil {
            known[worker.record.key] = worker
        }
        for key in known.keys.sorted() {
            let worker = known[key]!
            guard worker.status == .alive || worker.status == .suspect else { continue }
            let wanted = worker.record
            switch byKey[key] {
            case .none: steps.append(.put(wanted))
            case .some(let current) where current.source == .swim && current != wanted: steps.append(.put(wanted))
            default: break
            }
        }
        for record in registered.sorted(by: { $0.key < $1.key }) where record.source == .swim {
            switch known[record.key]?.status {
            case .dead, .left: steps.append(.delete(key: record.key))
            case .none where removeUnknown: steps.append(.delete(key: record.key))
            default: break
            }
        }
        return steps
    }
}
