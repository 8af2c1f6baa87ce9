import Raft

/// The global knowledge the checker accumulates over a run: every entry ever handed out for
/// persisting, every index known committed, every entry applied anywhere, every acknowledged write.
package final class SafetyRecord {
    package init() {}

    struct EntryKey: Hashable {
        var index: UInt64
        var term: UInt64
    }

    struct EntryFacts {
        var identity: UInt64
        var previousTerm: UInt64?
    }

    private var entries: [EntryKey: EntryFacts] = [:]
    private var leaders: [UInt64: NodeID] = [:]
    /// `committedTerms[i]` is the term of the entry committed at `i`, or 0 if not yet seen.
    package private(set) var committedTerms: [UInt64] = [0]
    private var appliedIdentities: [UInt64] = [0]
    private var appliedHashes: [UInt64] = [0]
    package private(set) var highestAcknowledged: UInt64 = 0
    /// The highest state index any served read has shown a client.
    package private(set) var highestObserved: UInt64 = 0
    /// The newest term in which any node has become leader, and who.
    package private(set) var newestLeader: (term: UInt64, id: NodeID) = (0, 0)

    package var highestCommitted: UInt64 { UInt64(committedTerms.count - 1) }

    /// Election Safety: at most one leader per term (paper §5.2).
    package func recordLeader(_ id: NodeID, term: UInt64) -> String? {
        if let existing = leaders[term], existing != id { return "n\(existing) and n\(id) both lead term \(term)" }
        leaders[term] = id
        if term > newestLeader.term { newestLeader = (term, id) }
        return nil
    }

    /// Log Matching, checked incrementally (paper §5.3): every entry with a given index and term
    /// has the same content and the same predecessor term on every node. By induction over the
    /// index, two logs that share an (index, term) then share the whole prefix.
    package func recordEntry(_ entry: LogEntry, previousTerm: UInt64?) -> String? {
        let key = EntryKey(index: entry.index, term: entry.term)
        let identity = HashStateMachine.identity(of: entry)
        if let known = entries[key] {
            if known.identity != identity { return "two different entries at index \(entry.index) term \(entry.term)" }
            if let previousTerm, let knownPrevious = known.previousTerm, previousTerm != knownPrevious {
                return
                    "entry \(entry.index)/\(entry.term) follows term \(previousTerm) here and term \(knownPrevious) elsewhere"
            }
            if known.previousTerm == nil, previousTerm != nil { entries[key]?.previousTerm = previousTerm }
        } else {
            entries[key] = EntryFacts(identity: identity, previousTerm: previousTerm)
        }
        return nil
    }

    /// A node's log says `index` is committed with `term`; committed entries never change.
    package func recordCommitted(index: UInt64, term: UInt64) -> String? {
        while committedTerms.count <= Int(index) { committedTerms.append(0) }
        let known = committedTerms[Int(index)]
        if known == 0 {
            committedTerms[Int(index)] = term
        } else if known != term {
            return "index \(index) was committed in term \(known) and is now committed in term \(term)"
        }
        return nil
    }

    /// State Machine Safety (paper §5.4.3): no two nodes apply different entries at one index.
    package func recordApplied(_ entry: LogEntry, hash: UInt64) -> String? {
        let identity = HashStateMachine.identity(of: entry)
        let position = Int(entry.index)
        if position < appliedIdentities.count {
            if appliedIdentities[position] != identity {
                return "applied a different entry at \(entry.index) than another node"
            }
            if appliedHashes[position] != hash { return "reached a different state at \(entry.index)" }
            return nil
        }
        guard position == appliedIdentities.count else {
            return "applied \(entry.index) before anyone applied \(appliedIdentities.count)"
        }
        appliedIdentities.append(identity)
        appliedHashes.append(hash)
        return nil
    }

    package func appliedHash(at index: UInt64) -> UInt64? {
        Int(index) < appliedHashes.count ? appliedHashes[Int(index)] : nil
    }

    package var highestApplied: UInt64 { UInt64(appliedIdentities.count - 1) }

    package func observe(index: UInt64) {
        highestObserved = max(highestObserved, index)
    }

    package func acknowledge(index: UInt64, term: UInt64) {
        highestAcknowledged = max(highestAcknowledged, index)
    }
}
