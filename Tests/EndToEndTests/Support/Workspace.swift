import Foundation
import Testing

/// A scratch directory for one end-to-end test, removed when the test is done.
final class Workspace {
    let path: String

    init(_ name: String) throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("ml_tomo-e2e-\(name)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        path = base.path
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ relative: String) -> String { path + "/" + relative }

    func exists(_ relative: String) -> Bool { FileManager.default.fileExists(atPath: file(relative)) }

    func read(_ relative: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: file(relative))) }

    /// Every regular file below `relative` (paths relative to it), sorted.
    func files(under relative: String) -> [String] {
        let root = file(relative)
        guard let e = FileManager.default.enumerator(atPath: root) else { return [] }
        return e.compactMap { $0 as? String }.filter { name in
            var isDir: ObjCBool = false
            return FileManager.default.fileExists(atPath: root + "/" + name, isDirectory: &isDir) && !isDir.boolValue
        }.sorted()
    }

    /// `ml_tomo simulate` into `relative` (small, fast data sets for the tests).
    func simulate(_ relative: String, particles: Int, size: Int, classes: Int, snr: Double, seed: Int = 3,
                  extra: [String] = []) async throws {
        let result = try await ProcessRunner.mlTomo(
            ["simulate", file(relative), "--particles", "\(particles)", "--size", "\(size)", "--classes", "\(classes)",
             "--snr", "\(snr)", "--seed", "\(seed)"] + extra, timeout: 300)
        try #require(result.status == 0, "simulate failed: \(result)")
    }
}

/// Runs a Python snippet with the readers users have (mrcfile, starfile, h5py); stdin from /dev/null.
enum Python {
    static func run(_ script: String, currentDirectory: String? = nil, timeout: Double = 120) async throws -> ProcessResult {
        try await ProcessRunner.run("/usr/bin/env", ["python3", "-c", script], currentDirectory: currentDirectory,
                                    timeout: timeout)
    }
}
