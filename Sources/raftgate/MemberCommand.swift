import ArgumentParser
import Foundation

/// `raftgate member list|add|remove|transfer-leader`: membership administration through any
/// node's HTTP API (a follower redirects changes to the leader).
struct MemberCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "member",
        abstract: "List, add and remove cluster members; hand leadership to another voter.",
        subcommands: [List.self, Add.self, Remove.self, TransferLeader.self])

    struct Connection: ParsableArguments {
        @Option(help: "HTTP address of any member, host:port (RAFTGATE_ENDPOINT); default 127.0.0.1:8081.")
        var endpoint: String?
        @Option(help: "The admin token (RAFTGATE_ADMIN_TOKEN).") var adminToken: String?

        func client() throws -> AdminClient {
            let environment = ProcessInfo.processInfo.environment
            let text = endpoint ?? environment["RAFTGATE_ENDPOINT"] ?? "127.0.0.1:8081"
            guard let address = Address(text) else { throw ValidationError("endpoint must be host:port, got \(text)") }
            return AdminClient(server: address, token: adminToken ?? environment["RAFTGATE_ADMIN_TOKEN"])
        }

        /// Sends, prints the answer's body on success, and fails with the error message otherwise.
        func run(_ method: String, _ path: String, json body: [UInt8] = []) throws {
            let answer = try client().send(method, path, json: body)
            guard (200..<300).contains(answer.status) else {
                FileHandle.standardError.write(Data((AdminClient.message(answer) + "\n").utf8))
                throw ExitCode(1)
            }
            print(String(decoding: answer.body, as: UTF8.self))
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the members (GET /members).")
        @OptionGroup var connection: Connection
        func run() throws { try connection.run("GET", "/members") }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a node as a learner; the leader promotes it to voter once it has caught up.")
        @OptionGroup var connection: Connection
        @Option(help: "The new node's id.") var id: UInt64
        @Option(help: "The new node's Raft address, host:port.") var raft: String
        @Option(help: "The new node's HTTP address, host:port.") var http: String?

        func run() throws {
            var fields: [String: String] = ["raft": raft]
            if let http { fields["http"] = http }
            var text = "{\"id\":\(id),\"learner\":true"
            for (name, value) in fields.sorted(by: { $0.key < $1.key }) {
                text += ",\"\(name)\":" + String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
            }
            try connection.run("POST", "/members", json: Array((text + "}").utf8))
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a member (voter or learner).")
        @OptionGroup var connection: Connection
        @Argument(help: "The id of the member to remove.") var id: UInt64
        func run() throws { try connection.run("DELETE", "/members/\(id)") }
    }

    struct TransferLeader: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "transfer-leader", abstract: "Hand leadership to another voter (switchover).")
        @OptionGroup var connection: Connection
        @Argument(help: "The id of the voter to lead.") var to: UInt64
        func run() throws { try connection.run("POST", "/members/transfer", json: Array("{\"to\":\(to)}".utf8)) }
    }
}
