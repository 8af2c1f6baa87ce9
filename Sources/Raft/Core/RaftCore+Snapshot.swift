extension RaftCore {
    /// The host saved a snapshot of its state machine covering everything up to `index` (which it
    /// has applied): the core drops the log entries it covers (paper §7) and will send this
    /// snapshot to followers that need them.
    public mutating func compact(upTo index: UInt64, snapshotData: [UInt8]) throws {
        try log.compact(upTo: index, data: snapshotData)
    }

    // MARK: Leader side

    /// Sends the next InstallSnapshot chunk (paper §7, Figure 13), one chunk in flight at a time.
    mutating func sendSnapshotChunk(toProgressAt index: Int) {
        if progress[index].snapshotInTransfer == nil { progress[index].becomeSnapshot(log.snapshot) }
        guard !progress[index].snapshotChunkInFlight, let snapshot = progress[index].snapshotInTransfer else { return }
        let offset = min(progress[index].snapshotOffset, snapshot.data.count)
        let end = min(offset + max(1, options.snapshotChunkBytes), snapshot.data.count)
        let chunk = InstallSnapshot(
            metadata: snapshot.metadata, offset: offset, data: Array(snapshot.data[offset..<end]),
            done: end == snapshot.data.count)
        send(.installSnapshot(chunk), to: progress[index].id)
        progress[index].snapshotChunkInFlight = true
        progress[index].snapshotChunkSentAt = clock
    }

    mutating func handleSnapshotResponse(_ response: SnapshotResponse, from peer: NodeID) {
        guard role == .leader, let index = progressIndex(of: peer) else { return }
        progress[index].recentActive = true
        guard case .snapshot(let snapshotIndex) = progress[index].state, snapshotIndex == response.snapshotIndex else {
            return
        }
        let size = progress[index].snapshotInTransfer?.data.count ?? 0
        progress[index].snapshotOffset = min(response.receivedBytes, size)
        progress[index].snapshotChunkInFlight = false
        appendsNeeded = true
    }

    // MARK: Follower side

    mutating func handleSnapshotChunk(_ chunk: InstallSnapshot, from leaderID: NodeID) {
        let metadata = chunk.metadata
        if metadata.index <= log.committed {
            // Nothing new in it; tell the leader how far we are.
            incomingSnapshot = nil
            send(.appendResponse(AppendResponse(success: true, index: log.committed)), to: leaderID)
            return
        }
        if chunk.offset == 0 {
            incomingSnapshot = Snapshot(metadata: metadata, data: [])
        }
        guard var incoming = incomingSnapshot, incoming.metadata == metadata, incoming.data.count == chunk.offset else {
            // Out of order or for another snapshot: say what we hold so the leader resends from there.
            let held = incomingSnapshot.flatMap { $0.metadata == metadata ? $0.data.count : nil } ?? 0
            send(.snapshotResponse(SnapshotResponse(snapshotIndex: metadata.index, receivedBytes: held)), to: leaderID)
            return
        }
        incoming.data.append(contentsOf: chunk.data)
        guard chunk.done else {
            incomingSnapshot = incoming
            send(
                .snapshotResponse(SnapshotResponse(snapshotIndex: metadata.index, receivedBytes: incoming.data.count)),
                to: leaderID)
            return
        }
        incomingSnapshot = nil
        if log.matchTerm(metadata.index, metadata.term) {
            // Our log already holds the entry the snapshot ends with, so it holds everything before
            // it too (Log Matching): keep the log and just advance the commit index (paper §7 step 6).
            log.commit(to: metadata.index)
        } else {
            // Paper §7 steps 7–8: discard the log and take the snapshot as the new base.
            log.restore(incoming)
        }
        send(.appendResponse(AppendResponse(success: true, index: metadata.index)), to: leaderID)
    }
}
