/// The sequential specification of one key: a register that may be absent.
enum RegisterModel {
    typealias State = String?

    /// The state after `operation` in `state`, or nil when the operation's observed result is
    /// impossible there (so it cannot be linearized at this point).
    static func step(_ state: State, _ operation: HistoryOperation) -> State? {
        switch operation.kind {
        case .read(let observed):
            if operation.outcome == .unknown { return .some(state) }
            return observed == state ? .some(state) : nil
        case .write(let value):
            return .some(value)
        case .delete:
            return .some(nil)
        case .compareAndSet(let expected, let new, let succeeded):
            if operation.outcome == .unknown {
                // Unanswered: if it ran here, it did whatever the state dictated.
                return .some(state == expected ? new : state)
            }
            if succeeded { return state == expected ? .some(new) : nil }
            return state != expected ? .some(state) : nil
        }
    }
}
