/// Picks the worker with the fewest requests in flight; ties go round-robin from a rotating
/// start, so equal workers share the load evenly instead of the first one taking every request.
/// Pure: the caller owns the rotation counter.
public enum LeastOutstandingPicker {
    public struct Candidate: Sendable, Hashable {
        public var id: String
        public var outstanding: Int

        public init(id: String, outstanding: Int) {
            self.id = id
            self.outstanding = outstanding
        }
    }

    /// `candidates` in a stable order (by id); `rotation` advances by one per pick.
    public static func pick(_ candidates: [Candidate], rotation: UInt64) -> String? {
        guard let least = candidates.map(\.outstanding).min() else { return nil }
        let tied = candidates.filter { $0.outstanding == least }
        return tied[Int(rotation % UInt64(tied.count))].id
    }
}
