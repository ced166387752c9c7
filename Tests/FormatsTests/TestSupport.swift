import Foundation
import Formats
import Volumes

/// A fresh scratch directory per test, removed by `cleanup()`.
struct Scratch {
    let dir: String

    init(_ name: String = #function) {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        dir = (NSTemporaryDirectory() as NSString).standardizingPath + "/formats_tests_\(safe)_\(getpid())_\(UInt32.random(in: 0...UInt32.max))"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    func path(_ file: String) -> String { dir + "/" + file }

    /// Files in the directory (to assert that failed writes leave nothing behind).
    var contents: [String] { ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted() }

    func write(_ text: String, to file: String) -> String {
        let p = path(file)
        try! text.write(toFile: p, atomically: false, encoding: .utf8)
        return p
    }

    func write(_ bytes: [UInt8], to file: String) -> String {
        let p = path(file)
        try! Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }

    func bytes(_ file: String) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: path(file)) ?? Data()) }

    func cleanup() { try? FileManager.default.removeItem(atPath: dir) }
}

/// Runs `python3 -c script args...` with stdin from /dev/null and a timeout; pipes are drained before
/// waiting so a chatty child cannot deadlock.
struct PythonResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

enum Python {
    static func run(_ script: String, _ args: [String] = [], timeout: TimeInterval = 120) throws -> PythonResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script] + args
        p.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let group = DispatchGroup()
        nonisolated(unsafe) var outData = Data()
        nonisolated(unsafe) var errData = Data()
        group.enter()
        DispatchQueue.global().async { outData = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter()
        DispatchQueue.global().async { errData = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        if group.wait(timeout: .now() + timeout) == .timedOut {
            p.terminate()
            _ = group.wait(timeout: .now() + 5)
            p.waitUntilExit()
            return PythonResult(status: -1, stdout: String(decoding: outData, as: UTF8.self), stderr: "timed out after \(timeout) s")
        }
        // Both pipes are at EOF, so the child has exited. Foundation learns that from SIGCHLD, which was
        // seen to go missing in a test process that reaps other children itself; reap it ourselves then.
        let start = Date()
        while p.isRunning && Date().timeIntervalSince(start) < 5 { usleep(10_000) }
        var status = p.isRunning ? Int32(-1) : p.terminationStatus
        if p.isRunning {
            var raw: Int32 = 0
            if waitpid(p.processIdentifier, &raw, 0) == p.processIdentifier {
                status = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
            }
        }
        return PythonResult(status: status, stdout: String(decoding: outData, as: UTF8.self),
                            stderr: String(decoding: errData, as: UTF8.self))
    }

    /// Runs a script that must succeed; returns stdout split into lines.
    static func lines(_ script: String, _ args: [String] = []) throws -> [String] {
        let r = try run(script, args)
        guard r.status == 0 else { throw PythonFailure(message: "python failed (\(r.status)): \(r.stderr)") }
        return r.stdout.split(separator: "\n").map(String.init)
    }
}

struct PythonFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Deterministic pseudo-random numbers for test data (SplitMix64).
struct SeededRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func float() -> Float { Float(next() >> 40) / Float(1 << 24) * 2 - 1 }
}

func randomVolume(nx: Int, ny: Int, nz: Int, seed: UInt64) -> Volume {
    var rng = SeededRandom(seed: seed)
    var v = Volume(nx: nx, ny: ny, nz: nz)
    for i in 0..<v.data.count { v.data[i] = rng.float() * 3 }
    return v
}

/// The error thrown by `body`, or nil.
func formatError(_ body: () throws -> Void) -> FormatError? {
    do {
        try body()
        return nil
    } catch let e as FormatError {
        return e
    } catch {
        return FormatError(.io, file: "?", "unexpected non-format error \(error)")
    }
}
