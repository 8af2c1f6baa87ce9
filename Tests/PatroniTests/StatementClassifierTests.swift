import Testing

@testable import Patroni

@Suite("Read-only statement classifier")
struct StatementClassifierTests {
    @Test(arguments: [
        "SELECT 1", "select * from t where id = $1", "  (SELECT 1) ", "SELECT 1;", "SELECT 1; ;",
        "WITH x AS (SELECT 1) SELECT * FROM x", "VALUES (1), (2)", "TABLE accounts", "SHOW server_version",
        "EXPLAIN SELECT * FROM t", "EXPLAIN VERBOSE SELECT 1", "EXPLAIN (COSTS off, FORMAT json) SELECT 1",
        "SELECT 'DELETE FROM t; INSERT'", "SELECT \"into\" FROM t", "SELECT $$ update $$",
        "SELECT $tag$ it's ; delete $tag$", "SELECT E'\\' ; DROP TABLE t'", "-- DELETE\nSELECT 1",
        "/* INSERT /* nested */ UPDATE */ SELECT 1", "SELECT pg_is_in_recovery()", "select now(), $1::int",
        "SELECT count(*) FROM t FOR_x", "SeLeCt 1",
    ])
    func reads(_ sql: String) {
        #expect(StatementClassifier.classify(sql) == .read, "\(sql)")
    }

    @Test(arguments: [
        "INSERT INTO t VALUES (1)", "UPDATE t SET a = 1", "DELETE FROM t",
        "MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE",
        "CREATE TABLE t (a int)", "DROP TABLE t", "ALTER TABLE t ADD b int", "TRUNCATE t", "GRANT SELECT ON t TO u",
        "VACUUM", "ANALYZE t", "CALL p()", "DO $$ BEGIN END $$", "LOCK TABLE t", "REFRESH MATERIALIZED VIEW v",
        "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x",
        "SELECT * INTO t2 FROM t", "SELECT * FROM t FOR UPDATE", "SELECT * FROM t FOR NO KEY UPDATE",
        "SELECT * FROM t FOR SHARE", "SELECT * FROM t FOR KEY SHARE", "SELECT nextval('s')", "SELECT setval('s', 1)",
        "select set_config('search_path', 'x', false)", "SELECT pg_advisory_lock(1)", "SELECT pg_notify('c', 'x')",
        "EXPLAIN ANALYZE SELECT 1", "EXPLAIN (ANALYZE) SELECT 1", "EXPLAIN (ANALYZE false) SELECT 1",
        "EXPLAIN INSERT INTO t VALUES (1)", "(UPDATE t SET a = 1)", "SELECT 'unterminated", "SELECT \"unterminated",
        "SELECT $$ never closed", "/* unclosed SELECT 1", "SELECT update FROM t",
    ])
    func writes(_ sql: String) {
        #expect(StatementClassifier.classify(sql) == .write, "\(sql)")
    }

    @Test func emptyStatementsAreRefused() {
        #expect(StatementClassifier.classify("") == .refused(.empty))
        #expect(StatementClassifier.classify("  ; ") == .refused(.empty))
        #expect(StatementClassifier.classify("-- only a comment") == .refused(.empty))
    }

    @Test(arguments: [
        "SELECT 1; SELECT 2", "SELECT 1; DELETE FROM t", "INSERT INTO t VALUES (1); SELECT 1", "SELECT 1;;x",
    ])
    func oneStatementOnly(_ sql: String) {
        #expect(StatementClassifier.classify(sql) == .refused(.multipleStatements), "\(sql)")
    }

    @Test(arguments: [
        ("BEGIN", "begin"), ("start transaction", "start"), ("COMMIT", "commit"), ("ROLLBACK", "rollback"),
        ("SET search_path = x", "set"), ("RESET ALL", "reset"), ("LISTEN c", "listen"),
        ("DECLARE c CURSOR FOR SELECT 1", "declare"),
        ("COPY t FROM STDIN", "copy"), ("PREPARE p AS SELECT 1", "prepare"), ("DISCARD ALL", "discard"),
    ])
    func sessionStateIsRefused(_ sql: String, _ keyword: String) {
        #expect(StatementClassifier.classify(sql) == .refused(.sessionState(keyword)), "\(sql)")
    }

    /// A semicolon inside a literal or comment is not a statement boundary.
    @Test func semicolonsInsideLiteralsDoNotSplit() {
        #expect(StatementClassifier.classify("SELECT ';' -- ; DELETE") == .read)
        #expect(StatementClassifier.classify("SELECT $q$;$q$, 'a'';b'") == .read)
    }
}
