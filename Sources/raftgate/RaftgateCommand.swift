import ArgumentParser

/// `raftgate` — a gateway node that carries its own coordination.
@main
struct RaftgateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "raftgate",
        abstract: "A gateway node with embedded Raft.",
        subcommands: [Serve.self, Status.self, MemberCommand.self, Agent.self])
}
